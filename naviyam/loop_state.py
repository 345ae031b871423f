"""The learning loop's own state: what it decided last (``last_retrain_until``, ``drift_handled_until``,
``last_canary`` ...) and the retrains the drift monitor asked for, with their status
(requested -> running -> done; ``submitted`` when a KFP host took it).

One store over naviyam.storage (store ``loop``): a key/value table and a table of requests, in
``<home>/state/loop.sqlite`` or, with ``state.dsn``, in the PostgreSQL database (no file). Every
change is one transaction, writers queued (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory
lock), so ``update`` of some keys never loses another writer's keys and a reader sees a change
whole or not at all.

Homes from before kept this in ``state/learning_loop.json`` and ``state/retrain_requests.jsonl``:
the first store opened over such a home takes them in (keys the store does not have yet, every
request) and renames them ``*.imported``, in the same transaction.
"""
from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from naviyam.storage import (
    LOCK_LOOP, LOOP_STATE, RETRAIN_REQUESTS, insert_ignoring_duplicates, insert_or_update, loop_target,
    serialise_writers, shared_store, store_exists,
)

LEGACY_STATE_FILE = "learning_loop.json"
LEGACY_REQUESTS_FILE = "retrain_requests.jsonl"
REQUEST_COLUMNS = ("at", "reason", "status")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class LoopState:
    def __init__(self, target: str | Path, legacy_dir: Path | None = None) -> None:
        self.target = target
        shared_store(target, "loop")
        if legacy_dir is not None:
            self._import_legacy(Path(legacy_dir))

    @classmethod
    def from_settings(cls, settings: Any, create: bool = True) -> "LoopState | None":
        """The home's store; with ``create=False`` None when nothing was ever recorded (a reader
        such as /metrics does not make an empty SQLite file)."""
        target = loop_target(settings)
        legacy = [settings.state_dir / name for name in (LEGACY_STATE_FILE, LEGACY_REQUESTS_FILE)]
        if not create and not store_exists(target) and not any(p.exists() for p in legacy):
            return None
        return cls(target, legacy_dir=settings.state_dir)

    @property
    def _engine(self) -> Engine:
        return shared_store(self.target, "loop")  # per process: a forked child never shares a pool

    @contextlib.contextmanager
    def _writing(self):
        with self._engine.begin() as conn:
            serialise_writers(conn, LOCK_LOOP, "loop")
            yield conn

    # ---------------------------------------------------------------------------- loop state
    def read(self) -> dict:
        with self._engine.connect() as conn:
            return self._read(conn)

    @staticmethod
    def _read(conn: Connection) -> dict:
        rows = conn.execute(select(LOOP_STATE.c.key, LOOP_STATE.c.value).order_by(LOOP_STATE.c.key))
        return {key: json.loads(value) for key, value in rows}

    def update(self, **fields: Any) -> dict:
        """Sets ``fields`` (other keys stay) in one transaction; returns the whole state after it."""
        with self._writing() as conn:
            self._set(conn, fields)
            return self._read(conn)

    @staticmethod
    def _set(conn: Connection, fields: dict) -> None:
        if fields:
            now = _now()
            conn.execute(insert_or_update(conn, LOOP_STATE, ("value", "updated_at")),
                         [{"key": k, "value": _dumps(v), "updated_at": now} for k, v in fields.items()])

    # ---------------------------------------------------------------------------- retrain requests
    def add_request(self, entry: dict, **state: Any) -> dict:
        """Records a request: ``at``, ``reason``, ``status`` (requested unless given) and any other
        fields (kept as they are, e.g. the KFP run); ``state`` keys are set in the same transaction
        (e.g. which turns the request handles). Returns the entry as stored."""
        entry = {"at": entry.get("at") or _now(), "reason": entry.get("reason", ""),
                 "status": entry.get("status") or "requested",
                 **{k: v for k, v in entry.items() if k not in REQUEST_COLUMNS}}
        with self._writing() as conn:
            conn.execute(RETRAIN_REQUESTS.insert().values(**self._row(entry)))
            self._set(conn, state)
        return json.loads(_dumps(entry))

    @staticmethod
    def _row(entry: dict) -> dict:
        return {"at": str(entry["at"]), "reason": str(entry["reason"]), "status": str(entry["status"]),
                "data": _dumps({k: v for k, v in entry.items() if k not in REQUEST_COLUMNS}),
                "updated_at": _now()}

    def requests(self, status: str | None = None) -> list[dict]:
        """Requests, oldest first (only those in ``status`` when given)."""
        r = RETRAIN_REQUESTS.c
        query = select(r.at, r.reason, r.status, r.data).order_by(r.id)
        if status is not None:
            query = query.where(r.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{"at": at, "reason": reason, "status": st, **json.loads(data)} for at, reason, st, data in rows]

    def mark_requests(self, status: str, current: str = "requested") -> int:
        """Moves every request in ``current`` to ``status`` at once; how many moved."""
        r = RETRAIN_REQUESTS.c
        with self._writing() as conn:
            return conn.execute(update(RETRAIN_REQUESTS).where(r.status == current)
                                .values(status=status, updated_at=_now())).rowcount

    # ---------------------------------------------------------------------------- older homes
    def _import_legacy(self, state_dir: Path) -> None:
        state_file, requests_file = state_dir / LEGACY_STATE_FILE, state_dir / LEGACY_REQUESTS_FILE
        if not (state_file.exists() or requests_file.exists()):
            return
        renamed: list[tuple[Path, Path]] = []
        try:
            with self._writing() as conn:
                # Under the writers' lock: a second process importing at once finds the files gone.
                if state_file.exists():
                    state = json.loads(state_file.read_text(encoding="utf-8") or "{}")
                    if isinstance(state, dict) and state:
                        conn.execute(insert_ignoring_duplicates(conn, LOOP_STATE),
                                     [{"key": k, "value": _dumps(v), "updated_at": _now()} for k, v in state.items()])
                    renamed.append(_set_aside(state_file))
                if requests_file.exists():
                    rows = []
                    for line in requests_file.read_text(encoding="utf-8").splitlines():
                        with contextlib.suppress(ValueError):
                            row = json.loads(line)
                            if isinstance(row, dict):
                                rows.append(self._row({**row, "at": row.get("at") or "", "reason": row.get("reason", ""),
                                                       "status": row.get("status") or "requested"}))
                    if rows:
                        conn.execute(RETRAIN_REQUESTS.insert(), rows)
                    renamed.append(_set_aside(requests_file))
        except BaseException:
            for original, aside in renamed:  # not imported: the files stay where they were
                with contextlib.suppress(OSError):
                    os.replace(aside, original)
            raise


def _set_aside(path: Path) -> tuple[Path, Path]:
    aside = path.with_name(path.name + ".imported")
    os.replace(path, aside)
    return path, aside
