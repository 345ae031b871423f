"""Durable, idempotent log of interactions (what was shown) and feedback (what the child did).

These rows are the training data of the learning loop, so each is committed before it is
acknowledged (SQLite: WAL and ``synchronous=FULL``; PostgreSQL: its own durable commit, see
naviyam.storage) and keyed by an id, so a retried write is stored once.

``created_at`` is always the server's receipt time (naviyam.clock): the device's clock is kept
beside it (``client_time``) and never decides which training window an event falls in.
``traffic`` says who sent it (live children, simulated users, our own bench/soak/eval/demo/test
runs); the learning loop reads only the kinds in ``learning.traffic``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from naviyam.schemas import FeedbackEvent, TrafficKind
from naviyam.storage import FEEDBACK, INTERACTIONS, insert_ignoring_duplicates, open_store, reader

FEEDBACK_COLUMNS = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                    "order_amount", "created_at", "client_time", "traffic")


def traffic_of(payload: dict[str, Any]) -> str:
    """Who sent a logged turn; rows from before the labels are live, or simulated when they say so."""
    return payload.get("traffic") or ("simulated" if "simulated" in payload else "live")


def feedback_row(event: FeedbackEvent, received_at: datetime | None = None, traffic: TrafficKind = "live") -> tuple:
    received = received_at or datetime.now(timezone.utc)
    client = event.timestamp.isoformat() if event.timestamp else None
    return (event.event_id, event.user_id, event.shop_id, event.feedback_type, event.satisfaction_score,
            event.request_id, event.order_amount, received.isoformat(), client, traffic)


class EventStore:
    """The interaction and feedback log in SQLite (a path) or PostgreSQL (a DSN): naviyam.storage."""

    def __init__(self, target: Path | str):
        self._engine = open_store(target, "events")
        self._insert_interaction = insert_ignoring_duplicates(self._engine, INTERACTIONS, returning=True)
        self._insert_feedback = insert_ignoring_duplicates(self._engine, FEEDBACK, returning=True)
        self._bulk_interactions = insert_ignoring_duplicates(self._engine, INTERACTIONS)
        self._bulk_feedback = insert_ignoring_duplicates(self._engine, FEEDBACK)

    def log_interaction(self, request_id: str, user_id: str, created_at: str, payload: dict[str, Any]) -> bool:
        """Returns False when this request id was already logged (idempotent retry)."""
        row = {"request_id": request_id, "user_id": user_id, "created_at": created_at,
               "payload": json.dumps(payload, ensure_ascii=False, default=str)}
        with self._engine.begin() as conn:
            return conn.execute(self._insert_interaction, row).first() is not None

    def add_feedback(self, event: FeedbackEvent, received_at: datetime | None = None,
                     traffic: TrafficKind = "live") -> bool:
        """Returns False for a duplicate event id (stored once). ``received_at`` is the server's
        receipt time (now when not given), stored as the event time."""
        with self._engine.begin() as conn:
            row = dict(zip(FEEDBACK_COLUMNS, feedback_row(event, received_at, traffic)))
            return conn.execute(self._insert_feedback, row).first() is not None

    def add_many(self, interactions: list[tuple[str, str, str, dict[str, Any]]], feedback: list[tuple]) -> None:
        """Bulk writes in one transaction: interactions as (request_id, user_id, created_at, payload),
        feedback as rows of ``FEEDBACK_COLUMNS`` (``feedback_row``); ids already stored are skipped."""
        rows = [{"request_id": r, "user_id": u, "created_at": c,
                 "payload": json.dumps(p, ensure_ascii=False, default=str)} for r, u, c, p in interactions]
        with self._engine.begin() as conn:
            if rows:
                conn.execute(self._bulk_interactions, rows)
            if feedback:
                conn.execute(self._bulk_feedback, [dict(zip(FEEDBACK_COLUMNS, f)) for f in feedback])

    def interaction_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """(created_at, payload) of every logged turn, oldest first."""
        with reader(self._engine).connect() as conn:
            rows = conn.execute(select(INTERACTIONS.c.created_at, INTERACTIONS.c.payload)
                                .order_by(INTERACTIONS.c.created_at)).all()
        return [(created, json.loads(payload)) for created, payload in rows]

    def feedback_rows(self, columns: tuple[str, ...] = FEEDBACK_COLUMNS) -> list[tuple]:
        """Rows of ``columns`` (default: all of ``FEEDBACK_COLUMNS``), oldest first."""
        with reader(self._engine).connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(*(FEEDBACK.c[name] for name in columns)).order_by(FEEDBACK.c.created_at)).all()]

    def interactions(self) -> list[dict[str, Any]]:
        return [payload for _, payload in self.interaction_rows()]

    def feedback(self) -> list[FeedbackEvent]:
        # The stored receipt time is the event's timestamp.
        fields = ("event_id", "user_id", "shop_id", "feedback_type", "satisfaction_score", "request_id",
                  "order_amount")
        return [FeedbackEvent.model_validate({**dict(zip(fields, r)), "timestamp": r[-1]})
                for r in self.feedback_rows((*fields, "created_at"))]

    def close(self) -> None:
        self._engine.dispose()
