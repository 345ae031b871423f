"""Fixtures for the ranker tests: a small generated data set and one ranker trained on it.

The project runs pytest with ``--import-mode=importlib``, so helpers are handed to the test
modules as fixtures. Building the data (~0.5 s) and training (a few seconds) happen once per
session; every test that needs a trained model shares the same one.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import build_dataset, load_events
from naviyam.ranking.train import train_ranker

SMALL = {"n_schools": 4, "n_shops": 300, "n_users": 600, "days": 42}


@pytest.fixture(scope="session")
def ranking_data(tmp_path_factory) -> tuple[Settings, Catalog, pd.DataFrame]:
    settings = Settings(home=tmp_path_factory.mktemp("ranking"))
    build_dataset(settings, **SMALL)
    return settings, Catalog.load(settings.data_dir), load_events(settings.data_dir)


@pytest.fixture(scope="session")
def ranking_store(ranking_data, tmp_path_factory):
    """One Feast store over the data set's events for every training here (each would otherwise
    export its own scratch store; the point-in-time join gives the same features either way, see
    tests/features/test_feature_historical.py)."""
    from naviyam.features.training import training_store

    settings, catalog, events = ranking_data
    return training_store(settings, catalog, events, tmp_path_factory.mktemp("ranking_store"))


@pytest.fixture(scope="session")
def trained(ranking_data, ranking_store) -> tuple[Path, dict]:
    settings, catalog, events = ranking_data
    out = settings.models_dir / "ranker"
    meta = train_ranker(settings, catalog, events, out, feature_store=ranking_store)
    return out, meta


@pytest.fixture()
def make_events() -> Callable[[list[tuple]], pd.DataFrame]:
    """Events from (session, user, shop, type, minute, position[, rating]) tuples, day 0 = 2026-10-01."""
    start = datetime(2026, 10, 1, 15, 0)

    def build(rows: list[tuple]) -> pd.DataFrame:
        out = []
        for i, row in enumerate(rows):
            session, user, shop, kind, minute, position, *rest = row
            out.append({
                "event_id": f"e{i:05d}", "user_id": user, "shop_id": shop, "event_type": kind,
                "timestamp": pd.Timestamp(start + timedelta(minutes=minute)), "session_id": session,
                "position": position, "time_slot": "after_school",
                "rating": float(rest[0]) if rest else float("nan"),
                "order_amount": 5000 if kind == "order" else pd.NA,
            })
        frame = pd.DataFrame(out)
        frame["order_amount"] = frame["order_amount"].astype("Int64")
        return frame

    return build
