"""Durable, idempotent log of interactions (what was shown) and feedback (what the child did).

These rows are the training data of the learning loop, so they are written with SQLite in WAL
mode and ``synchronous=FULL`` (a crash after commit loses nothing) and keyed by an id, so a
retried write is stored once.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from naviyam.schemas import FeedbackEvent

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


class EventStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)
        self._lock = threading.Lock()

    def log_interaction(self, request_id: str, user_id: str, created_at: str, payload: dict[str, Any]) -> bool:
        """Returns False when this request id was already logged (idempotent retry)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO interactions VALUES (?,?,?,?)",
                (request_id, user_id, created_at, json.dumps(payload, ensure_ascii=False, default=str)),
            )
        return cur.rowcount == 1

    def add_feedback(self, event: FeedbackEvent) -> bool:
        """Returns False for a duplicate event id (stored once)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?,?)",
                (event.event_id, event.user_id, event.shop_id, event.feedback_type, event.satisfaction_score,
                 event.request_id, event.order_amount, event.timestamp.isoformat()),
            )
        return cur.rowcount == 1

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
