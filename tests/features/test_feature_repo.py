"""The feature repo applies, materialises into SQLite, rebuilds idempotently; the cluster profile."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

from naviyam.features.export import TIMESTAMP, TABLES, source_path
from naviyam.features.store import (
    PROFILES, RANKER_SERVICE, TRAINING_SERVICE, feature_repo_dir, feature_store, online_path, registry_path,
    repo_objects,
)
from naviyam.ranking.features import SHOP_FEATURE_COLUMNS, USER_FEATURE_COLUMNS

VIEWS = {"user_profile", "user_behaviour", "user_shop_history", "shop_profile", "shop_popularity"}


def test_repo_applies(built, store):
    assert {v.name for v in store.list_feature_views()} == VIEWS
    assert {v.name for v in store.list_on_demand_feature_views()} == {"request_context"}
    assert {e.name for e in store.list_entities()} >= {"user", "shop"}
    assert {e.join_key for e in store.list_entities() if e.name in ("user", "shop")} == {"user_id", "shop_id"}
    assert {s.name for s in store.list_feature_services()} >= {RANKER_SERVICE, TRAINING_SERVICE}
    assert store.config.project == "naviyam"
    assert store.config.entity_key_serialization_version == 3
    assert store.config.online_store.type == "sqlite"
    assert registry_path(built.settings).exists() and online_path(built.settings).exists()
    assert registry_path(built.settings).parent == Path(built.settings.state_dir).resolve()


def test_ranker_service_lists_every_ranker_column(store):
    service = store.get_feature_service(RANKER_SERVICE)
    served = {f.name for p in service.feature_view_projections for f in p.features}
    assert set(USER_FEATURE_COLUMNS) | set(SHOP_FEATURE_COLUMNS) <= served


def test_definitions_are_typed_and_declarative():
    objects = repo_objects()
    views = {o.name: o for o in objects if type(o).__name__ == "FeatureView"}
    assert set(views) == VIEWS
    fields = {f.name: str(f.dtype) for f in views["user_profile"].schema}
    assert fields["preferred_categories"] == "Array(String)" and fields["age"] == "Int64"
    assert {str(f.dtype) for f in views["user_behaviour"].features if f.name.endswith("_shops")} == {"Array(String)"}
    source = (feature_repo_dir() / "definitions.py").read_text(encoding="utf-8")
    assert "def " not in source  # the udf lives in naviyam.features.transforms


def test_store_works_from_any_working_directory(built, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = feature_store(built.settings)
    rows = store.get_online_features(features=["shop_profile:category"],
                                     entity_rows=[{"shop_id": built.catalog.shops.index[0]}]).to_dict()
    assert rows["category"] == [built.catalog.shops["category"].iloc[0]]
    assert not list(tmp_path.iterdir())  # nothing written to the working directory


def test_sources_are_as_of_day_rows(built):
    for table in TABLES:
        frame = pd.read_parquet(source_path(built.settings, table))
        assert {TIMESTAMP, "created"} <= set(frame.columns), table
        assert str(frame[TIMESTAMP].dt.tz) == "UTC"
    daily = pd.read_parquet(source_path(built.settings, "shop_popularity"))
    assert (daily[TIMESTAMP] == daily[TIMESTAMP].dt.floor("D")).all()
    n_days = daily[TIMESTAMP].nunique()
    assert len(daily) == n_days * len(built.catalog.shops)
    behaviour = pd.read_parquet(source_path(built.settings, "user_behaviour"))
    assert behaviour["user_id"].nunique() == len(built.catalog.users)
    assert len(behaviour) < n_days * len(built.catalog.users)  # a row only when something changed
    assert built.result["rows"]["shop_popularity"] == len(daily)


def test_materialize_fills_the_sqlite_online_store(built):
    with sqlite3.connect(online_path(built.settings)) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        counts = {t: db.execute(f'select count(distinct entity_key) from "{t}"').fetchone()[0] for t in tables}
    by_view = {view: n for table, n in counts.items() for view in VIEWS if table == f"naviyam_{view}"}
    assert by_view["user_behaviour"] == len(built.catalog.users)
    assert by_view["user_profile"] == len(built.catalog.users)
    assert by_view["shop_profile"] == by_view["shop_popularity"] == len(built.catalog.shops)
    assert by_view["user_shop_history"] > 0


def test_build_is_idempotent(built):
    from naviyam.features import build_features

    again = build_features(built.settings)
    assert again["rows"] == built.result["rows"]
    assert again["window"] == built.result["window"]
    assert again["applied"]["deleted"] == 0
    assert set(again["seconds"]) >= {"export", "apply", "materialize", "total"}


def test_cluster_profile_names_a_redis_online_store_and_the_same_repo(monkeypatch):
    monkeypatch.setenv("REDIS_CONNECTION_STRING", "redis-master:6379,password=s3cret")
    repo = feature_repo_dir()
    local = yaml.safe_load((repo / PROFILES["local"]).read_text(encoding="utf-8"))
    cluster = yaml.safe_load(os.path.expandvars((repo / PROFILES["cluster"]).read_text(encoding="utf-8")))
    assert cluster["online_store"]["type"] == "redis"
    assert cluster["online_store"]["connection_string"] == "redis-master:6379,password=s3cret"
    for key in ("project", "provider", "registry", "offline_store", "entity_key_serialization_version"):
        assert cluster[key] == local[key], key
    assert local["online_store"] == {"type": "sqlite", "path": "state/feast_online.db"}


def test_cluster_profile_validates_with_feast(built, monkeypatch):
    pytest.importorskip("redis", reason="the redis client (feast[redis]) is only in the serving image")
    from naviyam.features.store import repo_config

    monkeypatch.setenv("REDIS_CONNECTION_STRING", "localhost:6379")
    config = repo_config(built.settings, profile="cluster")
    assert config.online_store.type == "redis"
