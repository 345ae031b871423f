"""Interaction log simulation: app sessions, impressions, clicks, orders, favourites, ratings.

In each session the app shows up to 15 open shops near the child's school, a mix of shops the
platform promotes (a fixed per-shop exposure weight, *not* the child's hidden utility) and
random nearby ones, so the log is not trivially biased towards the truth. The child clicks
with probability sigmoid(utility + position bias); the intercept is calibrated so the expected
click-through rate is ``TARGET_CTR``. All steps are vectorised; only schools are looped over.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from naviyam.data.truth import SLOTS, TruthModel
from naviyam.data.world import World, distances_to_schools

WINDOW_END = datetime(2026, 11, 1)  # exclusive: the last simulated day is 2026-10-31
TARGET_CTR = 0.15
SHOWN = 15           # shops per results page
N_PROMOTED = 8       # of which picked by exposure weight; the rest are random nearby shops
POOL_KM = 2.0        # "nearby" = within this distance of the school (or anchored to it)
MEAN_SESSIONS = 5.0
EVENT_TYPES = ("view", "click", "favorite", "order", "rating")  # also the tie-break order

# Slot mix (morning, lunch, after_school, dinner, night): weekdays are dominated by after school.
WEEKDAY_SLOTS = np.array([0.08, 0.07, 0.55, 0.20, 0.10])
WEEKEND_SLOTS = np.array([0.07, 0.35, 0.23, 0.23, 0.12])
# Per slot: first minute of the day, length in minutes, peak offset and spread (minutes).
SLOT_CLOCK = {
    "morning": (390, 210, 80, 35),        # 06:30-10:00, peak ~07:50
    "lunch": (600, 240, 150, 45),         # 10:00-14:00, peak ~12:30
    "after_school": (840, 240, 100, 55),  # 14:00-18:00, peak ~15:40
    "dinner": (1080, 180, 70, 45),        # 18:00-21:00, peak ~19:10
    "night": (1260, 180, 30, 60),         # 21:00-24:00, mostly early
}


@dataclass
class Simulation:
    events: pd.DataFrame
    bias: float          # calibrated utility intercept (stored with the truth model)
    n_sessions: int


def window_start(days: int) -> datetime:
    return WINDOW_END - timedelta(days=days)


def simulate(world: World, truth: TruthModel, days: int, rng: np.random.Generator) -> Simulation:
    sessions = _sessions(world, days, rng)
    shown = _impressions(world, sessions, rng)
    user = sessions["user_idx"].to_numpy()[shown["sess"]]
    slot = sessions["slot_idx"].to_numpy()[shown["sess"]]
    utility = truth.with_bias(0.0).utility(user, shown["shop"], slot)
    logit = utility + position_bias(shown["pos"])
    bias = calibrate_intercept(logit, TARGET_CTR)
    clicked = rng.random(len(logit)) < _sigmoid(logit + bias)

    imp = pd.DataFrame({"sess": shown["sess"], "shop": shown["shop"], "pos": shown["pos"], "user": user,
                        "slot": slot, "utility": utility,
                        "t_ms": sessions["start_ms"].to_numpy()[shown["sess"]]})
    clicks = imp[clicked].copy()
    clicks["t_ms"] += (3000 + 2000 * clicks["pos"] + rng.exponential(12_000, len(clicks))).astype(np.int64)
    orders = _orders(clicks, world, rng)
    parts = [
        _typed(imp, "view"), _typed(clicks, "click"), _typed(_favorites(clicks, rng), "favorite"),
        _typed(orders, "order"), _typed(_ratings(orders, days, rng), "rating"),
    ]
    events = _finalise(pd.concat(parts, ignore_index=True), world)
    return Simulation(events=events, bias=bias, n_sessions=len(sessions))


# ---------------------------------------------------------------------------------- sessions

def _sessions(world: World, days: int, rng: np.random.Generator) -> pd.DataFrame:
    users = world.users
    n_users = len(users)
    # Heavy-tailed activity; about 5 % of registered children never open the app in the window.
    activity = rng.gamma(2.0, MEAN_SESSIONS / 2.0, n_users) * (rng.random(n_users) >= 0.05)
    per_user = rng.poisson(activity)
    user_idx = np.repeat(np.arange(n_users), per_user)
    n = len(user_idx)

    start = window_start(days)
    weekday = np.array([(start + timedelta(days=d)).weekday() for d in range(days)])
    day_w = np.where(weekday >= 5, 1.2, 1.0)
    day = rng.choice(days, size=n, p=day_w / day_w.sum())
    is_weekend = weekday[day] >= 5

    probs = np.where(is_weekend[:, None], WEEKEND_SLOTS, WEEKDAY_SLOTS)
    young = users["age"].to_numpy()[user_idx] <= 12
    probs[:, SLOTS.index("night")] *= np.where(young, 0.3, 1.0)   # young children rarely eat late
    probs /= probs.sum(axis=1, keepdims=True)
    slot_idx = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    slot_idx = np.minimum(slot_idx, len(SLOTS) - 1)

    clock = np.array([SLOT_CLOCK[s] for s in SLOTS], dtype=float)
    first, length, peak, spread = (clock[slot_idx, k] for k in range(4))
    minute = (first + np.clip(rng.normal(peak, spread), 0, length - 1)).astype(np.int64)
    second = rng.integers(0, 60, n)
    start_ms = int(pd.Timestamp(start).value // 1_000_000)
    start_ms += (day * 86_400 + minute * 60 + second) * 1000
    frame = pd.DataFrame({"user_idx": user_idx, "slot_idx": slot_idx, "minute": minute % 1440,
                          "start_ms": start_ms})
    # Chronological order so session ids read in time order.
    return frame.sort_values(["start_ms", "user_idx"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------- impressions

def _impressions(world: World, sessions: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shops, schools = world.shops, world.schools
    dist = distances_to_schools(schools, shops)
    anchor = shops["school_id"].map({s: i for i, s in enumerate(schools["school_id"])}).to_numpy()
    school_of_user = world.users["school_id"].map({s: i for i, s in enumerate(schools["school_id"])}).to_numpy()
    school_of_session = school_of_user[sessions["user_idx"].to_numpy()]
    exposure = _exposure_weight(shops, rng)
    open_min, close_min = _minutes(shops["open_time"]), _minutes(shops["close_time"])

    out: dict[str, list[np.ndarray]] = {"sess": [], "shop": [], "pos": []}
    for g in range(len(schools)):
        sess = np.flatnonzero(school_of_session == g)
        pool = np.flatnonzero((dist[g] <= POOL_KM) | (anchor == g))
        if len(sess) == 0 or len(pool) == 0:
            continue
        is_open = _open_at(open_min[pool], close_min[pool], sessions["minute"].to_numpy()[sess])
        picked, valid = _pick_shown(exposure[pool], is_open, rng)
        # Promoted shops tend to sit at the top of the page; ties broken at random.
        order_key = np.where(valid, exposure[pool][picked] + rng.gumbel(size=picked.shape), -np.inf)
        rank = np.argsort(np.argsort(-order_key, axis=1, kind="stable"), axis=1)
        out["sess"].append(np.broadcast_to(sess[:, None], picked.shape)[valid])
        out["shop"].append(pool[picked][valid])
        out["pos"].append(rank[valid])
    return {k: np.concatenate(v).astype(np.int64) for k, v in out.items()}


def _exposure_weight(shops: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Log weight the platform promotes a shop with: partly its public rating, mostly other factors."""
    rating = shops["rating"].to_numpy()
    z = (rating - rating.mean()) / max(rating.std(), 1e-9)
    return 0.5 * z + 0.8 * rng.normal(0, 1, len(shops))


def _pick_shown(log_weight: np.ndarray, is_open: np.ndarray, rng: np.random.Generator):
    """Per session (row): N_PROMOTED by weight (Gumbel top-k) + random open shops, up to SHOWN."""
    n_sess, pool = is_open.shape
    n_promoted = min(N_PROMOTED, pool)
    n_random = min(SHOWN, pool) - n_promoted
    keys = np.where(is_open, log_weight[None, :] + rng.gumbel(size=is_open.shape), -np.inf)
    promoted = np.argsort(-keys, axis=1, kind="stable")[:, :n_promoted]
    promoted_ok = np.isfinite(np.take_along_axis(keys, promoted, axis=1))
    rand_keys = np.where(is_open, rng.random(is_open.shape), -np.inf)
    np.put_along_axis(rand_keys, promoted, -np.inf, axis=1)
    rand = np.argsort(-rand_keys, axis=1, kind="stable")[:, :n_random]
    rand_ok = np.isfinite(np.take_along_axis(rand_keys, rand, axis=1))
    return np.hstack([promoted, rand]), np.hstack([promoted_ok, rand_ok])


def _minutes(hhmm: pd.Series) -> np.ndarray:
    parts = hhmm.str.split(":", expand=True).astype(int)
    return (parts[0] * 60 + parts[1]).to_numpy()


def _open_at(open_min: np.ndarray, close_min: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """(n_sessions, n_shops) open mask; hours may pass midnight (same rule as filtering.is_open)."""
    o, c, t = open_min[None, :], close_min[None, :], minute[:, None]
    return np.where(o <= c, (o <= t) & (t < c), (t >= o) | (t < c))


def position_bias(position: np.ndarray) -> np.ndarray:
    """Lower results get fewer clicks whatever they are (examination falls off with rank)."""
    return -0.5 * np.log2(1.0 + position)


def calibrate_intercept(logit: np.ndarray, target: float) -> float:
    """Intercept c with mean(sigmoid(logit + c)) == target (bisection; the mean is monotone in c)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 6)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------ downstream actions

def _orders(clicks: pd.DataFrame, world: World, rng: np.random.Generator) -> pd.DataFrame:
    """At most one order per session: the clicked shop the child likes most (with some noise)."""
    if clicks.empty:
        return clicks.assign(order_amount=pd.Series(dtype=np.int64))
    key = clicks["utility"].to_numpy() + rng.gumbel(size=len(clicks))
    ranked = clicks.assign(_key=key).sort_values(["sess", "_key"], kind="stable")
    best = ranked.drop_duplicates("sess", keep="last").drop(columns="_key").sort_index()
    centre = np.median(clicks["utility"].to_numpy())
    p_order = _sigmoid(best["utility"].to_numpy() - centre + 0.3)
    orders = best[rng.random(len(best)) < p_order].copy()
    orders["t_ms"] += rng.integers(30_000, 300_000, len(orders))
    allowance = world.users["per_meal_allowance"].to_numpy()[orders["user"].to_numpy()]
    orders["order_amount"] = _order_amounts(orders["shop"].to_numpy(), allowance, world, rng)
    return orders


def _order_amounts(shop_idx: np.ndarray, allowance: np.ndarray, world: World,
                   rng: np.random.Generator) -> np.ndarray:
    """One menu item, sometimes a second one when both fit the per-meal allowance; real menu prices."""
    menus = world.menus
    shop_pos = menus["shop_id"].map({s: i for i, s in enumerate(world.shops["shop_id"])}).to_numpy()
    order = np.argsort(shop_pos, kind="stable")
    prices = menus["price"].to_numpy()[order]
    counts = np.bincount(shop_pos, minlength=len(world.shops))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = len(shop_idx)
    first = starts[shop_idx] + (rng.random(n) * counts[shop_idx]).astype(np.int64)
    second = starts[shop_idx] + (rng.random(n) * counts[shop_idx]).astype(np.int64)
    two = (rng.random(n) < 0.4) & (prices[first] + prices[second] <= allowance)
    return (prices[first] + np.where(two, prices[second], 0)).astype(np.int64)


def _favorites(clicks: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    centre = np.median(clicks["utility"].to_numpy()) if len(clicks) else 0.0
    p_fav = 0.03 + 0.15 * _sigmoid(clicks["utility"].to_numpy() - centre)
    fav = clicks[rng.random(len(clicks)) < p_fav].copy()
    fav["t_ms"] += rng.integers(5_000, 60_000, len(fav))
    # A shop can be favourited once per child.
    return fav.sort_values("t_ms", kind="stable").drop_duplicates(["user", "shop"], keep="first")


def _ratings(orders: pd.DataFrame, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """Some orders get a 1-5 star rating a few hours later, driven by the hidden utility."""
    rated = orders[rng.random(len(orders)) < 0.4].copy()
    if rated.empty:
        return rated.assign(rating=pd.Series(dtype=float))
    u = rated["utility"].to_numpy()
    z = (u - orders["utility"].mean()) / max(orders["utility"].std(), 1e-9)
    rated["rating"] = np.clip(np.round(3.6 + 0.9 * z + rng.normal(0, 0.6, len(rated))), 1, 5)
    rated["t_ms"] += rng.integers(40 * 60_000, 240 * 60_000, len(rated))
    return rated


def _typed(frame: pd.DataFrame, event_type: str) -> pd.DataFrame:
    cols = ["sess", "shop", "pos", "user", "slot", "t_ms"]
    out = frame[cols].copy()
    out["etype"] = EVENT_TYPES.index(event_type)
    out["rating"] = frame["rating"].to_numpy(dtype=float) if event_type == "rating" else np.nan
    amount = frame["order_amount"] if event_type == "order" else pd.Series(pd.NA, index=frame.index)
    out["order_amount"] = amount.astype("Int64")
    return out


def _finalise(raw: pd.DataFrame, world: World) -> pd.DataFrame:
    """Chronological order, string ids and the column layout of events.parquet."""
    # Late-night follow-ups (a rating hours later) must not leak past the window's last day.
    end_ms = int(pd.Timestamp(WINDOW_END).value // 1_000_000) - 1000
    raw = raw.assign(t_ms=np.minimum(raw["t_ms"].to_numpy(), end_ms))
    raw = raw.sort_values(["t_ms", "sess", "pos", "etype"], kind="stable").reset_index(drop=True)
    n = len(raw)
    width = max(7, len(str(n)))
    return pd.DataFrame({
        "event_id": "evt_" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width),
        "user_id": world.users["user_id"].to_numpy()[raw["user"].to_numpy()],
        "shop_id": world.shops["shop_id"].to_numpy()[raw["shop"].to_numpy()],
        "event_type": np.array(EVENT_TYPES)[raw["etype"].to_numpy()],
        "timestamp": pd.to_datetime(raw["t_ms"].to_numpy(), unit="ms").astype("datetime64[ns]"),
        "session_id": "ses_" + (raw["sess"] + 1).astype(str).str.zfill(6),
        "position": raw["pos"].astype(np.int64).to_numpy(),
        "time_slot": np.array(SLOTS)[raw["slot"].to_numpy()],
        "rating": raw["rating"].to_numpy(dtype=float),
        "order_amount": raw["order_amount"].astype("Int64").array,
    })
