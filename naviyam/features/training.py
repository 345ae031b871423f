"""A Feast store over exactly the events a ranker is trained on.

Training samples get their as-of features only from Feast's point-in-time join
(``naviyam.features.historical``); ``FeatureHistory`` computes the per-day feature rows that the
offline sources hold, it does not join. The store ``make features`` builds holds the data set's
events, but a retrain learns from more (the base events plus the logged interactions), and a
join against sources that lack those events would silently give their samples stale features.
So ``training_store`` exports the sources of the training events into a scratch home, applies the
same feature repo there (the registry is a local file, the online store is never touched) and
returns that store; the caller owns the directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.features.export import export_sources
from naviyam.features.store import apply_definitions, feature_store

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore


def training_store(settings: Settings, catalog: Catalog, events: pd.DataFrame,
                   home: Path) -> "FeatureStore":
    """A store under ``home`` whose offline sources are built from ``events`` only.

    The profile is always the laptop one: only the registry and the offline files are used, and
    a cluster's Redis must not receive a training job's scratch registry.
    """
    scratch = settings.model_copy(update={"home": Path(home)})
    export_sources(scratch, catalog, events)
    store = feature_store(scratch, profile="local")
    apply_definitions(store)
    return store
