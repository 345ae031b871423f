"""Point-in-time training features: equal to FeatureHistory, blind to the future, and in train.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from naviyam.features.export import TIMESTAMP
from naviyam.features.historical import historical_training_features, training_feature_columns
from naviyam.features.training import training_store
from naviyam.ranking.features import FeatureHistory
from naviyam.ranking.samples import balance, label_events, time_split, unshown_negatives


@pytest.fixture(scope="module")
def training(built):
    """Training samples as train_ranker draws them, with the as-of history of its window."""
    split = time_split(built.events)
    history = FeatureHistory(built.catalog, split.train, split.cutoff)
    samples = label_events(split.train)
    extra = unshown_negatives(samples, built.catalog.shops["school_id"], built.catalog.users["school_id"], 8)
    samples = balance(pd.concat([samples, extra], ignore_index=True), 2)
    return history, samples.reset_index(drop=True)


def _assert_frames_equal(feast: pd.DataFrame, table: pd.DataFrame) -> None:
    for col in table.columns:
        a, b = feast[col].to_numpy(), table[col].to_numpy()
        if a.dtype.kind in "fM":
            assert a.dtype == b.dtype, col
            np.testing.assert_array_equal(a, b, err_msg=col)
        else:
            same = [(x == y) if isinstance(y, list) else (pd.isna(x) and pd.isna(y)) or x == y
                    for x, y in zip(a, b)]
            assert all(same), col


def test_historical_equals_feature_history(built, store, training):
    history, samples = training
    as_of = training_feature_columns(built.settings, samples, store=store)
    days = history.day_of(samples["timestamp"])
    users, shops = samples["user_id"].tolist(), samples["shop_id"].tolist()
    table_users = history.user_frame(users, days).drop(columns=["engaged_shops", "ordered_shops"])
    _assert_frames_equal(as_of["users"], table_users)
    _assert_frames_equal(as_of["shops"], history.shop_frame(shops, days))
    for name, flags in history.pair_flags(users, shops, days).items():
        np.testing.assert_array_equal(as_of["pair_flags"][name], flags, err_msg=name)
    assert as_of["pair_flags"]["engaged_shop_before"].sum() > 0  # the comparison is not vacuous


def test_training_matrix_equals_the_feature_history_matrix(built, store, training):
    """What train_ranker learns from (Feast's join) is what FeatureHistory computed as of each day."""
    from naviyam.ranking.features import frame_columns, profile_columns, raw_wide_features
    from naviyam.ranking.train import sample_frames, sample_raw_wide

    history, samples = training
    feast = sample_raw_wide(built.settings, built.catalog, samples, store)
    f = sample_frames(built.settings, built.catalog, samples, store)
    days = history.day_of(samples["timestamp"])
    users, shops = samples["user_id"].tolist(), samples["shop_id"].tolist()
    table = raw_wide_features(
        profile_columns(built.catalog.users.reindex(users).assign(user_id=users)),
        frame_columns(history.user_frame(users, days)), frame_columns(history.shop_frame(shops, days)),
        f["context"], history.pair_flags(users, shops, days))
    assert feast.shape == table.shape
    np.testing.assert_allclose(feast, table, rtol=0, atol=1e-6)


def test_rows_of_one_session_are_all_kept_in_order(built, store, training):
    _, samples = training
    session = samples["session_id"].value_counts().index[0]
    rows = samples[samples["session_id"] == session]
    assert len(rows) > 1
    entity_df = pd.DataFrame({"user_id": rows["user_id"], "shop_id": rows["shop_id"],
                              TIMESTAMP: rows["timestamp"]}).iloc[::-1]
    out = historical_training_features(built.settings, entity_df, store=store)
    assert out.index.equals(entity_df.index)
    assert out["shop_id"].tolist() == entity_df["shop_id"].tolist()
    assert out["shop_popularity__n_views"].notna().all()


def test_point_in_time_an_event_after_the_timestamp_changes_nothing(built, tmp_path):
    events = built.events
    user, shop = events.iloc[len(events) // 2][["user_id", "shop_id"]]
    asked = events["timestamp"].iloc[len(events) // 2].normalize() + pd.Timedelta(hours=12)
    # Five orders by this child at this shop, 1 h after the moment we ask about (same day).
    later = events.iloc[[0] * 5].assign(
        event_id=[f"future_{i}" for i in range(5)], session_id=[f"future_{i}" for i in range(5)],
        user_id=user, shop_id=shop, event_type="order", timestamp=asked + pd.Timedelta(hours=1))
    changed = pd.concat([events, later], ignore_index=True).sort_values("timestamp", kind="stable")
    # Historical retrieval reads the offline sources: each store is exported and applied, not materialised.
    plain = training_store(built.settings, built.catalog, events, tmp_path / "plain")
    future = training_store(built.settings, built.catalog, changed, tmp_path / "future")

    at = pd.DataFrame({"user_id": [user, user], "shop_id": [shop, shop],
                       TIMESTAMP: [asked, asked + pd.Timedelta(days=1)]})
    before = historical_training_features(built.settings, at, store=plain)
    after = historical_training_features(built.settings, at, store=future)
    features = [c for c in before.columns if "__" in c]
    pd.testing.assert_frame_equal(before.loc[[0], features], after.loc[[0], features])
    # ... while the next day sees them.
    assert after.loc[1, "user_behaviour__n_orders"] == before.loc[1, "user_behaviour__n_orders"] + 5
    assert after.loc[1, "shop_popularity__n_orders"] == before.loc[1, "shop_popularity__n_orders"] + 5
    assert bool(after.loc[1, "user_shop_history__ordered_shop_before"])


def test_train_ranker_on_the_built_store_equals_its_own_scratch_store(built, store, tmp_path):
    """Without a store, train_ranker exports its training events into a scratch store: the same
    point-in-time features as the store ``make features`` built over the same data."""
    from naviyam.ranking.train import train_ranker

    kwargs = {"evaluate": False, "num_threads": 1}
    given = train_ranker(built.settings, built.catalog, built.events, tmp_path / "given",
                         feature_store=store, **kwargs)
    scratch = train_ranker(built.settings, built.catalog, built.events, tmp_path / "scratch", **kwargs)
    assert given["feature_store"] == "given" and scratch["feature_store"] == "scratch"
    assert given["n_train"] == scratch["n_train"]
    assert given["train_weighted_bce"] == pytest.approx(scratch["train_weighted_bce"], abs=1e-6)
