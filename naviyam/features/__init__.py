"""The Feast feature store of the ranker: offline sources, registry, online store.

- ``export``      writes ``data/features/*.parquet`` from the ranker's ``FeatureHistory``
- ``store``       a ``FeatureStore`` for a ``Settings`` (repo ``feature_repo/``, paths under home)
- ``online``      ``FeastFeatureSource``: the ranker's ``FeatureSource`` over ``get_online_features``
- ``historical``  point-in-time training features over ``get_historical_features``
- ``transforms``  request-time transformations of the on-demand feature view

``build_features(settings)`` runs export -> apply -> materialize -> the online mirror (what
``make features`` calls; ``online.write_online_mirror`` says why the mirror).
Nothing imports ``feast`` (seconds: it imports torch) until a store is actually needed.
"""
from __future__ import annotations

import logging
import time
from importlib import import_module
from typing import Any

from naviyam.config import Settings

log = logging.getLogger(__name__)

_EXPORTS = {
    "FeastFeatureSource": "naviyam.features.online",
    "FeaturesNotBuiltError": "naviyam.features.store",
    "historical_training_features": "naviyam.features.historical",
    "feature_store": "naviyam.features.store",
    "export_sources": "naviyam.features.export",
}
__all__ = sorted([*_EXPORTS, "build_features"])


def build_features(settings: Settings, *, profile: str | None = None) -> dict:
    """export -> ``feast apply`` (Python API) -> materialize up to the end of the data.

    Idempotent: sources are rewritten, the registry re-applied, the online rows overwritten.
    Returns counts and per-stage seconds.
    """
    import pandas as pd

    from naviyam.data.catalog import Catalog
    from naviyam.features.export import export_sources
    from naviyam.features.online import FeastFeatureSource, write_online_mirror
    from naviyam.features.store import apply_definitions, feature_store, registry_path

    timings: dict[str, float] = {}
    started = time.perf_counter()
    exported = export_sources(settings)
    timings["export"] = round(time.perf_counter() - started, 2)

    mark = time.perf_counter()
    store = feature_store(settings, profile=profile)  # imports feast
    timings["import_and_open"] = round(time.perf_counter() - mark, 2)

    mark = time.perf_counter()
    applied = apply_definitions(store)
    timings["apply"] = round(time.perf_counter() - mark, 2)

    mark = time.perf_counter()
    start = pd.Timestamp(exported["start"]).to_pydatetime()
    end = (pd.Timestamp(exported["end"]) + pd.Timedelta(seconds=1)).to_pydatetime()
    store.materialize(start_date=start, end_date=end)
    timings["materialize"] = round(time.perf_counter() - mark, 2)

    mark = time.perf_counter()
    catalog = Catalog.load(settings.data_dir)
    mirror = write_online_mirror(settings, FeastFeatureSource(store), catalog.users.index, catalog.shops.index)
    timings["mirror"] = round(time.perf_counter() - mark, 2)
    timings["total"] = round(time.perf_counter() - started, 2)

    result = {"rows": exported["rows"], "window": {"start": exported["start"], "end": exported["end"]},
              "applied": applied, "registry": str(registry_path(settings)), "mirror": mirror,
              "seconds": timings}
    log.info("features built in %.1fs: %s", timings["total"], result)
    return result


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'naviyam.features' has no attribute {name!r}")
