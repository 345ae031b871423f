"""Training samples for the ranker from the event log (the retrain pipeline).

- positives: a shop the child clicked (w 1.0), favourited (w 1.5) or ordered from (w 2.0) in a
  session; one sample per (session, shop) carrying its strongest signal. A rating >= 4 marks the
  shop as ordered-from (the rating is a follow-up of an order, not a separate interaction).
- negatives: shops shown in the session (``view``) that got none of those signals.
- hard negatives (w 1.5): negatives the previous model scored above 0.8; without a previous model,
  the top-3 impressions the child skipped (shown where they were most likely to be picked).
- unshown negatives (w 1.0): a few shops near the child's school that
  the session did not show, because the ranker serves funnel candidates, not the app's page.
- balancing: all positives are kept and negatives are sampled down to ``ratio`` per positive.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_WEIGHTS: dict[str, float] = {"click": 1.0, "favorite": 1.5, "order": 2.0}
NEGATIVE_WEIGHT = 1.0
HARD_NEGATIVE_WEIGHT = 1.5
HARD_SCORE_THRESHOLD = 0.8
HARD_POSITION_CUTOFF = 3   # positions 0, 1, 2
HIGH_RATING = 4.0
TEST_DAYS = 14

SAMPLE_COLUMNS = ("user_id", "shop_id", "session_id", "timestamp", "time_slot", "position",
                  "label", "weight", "kind")

ScoreFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp  # first instant of the held-out window


def time_split(events: pd.DataFrame, test_days: int = TEST_DAYS) -> TimeSplit:
    """Last ``test_days`` calendar days are held out; the cutoff falls on midnight.

    Whole sessions stay on one side (by their first event), so a test session never leaks its
    clicks into training through a session that straddles midnight.
    """
    if events.empty:
        raise ValueError("no events to split")
    last_day = events["timestamp"].max().normalize()
    cutoff = last_day + pd.Timedelta(days=1) - pd.Timedelta(days=test_days)
    session_start = events.groupby("session_id")["timestamp"].transform("min")
    in_test = (session_start >= cutoff).to_numpy()
    return TimeSplit(train=events[~in_test].reset_index(drop=True),
                     test=events[in_test].reset_index(drop=True), cutoff=cutoff)


def label_events(events: pd.DataFrame) -> pd.DataFrame:
    """Every positive and every (not yet balanced) negative, with weights and kinds.

    Timestamps are the session start, so as-of features for a sample never include anything
    that happened in its own session.
    """
    ev = events
    session = ev.groupby("session_id").agg(
        session_start=("timestamp", "min"), session_slot=("time_slot", "first"))

    signal = ev[ev["event_type"].isin(list(EVENT_WEIGHTS))][["session_id", "user_id", "shop_id", "event_type"]]
    high = ev[(ev["event_type"] == "rating") & (ev["rating"].fillna(0) >= HIGH_RATING)]
    signal = pd.concat([signal, high[["session_id", "user_id", "shop_id"]].assign(event_type="order")])
    signal = signal.assign(weight=signal["event_type"].map(EVENT_WEIGHTS))
    # The strongest signal per (session, shop): an order outranks the click that led to it.
    signal = signal.sort_values("weight", ascending=False, kind="stable").drop_duplicates(
        ["session_id", "user_id", "shop_id"])
    positives = signal.rename(columns={"event_type": "kind"}).assign(label=1.0)

    views = ev[ev["event_type"] == "view"][["session_id", "user_id", "shop_id", "position"]]
    views = views.sort_values("position", kind="stable").drop_duplicates(["session_id", "user_id", "shop_id"])
    pos_position = views.set_index(["session_id", "user_id", "shop_id"])["position"]
    positives = positives.join(pos_position, on=["session_id", "user_id", "shop_id"])

    hit = views.merge(positives[["session_id", "user_id", "shop_id"]], how="left", indicator=True,
                      on=["session_id", "user_id", "shop_id"])
    negatives = hit[hit["_merge"] == "left_only"].drop(columns="_merge")
    is_hard = negatives["position"].fillna(99).to_numpy() < HARD_POSITION_CUTOFF
    negatives = negatives.assign(
        label=0.0,
        weight=np.where(is_hard, HARD_NEGATIVE_WEIGHT, NEGATIVE_WEIGHT),
        kind=np.where(is_hard, "hard_negative", "negative"),
    )

    out = pd.concat([positives, negatives], ignore_index=True)
    out = out.join(session, on="session_id").rename(columns={"session_start": "timestamp", "session_slot": "time_slot"})
    out = out.sort_values(["timestamp", "session_id", "label", "shop_id"], ascending=[True, True, False, True],
                          kind="stable").reset_index(drop=True)
    return out[list(SAMPLE_COLUMNS)]


def unshown_negatives(samples: pd.DataFrame, shop_school: pd.Series, user_school: pd.Series,
                      per_session: int, seed: int = 7) -> pd.DataFrame:
    """Shops near the child's school that the session did *not* show, as extra negatives.

    The ranker scores candidate-funnel shops, most of which the child never saw; negatives
    drawn from impressions alone never show it a shop that was closed at that hour or that
    the app hardly ever surfaces, so it cannot learn to push those down.
    ``shop_school``: shop_id -> school_id; ``user_school``: user_id -> school_id.
    """
    if per_session <= 0 or samples.empty:
        return samples.iloc[:0]
    sessions = samples.drop_duplicates("session_id")[["session_id", "user_id", "timestamp", "time_slot"]]
    pools = {school: np.asarray(ids) for school, ids in shop_school.groupby(shop_school).groups.items()}
    school_of = user_school.reindex(sessions["user_id"]).to_numpy()
    rng = np.random.default_rng(seed)
    rows: list[pd.DataFrame] = []
    for school, idx in pd.Series(np.arange(len(sessions))).groupby(school_of).groups.items():
        pool = pools.get(school)
        if pool is None or len(pool) == 0:
            continue
        picks = rng.integers(0, len(pool), size=(len(idx), per_session))
        block = sessions.iloc[np.repeat(np.asarray(idx), per_session)]
        rows.append(block.assign(shop_id=pool[picks.ravel()]))
    if not rows:
        return samples.iloc[:0]
    extra = pd.concat(rows, ignore_index=True).drop_duplicates(["session_id", "shop_id"])
    shown = samples[["session_id", "shop_id"]].assign(_shown=True)
    extra = extra.merge(shown, on=["session_id", "shop_id"], how="left")
    extra = extra[extra["_shown"].isna()].drop(columns="_shown")
    return extra.assign(position=np.nan, label=0.0, weight=NEGATIVE_WEIGHT, kind="unshown")[list(SAMPLE_COLUMNS)]


def mark_hard_negatives(samples: pd.DataFrame, scores: np.ndarray,
                        threshold: float = HARD_SCORE_THRESHOLD) -> pd.DataFrame:
    """Re-derive hard negatives from a model's scores (replaces the position heuristic)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[0] != len(samples):
        raise ValueError("one score per sample expected")
    neg = samples["label"].to_numpy() == 0.0
    hard = neg & (scores > threshold)
    out = samples.copy()
    out.loc[neg, "weight"] = np.where(hard[neg], HARD_NEGATIVE_WEIGHT, NEGATIVE_WEIGHT)
    out.loc[neg, "kind"] = np.where(hard[neg], "hard_negative", "negative")
    return out


def balance(samples: pd.DataFrame, ratio: int = 2, seed: int = 7) -> pd.DataFrame:
    """Keeps every positive and at most ``ratio`` negatives per positive (uniform, seeded)."""
    pos = samples.index[samples["label"] > 0]
    neg = samples.index[samples["label"] == 0]
    budget = ratio * len(pos)
    if len(neg) > budget:
        rng = np.random.default_rng(seed)
        neg = pd.Index(np.sort(rng.choice(neg.to_numpy(), size=budget, replace=False)))
    return samples.loc[pos.append(neg).sort_values()]


def build_samples(events: pd.DataFrame, negative_ratio: int = 2, seed: int = 7,
                  score_fn: ScoreFn | None = None) -> pd.DataFrame:
    """Labelled, weighted and balanced samples. ``score_fn`` is the previous model (if any)."""
    samples = label_events(events)
    if score_fn is not None:
        negatives = samples["label"] == 0.0
        scores = np.zeros(len(samples))
        scores[negatives.to_numpy()] = score_fn(samples[negatives])
        samples = mark_hard_negatives(samples, scores)
    return balance(samples, negative_ratio, seed)
