"""Simulated serving traffic, so the learning loop can be watched on a laptop.

``simulate_traffic`` plays chat turns against whatever the registry deploys: each request is
routed like the router's Splitter (production, or the canary with the canary's percent), the
chosen ranker (ONNX, the serving path) orders candidate shops near the child's school, the top 5
are shown, and the child clicks / orders / favourites / rates according to the hidden truth model
of the generated data set (``data/truth``), so a better ranker really earns a higher CTR.
Interactions and feedback land in the event store exactly where serving writes them.

``simulate_drift`` is the same traffic with the world changed:

- ``new_school``       a middle school opens: every request comes from children the ranker has
                       never seen (new ids, ages 14-16, a new school id), near an existing school.
- ``preference_shift`` tastes change: children ask at night for 편의점 / 카페·디저트 (and 한식 /
                       중식 lose favour), and tire of yesterday's most engaged shops, which the
                       old ranker keeps pushing: its CTR drops.
- ``broken_feature``   the shop feature pipeline breaks (coordinates and prices read as 0): the
                       ranker scores garbage, turns degrade (about 10 % errors) and slow down.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from naviyam.clock import Clock
from naviyam.config import Settings
from naviyam.data.catalog import Catalog, haversine_km
from naviyam.data.events import position_bias
from naviyam.data.generate import load_events, load_truth
from naviyam.events import EventStore
from naviyam.monitoring.live import read_serving_log
from naviyam.ranking.features import RankingFeatures
from naviyam.ranking.scorer import OnnxRanker
from naviyam.registry import ModelRegistry, NoVersionError
from naviyam.schemas import time_slot_of
from naviyam.storage import events_target

log = logging.getLogger(__name__)

DriftKind = Literal["none", "new_school", "preference_shift", "broken_feature"]
KINDS: tuple[str, ...] = ("none", "new_school", "preference_shift", "broken_feature")
TOP_K = 5
CANDIDATES = 20
CATEGORY_REQUEST_SHARE = 0.3   # turns that ask for a food category (the rest: "뭐 먹지?")
INTENT_MIX: dict[str, float] = {
    "FOOD_RECOMMENDATION": 0.55, "MENU_INQUIRY": 0.10, "SHOP_INFO": 0.05, "BUDGET_INQUIRY": 0.10,
    "GREETING": 0.10, "GOODBYE": 0.04, "OUT_OF_SCOPE": 0.05, "UNSAFE_REQUEST": 0.01,
}
SHIFTED_INTENT_MIX: dict[str, float] = {
    "FOOD_RECOMMENDATION": 0.35, "MENU_INQUIRY": 0.30, "SHOP_INFO": 0.05, "BUDGET_INQUIRY": 0.20,
    "GREETING": 0.05, "GOODBYE": 0.02, "OUT_OF_SCOPE": 0.02, "UNSAFE_REQUEST": 0.01,
}
SEARCH_INTENTS = {"FOOD_RECOMMENDATION", "MENU_INQUIRY", "SHOP_INFO", "BUDGET_INQUIRY"}
SHIFT_CATEGORIES = ("편의점", "카페·디저트")
SHIFT_BONUS = {"편의점": 1.0, "카페·디저트": 1.0, "한식": -1.0, "중식": -1.0}
FATIGUE = 1.5  # preference_shift: the shops children engaged with most lose this much utility (z-scored)
NEW_SCHOOL_ID = "school_new"
ORDER_PROB = 0.35
FAVORITE_PROB = 0.1
RATE_PROB = 0.6
BASE_ERROR_RATE = 0.005
BROKEN_ERROR_RATE = 0.10


@dataclass
class Arm:
    """One route of the Splitter: a ranker directory served under a name and a weight."""

    name: str                   # "production" | "canary"
    model_dir: Path
    weight: int
    version: str | None = None  # registry version


# ----------------------------------------------------------------------------------- requests
def _session_starts(events: pd.DataFrame) -> pd.DataFrame:
    starts = events.groupby("session_id").agg(user_id=("user_id", "first"), timestamp=("timestamp", "min"),
                                              time_slot=("time_slot", "first"))
    return starts.reset_index(drop=True)


def _pick(mix: Mapping[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=np.float64)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _requested_categories(catalog: Catalog, user_ids: np.ndarray, share: float, rng: np.random.Generator,
                          forced: tuple[str, ...] | None = None) -> np.ndarray:
    """A category the child asks for (from their preferences), or None for an open question."""
    out = np.full(len(user_ids), None, dtype=object)
    asks = rng.random(len(user_ids)) < share
    prefs = catalog.users["preferred_categories"].reindex(list(user_ids))
    for i in np.flatnonzero(asks):
        if forced:
            out[i] = forced[rng.integers(len(forced))]
            continue
        cats = prefs.iloc[i]
        if cats is not None and not (isinstance(cats, float)) and len(cats):
            out[i] = cats[rng.integers(len(cats))]
    return out


def make_requests(catalog: Catalog, events: pd.DataFrame, n: int, start: pd.Timestamp, days: float,
                  kind: str, rng: np.random.Generator) -> pd.DataFrame:
    """One row per chat turn: who asks, when, from where, for what."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    sessions = _session_starts(events)
    pick = sessions.iloc[rng.integers(0, len(sessions), n)].reset_index(drop=True)
    users = pick["user_id"].to_numpy(dtype=object)
    minute_of_day = (pick["timestamp"].dt.hour * 60 + pick["timestamp"].dt.minute).to_numpy()
    intents = _pick(INTENT_MIX, n, rng)
    forced = None
    share = CATEGORY_REQUEST_SHARE
    truth_users = users.copy()
    if kind == "new_school":
        school = catalog.schools["school_id"].iloc[rng.integers(len(catalog.schools))]
        pool = catalog.users.index[catalog.users["school_id"] == school].to_numpy(dtype=object)
        truth_users = pool[rng.integers(0, len(pool), n)]
        users = np.array([f"nsch_{u}" for u in truth_users], dtype=object)
    elif kind == "preference_shift":
        minute_of_day = rng.integers(21 * 60, 23 * 60 + 50, n)
        intents = _pick(SHIFTED_INTENT_MIX, n, rng)
        forced, share = SHIFT_CATEGORIES, 0.8
    offsets = np.sort(rng.random(n)) * max(days, 1 / 24)
    day = np.floor(offsets).astype(np.int64)
    base = pd.Timestamp(start).normalize()
    ts = base + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minute_of_day, unit="m") \
        + pd.to_timedelta(rng.integers(0, 60, n), unit="s")
    # Keep turns after `start` (the first day may begin mid-day).
    ts = pd.DatetimeIndex(np.where(ts < pd.Timestamp(start), ts + pd.Timedelta(days=1), ts))
    order = np.argsort(ts.values, kind="stable")
    truth_school = catalog.users["school_id"].reindex(list(truth_users)).to_numpy(dtype=object)
    frame = pd.DataFrame({
        "request_id": [uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i).hex for i in range(n)],
        "user_id": users, "truth_user": truth_users, "timestamp": ts,
        "intent": intents, "category": _requested_categories(catalog, truth_users, share, rng, forced),
        "truth_school": truth_school,
    }).iloc[order].reset_index(drop=True)

    frame["time_slot"] = [time_slot_of(t.to_pydatetime()).value for t in frame["timestamp"]]
    profiles = catalog.users.reindex(list(frame["truth_user"]))
    frame["age"] = profiles["age"].to_numpy(dtype=np.float64)
    frame["school_id"] = frame["truth_school"]
    frame["has_meal_card"] = profiles["has_meal_card"].to_numpy(dtype=bool)
    if kind == "new_school":
        frame["age"] = rng.integers(14, 17, n).astype(np.float64)
        frame["school_id"] = NEW_SCHOOL_ID
    loc = catalog.schools.reindex(list(frame["truth_school"]))
    frame["origin_lat"] = loc["lat"].to_numpy(dtype=np.float64)
    frame["origin_lon"] = loc["lon"].to_numpy(dtype=np.float64)
    return frame


def replay_requests(catalog: Catalog, events: pd.DataFrame, start: Any, end: Any, max_requests: int,
                    rng: np.random.Generator, serve_from: Any = None) -> pd.DataFrame:
    """Requests of the logged sessions in [start, end): the users, times and slots the app really
    saw, asked the way ``make_requests`` asks (for drift references). ``serve_from`` moves them
    by whole weeks to on or after that instant."""
    sessions = _session_starts(events)
    keep = np.ones(len(sessions), dtype=bool)
    if start is not None:
        keep &= (sessions["timestamp"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (sessions["timestamp"] < pd.Timestamp(end)).to_numpy()
    sessions = sessions[keep]
    if len(sessions) > max_requests:
        sessions = sessions.iloc[np.sort(rng.choice(len(sessions), max_requests, replace=False))]
    sessions = sessions[sessions["user_id"].isin(catalog.users.index)].reset_index(drop=True)
    if serve_from is not None:
        # Served right after the window (the model's features are a snapshot of its end): same
        # days of the week and clock times, the dates moved past the end.
        stamps = pd.to_datetime(sessions["timestamp"])
        weeks = int(np.ceil((pd.Timestamp(serve_from) - stamps.min()) / pd.Timedelta(days=7))) if len(stamps) else 0
        sessions["timestamp"] = stamps + pd.Timedelta(days=7 * max(weeks, 0))
    users = sessions["user_id"].to_numpy(dtype=object)
    profiles = catalog.users.reindex(list(users))
    loc = catalog.schools.reindex(list(profiles["school_id"]))
    return pd.DataFrame({
        "request_id": [f"replay-{i}" for i in range(len(sessions))], "user_id": users, "truth_user": users,
        "timestamp": sessions["timestamp"].to_numpy(), "intent": "FOOD_RECOMMENDATION",
        "category": _requested_categories(catalog, users, CATEGORY_REQUEST_SHARE, rng),
        "truth_school": profiles["school_id"].to_numpy(dtype=object), "time_slot": sessions["time_slot"].to_numpy(),
        "age": profiles["age"].to_numpy(dtype=np.float64), "school_id": profiles["school_id"].to_numpy(dtype=object),
        "has_meal_card": profiles["has_meal_card"].to_numpy(dtype=bool),
        "origin_lat": loc["lat"].to_numpy(dtype=np.float64), "origin_lon": loc["lon"].to_numpy(dtype=np.float64),
    })


def candidate_pool(catalog: Catalog, requests: pd.DataFrame, rng: np.random.Generator,
                   per_request: int = CANDIDATES) -> pd.DataFrame:
    """Up to ``per_request`` shops near the child's school (of the asked category when there are
    enough): what the retrieval + 4-funnel stage hands the ranker. Columns: req, shop_id."""
    shops = catalog.shops
    by_school = {s: g["shop_id"].to_numpy(dtype=object) for s, g in shops.groupby("school_id")}
    by_school_cat = {k: g["shop_id"].to_numpy(dtype=object) for k, g in shops.groupby(["school_id", "category"])}
    reqs, ids = [], []
    for i, (school, category) in enumerate(zip(requests["truth_school"], requests["category"])):
        pool = by_school.get(school)
        if pool is None:
            continue
        if category is not None:
            narrowed = by_school_cat.get((school, category))
            if narrowed is not None and len(narrowed) >= TOP_K:
                pool = narrowed
        take = pool if len(pool) <= per_request else pool[rng.choice(len(pool), per_request, replace=False)]
        reqs.append(np.full(len(take), i))
        ids.append(take)
    if not reqs:
        return pd.DataFrame({"req": np.zeros(0, dtype=np.int64), "shop_id": np.zeros(0, dtype=object)})
    return pd.DataFrame({"req": np.concatenate(reqs).astype(np.int64), "shop_id": np.concatenate(ids)})


class BrokenShopSource:
    """A feature source whose shop view came back zeroed (coordinates 0,0, prices 0)."""

    BROKEN = {"lat": 0.0, "lon": 0.0, "min_price": 0.0, "avg_price": 0.0, "rating": 0.0}

    def __init__(self, inner) -> None:
        self._inner = inner

    def user_features(self, user_ids):
        return self._inner.user_features(user_ids)

    def shop_features(self, shop_ids):
        frame = self._inner.shop_features(shop_ids).copy()
        for col, value in self.BROKEN.items():
            if col in frame:
                frame[col] = value
        return frame


def load_ranker(model_dir: Path, broken: bool = False):
    ranker = OnnxRanker.load(Path(model_dir))
    if broken:
        f = ranker.features
        ranker.features = RankingFeatures(f.space, f.normaliser, BrokenShopSource(f.source))
    return ranker


def rank_requests(ranker, catalog: Catalog, requests: pd.DataFrame, cands: pd.DataFrame,
                  top_k: int = TOP_K) -> pd.DataFrame:
    """The ranker's top ``top_k`` of each request's candidates: req, shop_id, rank (1-based), score."""
    if cands.empty:
        return cands.assign(rank=np.zeros(0, dtype=np.int64), score=np.zeros(0))
    req = requests.iloc[cands["req"].to_numpy()]
    users = req["user_id"].tolist()
    profiles = catalog.users.reindex(req["truth_user"].tolist()).assign(user_id=users)
    profiles["age"] = req["age"].to_numpy()
    profiles["is_new"] = ~req["user_id"].isin(catalog.users.index).to_numpy()
    context = pd.DataFrame({"now": req["timestamp"].to_numpy(), "time_slot": req["time_slot"].astype(str).to_numpy(),
                            "origin_lat": req["origin_lat"].to_numpy(), "origin_lon": req["origin_lon"].to_numpy()})
    scores = ranker.predict(ranker.features.build_inputs(profiles, cands["shop_id"].tolist(), context))
    out = cands.assign(score=np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0))
    out = out.sort_values(["req", "score"], ascending=[True, False], kind="stable")
    out["rank"] = out.groupby("req").cumcount() + 1
    return out[out["rank"] <= top_k].reset_index(drop=True)


def impression_frame(catalog: Catalog, requests: pd.DataFrame, shown: pd.DataFrame,
                     broken: bool = False) -> pd.DataFrame:
    """Shown shops with what the served answer carries (distance, price, category)."""
    req = requests.iloc[shown["req"].to_numpy()].reset_index(drop=True)
    shops = catalog.shops.reindex(shown["shop_id"].tolist())
    lat = shops["lat"].to_numpy(dtype=np.float64)
    lon = shops["lon"].to_numpy(dtype=np.float64)
    min_price = shops["min_price"].to_numpy(dtype=np.float64)
    if broken:
        lat, lon, min_price = np.zeros_like(lat), np.zeros_like(lon), np.zeros_like(min_price)
    dist_m = haversine_km(req["origin_lat"].to_numpy(), req["origin_lon"].to_numpy(), lat, lon) * 1000
    return pd.DataFrame({
        "req": shown["req"].to_numpy(), "request_id": req["request_id"].to_numpy(),
        "user_id": req["user_id"].to_numpy(), "timestamp": req["timestamp"].to_numpy(),
        "time_slot": req["time_slot"].to_numpy(), "shop_id": shown["shop_id"].to_numpy(),
        "rank": shown["rank"].to_numpy(), "score": shown["score"].to_numpy(),
        "distance_m": np.round(dist_m), "min_price": min_price, "category": shops["category"].to_numpy(),
        "age": req["age"].to_numpy(), "school_id": req["school_id"].to_numpy(),
        "has_meal_card": req["has_meal_card"].to_numpy(),
    })


# ------------------------------------------------------------------------------------ clicks
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _fatigue(events: pd.DataFrame, shop_ids: list[str]) -> np.ndarray:
    """z-score of each shop's engagement in the log: yesterday's favourites bore children today."""
    engaged = events[events["event_type"].isin(["click", "order", "favorite"])].groupby("shop_id").size()
    z = (engaged - engaged.mean()) / (engaged.std() or 1.0)
    return z.reindex(shop_ids).fillna(0.0).clip(lower=0.0).to_numpy(dtype=np.float64)


def truth_utility(truth, requests: pd.DataFrame, shown: pd.DataFrame, catalog: Catalog, kind: str,
                  events: pd.DataFrame | None = None) -> np.ndarray:
    req = requests.iloc[shown["req"].to_numpy()]
    util = np.zeros(len(shown))
    for slot, idx in req.groupby("time_slot").indices.items():
        util[idx] = truth.scores(req["truth_user"].iloc[idx].tolist(), shown["shop_id"].iloc[idx].tolist(), slot)
    if kind == "preference_shift":
        cats = catalog.shops["category"].reindex(shown["shop_id"].tolist()).to_numpy()
        util += np.array([SHIFT_BONUS.get(c, 0.0) for c in cats])
        if events is not None:
            util -= FATIGUE * _fatigue(events, shown["shop_id"].tolist())
    return util


# ------------------------------------------------------------------------------------ writing
def _insert(db_path: Path, interactions: list[tuple], feedback: list[tuple]) -> None:

    store = EventStore(db_path)
    try:
        store.add_many(interactions, feedback)
    finally:
        store.close()


def _answer(names: list[str], intent: str) -> str:
    if not names:
        return {"GREETING": "안녕하세요! 뭐 먹고 싶은지 말해 줄래요? 😊",
                "GOODBYE": "맛있게 먹어요! 또 와요 👋"}.get(intent, "미안해요, 그건 도와줄 수 없어요.")
    lines = "\n".join(f"{i}. {n}" for i, n in enumerate(names, 1))
    return f"이런 가게는 어때요? 🍽️\n{lines}"


def _question(intent: str, category: str | None) -> str:
    if intent == "GREETING":
        return "안녕!"
    if intent == "GOODBYE":
        return "고마워 잘가"
    if intent in ("OUT_OF_SCOPE", "UNSAFE_REQUEST"):
        return "숙제 대신 해줘"
    if intent == "BUDGET_INQUIRY":
        return f"만원으로 {category or '밥'} 먹을 수 있는 데 있어?"
    return f"{category or '맛있는 거'} 먹고 싶어, 급식카드 되는 데 추천해줘"


# ------------------------------------------------------------------------------------ traffic
def deployed_arms(settings: Settings) -> list[Arm]:
    """Production (and the canary with its percent) as the registry deploys them now."""

    reg = ModelRegistry.from_settings(settings)
    try:
        prod_dir = reg.resolve("ranker", "production")
        prod_version = reg.current_version("ranker", "production")
    except NoVersionError:
        prod_dir, prod_version = settings.models_dir / "ranker", None
    canary = reg.pointer("ranker", "canary")
    if canary is None:
        return [Arm("production", prod_dir, 100, prod_version)]
    percent = int(canary.get("percent", 10))
    return [Arm("production", prod_dir, 100 - percent, prod_version),
            Arm("canary", reg.resolve("ranker", "canary"), percent, canary["version"])]


def last_event_time(settings: Settings, events: pd.DataFrame) -> pd.Timestamp:

    latest = events["timestamp"].max()
    log_ = read_serving_log(events_target(settings))
    if not log_.empty:
        latest = max(latest, log_.latest())
    return pd.Timestamp(latest)


def simulate_traffic(settings: Settings, n_requests: int, kind: str = "none", *, arms: list[Arm] | None = None,
                     start: Any = None, days: float = 1.0, seed: int = 0, db_path: Path | None = None) -> dict:
    """Plays ``n_requests`` chat turns through the deployed rankers into the event store."""

    if n_requests < 1:
        raise ValueError("n_requests must be >= 1")
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, seed, KINDS.index(kind), n_requests]))
    catalog = Catalog.load(settings.data_dir)
    events = load_events(settings.data_dir)
    truth = load_truth(settings.data_dir)
    arms = arms or deployed_arms(settings)
    db_path = db_path or events_target(settings)
    start = pd.Timestamp(start) if start is not None else last_event_time(settings, events) + pd.Timedelta(minutes=1)
    # Simulated turns are events like any other: none may lie in the server's future, where the
    # learning loop would not count them.
    now = pd.Timestamp(Clock.from_settings(settings).local_now())
    if start + pd.Timedelta(days=days) > now:
        start = now - pd.Timedelta(days=days)
    requests = make_requests(catalog, events, n_requests, start, days, kind, rng)

    # The Splitter's draw: one integer in [0, 100) per request against the cumulative weights.
    draw = rng.integers(0, 100, len(requests))
    edges = np.cumsum([a.weight for a in arms])
    requests["arm"] = np.searchsorted(edges, draw, side="right")
    search = requests["intent"].isin(SEARCH_INTENTS).to_numpy()
    broken = kind == "broken_feature"
    error_rate = BROKEN_ERROR_RATE if broken else BASE_ERROR_RATE
    requests["degraded"] = rng.random(len(requests)) < error_rate
    requests["response_time"] = np.round(rng.lognormal(np.log(0.35 if not broken else 0.6), 0.35, len(requests)), 4)

    cands = candidate_pool(catalog, requests, rng)
    cands = cands[search[cands["req"].to_numpy()] & ~requests["degraded"].to_numpy()[cands["req"].to_numpy()]]
    shown_parts = []
    for i, arm in enumerate(arms):
        sub = cands[requests["arm"].to_numpy()[cands["req"].to_numpy()] == i]
        if not sub.empty:
            shown_parts.append(rank_requests(load_ranker(arm.model_dir, broken), catalog, requests, sub))
    shown = pd.concat(shown_parts, ignore_index=True) if shown_parts else rank_requests(None, catalog, requests, cands.iloc[:0])
    shown = shown.sort_values(["req", "rank"], kind="stable").reset_index(drop=True)
    imps = impression_frame(catalog, requests, shown, broken)

    util = truth_utility(truth, requests, shown, catalog, kind, events)
    clicked = rng.random(len(shown)) < _sigmoid(util + position_bias(shown["rank"].to_numpy() - 1))
    shop_names = catalog.shops["name"]
    arm_versions = {}
    for a in arms:
        meta_path = Path(a.model_dir) / "meta.json"
        model_version = json.loads(meta_path.read_text())["version"] if meta_path.exists() else None
        arm_versions[a.name] = a.version or model_version or a.name

    interactions, feedback = [], []
    by_req = imps.groupby("req").indices
    for r, row in enumerate(requests.itertuples(index=False)):
        idx = by_req.get(r, np.zeros(0, dtype=np.int64))
        arm = arms[row.arm]
        names = [shop_names.get(s, s) for s in imps["shop_id"].to_numpy()[idx]]
        ts = pd.Timestamp(row.timestamp)
        payload = {
            "request_id": row.request_id, "user_id": row.user_id, "session_id": f"sim-{row.request_id[:12]}",
            "timestamp": ts.isoformat(), "user_input": _question(row.intent, row.category),
            "extracted_info": {"intent": row.intent, "entities": {"food_category": row.category},
                               "confidence": 0.9},
            "shown_recommendations": [
                {"shop_id": imps["shop_id"].iat[j], "rank": int(imps["rank"].iat[j]),
                 "score": round(float(imps["score"].iat[j]), 6), "distance_m": float(imps["distance_m"].iat[j]),
                 "min_price": float(imps["min_price"].iat[j]), "category": imps["category"].iat[j]}
                for j in idx],
            "final_response": _answer(names, row.intent) if not row.degraded else "잠깐 문제가 생겼어요. 다시 물어봐 줄래요?",
            "response_time": float(row.response_time), "degraded": bool(row.degraded),
            "model_versions": {"ranking": arm_versions[arm.name]}, "variant": arm.name,
            "profile": {"age": None if pd.isna(row.age) else float(row.age), "school_id": row.school_id,
                        "has_meal_card": bool(row.has_meal_card)},
            "context": {"time_slot": row.time_slot}, "simulated": kind, "traffic": "simulated",
        }
        interactions.append((row.request_id, row.user_id, ts.isoformat(), payload))
        hits = [j for j in idx if clicked[j]]
        for j in hits:
            feedback.append(_feedback(row, imps, j, "clicked", ts + timedelta(seconds=5 + 2 * int(imps["rank"].iat[j]))))
            if rng.random() < FAVORITE_PROB:
                feedback.append(_feedback(row, imps, j, "favorited", ts + timedelta(seconds=30)))
        if hits and rng.random() < ORDER_PROB:
            best = max(hits, key=lambda j: util[j])
            amount = int(imps["min_price"].iat[best] or 0) or 8000
            feedback.append(_feedback(row, imps, best, "ordered", ts + timedelta(minutes=1), amount=amount))
            if rng.random() < RATE_PROB:
                score = float(np.clip(np.round(3.6 + 0.6 * util[best] + rng.normal(0, 0.6)), 1, 5))
                feedback.append(_feedback(row, imps, best, "rated", ts + timedelta(hours=1), satisfaction=score))
    _insert(db_path, interactions, feedback)
    per_arm = {a.name: int((requests["arm"] == i).sum()) for i, a in enumerate(arms)}
    summary = {
        "kind": kind, "requests": len(requests), "impressions": int(len(imps)), "clicks": int(clicked.sum()),
        "ctr": round(float(clicked.mean()), 4) if len(clicked) else None,
        "feedback": len(feedback), "errors": int(requests["degraded"].sum()), "per_arm": per_arm,
        "versions": arm_versions, "start": str(requests["timestamp"].min()), "end": str(requests["timestamp"].max()),
        "db": str(db_path),
    }
    log.info("simulated %s traffic: %s", kind, summary)
    return summary


def _feedback(row, imps: pd.DataFrame, j: int, kind: str, ts: pd.Timestamp, amount: int | None = None,
              satisfaction: float | None = None) -> tuple:
    shop = imps["shop_id"].iat[j]
    return (f"sim-{row.request_id[:16]}-{shop}-{kind}", row.user_id, shop, kind, satisfaction, row.request_id,
            amount, pd.Timestamp(ts).isoformat(), None, "simulated")


def simulate_drift(settings: Settings, kind: DriftKind, n_events: int, **kwargs: Any) -> dict:
    """Writes ``n_events`` shifted serving turns (and their feedback) into the event store."""
    if kind not in KINDS or kind == "none":
        raise ValueError(f"kind must be one of {KINDS[1:]}, got {kind!r}")
    return simulate_traffic(settings, n_events, kind, **kwargs)
