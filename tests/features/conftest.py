"""Fixtures for the Feast feature store tests: one small data set, built into a Feast store once.

``build_features`` (export -> apply -> materialize) runs once per session on a tiny generated
data set (3 schools, 80 shops, 150 children, 21 days); tests that need a different event log
build their own store under their own ``tmp_path``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import build_dataset, load_events

SMALL = {"n_schools": 3, "n_shops": 80, "n_users": 150, "days": 21}


@dataclass
class Built:
    settings: Settings
    result: dict
    catalog: Catalog
    events: pd.DataFrame


def _quick(settings: Settings) -> Settings:
    """One epoch: enough for tests that check plumbing rather than quality."""
    return settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"epochs": 1})})


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    from naviyam.features import build_features

    settings = _quick(Settings(home=tmp_path_factory.mktemp("features")))
    build_dataset(settings, **SMALL)
    result = build_features(settings)
    return Built(settings, result, Catalog.load(settings.data_dir), load_events(settings.data_dir))


@pytest.fixture(scope="session")
def store(built):
    from naviyam.features.store import feature_store

    return feature_store(built.settings)


@pytest.fixture(scope="session")
def snapshot(built):
    """The ranker's serving snapshot over the whole event log (what materialize must equal)."""
    from naviyam.ranking.features import TableFeatureSource

    return TableFeatureSource.fit(built.catalog, built.events)


@pytest.fixture()
def quick():
    return _quick
