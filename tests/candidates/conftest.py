"""Fixtures for the candidate-funnel tests: a small hand-made catalog + event log, independent of
the data generator, and a production-sized random one for latency checks.

The project runs pytest with ``--import-mode=importlib``, so test modules cannot import helpers
from here; everything they need is handed over as a fixture (factories included).

Geography: one school at (37.5, 127.0); 0.009 degrees of latitude is ~1 km, so each shop's
distance from the school is roughly its ``km`` column.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from typing import Callable

import numpy as np
import pandas as pd
import pytest
from naviyam.config import CandidateSettings
from naviyam.data.catalog import Catalog
from naviyam.schemas import CATEGORIES, RequestContext, TimeSlot, UserProfile, time_slot_of

SCHOOL = (37.5, 127.0)
KM_PER_DEG_LAT = 111.2

# shop_id, category, km north of school, meal card, good influence, open, close, rating,
# min_price, avg_price, allergens of the cheapest menu, views, orders (the shops.* counters)
SHOPS = [
    ("s01", "치킨", 0.2, True, True, "11:00", "23:00", 4.5, 9000, 16000, ["밀"], 900, 300),
    ("s02", "분식", 0.3, True, False, "10:00", "20:00", 4.0, 3000, 5000, ["밀"], 600, 200),
    ("s03", "한식", 0.5, True, False, "10:00", "21:00", 4.2, 7000, 8500, [], 300, 90),
    ("s04", "피자", 1.0, False, False, "16:00", "02:00", 3.9, 12000, 20000, ["밀", "우유"], 200, 40),
    ("s05", "편의점", 0.1, True, False, "00:00", "23:59", 3.5, 1500, 3000, [], 100, 30),
    ("s06", "카페·디저트", 0.8, False, True, "09:00", "22:00", 4.6, 4000, 6000, ["우유"], 50, 10),
    ("s07", "베이커리", 0.4, True, False, "07:00", "20:00", 4.1, 2500, 4500, ["밀", "계란"], 80, 20),
    ("s08", "중식", 1.5, True, False, "11:00", "21:00", 4.0, 6000, 8000, ["밀"], 40, 5),
    ("s09", "햄버거", 2.0, True, False, "10:00", "22:00", 3.8, 5000, 7000, ["밀", "계란"], 30, 5),
    ("s10", "치킨", 10.0, True, False, "11:00", "23:00", 4.9, 9000, 18000, ["밀"], 5000, 2000),
    ("s11", "분식", 0.6, True, False, "06:00", "09:00", 4.3, 3000, 4500, ["밀"], 20, 2),
    ("s12", "도시락", 0.7, True, True, "08:00", "20:00", 4.4, 5500, 6500, ["대두"], 10, 1),
]

NOW = datetime(2026, 3, 10, 15, 30)  # a Tuesday, after school


def make_catalog(rows=SHOPS) -> Catalog:
    shops = pd.DataFrame(
        [
            {
                "shop_id": sid, "name": f"{cat}집{sid}", "category": cat, "school_id": "sch1",
                "address": f"서울시 어딘가 {sid}", "district": "어딘구",
                "lat": SCHOOL[0] + km / KM_PER_DEG_LAT, "lon": SCHOOL[1], "open_time": o, "close_time": c,
                "phone": "02-000-0000", "accepts_meal_card": card, "is_good_influence_shop": good,
                "rating": rating, "view_count": views, "order_count": orders,
                "min_price": lo, "avg_price": avg,
            }
            for sid, cat, km, card, good, o, c, rating, lo, avg, _, views, orders in rows
        ]
    )
    # Two menus per shop: the cheapest (at min_price, with the row's allergens) and a set menu
    # priced so that the average is avg_price.
    menus = pd.DataFrame(
        [
            menu
            for sid, cat, _km, _card, _good, _o, _c, _rating, lo, avg, allergens, _v, _n in rows
            for menu in (
                {"menu_id": f"{sid}-m1", "shop_id": sid, "name": f"{cat} 기본", "price": lo,
                 "allergens": list(allergens), "is_signature": True},
                {"menu_id": f"{sid}-m2", "shop_id": sid, "name": f"{cat} 세트", "price": 2 * avg - lo,
                 "allergens": ["밀", "대두"], "is_signature": False},
            )
        ]
    )
    schools = pd.DataFrame([{"school_id": "sch1", "name": "나비초", "level": "초", "district": "어딘구",
                             "address": "서울", "lat": SCHOOL[0], "lon": SCHOOL[1]}])
    users = pd.DataFrame(
        [
            {"user_id": uid, "age": 11, "school_id": "sch1", "preferred_categories": prefs, "allergies": [],
             "has_meal_card": True, "meal_card_name": "꿈나무카드", "meal_card_balance": 30000,
             "per_meal_allowance": 9500, "created_at": NOW}
            for uid, prefs in USERS.items()
        ]
    )
    catalog = Catalog(
        schools=schools.set_index("school_id", drop=False),
        shops=shops.set_index("shop_id", drop=False),
        menus=menus,
        users=users.set_index("user_id", drop=False),
    )
    catalog._index_menus()
    return catalog


USERS = {
    "ua": ["한식"], "ub": ["한식"], "uc": ["베이커리"],   # similar tastes: s03 + s07 (+ s12 for ub/uc)
    "ud": ["피자"], "ue": ["햄버거"],                     # another taste: s04 + s09
    "uf": ["치킨"],                                       # heavy orderer of the popular shops
}


def make_events() -> pd.DataFrame:
    rows: list[dict] = []

    def add(user: str, shop: str, kind: str, n: int = 1, slot: str = "after_school", rating: float | None = None):
        for _ in range(n):
            i = len(rows)
            rows.append({
                "event_id": f"e{i}", "user_id": user, "shop_id": shop, "event_type": kind,
                "timestamp": NOW - timedelta(hours=i), "session_id": f"sess{i // 5}", "position": i % 5,
                "time_slot": slot, "rating": rating, "order_amount": 8000 if kind == "order" else None,
            })

    # Popularity: s01 > s02 > s03 near the school; s10 is the most popular overall but 10 km away.
    for shop, views, orders in (("s01", 40, 20), ("s02", 25, 10), ("s03", 12, 4), ("s10", 200, 100)):
        add("uf", shop, "view", views)
        add("uf", shop, "order", orders)
    # Collaborative: ua, ub, uc share s03 + s07; ub and uc also love s12, which ua never tried.
    for user in ("ua", "ub", "uc"):
        add(user, "s03", "order", 3, slot="lunch")
        add(user, "s07", "click", 2)
    for user in ("ub", "uc"):
        add(user, "s12", "order", 3, slot="lunch")
        add(user, "s12", "favorite")
        add(user, "s12", "rating", rating=5.0)
    for user in ("ud", "ue"):
        add(user, "s04", "order", 2, slot="dinner")
        add(user, "s09", "click", 2, slot="dinner")
    return pd.DataFrame(rows)


def _user(user_id: str = "ua", prefs: list[str] | None = None, **kw) -> UserProfile:
    return UserProfile(user_id=user_id, age=11, school_id="sch1",
                       preferred_categories=USERS.get(user_id, []) if prefs is None else prefs, **kw)


def _synthetic(n_shops: int = 2400, n_users: int = 5200, n_schools: int = 24, events_per_user: int = 40,
              seed: int = 0) -> tuple[Catalog, pd.DataFrame]:
    """A production-sized random catalog + event log for latency checks."""
    rng = np.random.default_rng(seed)
    school_lat = 37.45 + rng.random(n_schools) * 0.15
    school_lon = 126.90 + rng.random(n_schools) * 0.20
    school_of = rng.integers(0, n_schools, n_shops)
    hours = [("10:00", "21:00"), ("11:00", "23:00"), ("07:00", "20:00"), ("16:00", "02:00"), ("00:00", "23:59")]
    hour = rng.integers(0, len(hours), n_shops)
    min_price = rng.integers(15, 120, n_shops) * 100
    rows = [
        (f"shop{i:05d}", CATEGORIES[rng.integers(len(CATEGORIES))],
         0.0, bool(rng.random() < 0.7), bool(rng.random() < 0.15), *hours[hour[i]],
         float(np.round(3 + 2 * rng.random(), 1)), int(min_price[i]), int(min_price[i] * 1.6), ["밀"] if i % 3 else [],
         int(rng.integers(0, 5000)), int(rng.integers(0, 1000)))
        for i in range(n_shops)
    ]
    catalog = make_catalog(rows)
    # Scatter shops ~1.5 km around their school.
    lat = school_lat[school_of] + rng.normal(0, 0.012, n_shops)
    lon = school_lon[school_of] + rng.normal(0, 0.015, n_shops)
    catalog.shops["lat"] = lat
    catalog.shops["lon"] = lon
    user_ids = np.array([f"user{u:05d}" for u in range(n_users)])
    n_events = n_users * events_per_user
    users = rng.integers(0, n_users, n_events)
    shops = rng.integers(0, n_shops, n_events)
    kinds = rng.choice(["view", "click", "order", "favorite", "rating"], n_events, p=[0.6, 0.2, 0.12, 0.04, 0.04])
    events = pd.DataFrame({
        "event_id": np.arange(n_events).astype(str), "user_id": user_ids[users],
        "shop_id": catalog.shops["shop_id"].to_numpy()[shops], "event_type": kinds,
        "timestamp": pd.Timestamp(NOW), "session_id": "s", "position": 0,
        "time_slot": rng.choice([s.value for s in TimeSlot], n_events),
        "rating": np.where(kinds == "rating", rng.integers(1, 6, n_events), np.nan),
        "order_amount": np.where(kinds == "order", 8000, 0),
    })
    return catalog, events


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="session")
def events() -> pd.DataFrame:
    return make_events()


@pytest.fixture
def settings() -> CandidateSettings:
    return CandidateSettings()


@pytest.fixture
def context() -> RequestContext:
    return at_time(15, 30)


def at_time(hour: int, minute: int = 0, slot: TimeSlot | None = None) -> RequestContext:
    """A request at the school on the fixture day; the slot defaults to the clock's."""
    now = NOW.replace(hour=hour, minute=minute)
    return RequestContext(now=now, time_slot=slot or time_slot_of(now), origin_lat=SCHOOL[0],
                          origin_lon=SCHOOL[1], school_id="sch1")


@pytest.fixture
def make_user() -> Callable[..., UserProfile]:
    return _user


@pytest.fixture
def make_context() -> Callable[..., RequestContext]:
    return at_time


@pytest.fixture
def fresh_catalog() -> Callable[[], Catalog]:
    """Builds a new (mutable) copy of the small catalog."""
    return make_catalog


@pytest.fixture(scope="session")
def big_data() -> tuple[Catalog, pd.DataFrame]:
    """2,400 shops / 5,200 users / 208k events (about a second to build)."""
    return _synthetic()
