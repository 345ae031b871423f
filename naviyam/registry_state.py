"""Where the registry's pointers live: JSON files beside the versions (the default), or the
state database (``state.dsn``; naviyam.storage).

Both backends give ``naviyam.registry.ModelRegistry`` the same reads (pointer, current version,
reload generation, audit log) and one ``writing(model)`` context in which a switch and its audit
row are committed together: files under ``fcntl.flock`` with pointers replaced by ``os.replace``;
the database in one transaction under a per-model lock (PostgreSQL advisory lock, SQLite
``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from naviyam import storage

log = logging.getLogger(__name__)
CHANNELS: tuple[str, ...] = ("production", "canary")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


class _FileState:
    """Pointers, counter, reload generation and audit log as files beside the versions."""

    def __init__(self, registry: "ModelRegistry") -> None:
        self.registry = registry
        # (model, channel) -> ((inode, mtime_ns, size), version): current_version() re-reads a
        # pointer only when the file was replaced.
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int], str | None]] = {}

    def pointer(self, model: str, channel: str) -> dict | None:
        data = _read_json(self.registry._pointer(model, channel))
        return data if data and data.get("version") else None

    def current_version(self, model: str, channel: str) -> str | None:
        return self._cached_field(model, channel, self.registry._pointer(model, channel), "version")

    def reload_generation(self, model: str) -> int:
        path = self.registry.model_root(model) / "reload.json"
        return int(self._cached_field(model, "reload", path, "generation") or 0)

    def serving_state(self, model: str, channel: str) -> tuple[str | None, int]:
        generation = self.reload_generation(model)
        return self.current_version(model, channel), generation

    def _cached_field(self, model: str, key: str, path: Path, field_name: str) -> Any:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._cache.pop((model, key), None)
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._cache.get((model, key))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        data = _read_json(path)
        value = data.get(field_name) if data else None
        self._cache[(model, key)] = (stamp, value)
        return value

    def audit(self, model: str) -> list[dict]:
        try:
            lines = (self.registry.model_root(model) / "events.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a line being appended right now
                events.append(json.loads(line))
        return [e for e in events if isinstance(e, dict)]

    @contextlib.contextmanager
    def writing(self, model: str) -> Iterator["_FileWrite"]:
        root = self.registry.model_root(model)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield _FileWrite(self, model, root)
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _FileWrite:
    """One writer's view of a model while it holds the model's ``.lock``."""

    def __init__(self, state: _FileState, model: str, root: Path) -> None:
        self.state, self.model, self.root = state, model, root

    def pointer(self, channel: str) -> dict | None:
        return self.state.pointer(self.model, channel)

    def current_version(self, channel: str) -> str | None:
        return self.state.current_version(self.model, channel)

    def set_pointer(self, channel: str, data: dict) -> None:
        _write_json_atomic(self.state.registry._pointer(self.model, channel), data)

    def clear(self, channel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.state.registry._pointer(self.model, channel))
        self.state._cache.pop((self.model, channel), None)

    def last_number(self) -> int:
        return int((_read_json(self.root / "counter.json") or {}).get("last", 0))

    def set_last_number(self, number: int) -> None:
        _write_json_atomic(self.root / "counter.json", {"last": number})
        _fsync_dir(self.root)

    def reload_generation(self) -> int:
        return int((_read_json(self.root / "reload.json") or {}).get("generation", 0))

    def set_reload(self, data: dict) -> None:
        _write_json_atomic(self.root / "reload.json", data)

    def audit(self, action: str, **fields: Any) -> None:
        line = json.dumps({"at": _now(), "action": action, **fields}, ensure_ascii=False, default=str)
        with open(self.root / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class _DatabaseState:
    """Pointers, counter, reload generation and audit log in the ``registry`` store (naviyam.storage)."""

    def __init__(self, registry: "ModelRegistry", target: str | Path) -> None:
        self.registry, self.target = registry, target
        storage.shared_store(target, "registry")
        self._import_file_registry()

    @property
    def engine(self):
        return storage.shared_store(self.target, "registry")  # per process: a fork gets its own

    def _read(self, query) -> Any:
        with storage.reader(self.engine).connect() as conn:
            return conn.execute(query).first()

    def pointer(self, model: str, channel: str) -> dict | None:
        p = storage.REGISTRY_POINTERS.c
        row = self._read(select(p.data).where(p.model == model, p.channel == channel))
        return json.loads(row.data) if row else None

    def current_version(self, model: str, channel: str) -> str | None:
        p = storage.REGISTRY_POINTERS.c
        row = self._read(select(p.version).where(p.model == model, p.channel == channel))
        return row.version if row else None

    def reload_generation(self, model: str) -> int:
        m = storage.REGISTRY_MODELS.c
        row = self._read(select(m.reload_generation).where(m.model == model))
        return int(row.reload_generation) if row else 0

    def serving_state(self, model: str, channel: str) -> tuple[str | None, int]:
        """Both in one statement (two primary-key lookups): what a serving process polls."""
        p, m = storage.REGISTRY_POINTERS.c, storage.REGISTRY_MODELS.c
        version = select(p.version).where(p.model == model, p.channel == channel).scalar_subquery()
        generation = select(m.reload_generation).where(m.model == model).scalar_subquery()
        row = self._read(select(version.label("version"), generation.label("generation")))
        return row.version, int(row.generation or 0)

    def audit(self, model: str) -> list[dict]:
        a = storage.REGISTRY_AUDIT.c
        with storage.reader(self.engine).connect() as conn:
            rows = conn.execute(select(a.at, a.action, a.data).where(a.model == model).order_by(a.id)).all()
        return [{"at": at, "action": action, **json.loads(data)} for at, action, data in rows]

    @contextlib.contextmanager
    def writing(self, model: str) -> Iterator["_DatabaseWrite"]:
        with self.engine.begin() as conn:
            storage.serialise_writers(conn, storage.LOCK_REGISTRY, model)
            conn.execute(storage.insert_ignoring_duplicates(conn, storage.REGISTRY_MODELS),
                         {"model": model, "last_number": 0, "reload_generation": 0, "updated_at": _now()})
            yield _DatabaseWrite(conn, model)

    def _import_file_registry(self) -> None:
        """Copies in what a file registry under ``root`` recorded, for models the database does not
        know yet (once per process and root)."""
        key = (os.getpid(), str(self.target), str(self.registry.root))
        if key in _IMPORTED:
            return
        m = storage.REGISTRY_MODELS.c
        for model in self.registry.models():
            root = self.registry.model_root(model)
            files = [root / f"{name}.json" for name in (*CHANNELS, "counter", "reload")] + [root / "events.jsonl"]
            if not any(f.exists() for f in files):
                continue
            with self.engine.begin() as conn:
                storage.serialise_writers(conn, storage.LOCK_REGISTRY, model)
                if conn.execute(select(m.model).where(m.model == model)).first():
                    continue
                reload = _read_json(root / "reload.json") or {}
                conn.execute(storage.REGISTRY_MODELS.insert().values(
                    model=model, last_number=int((_read_json(root / "counter.json") or {}).get("last", 0)),
                    reload_generation=int(reload.get("generation", 0)),
                    reload=json.dumps(reload, ensure_ascii=False, default=str) if reload else None,
                    updated_at=_now()))
                events = [dict(e) for e in _FileState(self.registry).audit(model)]
                if events:
                    conn.execute(storage.REGISTRY_AUDIT.insert(), [
                        {"model": model, "at": str(e.pop("at", "")), "action": str(e.pop("action", "")),
                         "data": json.dumps(e, ensure_ascii=False, default=str)} for e in events])
                write = _DatabaseWrite(conn, model)
                for channel in CHANNELS:
                    data = _read_json(root / f"{channel}.json")
                    if data and data.get("version"):
                        write.set_pointer(channel, data)
                write.audit("import_files", source=str(root))
            log.info("registry database: imported the file pointers of %s from %s", model, root)
        _IMPORTED.add(key)


_IMPORTED: set[tuple[int, str, str]] = set()


class _DatabaseWrite:
    """One writer's view of a model inside its transaction (advisory lock held on PostgreSQL)."""

    def __init__(self, conn: Any, model: str) -> None:
        self.conn, self.model = conn, model
        self._p, self._m = storage.REGISTRY_POINTERS, storage.REGISTRY_MODELS

    def pointer(self, channel: str) -> dict | None:
        p = self._p.c
        row = self.conn.execute(select(p.data).where(p.model == self.model, p.channel == channel)).first()
        return json.loads(row.data) if row else None

    def current_version(self, channel: str) -> str | None:
        return (self.pointer(channel) or {}).get("version")

    def set_pointer(self, channel: str, data: dict) -> None:
        row = {"model": self.model, "channel": channel, "version": data["version"],
               "data": json.dumps(data, ensure_ascii=False, default=str), "updated_at": _now()}
        self.conn.execute(storage.insert_or_update(self.conn, self._p, ("version", "data", "updated_at")), row)

    def clear(self, channel: str) -> None:
        p = self._p.c
        self.conn.execute(delete(self._p).where(p.model == self.model, p.channel == channel))

    def _models_row(self):
        m = self._m.c
        return self.conn.execute(select(m.last_number, m.reload_generation).where(m.model == self.model)).one()

    def last_number(self) -> int:
        return int(self._models_row().last_number)

    def set_last_number(self, number: int) -> None:
        self.conn.execute(update(self._m).where(self._m.c.model == self.model)
                          .values(last_number=number, updated_at=_now()))

    def reload_generation(self) -> int:
        return int(self._models_row().reload_generation)

    def set_reload(self, data: dict) -> None:
        self.conn.execute(update(self._m).where(self._m.c.model == self.model).values(
            reload_generation=int(data["generation"]), reload=json.dumps(data, ensure_ascii=False, default=str),
            updated_at=_now()))

    def audit(self, action: str, at: str | None = None, **fields: Any) -> None:
        self.conn.execute(storage.REGISTRY_AUDIT.insert().values(
            model=self.model, at=at or _now(), action=action,
            data=json.dumps(fields, ensure_ascii=False, default=str)))
