"""Where state lives: one schema, two backends, chosen by a DSN (``state.dsn``).

- **SQLite** (the embedded default: laptops, CI, ``make demo``): one file per store under
  ``state_dir`` (``memory.sqlite``, ``events.sqlite``), WAL and ``synchronous=FULL`` (a commit
  survives a crash), every write transaction ``BEGIN IMMEDIATE`` so writers queue instead of
  failing, reads (``reader()``) a deferred snapshot that blocks no writer.
- **PostgreSQL** (a cluster, where several replicas write at once): ``state.dsn`` =
  ``postgresql+psycopg://user:password@host:5432/naviyam`` (``postgresql://`` is read the same).

The stores: ``memory`` (conversation turns), ``events`` (interactions, feedback), ``loop`` (the
learning loop's state and retrain requests: naviyam.loop_state, ``loop.sqlite``) and ``registry``
(the model registry's pointers, version counter, reload generation and audit log: naviyam.registry;
only with a DSN, else the registry keeps them as files beside the versions).

Both are SQLAlchemy Core over the same ``Table`` definitions, so every query is written once.
The schema is versioned: ``MIGRATIONS`` are numbered and applied in order, once, recorded in
``naviyam_schema``; on PostgreSQL an advisory lock makes concurrent starts apply them once.
Files from before the numbering (tables without the later columns) are brought up to date by
the same steps.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    Column, Engine, Float, Integer, MetaData, String, Table, Text, create_engine, event, inspect, select, text,
)
from sqlalchemy.engine import Connection, make_url

log = logging.getLogger(__name__)

METADATA = MetaData()

TURNS = Table(
    "turns", METADATA,
    Column("conversation", Text, primary_key=True),
    Column("turn_no", Integer, primary_key=True, autoincrement=False),
    Column("user_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("intent", Text, nullable=False),
    Column("filters", Text, nullable=False),
    Column("shown", Text, nullable=False),
    Column("request_id", Text),
    Column("state", Text),
)
INTERACTIONS = Table(
    "interactions", METADATA,
    Column("request_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("payload", Text, nullable=False),
)
FEEDBACK = Table(
    "feedback", METADATA,
    Column("event_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("shop_id", Text, nullable=False),
    Column("feedback_type", Text, nullable=False),
    Column("satisfaction_score", Float),
    Column("request_id", Text),
    Column("order_amount", Integer),
    Column("created_at", Text, nullable=False),
    Column("client_time", Text),
    Column("traffic", Text, nullable=False, server_default="live"),
)
# The model registry (naviyam.registry) with a database: the versions' files stay on the models
# volume; what points at them, and what was done to them, is here.
REGISTRY_MODELS = Table(
    "registry_models", METADATA,
    Column("model", String(64), primary_key=True),
    Column("last_number", Integer, nullable=False),        # last version number handed out (never reused)
    Column("reload_generation", Integer, nullable=False),  # bumped by request_reload
    Column("reload", Text),                                # the last reload request (JSON)
    Column("updated_at", Text, nullable=False),
)
REGISTRY_POINTERS = Table(
    "registry_pointers", METADATA,
    Column("model", String(64), primary_key=True),
    Column("channel", String(20), primary_key=True),       # production | canary; no row: the channel is empty
    Column("version", String(20), nullable=False),
    Column("data", Text, nullable=False),                  # the pointer (JSON: version, previous, reason ...)
    Column("updated_at", Text, nullable=False),
)
REGISTRY_AUDIT = Table(
    "registry_audit", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("at", Text, nullable=False),
    Column("action", String(40), nullable=False),
    Column("data", Text, nullable=False),                  # the event's other fields (JSON)
)
# The learning loop (naviyam.loop_state).
LOOP_STATE = Table(
    "loop_state", METADATA,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),                 # JSON
    Column("updated_at", Text, nullable=False),
)
RETRAIN_REQUESTS = Table(
    "retrain_requests", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),          # requested | submitted | running | done
    Column("data", Text, nullable=False),                  # the request's other fields (JSON: the KFP run ...)
    Column("updated_at", Text, nullable=False),
)
SCHEMA_VERSIONS = Table(
    "naviyam_schema", METADATA,
    Column("store", String(40), primary_key=True),   # memory | events | loop | registry: one server database holds all
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", Text, nullable=False),
)
STORE_TABLES = {"memory": (TURNS,), "events": (INTERACTIONS, FEEDBACK), "loop": (LOOP_STATE, RETRAIN_REQUESTS),
                "registry": (REGISTRY_MODELS, REGISTRY_POINTERS, REGISTRY_AUDIT)}
_READ_ONLY = "naviyam_read_only"
_PG_MIGRATION_LOCK = 7_204_611  # any constant: the advisory lock every starting process takes
# First key of the two-key advisory locks writers take (the second: hashtext of what they write);
# two-key locks never collide with one-key ones (migrations, conversations in naviyam.memory).
LOCK_REGISTRY = 7_204_612   # one model's pointers
LOCK_LOOP = 7_204_613       # the learning loop's state


def _create_tables(conn: Connection, tables: tuple[Table, ...]) -> None:
    METADATA.create_all(conn, tables=list(tables), checkfirst=True)


def _added_columns(conn: Connection, tables: tuple[Table, ...]) -> None:
    """Columns added after the first release (request ids, the dialogue frame, feedback's device
    clock and traffic label): a store from before gets them, old rows NULL / 'live'."""
    later = {"turns": ("request_id", "state"), "feedback": ("client_time", "traffic")}
    for table in tables:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for name in later.get(table.name, ()):
            if name not in have:
                column = table.c[name]
                default = f" DEFAULT '{column.server_default.arg}' NOT NULL" if column.server_default is not None else ""
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} TEXT{default}"))


def _indexes(conn: Connection, tables: tuple[Table, ...]) -> None:
    if TURNS in tables:  # a retried NLG call must not store its turn twice
        conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS turns_request ON turns(request_id)"))
    if INTERACTIONS in tables:  # the learning loop's windows read by time
        conn.execute(text("CREATE INDEX IF NOT EXISTS interactions_created ON interactions(created_at)"))
    if FEEDBACK in tables:
        conn.execute(text("CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at)"))


def _state_indexes(conn: Connection, tables: tuple[Table, ...]) -> None:
    """The registry's audit log is read per model; the loop reads its pending retrain requests."""
    if REGISTRY_AUDIT in tables:
        conn.execute(text("CREATE INDEX IF NOT EXISTS registry_audit_model ON registry_audit(model, id)"))
    if RETRAIN_REQUESTS in tables:
        conn.execute(text("CREATE INDEX IF NOT EXISTS retrain_requests_status ON retrain_requests(status, id)"))


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection, tuple[Table, ...]], None]], ...] = (
    (1, "tables", _create_tables),
    (2, "columns added after the first release", _added_columns),
    (3, "indexes", _indexes),
    (4, "registry and learning-loop indexes", _state_indexes),
)


def is_dsn(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


def backend_of(target: str | Path) -> str:
    return "postgresql" if is_dsn(target) and str(target).startswith("postgresql") else "sqlite"


def make_engine(target: str | Path) -> Engine:
    """An engine for a SQLite file (a path) or a server (a DSN)."""
    if not is_dsn(target):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # transactions are ours (below), not pysqlite's
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=FULL")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # Writers take the write lock up front (they queue instead of failing half-way);
            # readers (``reader()``) a deferred snapshot, which in WAL mode blocks no writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    url = make_url(str(target))
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith("postgresql"):
        raise ValueError(f"state.dsn must be a PostgreSQL URL (postgresql+psycopg://...), got {url.drivername!r}")
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)


def migrate(engine: Engine, store: str) -> list[int]:
    """Applies the store's missing migrations in order; returns the versions applied now."""
    tables = STORE_TABLES[store]
    applied_now = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        SCHEMA_VERSIONS.create(conn, checkfirst=True)
        done = {r[0] for r in conn.execute(select(SCHEMA_VERSIONS.c.version).where(SCHEMA_VERSIONS.c.store == store))}
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            step(conn, tables)
            conn.execute(SCHEMA_VERSIONS.insert().values(
                store=store, version=version, name=name, applied_at=datetime.now(timezone.utc).isoformat()))
            applied_now.append(version)
    if applied_now:
        log.info("%s store (%s): applied migrations %s", store, engine.dialect.name, applied_now)
    return applied_now


def open_store(target: str | Path, store: str) -> Engine:
    engine = make_engine(target)
    migrate(engine, store)
    return engine


_SHARED: "OrderedDict[tuple[int, str], Engine]" = OrderedDict()
_SHARED_MIGRATED: set[tuple[int, str, str]] = set()
_SHARED_LOCK = threading.Lock()
SHARED_ENGINES = 8  # engines kept per process (each holds a small pool); the least recently used goes


def shared_store(target: str | Path, store: str) -> Engine:
    """``open_store`` for objects made often (a registry per pipeline step, a loop-state store per
    call): one engine per target and process, its store migrated once. A forked child makes its own
    (the parent's pooled connections are never used there)."""
    key = (os.getpid(), str(target))
    with _SHARED_LOCK:
        engine = _SHARED.get(key)
        if engine is None:
            engine = _SHARED[key] = make_engine(target)
            while len(_SHARED) > SHARED_ENGINES:
                (pid, old_target), old = _SHARED.popitem(last=False)
                _SHARED_MIGRATED.difference_update({m for m in _SHARED_MIGRATED if m[:2] == (pid, old_target)})
                old.dispose()
        _SHARED.move_to_end(key)
        if (*key, store) not in _SHARED_MIGRATED:
            migrate(engine, store)
            _SHARED_MIGRATED.add((*key, store))
    return engine


def _forget_shared_engines() -> None:
    for engine in _SHARED.values():
        engine.dispose(close=False)  # the parent's connections: left to the parent
    _SHARED.clear()
    _SHARED_MIGRATED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shared_engines)


def serialise_writers(conn: Connection, namespace: int, key: str) -> None:
    """Queues this transaction behind any other writing ``key`` (PostgreSQL: a transaction-level
    advisory lock, released at commit or rollback). SQLite needs nothing: every transaction is
    ``BEGIN IMMEDIATE``, which already serialises all writers of the file."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:n, hashtext(:k))"), {"n": namespace, "k": key})


def reader(engine: Engine) -> Engine:
    """The engine for one-statement reads polled often: on PostgreSQL without a transaction around
    them (no BEGIN / ROLLBACK round trips); on SQLite as it is."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{_READ_ONLY: True})


def store_exists(target: str | Path) -> bool:
    """A server store always exists (its schema is made on open); a SQLite file only once written."""
    return is_dsn(target) or Path(target).exists()


def memory_target(settings) -> str | Path:
    return settings.state.dsn or settings.state_dir / "memory.sqlite"


def events_target(settings) -> str | Path:
    return settings.state.dsn or settings.state_dir / "events.sqlite"


def loop_target(settings) -> str | Path:
    return settings.state.dsn or settings.state_dir / "loop.sqlite"


def registry_target(settings) -> str | None:
    """The registry's pointers in the database only with a DSN; else as files (naviyam.registry)."""
    return settings.state.dsn or None


def insert_ignoring_duplicates(engine: Engine, table: Table, returning: bool = False):
    """``INSERT ... ON CONFLICT DO NOTHING`` in the engine's dialect (a retried write is stored
    once). With ``returning`` the statement returns the primary key of a row it stored, which is
    how a caller tells stored from duplicate (psycopg reports no rowcount for it)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing()
    return stmt.returning(*table.primary_key.columns) if returning else stmt


def insert_or_update(engine: Engine | Connection, table: Table, update: tuple[str, ...]):
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` of the ``update`` columns (an upsert)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key.columns],
                                      set_={name: stmt.excluded[name] for name in update})
