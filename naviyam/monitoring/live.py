"""Live metrics from what serving logged: CTR, error rate, latency, per model version.

Source: the event store (``naviyam.events.EventStore``: ``state_dir/events.sqlite``, or the
PostgreSQL database of ``state.dsn``; SQLite's WAL lets monitoring read while serving writes):

- ``interactions``: one row per chat turn; the payload is the ``interaction_data`` record
  (user_input, extracted_info.intent, shown_recommendations [{shop_id, rank, score, ...}],
  final_response, response_time, degraded) plus, when the server logs them, ``model_versions``
  ({"ranking": ...}) and ``variant`` ("production" | "canary").
- ``feedback``: clicked / ordered / favorited / rated events, tied to a turn by ``request_id``
  (or, without one, to the latest impression of the same user and shop within two hours).

The same frames are turned back into training events (``serving_events``) for retraining.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naviyam.events import EventStore, traffic_of
from naviyam.good_conversation import GOOD, GoodConversationRule
from naviyam.storage import store_exists
from naviyam.schemas import time_slot_of

LOCAL_TZ = "Asia/Seoul"
ENGAGEMENTS = ("clicked", "ordered", "favorited", "rated")
FEEDBACK_EVENT = {"clicked": "click", "ordered": "order", "favorited": "favorite", "rated": "rating"}
MATCH_TOLERANCE = pd.Timedelta(hours=2)

INTERACTION_COLUMNS = ("request_id", "user_id", "session_id", "timestamp", "intent", "confidence", "n_shown",
                       "response_time", "degraded", "error", "ranker_version", "variant", "time_slot",
                       "user_input", "final_response", "age", "school_id", "has_meal_card", "traffic")
IMPRESSION_COLUMNS = ("request_id", "user_id", "timestamp", "time_slot", "shop_id", "rank", "score",
                      "distance_m", "min_price", "category", "ranker_version", "variant", "age", "school_id",
                      "has_meal_card", "traffic")
FEEDBACK_COLUMNS = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                    "order_amount", "timestamp", "traffic")
# The stored columns these are read from (the event time is the stored receipt time).
STORED_FEEDBACK_COLUMNS = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                           "order_amount", "created_at", "traffic")


def to_local_naive(value: Any) -> pd.Timestamp:
    """Timestamps as naive local (KST) wall-clock time, the convention of the generated events."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts


@dataclass
class ServingLog:
    interactions: pd.DataFrame
    impressions: pd.DataFrame
    feedback: pd.DataFrame

    def window(self, since: Any = None, until: Any = None) -> "ServingLog":
        """Turns and impressions with ``since <= timestamp < until``; feedback on those turns or
        given in that interval (a late rating of an earlier turn is news of the interval)."""
        def cut(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[cut_mask(frame, since, until)].reset_index(drop=True)

        inter = cut(self.interactions)
        fb = self.feedback
        keep = fb["request_id"].isin(set(inter["request_id"])).to_numpy() | cut_mask(fb, since, until)
        return ServingLog(inter, cut(self.impressions), fb[keep].reset_index(drop=True))

    def latest(self) -> pd.Timestamp | None:
        return None if self.interactions.empty else self.interactions["timestamp"].max()

    @property
    def empty(self) -> bool:
        return self.interactions.empty


@dataclass(frozen=True)
class Admitted:
    """What the learning loop may read of a serving log, and what it left out (for its report)."""

    log: ServingLog
    left_out: dict[str, int]


def admit(log: ServingLog, kinds: Iterable[str], *, now: Any, start: Any = None) -> Admitted:
    """The turns and feedback of the traffic ``kinds`` (``learning.traffic``), dated from ``start``
    (the data set's first day) up to ``now`` (the server's clock). Event times are the server's,
    so a future or prehistoric one means a wrong server clock or a hand-made row: it is counted,
    never learned from. Feedback on a turn that is left out is left out with it."""
    kinds = set(kinds)
    now_ts = to_local_naive(now)
    start_ts = to_local_naive(start) if start is not None else None
    left: dict[str, int] = {}

    def keep(frame: pd.DataFrame, name: str) -> np.ndarray:
        other = ~frame["traffic"].isin(kinds).to_numpy()
        future = (frame["timestamp"] > now_ts).to_numpy()
        early = (frame["timestamp"] < start_ts).to_numpy() if start_ts is not None else np.zeros(len(frame), bool)
        for why, mask in (("other_traffic", other), ("future", future & ~other), ("before_start", early & ~other)):
            if mask.any():
                left[f"{name}_{why}"] = int(mask.sum())
        return ~(other | future | early)

    inter = log.interactions[keep(log.interactions, "interactions")].reset_index(drop=True)
    kept_ids = set(inter["request_id"])
    imps = log.impressions[log.impressions["request_id"].isin(kept_ids).to_numpy()].reset_index(drop=True)
    fb = log.feedback
    fb_keep = keep(fb, "feedback")
    on_dropped = fb["request_id"].notna().to_numpy() & ~fb["request_id"].isin(kept_ids).to_numpy()
    on_dropped &= fb["request_id"].isin(set(log.interactions["request_id"])).to_numpy()
    if (on_dropped & fb_keep).any():
        left["feedback_on_left_out_turns"] = int((on_dropped & fb_keep).sum())
    fb = fb[fb_keep & ~on_dropped].reset_index(drop=True)
    return Admitted(ServingLog(inter, imps, fb), left)


def cut_mask(frame: pd.DataFrame, since: Any, until: Any) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool)
    if since is not None:
        keep &= (frame["timestamp"] >= to_local_naive(since)).to_numpy()
    if until is not None:
        keep &= (frame["timestamp"] < to_local_naive(until)).to_numpy()
    return keep


def read_serving_log(source: Path | str, since: Any = None, until: Any = None) -> ServingLog:
    """Interactions, impressions and feedback of the event store at ``source`` (a SQLite file or
    a PostgreSQL DSN, naviyam.storage); empty frames when there is no store yet."""
    inter_rows: list[tuple[str, dict]] = []
    fb_rows: list[tuple] = []
    if store_exists(source):
        store = EventStore(source)
        try:
            inter_rows = store.interaction_rows()
            fb_rows = store.feedback_rows(STORED_FEEDBACK_COLUMNS)
        finally:
            store.close()
    log = frames_from_rows(inter_rows, fb_rows)
    return log.window(since, until) if since is not None or until is not None else log


def frames_from_rows(interactions: Iterable[tuple[str, dict]], feedback_rows: Iterable[tuple]) -> ServingLog:
    inter: list[dict] = []
    imps: list[dict] = []
    for created_at, p in interactions:
        ts = to_local_naive(created_at)  # the server's receipt time, never the device's clock
        info = p.get("extracted_info") or {}
        versions = p.get("model_versions") or {}
        profile = p.get("profile") or {}
        context = p.get("context") or {}
        slot = context.get("time_slot") or time_slot_of(ts.to_pydatetime()).value
        shown = p.get("shown_recommendations") or []
        row = {
            "request_id": p.get("request_id"), "user_id": p.get("user_id"), "session_id": p.get("session_id"),
            "timestamp": ts, "intent": info.get("intent"), "confidence": info.get("confidence"),
            "n_shown": len(shown), "response_time": p.get("response_time"),
            "degraded": bool(p.get("degraded", False)), "error": bool(p.get("error")),
            "ranker_version": versions.get("ranking"), "variant": p.get("variant"), "time_slot": slot,
            "user_input": p.get("user_input"), "final_response": p.get("final_response"),
            "age": profile.get("age"), "school_id": profile.get("school_id"),
            "has_meal_card": profile.get("has_meal_card"),
            "traffic": traffic_of(p),
        }
        inter.append(row)
        for i, rec in enumerate(shown):
            imps.append({
                "request_id": row["request_id"], "user_id": row["user_id"], "timestamp": ts, "time_slot": slot,
                "shop_id": rec.get("shop_id"), "rank": int(rec.get("rank") or i + 1), "score": rec.get("score"),
                "distance_m": rec.get("distance_m"), "min_price": rec.get("min_price"),
                "category": rec.get("category"), "ranker_version": row["ranker_version"],
                "variant": row["variant"], "age": row["age"], "school_id": row["school_id"],
                "has_meal_card": row["has_meal_card"], "traffic": row["traffic"],
            })
    interactions_df = pd.DataFrame(inter, columns=list(INTERACTION_COLUMNS))
    impressions_df = pd.DataFrame(imps, columns=list(IMPRESSION_COLUMNS))
    fb = pd.DataFrame(list(feedback_rows), columns=list(FEEDBACK_COLUMNS))
    for frame in (interactions_df, impressions_df, fb):
        frame["timestamp"] = pd.to_datetime([to_local_naive(t) for t in frame["timestamp"]]) \
            if len(frame) else pd.Series(dtype="datetime64[ns]")
    for col in ("score", "distance_m", "min_price", "age", "response_time", "confidence"):
        for frame in (interactions_df, impressions_df):
            if col in frame:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    fb["satisfaction_score"] = pd.to_numeric(fb["satisfaction_score"], errors="coerce").astype(np.float64)
    interactions_df = interactions_df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    impressions_df = impressions_df.sort_values(["timestamp", "request_id", "rank"], kind="stable").reset_index(drop=True)
    fb = fb.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return ServingLog(interactions_df, impressions_df, fb)


# ----------------------------------------------------------------------------- engagement
def matched_feedback(log: ServingLog) -> pd.DataFrame:
    """Feedback joined to the impression it answers: feedback columns + ``imp_index`` (row in
    ``log.impressions``); feedback that matches no impression is left out."""
    imps = log.impressions.reset_index(names="imp_index")
    fb = log.feedback[log.feedback["feedback_type"].isin(ENGAGEMENTS)]
    if fb.empty or imps.empty:
        return fb.assign(imp_index=pd.Series(dtype=np.int64)).iloc[:0]
    direct = fb.merge(imps[["request_id", "shop_id", "imp_index"]], on=["request_id", "shop_id"], how="inner")
    rest = fb[~fb["event_id"].isin(direct["event_id"])]
    matched = [direct]
    if not rest.empty:
        right = imps[["user_id", "shop_id", "timestamp", "imp_index"]].sort_values("timestamp")
        left = rest.sort_values("timestamp")
        asof = pd.merge_asof(left, right, on="timestamp", by=["user_id", "shop_id"], direction="backward",
                             tolerance=MATCH_TOLERANCE)
        matched.append(asof.dropna(subset=["imp_index"]))
    out = pd.concat(matched, ignore_index=True)
    out["imp_index"] = out["imp_index"].astype(np.int64)
    return out.drop_duplicates("event_id")


def _quantile(values: np.ndarray, q: float) -> float:
    values = values[~np.isnan(values)]
    return float(np.quantile(values, q)) if len(values) else math.nan


def live_metrics(log: ServingLog, impression_mask: np.ndarray | None = None,
                 interaction_mask: np.ndarray | None = None) -> dict[str, float]:
    """CTR (engaged impressions / impressions), request CTR, order rate, error rate
    (degraded or failed turns / turns), latency percentiles (s), mean satisfaction."""
    inter = log.interactions if interaction_mask is None else log.interactions[interaction_mask]
    imp_idx = np.arange(len(log.impressions)) if impression_mask is None else np.flatnonzero(impression_mask)
    fb = matched_feedback(log)
    fb = fb[fb["imp_index"].isin(imp_idx)]
    engaged = fb.groupby("imp_index")["feedback_type"].agg(set)
    n_imp = len(imp_idx)
    clicks = int(len(engaged))
    orders = int(sum("ordered" in s for s in engaged))
    served = log.impressions.iloc[imp_idx]
    requests_with_click = served.loc[engaged.index.intersection(served.index), "request_id"].nunique() \
        if clicks else 0
    search_requests = int((inter["n_shown"] > 0).sum())
    latency = inter["response_time"].to_numpy(dtype=np.float64)
    errors = (inter["degraded"].astype(bool) | inter["error"].astype(bool)).to_numpy()
    sat = fb["satisfaction_score"].to_numpy(dtype=np.float64)
    return {
        "requests": int(len(inter)),
        "search_requests": search_requests,
        "impressions": int(n_imp),
        "clicks": clicks,
        "orders": orders,
        "ctr": clicks / n_imp if n_imp else math.nan,
        "request_ctr": requests_with_click / search_requests if search_requests else math.nan,
        "order_rate": orders / n_imp if n_imp else math.nan,
        "error_rate": float(errors.mean()) if len(errors) else 0.0,
        "latency_p50_s": _quantile(latency, 0.5),
        "latency_p95_s": _quantile(latency, 0.95),
        "mean_satisfaction": float(np.nanmean(sat)) if np.isfinite(sat).any() else math.nan,
    }


def metrics_by_arm(log: ServingLog, arms: Mapping[str, Iterable[str]]) -> dict[str, dict[str, float]]:
    """Live metrics per arm; an arm is the set of identifiers (registry version, model version
    string, variant name) that mark the turns it served."""
    out = {}
    for arm, ids in arms.items():
        ids = {str(i) for i in ids if i}
        inter_mask = (log.interactions["ranker_version"].astype(str).isin(ids)
                      | log.interactions["variant"].astype(str).isin(ids)).to_numpy()
        imp_mask = (log.impressions["ranker_version"].astype(str).isin(ids)
                    | log.impressions["variant"].astype(str).isin(ids)).to_numpy()
        out[arm] = live_metrics(log, imp_mask, inter_mask)
    return out


# ------------------------------------------------------------------------- training events
EVENT_COLUMNS = ("event_id", "user_id", "shop_id", "event_type", "timestamp", "session_id", "position",
                 "time_slot", "rating", "order_amount")


def serving_events(log: ServingLog, known_users: Iterable[str] | None = None,
                   known_shops: Iterable[str] | None = None) -> pd.DataFrame:
    """The serving log in the schema of ``events.parquet`` (view / click / order / favorite /
    rating), one session per chat turn, so it can be appended to the training log.

    Rows of users or shops outside ``known_users`` / ``known_shops`` (e.g. a school that is not
    in the catalogue yet) are dropped: the ranker's features need their profiles.
    """
    imps = log.impressions
    views = pd.DataFrame({
        "event_id": "srv-" + imps["request_id"].astype(str) + "-v" + imps["rank"].astype(str),
        "user_id": imps["user_id"], "shop_id": imps["shop_id"], "event_type": "view",
        "timestamp": imps["timestamp"], "session_id": "srv-" + imps["request_id"].astype(str),
        "position": imps["rank"].astype(np.int64) - 1, "time_slot": imps["time_slot"],
        "rating": np.nan, "order_amount": pd.array([pd.NA] * len(imps), dtype="Int64"),
    })
    fb = matched_feedback(log)
    parts = [views]
    if not fb.empty:
        imp = imps.loc[fb["imp_index"].to_numpy()]
        # Feedback never precedes its impression (clock skew between services is clamped).
        ts = np.maximum(fb["timestamp"].to_numpy(), imp["timestamp"].to_numpy())
        amounts = pd.array([int(a) if pd.notna(a) else pd.NA for a in fb["order_amount"]], dtype="Int64")
        parts.append(pd.DataFrame({
            "event_id": "srv-fb-" + fb["event_id"].astype(str).to_numpy(),
            "user_id": imp["user_id"].to_numpy(), "shop_id": imp["shop_id"].to_numpy(),
            "event_type": fb["feedback_type"].map(FEEDBACK_EVENT).to_numpy(),
            "timestamp": ts, "session_id": ("srv-" + imp["request_id"].astype(str)).to_numpy(),
            "position": (imp["rank"].astype(np.int64) - 1).to_numpy(), "time_slot": imp["time_slot"].to_numpy(),
            "rating": np.where(fb["feedback_type"].to_numpy() == "rated", fb["satisfaction_score"].to_numpy(),
                               np.nan),
            "order_amount": np.where(fb["feedback_type"].to_numpy() == "ordered", amounts, pd.NA),
        }))
    out = pd.concat(parts, ignore_index=True)
    if known_users is not None:
        out = out[out["user_id"].isin(set(known_users))]
    if known_shops is not None:
        out = out[out["shop_id"].isin(set(known_shops))]
    out = out.astype({"position": np.int64, "rating": np.float64})
    out["order_amount"] = out["order_amount"].astype("Int64")
    out["timestamp"] = pd.to_datetime(out["timestamp"])
    return out.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)[list(EVENT_COLUMNS)]


# ---------------------------------------------------------------------- good conversations
LORA_INSTRUCTION = "아동~청소년 대상 음식 추천 챗봇으로 친근하고 이해하기 쉽게 답변해주세요."


def good_conversations(log: ServingLog, min_satisfaction: float = 4.0,
                       max_response_time_s: float = 3.0) -> pd.DataFrame:
    """Turns that pass naviyam.good_conversation's rule (a shown shop picked, rated
    >= ``min_satisfaction`` on average, answered within ``max_response_time_s``). Columns:
    request_id, user_input, final_response, satisfaction, selected_shop, response_time, timestamp."""
    rule = GoodConversationRule(min_satisfaction, max_response_time_s)
    columns = ["request_id", "user_input", "final_response", "satisfaction", "selected_shop", "response_time",
               "timestamp"]
    fb = matched_feedback(log)
    if fb.empty:
        return pd.DataFrame(columns=columns)
    imp = log.impressions.loc[fb["imp_index"].to_numpy()]
    fb = fb.assign(request_id=imp["request_id"].to_numpy())
    per_turn = fb.groupby("request_id").agg(ratings=("satisfaction_score", list), selected_shop=("shop_id", "first"))
    turns = log.interactions.join(per_turn, on="request_id", how="inner")
    turns = turns[turns["final_response"].notna() & turns["user_input"].notna()]
    # Every matched event answers a shown shop of its turn: the child picked one.
    good = turns[[rule.verdict(r.ratings, True, r.response_time) == GOOD for r in turns.itertuples(index=False)]]
    good = good.assign(satisfaction=[float(np.nanmean(r)) for r in good["ratings"]])
    return good[columns].reset_index(drop=True)


def instruction_samples(good: pd.DataFrame) -> list[dict]:
    """The instruction format: {"instruction", "input", "output"}."""
    return [{"instruction": LORA_INSTRUCTION, "input": r.user_input, "output": r.final_response,
             "request_id": r.request_id} for r in good.itertuples(index=False)]


def now_local() -> pd.Timestamp:
    return to_local_naive(datetime.now().astimezone())
