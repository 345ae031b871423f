"""The served feature cache: same model inputs as the store, bounded staleness, batched reads."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from naviyam.ranking.features import (INPUT_NAMES, SHOP_FEATURE_COLUMNS, RankingFeatures, TableFeatureSource,
                                      frame_columns)
from naviyam.ranking.features.cache import FEATURE_TTL_S, CachedFeatureSource
from naviyam.schemas import RequestContext, TimeSlot


class FrameOnlySource:
    """An online store's surface (frames only, like FeastFeatureSource), counting what it is asked."""

    def __init__(self, table: TableFeatureSource):
        self.table = table
        self.shop_requests: list[list[str]] = []
        self.user_requests: list[list[str]] = []

    def user_features(self, user_ids):
        self.user_requests.append(list(user_ids))
        return self.table.user_features(user_ids)

    def shop_features(self, shop_ids):
        self.shop_requests.append(list(shop_ids))
        return self.table.shop_features(shop_ids)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def served(trained):
    model_dir, _ = trained
    table = RankingFeatures.load(model_dir / "features").source
    store, clock = FrameOnlySource(table), Clock()
    return table, store, clock, CachedFeatureSource(store, clock=clock)


def _context(catalog, school_id: str) -> RequestContext:
    lat, lon = catalog.school_location(school_id)
    return RequestContext(now=datetime(2026, 11, 2, 16, 0), time_slot=TimeSlot.AFTER_SCHOOL,
                          origin_lat=lat, origin_lon=lon, school_id=school_id)


def test_cached_inputs_equal_the_store_s(ranking_data, trained, served):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    _, store, _, cached = served
    direct = RankingFeatures.load(model_dir / "features", source=store)
    through = RankingFeatures.load(model_dir / "features", source=cached)
    shops = catalog.shops["shop_id"].tolist()
    for user_id in catalog.users["user_id"].iloc[:3]:
        user = catalog.user(user_id)
        for pool in (shops[:40] + ["shop_never_seen"], shops[20:70], shops[:5]):  # hits, misses, unknown id
            want = direct.build_inputs([user], pool, _context(catalog, user.school_id))
            got = through.build_inputs([user], pool, _context(catalog, user.school_id))
            for name in INPUT_NAMES:
                np.testing.assert_array_equal(got[name], want[name])


def test_a_shop_is_read_once_per_staleness_bound(ranking_data, served):
    _, catalog, _ = ranking_data
    table, store, clock, cached = served
    shops = catalog.shops["shop_id"].tolist()
    cached.shop_columns(shops[:30])
    cached.shop_columns(shops[:30])
    cached.shop_columns(shops[10:20])
    assert store.shop_requests == [shops[:30]]  # one batch, then memory

    clock.now += 10
    cached.shop_columns(shops[25:40])  # only the shops never read go to the store, in one batch
    assert store.shop_requests[-1] == shops[30:40]

    clock.now = 1000.0 + FEATURE_TTL_S - 1
    cached.shop_columns(shops[:40])
    assert len(store.shop_requests) == 2  # still inside the bound
    clock.now = 1000.0 + FEATURE_TTL_S + 1  # the first 30 are now older than the bound, the next 10 not
    got = cached.shop_columns(shops[:40])
    assert store.shop_requests[-1] == shops[:30]
    want = table.shop_columns(shops[:40])
    for col in SHOP_FEATURE_COLUMNS:
        assert list(map(str, got[col])) == list(map(str, want[col])), col


def test_a_refreshed_row_serves_the_store_s_new_value(ranking_data, served):
    _, catalog, _ = ranking_data
    table, _, clock, cached = served
    shop = catalog.shops["shop_id"].iloc[0]
    before = float(cached.shop_columns([shop])["n_views"][0])
    table.shops.loc[shop, "n_views"] = before + 100  # a materialisation wrote the store
    assert float(cached.shop_columns([shop])["n_views"][0]) == before  # within the bound: the cached row
    clock.now += FEATURE_TTL_S
    assert float(cached.shop_columns([shop])["n_views"][0]) == before + 100


def test_a_prefilled_catalogue_is_read_once_and_then_only_after_the_bound(ranking_data, served):
    _, catalog, _ = ranking_data
    table, store, clock, cached = served
    shops = catalog.shops["shop_id"].tolist()
    assert cached.prefill(shops + shops[:5]) == len(shops)  # duplicates read once
    assert store.shop_requests == [shops]
    got = cached.shop_columns(shops[40:90])
    assert len(store.shop_requests) == 1  # every turn inside the bound is served from memory
    want = table.shop_columns(shops[40:90])
    for col in SHOP_FEATURE_COLUMNS:
        assert list(map(str, got[col])) == list(map(str, want[col])), col
    clock.now += FEATURE_TTL_S
    cached.shop_columns(shops[:3])
    assert store.shop_requests[-1] == shops[:3]  # prefilled rows age like any other


def test_prefill_is_bounded_by_the_cache_size(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    store = FrameOnlySource(RankingFeatures.load(model_dir / "features").source)
    cached = CachedFeatureSource(store, max_shops=10)
    assert cached.prefill(catalog.shops["shop_id"].tolist()) == 10
    assert len(store.shop_requests[0]) == 10


def test_a_user_row_is_read_once_per_staleness_bound(ranking_data, served):
    _, catalog, _ = ranking_data
    table, store, clock, cached = served
    a, b = (str(u) for u in catalog.users["user_id"].iloc[:2])
    for _ in range(3):
        cached.user_columns([a])
    assert store.user_requests == [[a]]
    both = cached.user_columns([b, a, "ghost"])  # one batch for the two not yet seen
    assert store.user_requests == [[a], [b, "ghost"]]
    want = frame_columns(table.user_features([b, a, "ghost"]))
    assert list(both) == list(want)
    for col in want:
        pd.testing.assert_series_equal(pd.Series(both[col]), pd.Series(want[col]), obj=col)
    clock.now = 1000.0 + FEATURE_TTL_S  # at the bound: read again
    cached.user_columns([a])
    assert store.user_requests[-1] == [a]


def test_a_served_user_row_cannot_be_changed_by_a_caller(ranking_data, served):
    _, catalog, _ = ranking_data
    _, _, _, cached = served
    user = str(catalog.users["user_id"].iloc[0])
    row = cached.user_columns([user])
    column = next(iter(row))
    with pytest.raises(ValueError):
        row[column][0] = row[column][0]
    empty = cached.user_columns([])
    assert list(empty) == list(row) and all(len(v) == 0 for v in empty.values())


def test_the_user_cache_is_bounded(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    store = FrameOnlySource(RankingFeatures.load(model_dir / "features").source)
    cached = CachedFeatureSource(store, max_users=2)
    users = [str(u) for u in catalog.users["user_id"].iloc[:3]]
    for uid in users:
        cached.user_columns([uid])
    assert len(cached._users) <= 2
    cached.user_columns([users[2]])  # the newest is still held
    assert store.user_requests[-1] == [users[2]] and len(store.user_requests) == 3
