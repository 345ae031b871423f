"""Where state lives: one schema, two backends, chosen by a DSN (``state.dsn``).

- **SQLite** (the embedded default: laptops, CI, ``make demo``): one file per store under
  ``state_dir`` (``memory.sqlite``, ``events.sqlite``), WAL and ``synchronous=FULL`` (a commit
  survives a crash), every transaction ``BEGIN IMMEDIATE`` so writers queue instead of failing.
- **PostgreSQL** (a cluster, where several replicas write at once): ``state.dsn`` =
  ``postgresql+psycopg://user:password@host:5432/naviyam`` (``postgresql://`` is read the same).

Both are SQLAlchemy Core over the same ``Table`` definitions, so every query is written once.
The schema is versioned: ``MIGRATIONS`` are numbered and applied in order, once, recorded in
``naviyam_schema``; on PostgreSQL an advisory lock makes concurrent starts apply them once.
Files from before the numbering (tables without the later columns) are brought up to date by
the same steps.
"""
from __future__ import annotations

import logging
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
SCHEMA_VERSIONS = Table(
    "naviyam_schema", METADATA,
    Column("store", String(40), primary_key=True),   # memory | events: one server database holds both
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", Text, nullable=False),
)
STORE_TABLES = {"memory": (TURNS,), "events": (INTERACTIONS, FEEDBACK)}
_PG_MIGRATION_LOCK = 7_204_611  # any constant: the advisory lock every starting process takes


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


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection, tuple[Table, ...]], None]], ...] = (
    (1, "tables", _create_tables),
    (2, "columns added after the first release", _added_columns),
    (3, "indexes", _indexes),
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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


def store_exists(target: str | Path) -> bool:
    """A server store always exists (its schema is made on open); a SQLite file only once written."""
    return is_dsn(target) or Path(target).exists()


def memory_target(settings) -> str | Path:
    return settings.state.dsn or settings.state_dir / "memory.sqlite"


def events_target(settings) -> str | Path:
    return settings.state.dsn or settings.state_dir / "events.sqlite"


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
