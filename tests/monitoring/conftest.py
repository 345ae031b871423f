"""A small generated data set and a quickly trained ranker, shared by the monitoring tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import build_dataset, load_events
from naviyam.ranking.train import train_ranker

SMALL = {"n_schools": 3, "n_shops": 90, "n_users": 160, "days": 28}


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """(settings, catalog, events, ranker_dir): 1-epoch ranker, enough to serve and score."""
    home = tmp_path_factory.mktemp("monitoring")
    settings = Settings(home=home, log_level="WARNING")
    build_dataset(settings, **SMALL)
    catalog, events = Catalog.load(settings.data_dir), load_events(settings.data_dir)
    quick = settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"epochs": 1})})
    ranker_dir = settings.models_dir / "ranker"
    train_ranker(quick, catalog, events, ranker_dir, evaluate=False)
    return settings, catalog, events, Path(ranker_dir)
