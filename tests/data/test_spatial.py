"""The spatial index and the filters built on it agree with measuring every shop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.data.spatial import TREE_MIN_POINTS, PointIndex
from naviyam.data.world import TILE_SCHOOLS, TILE_SPACING_DEG, build_schools, distances_to_schools
from naviyam.dialogue.select import near_qualifying
from naviyam.filtering import shop_mask
from naviyam.schemas import RequestContext, SearchFilters, TimeSlot

CENTRE = (37.5, 127.0)


def _random_points(n: int, seed: int = 0, spread_deg: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return CENTRE[0] + rng.uniform(-spread_deg, spread_deg, n), CENTRE[1] + rng.uniform(-spread_deg, spread_deg, n)


@pytest.mark.parametrize("n", [3000, TREE_MIN_POINTS + 3000], ids=["measured", "kd_tree"])
@pytest.mark.parametrize("km", [0.0, 0.3, 1.0, 2.5, 7.0, 30.0])
def test_within_is_exactly_the_haversine_ball(km, n):
    lat, lon = _random_points(n)
    index = PointIndex(lat, lon)
    assert (index._tree is not None) == (n >= TREE_MIN_POINTS)
    rows, dist = index.within(CENTRE[0] + 0.01, CENTRE[1] - 0.02, km)
    every = haversine_km(CENTRE[0] + 0.01, CENTRE[1] - 0.02, lat, lon)
    np.testing.assert_array_equal(rows, np.flatnonzero(every <= km))
    np.testing.assert_array_equal(dist, every[rows])


def test_a_point_exactly_on_the_radius_is_inside():
    lat, lon = _random_points(50)
    index = PointIndex(lat, lon)
    km = float(haversine_km(CENTRE[0], CENTRE[1], lat[7], lon[7]))
    assert 7 in index.within(CENTRE[0], CENTRE[1], km)[0]


def test_empty_index():
    rows, dist = PointIndex(np.zeros(0), np.zeros(0)).within(*CENTRE, 3.0)
    assert rows.size == 0 and dist.size == 0


def _catalog(n: int = 800, seed: int = 1) -> Catalog:
    rng = np.random.default_rng(seed)
    lat, lon = _random_points(n, seed)
    cats = rng.choice(["치킨", "분식", "한식"], n)
    shops = pd.DataFrame({
        "shop_id": [f"s{i:04d}" for i in range(n)], "name": [f"{c}집{i}" for i, c in enumerate(cats)],
        "category": cats, "school_id": "sch1", "address": "a", "district": "d", "lat": lat, "lon": lon,
        "open_time": rng.choice(["10:00", "17:00"], n), "close_time": rng.choice(["21:00", "02:00"], n),
        "phone": "02", "accepts_meal_card": rng.random(n) < 0.7, "is_good_influence_shop": rng.random(n) < 0.2,
        "rating": 4.0, "view_count": 1, "order_count": 1, "min_price": rng.integers(3, 12, n) * 1000,
        "avg_price": 9000,
    })
    names = ["떡볶이", "매운 떡볶이", "치킨너겟", "김밥", "짜장면"]
    menus = pd.DataFrame([
        {"menu_id": f"m{i}_{j}", "shop_id": f"s{i:04d}", "name": names[(i + j) % len(names)],
         "price": int(2000 + 1000 * ((i * 7 + j) % 9)), "allergens": [["우유"], ["밀"], []][(i + j) % 3],
         "is_signature": j == 0}
        for i in range(n) if i % 17 for j in range(1 + i % 3)   # some shops have no menus at all
    ]).sample(frac=1.0, random_state=3)                         # menus in no particular order
    users = pd.DataFrame({"user_id": ["u1"]}).set_index("user_id", drop=False)
    schools = pd.DataFrame({"school_id": ["sch1"], "lat": [CENTRE[0]], "lon": [CENTRE[1]]})
    return Catalog(schools=schools, shops=shops.set_index("shop_id", drop=False), menus=menus, users=users)


def _reference_mask(catalog: Catalog, f: SearchFilters, origin) -> np.ndarray:
    """The filters written out over every shop and every menu (what shop_mask did before the index)."""
    shops, menus = catalog.shops, catalog.menus
    mask = np.ones(len(shops), dtype=bool)
    if f.category:
        mask &= (shops["category"] == f.category).to_numpy()
    if f.meal_card:
        mask &= shops["accepts_meal_card"].to_numpy()
    if f.max_distance_km is not None:
        mask &= haversine_km(origin[0], origin[1], shops["lat"].to_numpy(), shops["lon"].to_numpy()) <= f.max_distance_km
    ok = np.ones(len(menus), dtype=bool)
    if f.max_price is not None:
        ok &= (menus["price"] <= f.max_price).to_numpy()
    for a in f.allergies:
        ok &= ~menus["allergens"].map(lambda al: a in al).to_numpy(dtype=bool)
    if f.menu_item:
        ok &= menus["name"].str.contains(f.menu_item, regex=False).to_numpy()
    if f.max_price is not None or f.allergies or f.menu_item:
        mask &= shops["shop_id"].isin(set(menus.loc[ok, "shop_id"])).to_numpy()
    return mask


@pytest.mark.parametrize("filters", [
    SearchFilters(max_distance_km=1.5),
    SearchFilters(max_distance_km=3.0, category="치킨", meal_card=True),
    SearchFilters(max_distance_km=2.0, max_price=5000, allergies=["우유"]),
    SearchFilters(max_distance_km=4.0, menu_item="떡볶이"),
    SearchFilters(category="분식", menu_item="김밥", max_price=6000),     # no distance: all shops
])
def test_shop_mask_matches_measuring_every_shop(filters):
    catalog = _catalog()
    origin = (CENTRE[0] + 0.005, CENTRE[1])
    np.testing.assert_array_equal(shop_mask(catalog, filters, origin), _reference_mask(catalog, filters, origin))


def test_reach_bounds_the_mask():
    catalog = _catalog()
    wide = shop_mask(catalog, SearchFilters(), CENTRE)
    near = shop_mask(catalog, SearchFilters(), CENTRE, reach_km=1.0)
    dist = haversine_km(*CENTRE, catalog.shops["lat"].to_numpy(), catalog.shops["lon"].to_numpy())
    assert wide.all()
    np.testing.assert_array_equal(near, dist <= 1.0)


def test_menus_of_keeps_table_order_per_shop():
    catalog = _catalog()
    for sid in ("s0001", "s0005", "s0017"):
        expected = catalog.menus[catalog.menus["shop_id"] == sid]["name"].tolist()
        assert [m.name for m in catalog.menus_of(sid)] == expected


def _reference_near(catalog, mask, context, filters):
    idx = np.flatnonzero(mask)
    km = haversine_km(context.origin_lat, context.origin_lon, catalog.shops["lat"].to_numpy()[idx],
                      catalog.shops["lon"].to_numpy()[idx])
    minutes = np.ceil(km * 1000 / 67)
    if filters.prefer_walk_min is not None:
        idx, minutes = idx[minutes <= 25], minutes[minutes <= 25]
    return list(catalog.shops["shop_id"].to_numpy()[idx[np.argsort(minutes, kind="stable")][:30]])


@pytest.mark.parametrize("prefer_walk_min", [None, 15])
@pytest.mark.parametrize("share", [1.0, 0.05, 0.004])
def test_near_qualifying_matches_measuring_every_shop(prefer_walk_min, share):
    catalog = _catalog(3000, seed=2)
    mask = np.random.default_rng(4).random(len(catalog.shops)) < share
    context = RequestContext(now=pd.Timestamp("2026-03-10 15:30").to_pydatetime(), time_slot=TimeSlot.AFTER_SCHOOL,
                             origin_lat=CENTRE[0], origin_lon=CENTRE[1], school_id="sch1")
    filters = SearchFilters(prefer_walk_min=prefer_walk_min)
    assert near_qualifying(catalog, mask, context, filters) == _reference_near(catalog, mask, context, filters)


def test_bigger_worlds_repeat_the_tile_and_keep_todays_schools():
    today, _ = build_schools(TILE_SCHOOLS, np.random.default_rng(5))
    bigger, _ = build_schools(3 * TILE_SCHOOLS, np.random.default_rng(5))
    pd.testing.assert_frame_equal(bigger.iloc[:TILE_SCHOOLS].reset_index(drop=True), today)
    # Tiles do not overlap: a school's nearest school of another tile is tens of km away.
    first, second = bigger.iloc[:TILE_SCHOOLS], bigger.iloc[TILE_SCHOOLS:2 * TILE_SCHOOLS]
    gap = haversine_km(first["lat"].to_numpy()[:, None], first["lon"].to_numpy()[:, None],
                       second["lat"].to_numpy()[None, :], second["lon"].to_numpy()[None, :]).min()
    assert gap > 20 and TILE_SPACING_DEG > 0.4
    assert bigger["name"].is_unique


def test_school_distances_rows_equal_the_dense_matrix():
    catalog = _catalog(200)
    schools = pd.DataFrame({"lat": [37.5, 37.52, 37.47], "lon": [127.0, 126.98, 127.03]})
    dist = distances_to_schools(schools, catalog.shops)
    dense = haversine_km(schools["lat"].to_numpy()[:, None], schools["lon"].to_numpy()[:, None],
                         catalog.shops["lat"].to_numpy()[None, :], catalog.shops["lon"].to_numpy()[None, :])
    assert dist.shape == dense.shape
    for g in range(3):
        np.testing.assert_array_equal(dist[g], dense[g])
    np.testing.assert_array_equal(np.asarray(dist), dense)
