"""Feature space, point-in-time history, serving snapshot (no leakage) and model inputs."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from naviyam.data.catalog import haversine_km
from naviyam.ranking.features import (
    INPUT_NAMES, WIDE_DIM, WIDE_FEATURES, FeatureHistory, FeatureSource, FeatureSpace,
    RankingFeatures, TableFeatureSource, allergy_conflict, context_columns, hhmm_minutes, open_now,
    profile_columns, raw_wide_features,
)
from naviyam.ranking.samples import time_split
from naviyam.schemas import RequestContext, TimeSlot


def _context(catalog, school_id: str, when=datetime(2026, 11, 2, 16, 0), slot=TimeSlot.AFTER_SCHOOL):
    lat, lon = catalog.school_location(school_id)
    return RequestContext(now=when, time_slot=slot, origin_lat=lat, origin_lon=lon, school_id=school_id)


def test_feature_space_vocabularies_round_trip(tmp_path):
    events = pd.DataFrame({"user_id": ["u2", "u1", "u2"], "shop_id": ["s1", "s3", "s2"]})
    space = FeatureSpace.fit(events)
    assert space.user_index(["u1", "u2", "new"]).tolist() == [1, 2, 0]
    assert space.shop_index(["s2", "zzz"]).tolist() == [2, 0]
    assert space.category_index(["치킨", "없는카테고리"]).tolist() == [1, 0]
    assert (space.n_users, space.n_shops, space.n_categories) == (3, 4, 13)
    space.save(tmp_path / "space.json")
    assert FeatureSpace.load(tmp_path / "space.json") == space
    grown = space.extend(pd.DataFrame({"user_id": ["u0", "u1"], "shop_id": ["s9", "s1"]}))
    assert grown.user_index(["u1", "u2", "u0"]).tolist() == [1, 2, 3]  # old rows keep their index
    assert grown.shop_index(["s9"]).tolist() == [4]
    with pytest.raises(ValueError):
        FeatureSpace(users=("a", "a"), shops=())


def test_history_is_point_in_time(ranking_data):
    """Features as of day d count exactly the events of days < d, for every user and shop."""
    _, catalog, events = ranking_data
    split = time_split(events)
    history = FeatureHistory(catalog, split.train, split.cutoff)
    rng = np.random.default_rng(0)
    users = rng.choice(split.train["user_id"].unique(), 30)
    shops = rng.choice(split.train["shop_id"].unique(), 30)
    days = rng.integers(0, history.n_days + 1, 30)
    day_of = (split.train["timestamp"] - history.start) // pd.Timedelta(days=1)
    uf = history.user_frame(users, days)
    sf = history.shop_frame(shops, days)
    for i in range(30):
        before = split.train[day_of < days[i]]
        mine = before[before["user_id"] == users[i]]
        assert uf["n_clicks"].iloc[i] == (mine["event_type"] == "click").sum()
        assert uf["n_views"].iloc[i] == (mine["event_type"] == "view").sum()
        theirs = before[before["shop_id"] == shops[i]]
        assert sf["n_orders"].iloc[i] == (theirs["event_type"] == "order").sum()
    # a user's first positive is not "before" on its own day, only from the next day on
    first = split.train[split.train["event_type"] == "click"].iloc[0]
    d0 = int((first["timestamp"] - history.start) // pd.Timedelta(days=1))
    flags = history.pair_flags([first["user_id"]] * 2, [first["shop_id"]] * 2, np.array([d0, d0 + 1]))
    assert flags["engaged_shop_before"].tolist() == [0.0, 1.0]


def test_snapshot_excludes_the_test_window(ranking_data):
    _, catalog, events = ranking_data
    split = time_split(events)
    snap = TableFeatureSource.fit(catalog, events, end=split.cutoff)
    # Tampering with everything from the cutoff on must not change a single feature.
    tampered = events.copy()
    late = tampered["timestamp"] >= split.cutoff
    tampered.loc[late, "event_type"] = "order"
    tampered.loc[late, "shop_id"] = tampered["shop_id"].iloc[0]
    snap2 = TableFeatureSource.fit(catalog, tampered, end=split.cutoff)
    pd.testing.assert_frame_equal(snap.shops, snap2.shops)
    pd.testing.assert_frame_equal(snap.users.drop(columns=["engaged_shops", "ordered_shops"]),
                                  snap2.users.drop(columns=["engaged_shops", "ordered_shops"]))
    before = events[events["timestamp"] < split.cutoff]
    clicks = before[before["event_type"] == "click"].groupby("user_id").size()
    got = snap.user_features(clicks.index.tolist())["n_clicks"]
    assert (got.to_numpy() == clicks.to_numpy()).all()
    assert isinstance(snap, FeatureSource)


def test_saved_model_features_use_training_window_only(ranking_data, trained):
    _, _, events = ranking_data
    model_dir, meta = trained
    features = RankingFeatures.load(model_dir / "features")
    cutoff = pd.Timestamp(meta["train_window"]["end"])
    assert cutoff == time_split(events).cutoff
    before = events[events["timestamp"] < cutoff]
    views = before[before["event_type"] == "view"].groupby("shop_id").size()
    got = features.source.shop_features(views.index.tolist())["n_views"].to_numpy()
    assert (got == views.to_numpy()).all()
    all_views = events[events["event_type"] == "view"].groupby("shop_id").size().reindex(views.index)
    assert (got < all_views.to_numpy()).any()  # the held-out views exist but were not counted


def test_build_inputs_contract_and_new_users(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    features = RankingFeatures.load(model_dir / "features")
    user = catalog.user(catalog.users["user_id"].iloc[0])
    shops = catalog.shops["shop_id"].tolist()[:40] + ["shop_never_seen"]
    inputs = features.build_inputs([user], shops, _context(catalog, user.school_id))
    assert tuple(inputs) == INPUT_NAMES
    assert inputs["wide"].shape == (41, WIDE_DIM) and inputs["wide"].dtype == np.float32
    for name in ("user_idx", "shop_idx", "category_idx"):
        assert inputs[name].shape == (41,) and inputs[name].dtype == np.int64
    assert np.isfinite(inputs["wide"]).all()
    assert inputs["shop_idx"][-1] == 0 and inputs["category_idx"][-1] == 0
    no_history = WIDE_FEATURES.index("no_history")
    for newcomer in (user.model_copy(update={"is_new": True}),
                     user.model_copy(update={"user_id": "somebody_new"})):
        new = features.build_inputs([newcomer], shops, _context(catalog, user.school_id))
        assert (new["user_idx"] == 0).all()
        assert np.isfinite(new["wide"]).all()
    assert (features.build_inputs([user.model_copy(update={"user_id": "somebody_new"})], shops,
                                  _context(catalog, user.school_id))["wide"][:, no_history] > 0).all()


def test_one_request_equals_batched_rows(ranking_data, trained):
    """The serving path (one user, one context, broadcast) matches the batch path row by row."""
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    features = RankingFeatures.load(model_dir / "features")
    uid = catalog.users["user_id"].iloc[3]
    user = catalog.user(uid)
    shops = catalog.shops["shop_id"].tolist()[:25]
    ctx = _context(catalog, user.school_id, datetime(2026, 11, 3, 21, 30), TimeSlot.NIGHT)
    one = features.build_inputs([user], shops, ctx)
    rows = catalog.users.loc[[uid] * len(shops)]
    ctx_rows = pd.DataFrame({"now": [ctx.now] * len(shops), "time_slot": ["night"] * len(shops),
                             "origin_lat": ctx.origin_lat, "origin_lon": ctx.origin_lon})
    batch = features.build_inputs(rows, shops, ctx_rows)
    for name in INPUT_NAMES:
        np.testing.assert_allclose(one[name], batch[name], rtol=0, atol=1e-6)


def test_context_features(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    features = RankingFeatures.load(model_dir / "features")
    user = catalog.user(catalog.users["user_id"].iloc[0]).model_copy(
        update={"has_meal_card": True, "per_meal_allowance": 8000, "preferred_categories": ["치킨"]})
    shops = catalog.shops
    no_card = shops[~shops["accepts_meal_card"] & (shops["category"] != "치킨")]["shop_id"].iloc[0]
    chicken = shops[shops["accepts_meal_card"] & (shops["category"] == "치킨")]["shop_id"].iloc[0]
    ids = [no_card, chicken]
    src = features.source
    raw = raw_wide_features(profile_columns([user]), src.user_columns([user.user_id]), src.shop_columns(ids),
                            context_columns(_context(catalog, user.school_id)), {})
    col = {name: raw[:, i] for i, name in enumerate(WIDE_FEATURES)}
    assert col["meal_card_mismatch"].tolist() == [1.0, 0.0]
    assert col["preferred_category"].tolist() == [0.0, 1.0]
    assert col["slot_after_school_x_치킨"].tolist() == [0.0, 1.0]
    lat, lon = catalog.school_location(user.school_id)
    expected = haversine_km(lat, lon, shops.loc[ids, "lat"].to_numpy(), shops.loc[ids, "lon"].to_numpy())
    np.testing.assert_allclose(col["distance_km"], np.minimum(expected, 10.0), rtol=1e-5)
    np.testing.assert_allclose(col["price_fit"], np.minimum(shops.loc[ids, "min_price"].to_numpy() / 8000, 3.0),
                               rtol=1e-5)


def test_allergy_and_opening_hours_helpers():
    menus = np.empty(2, dtype=object)
    menus[0] = ["밀,우유", "", "달걀"]
    menus[1] = ["우유", "우유,밀"]
    milk = np.empty(1, dtype=object)
    milk[0] = ["우유"]
    share, nothing = allergy_conflict(milk, menus)
    assert share.tolist() == pytest.approx([1 / 3, 1.0]) and nothing.tolist() == [False, True]
    none = np.empty(1, dtype=object)
    none[0] = []
    share, nothing = allergy_conflict(none, menus)
    assert share.tolist() == [0.0, 0.0] and not nothing.any()
    o = hhmm_minutes(["10:00", "17:00", None])
    c = hhmm_minutes(["20:00", "02:00", None])
    assert open_now(o, c, np.array([9 * 60, 9 * 60, 0.0])).tolist() == [False, False, True]
    assert open_now(o, c, np.array([12 * 60, 60, 0.0])).tolist() == [True, True, True]
