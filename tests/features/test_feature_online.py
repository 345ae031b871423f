"""Online lookups equal the ranker's snapshot; the on-demand request-context view."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from naviyam.data.catalog import haversine_km
from naviyam.features.online import FeastFeatureSource, column_array
from naviyam.features.store import FeaturesNotBuiltError
from naviyam.ranking.features import FeatureSource, frame_columns, open_now
from naviyam.schemas import TimeSlot


@pytest.fixture(scope="module")
def source(built):
    return FeastFeatureSource.for_settings(built.settings)


def test_is_a_feature_source(source):
    assert isinstance(source, FeatureSource)


def test_known_users_equal_the_snapshot(source, snapshot):
    ids = list(snapshot.users.index)
    pd.testing.assert_frame_equal(source.user_features(ids), snapshot.user_features(ids))


def test_known_shops_equal_the_snapshot(source, snapshot):
    ids = list(snapshot.shops.index)
    pd.testing.assert_frame_equal(source.shop_features(ids), snapshot.shop_features(ids))


def test_unknown_and_repeated_ids_get_the_snapshot_defaults(source, snapshot):
    users = ["ghost", snapshot.users.index[3], "ghost", snapshot.users.index[3]]
    shops = [snapshot.shops.index[1], "closed_shop", snapshot.shops.index[1]]
    pd.testing.assert_frame_equal(source.user_features(users), snapshot.user_features(users))
    pd.testing.assert_frame_equal(source.shop_features(shops), snapshot.shop_features(shops))
    for ids in (["nobody"], []):
        pd.testing.assert_frame_equal(source.user_features(ids), snapshot.user_features(ids))
        pd.testing.assert_frame_equal(source.shop_features(ids), snapshot.shop_features(ids))


def test_user_columns_are_the_frame_path_columns(source, snapshot):
    """The served fast path (no pandas for known ids) equals the frame path column for column,
    dtypes included; unknown ids take the frame path and its missing-row defaults."""
    known = list(snapshot.users.index[:3])
    for ids in (known[:1], known, [known[1], known[0], known[1]], ["ghost", known[2]], ["nobody"], []):
        fast, frame = source.user_columns(ids), frame_columns(source.user_features(ids))
        assert list(fast) == list(frame)
        for col in frame:
            assert fast[col].dtype == frame[col].dtype, col
            pd.testing.assert_series_equal(pd.Series(fast[col]), pd.Series(frame[col]), obj=col)


def test_timestamps_convert_as_pandas_does():
    utc = timezone.utc
    values = [datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=utc), None,
              datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9))), datetime(2025, 5, 5)]
    expected = pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.tz_convert(None)
    got = column_array(values, np.dtype("datetime64[ns]"))
    assert got.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(got, expected.to_numpy(dtype="datetime64[ns]"))
    # Anything but datetimes (e.g. ISO text) still goes through pandas' parser.
    np.testing.assert_array_equal(column_array(["2026-01-02T03:04:05+09:00"], np.dtype("datetime64[ns]")),
                                  np.array(["2026-01-01T18:04:05"], dtype="datetime64[ns]"))


def test_missing_store_raises_so_callers_can_fall_back(tmp_path):
    from naviyam.config import Settings

    with pytest.raises(FeaturesNotBuiltError):
        FeastFeatureSource.for_settings(Settings(home=tmp_path))


def test_on_demand_request_context(built, store):
    shops = built.catalog.shops.iloc[:6]
    origin = (37.5, 127.0)
    slots = [s.value for s in TimeSlot] + ["lunch"]
    minutes = [8 * 60, 12 * 60 + 30, 16 * 60, 19 * 60, 23 * 60, 3 * 60]
    rows = [{"shop_id": sid, "origin_lat": origin[0], "origin_lon": origin[1], "time_slot": slot,
             "request_minute": minute} for sid, slot, minute in zip(shops.index, slots, minutes)]
    features = ["request_context:distance_km", "request_context:open_now",
                *[f"request_context:slot_{s.value}" for s in TimeSlot]]
    got = store.get_online_features(features=features, entity_rows=rows).to_dict()
    expected_km = haversine_km(origin[0], origin[1], shops["lat"].to_numpy(), shops["lon"].to_numpy())
    np.testing.assert_allclose(got["distance_km"], expected_km, rtol=1e-12)
    opens = built.catalog.open_minutes[:6].astype(float), built.catalog.close_minutes[:6].astype(float)
    assert got["open_now"] == open_now(*opens, np.array(minutes, dtype=float)).tolist()
    for slot in TimeSlot:
        assert got[f"slot_{slot.value}"] == [s == slot.value for s in slots]


def test_onnx_ranker_scores_the_same_from_feast_and_from_its_snapshot(built, tmp_path):
    """Trained on everything (no hold-out), the saved snapshot is the materialised state."""
    from naviyam.ranking.scorer import OnnxRanker
    from naviyam.ranking.train import train_ranker
    from naviyam.schemas import RequestContext

    train_ranker(built.settings, built.catalog, built.events, tmp_path / "ranker", holdout_days=0,
                 evaluate=False, num_threads=1)
    table = OnnxRanker.load(tmp_path / "ranker")
    feast = OnnxRanker.load(tmp_path / "ranker", source=FeastFeatureSource.for_settings(built.settings))
    shops = list(built.catalog.shops.index[:20]) + ["ghost_shop"]
    school = built.catalog.schools.iloc[0]
    context = RequestContext(now=built.events["timestamp"].max(), time_slot="after_school",
                             origin_lat=float(school["lat"]), origin_lon=float(school["lon"]))
    for user_id in list(built.catalog.users.index[:5]):
        user = built.catalog.user(user_id)
        np.testing.assert_array_equal(feast.score(user, shops, context), table.score(user, shops, context))
