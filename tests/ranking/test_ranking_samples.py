"""Training samples: positive weights per event type, (hard) negatives, 1:2 balancing, time split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from naviyam.ranking.samples import (
    HARD_NEGATIVE_WEIGHT, balance, build_samples, label_events, mark_hard_negatives, time_split,
    unshown_negatives,
)


@pytest.fixture()
def one_session(make_events) -> pd.DataFrame:
    rows = [("s1", "u1", f"shop{p}", "view", 0, p) for p in range(6)]
    rows += [
        ("s1", "u1", "shop1", "click", 1, 1),
        ("s1", "u1", "shop1", "order", 3, 1),      # click + order -> one sample, weight 2.0
        ("s1", "u1", "shop2", "click", 2, 2),
        ("s1", "u1", "shop2", "favorite", 2, 2),   # -> 1.5
        ("s1", "u1", "shop3", "click", 2, 3),      # -> 1.0
        ("s1", "u1", "shop4", "rating", 90, 4, 5.0),  # rating >= 4 counts as an order -> 2.0
        ("s1", "u1", "shop5", "rating", 90, 5, 2.0),  # a low rating is no positive
    ]
    return make_events(rows)


def test_positive_weights_per_type_and_negatives(one_session):
    samples = label_events(one_session).set_index("shop_id")
    assert samples.loc[["shop1", "shop2", "shop3", "shop4"], "label"].tolist() == [1.0] * 4
    assert samples.loc["shop1", "weight"] == 2.0 and samples.loc["shop1", "kind"] == "order"
    assert samples.loc["shop2", "weight"] == 1.5 and samples.loc["shop2", "kind"] == "favorite"
    assert samples.loc["shop3", "weight"] == 1.0 and samples.loc["shop3", "kind"] == "click"
    assert samples.loc["shop4", "weight"] == 2.0
    # shown but not clicked: shop0 at position 0 is a hard negative, shop5 (position 5) is not
    assert samples.loc["shop0", "label"] == 0.0 and samples.loc["shop0", "weight"] == HARD_NEGATIVE_WEIGHT
    assert samples.loc["shop0", "kind"] == "hard_negative"
    assert samples.loc["shop5", "label"] == 0.0 and samples.loc["shop5", "weight"] == 1.0
    # one sample per (session, shop), stamped with the session start (no in-session leakage)
    assert samples.index.is_unique
    assert (samples["timestamp"] == one_session["timestamp"].min()).all()


def test_hard_negatives_from_model_scores(one_session):
    samples = label_events(one_session)
    scores = np.where(samples["shop_id"] == "shop5", 0.95, 0.1)
    marked = mark_hard_negatives(samples, scores).set_index("shop_id")
    assert marked.loc["shop5", "kind"] == "hard_negative" and marked.loc["shop5", "weight"] == 1.5
    # with a model, position no longer makes a negative hard
    assert marked.loc["shop0", "kind"] == "negative" and marked.loc["shop0", "weight"] == 1.0
    # positives are untouched even when scored high
    assert marked.loc["shop1", "weight"] == 2.0


def test_build_samples_uses_previous_model_scores(one_session):
    seen = {}

    def score_fn(frame):
        seen["labels"] = set(frame["label"])
        return np.full(len(frame), 0.9)

    out = build_samples(one_session, negative_ratio=10, score_fn=score_fn)
    assert seen["labels"] == {0.0}  # only negatives are scored
    assert set(out.loc[out["label"] == 0, "kind"]) == {"hard_negative"}


def test_balance_keeps_positives_and_samples_negatives_one_to_two():
    frame = pd.DataFrame({"label": [1.0] * 10 + [0.0] * 100, "weight": 1.0, "kind": "x"})
    out = balance(frame, ratio=2, seed=3)
    assert (out["label"] == 1).sum() == 10
    assert (out["label"] == 0).sum() == 20
    assert out.index.equals(balance(frame, ratio=2, seed=3).index)  # seeded
    assert not out.index.equals(balance(frame, ratio=2, seed=4).index)
    # fewer negatives than the budget: all kept
    few = frame.iloc[:25]
    assert len(balance(few, ratio=2)) == 25


def test_time_split_holds_out_last_days_and_keeps_sessions_whole(make_events):
    rows = []
    for day in range(30):
        rows.append((f"s{day}", "u1", "shop1", "view", day * 1440, 0))
        rows.append((f"s{day}", "u1", "shop1", "click", day * 1440 + 1, 0))
    # session 29 starts at 23:59 on its day... its click spills over to the next day
    rows.append(("late", "u1", "shop2", "view", 15 * 1440 + 539, 0))
    rows.append(("late", "u1", "shop2", "click", 15 * 1440 + 541, 0))
    events = make_events(rows)
    split = time_split(events, test_days=14)
    assert split.cutoff == pd.Timestamp("2026-10-17")  # last day 10-30 -> 14 days = 10-17 .. 10-30
    # sessions are assigned by their start: a late session's follow-ups stay with it in training
    assert split.train.groupby("session_id")["timestamp"].min().max() < split.cutoff
    assert split.test["timestamp"].min() >= split.cutoff
    assert len(split.train) + len(split.test) == len(events)
    late = events[events["session_id"] == "late"]
    assert late["timestamp"].max() >= split.cutoff > late["timestamp"].min()
    assert set(split.train["session_id"]) >= {"late"} and "late" not in set(split.test["session_id"])


def test_unshown_negatives_come_from_the_school_pool_and_were_not_shown(one_session):
    samples = label_events(one_session)
    shop_school = pd.Series({f"shop{i}": "school_a" for i in range(6)} | {f"far{i}": "school_b" for i in range(5)}
                            | {f"near{i}": "school_a" for i in range(5)})
    user_school = pd.Series({"u1": "school_a"})
    extra = unshown_negatives(samples, shop_school, user_school, per_session=20, seed=1)
    assert len(extra) > 0
    assert set(extra["shop_id"]) <= {f"near{i}" for i in range(5)}
    assert extra["shop_id"].is_unique
    assert (extra["label"] == 0).all() and (extra["kind"] == "unshown").all()
    assert unshown_negatives(samples, shop_school, user_school, per_session=0).empty
