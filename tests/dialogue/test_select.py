"""Which scored shops are shown: the child's walk first, widened one ring only when too few are near."""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from naviyam.data.catalog import WALK_METERS_PER_MINUTE, Catalog
from naviyam.dialogue import policy
from naviyam.dialogue.select import MIN_NEAR, WIDER_WALK_MIN, near_qualifying, pick, walk_of
from naviyam.filtering import shop_mask
from naviyam.schemas import RequestContext, SearchFilters, TimeSlot

ORIGIN = (37.5133, 127.1001)
# Walking minutes of each shop from ORIGIN, due north: two within a child's walk, three in the
# 15-25 minute ring (none within NEAR_WALK_MIN), one far away.
WALKS = {"near1": 13, "near2": 13, "ring21": 21, "ring22": 22, "ring23": 23, "far": 40}


def _north(minutes: float) -> float:
    # A whole minute less a little, so the rounded-up walk is exactly ``minutes``.
    return ORIGIN[0] + (minutes - 0.5) * WALK_METERS_PER_MINUTE / 1000 / 111.195


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    ids = list(WALKS)
    shops = pd.DataFrame({
        "shop_id": ids, "name": ids, "category": "치킨", "school_id": "sch1", "address": "a", "district": "d",
        "lat": [_north(WALKS[s]) for s in ids], "lon": ORIGIN[1], "open_time": "12:00", "close_time": "23:00",
        "phone": "02", "accepts_meal_card": True, "is_good_influence_shop": False, "rating": 4.0,
        "view_count": 1, "order_count": 1, "min_price": 5000, "avg_price": 8000,
    })
    menus = pd.DataFrame([{"menu_id": f"{s}-m", "shop_id": s, "name": "치킨너겟", "price": 5000, "allergens": [],
                           "is_signature": True} for s in ids])
    users = pd.DataFrame({"user_id": ["u1"]}).set_index("user_id", drop=False)
    schools = pd.DataFrame({"school_id": ["sch1"], "lat": [ORIGIN[0]], "lon": [ORIGIN[1]]})
    return Catalog(schools=schools, shops=shops.set_index("shop_id", drop=False), menus=menus, users=users)


CONTEXT = RequestContext(now=datetime(2026, 12, 2, 12, 45), time_slot=TimeSlot.LUNCH, origin_lat=ORIGIN[0], origin_lon=ORIGIN[1])
# The farthest shops score best: any nearness in the list comes from the walk rules, not the scores.
SCORES = {s: 1.0 + m / 100 for s, m in WALKS.items()}


def test_the_fixture_walks_are_what_the_pick_measures(catalog):
    assert list(walk_of(catalog, list(WALKS), CONTEXT)) == list(WALKS.values())


def test_too_few_near_widens_to_the_next_ring_and_says_so(catalog):
    picked = pick(catalog, SCORES, SearchFilters(prefer_walk_min=policy.CHILD_WALK_MIN), CONTEXT, top_k=5)
    assert 2 < MIN_NEAR and picked.widened
    assert set(picked.shop_ids) == {"near1", "near2", "ring21", "ring22", "ring23"}  # never the 40-minute one
    assert max(WALKS[s] for s in picked.shop_ids) <= WIDER_WALK_MIN


def test_a_child_asking_for_shops_close_by_gets_fewer_rather_than_a_long_walk(catalog):
    near = SearchFilters(prefer_walk_min=policy.CHILD_WALK_MIN, widen_walk_min=policy.NEAR_WALK_MIN)
    picked = pick(catalog, SCORES, near, CONTEXT, top_k=5)
    assert sorted(picked.shop_ids) == ["near1", "near2"] and not picked.widened
    # The pool the ranker sees is bounded the same way.
    mask = shop_mask(catalog, near, CONTEXT)
    assert sorted(near_qualifying(catalog, mask, CONTEXT, near)) == ["near1", "near2"]


def test_close_by_with_nothing_near_still_answers_with_what_qualifies(catalog):
    near = SearchFilters(prefer_walk_min=policy.CHILD_WALK_MIN, widen_walk_min=policy.NEAR_WALK_MIN)
    only_far = {s: SCORES[s] for s in ("ring23", "far")}
    picked = pick(catalog, only_far, near, CONTEXT, top_k=5)
    assert picked.widened and sorted(picked.shop_ids) == ["far", "ring23"]  # said to be farther, not hidden
