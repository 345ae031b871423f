"""Durable, idempotent log of interactions (what was shown) and feedback (what the child did).

These rows are the training data of the learning loop, so they are written with SQLite in WAL
mode and ``synchronous=FULL`` (a crash after commit loses nothing) and keyed by an id, so a
retried write is stored once.

``created_at`` is always the server's receipt time (naviyam.clock): the device's clock is kept
beside it (``client_time``) and never decides which training window an event falls in.
``traffic`` says who sent it (live children, simulated users, our own bench/soak/eval/demo/test
runs); the learning loop reads only the kinds in ``learning.traffic``.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from naviyam.schemas import FeedbackEvent, TrafficKind

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS interactions (
        request_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        payload TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS feedback (
        event_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        shop_id TEXT NOT NULL,
        feedback_type TEXT NOT NULL,
        satisfaction_score REAL,
        request_id TEXT,
        order_amount INTEGER,
        created_at TEXT NOT NULL
    )""",
)
# Columns added after the first release, created on open when an older store lacks them.
_ADDED_COLUMNS = {"feedback": (("client_time", "TEXT"), ("traffic", "TEXT NOT NULL DEFAULT 'live'"))}
FEEDBACK_COLUMNS = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                    "order_amount", "created_at", "client_time", "traffic")


_INSERT_FEEDBACK = (f"INSERT OR IGNORE INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(FEEDBACK_COLUMNS))})")


def traffic_of(payload: dict[str, Any]) -> str:
    """Who sent a logged turn; rows from before the labels are live, or simulated when they say so."""
    return payload.get("traffic") or ("simulated" if "simulated" in payload else "live")


def feedback_row(event: FeedbackEvent, received_at: datetime | None = None, traffic: TrafficKind = "live") -> tuple:
    received = received_at or datetime.now(timezone.utc)
    client = event.timestamp.isoformat() if event.timestamp else None
    return (event.event_id, event.user_id, event.shop_id, event.feedback_type, event.satisfaction_score,
            event.request_id, event.order_amount, received.isoformat(), client, traffic)


class EventStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns:
                if name not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        self._lock = threading.Lock()

    def log_interaction(self, request_id: str, user_id: str, created_at: str, payload: dict[str, Any]) -> bool:
        """Returns False when this request id was already logged (idempotent retry)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO interactions VALUES (?,?,?,?)",
                (request_id, user_id, created_at, json.dumps(payload, ensure_ascii=False, default=str)),
            )
        return cur.rowcount == 1

    def add_feedback(self, event: FeedbackEvent, received_at: datetime | None = None,
                     traffic: TrafficKind = "live") -> bool:
        """Returns False for a duplicate event id (stored once). ``received_at`` is the server's
        receipt time (now when not given), stored as the event time."""
        with self._lock:
            cur = self._conn.execute(_INSERT_FEEDBACK, feedback_row(event, received_at, traffic))
        return cur.rowcount == 1

    def add_many(self, interactions: list[tuple[str, str, str, dict[str, Any]]], feedback: list[tuple]) -> None:
        """Bulk writes in one transaction: interactions as (request_id, user_id, created_at, payload),
        feedback as rows of ``FEEDBACK_COLUMNS`` (``feedback_row``); ids already stored are skipped."""
        rows = [(r, u, c, json.dumps(p, ensure_ascii=False, default=str)) for r, u, c, p in interactions]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO interactions VALUES (?,?,?,?)", rows)
                self._conn.executemany(_INSERT_FEEDBACK, feedback)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def interactions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT payload FROM interactions ORDER BY created_at").fetchall()
        return [json.loads(r[0]) for r in rows]

    def feedback(self) -> list[FeedbackEvent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT event_id, user_id, shop_id, feedback_type, satisfaction_score, request_id, order_amount, "
                "created_at FROM feedback ORDER BY created_at"
            ).fetchall()
        keys = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                "order_amount", "timestamp")
        return [FeedbackEvent.model_validate(dict(zip(keys, r))) for r in rows]

    def close(self) -> None:
        self._conn.close()
