"""Versioned model store with atomically switched ``production`` / ``canary`` pointers.

Layout under ``settings.models_dir / "registry"``::

    <model>/                     e.g. ranker (a Wide&Deep model dir), lora (a LoRA adapter dir)
        v0001/ v0002/ ...        one immutable copy of the registered directory each
            registry.json        version metadata: metrics, source, created_at, notes
        production.json          {"version", "previous": [older productions, newest first], ...}
        canary.json              {"version", ...}; absent when no canary runs
        reload.json              {"generation", ...}: bumped by ``request_reload``; serving processes
                                 load their model again (same version included) when it changes
        counter.json             last version number handed out (never reused after a prune)
        events.jsonl             audit log: register / promote / canary / rollback / prune
        .lock                    fcntl lock taken by every writer

Readers never lock. Pointers are replaced with ``os.replace`` (a reader sees the old or the new
file, never half of one) and a version directory appears with one ``rename``, so a serving
process that calls ``resolve()`` while a pipeline promotes or rolls back always gets a complete,
existing model directory. Writers (register, promote, start/stop canary, rollback, prune) hold an
exclusive ``fcntl.flock``, which serialises them across threads and processes.

``keep_last`` versions are kept; older ones are deleted unless a pointer (production, canary,
or the rollback history) still refers to them.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from naviyam.config import RegistrySettings

log = logging.getLogger(__name__)

Channel = Literal["production", "canary"]
CHANNELS: tuple[str, ...] = ("production", "canary")
VERSION_META = "registry.json"
VERSION_RE = re.compile(r"^v(\d{4,})$")
MODEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
HISTORY_LIMIT = 20  # previous productions remembered for rollback




def registry_settings(settings: Any) -> RegistrySettings:
    value = getattr(settings, "registry", None)
    if value is None:
        return RegistrySettings()
    if isinstance(value, RegistrySettings):
        return value
    return RegistrySettings.model_validate(value if isinstance(value, dict) else value.model_dump())


class RegistryError(RuntimeError):
    pass


class NoVersionError(RegistryError, LookupError):
    """The channel points at no version (nothing promoted yet, no canary running)."""


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


class ModelRegistry:
    def __init__(self, root: Path, keep_last: int = 5) -> None:
        if keep_last < 1:
            raise ValueError("keep_last must be >= 1")
        self.root = Path(root)
        self.keep_last = keep_last
        # (model, channel) -> ((inode, mtime_ns, size), version): current_version() re-reads a
        # pointer only when the file was replaced.
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int], str | None]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> "ModelRegistry":
        return cls(Path(settings.models_dir) / "registry", registry_settings(settings).keep_last)

    # ----------------------------------------------------------------------------- paths
    def model_root(self, model: str) -> Path:
        if not MODEL_RE.match(model):
            raise ValueError(f"bad model name {model!r}")
        return self.root / model

    def version_dir(self, model: str, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise ValueError(f"bad version {version!r}")
        return self.model_root(model) / version

    def _pointer(self, model: str, channel: str) -> Path:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        return self.model_root(model) / f"{channel}.json"

    @contextlib.contextmanager
    def _locked(self, model: str) -> Iterator[Path]:
        root = self.model_root(model)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield root
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _audit(self, model: str, action: str, **fields: Any) -> None:
        line = json.dumps({"at": _now(), "action": action, **fields}, ensure_ascii=False, default=str)
        with open(self.model_root(model) / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    # ----------------------------------------------------------------------------- reads
    def models(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and MODEL_RE.match(p.name))

    def versions(self, model: str) -> list[str]:
        """Registered versions, oldest first."""
        root = self.model_root(model)
        if not root.exists():
            return []
        found = [p.name for p in root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def metadata(self, model: str, version: str) -> dict:
        meta = _read_json(self.version_dir(model, version) / VERSION_META)
        if meta is None:
            raise NoVersionError(f"{model} has no version {version}")
        return meta

    def pointer(self, model: str, channel: Channel = "production") -> dict | None:
        """The pointer file's content, or None when the channel is empty."""
        data = _read_json(self._pointer(model, channel))
        return data if data and data.get("version") else None

    def current_version(self, model: str, channel: Channel = "production") -> str | None:
        """The version a channel points at (None when empty). Cheap enough to poll per request:
        one ``stat``; the file is read again only after a pointer switch replaced it."""
        return self._cached_field(model, channel, self._pointer(model, channel), "version")

    def reload_generation(self, model: str) -> int:
        """How many reloads of ``model`` were requested (0: none); polled like ``current_version``."""
        return int(self._cached_field(model, "reload", self.model_root(model) / "reload.json", "generation") or 0)

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

    def resolve(self, model: str, channel: Channel = "production") -> Path:
        """Directory of the version the channel points at; ``NoVersionError`` when empty."""
        data = self.pointer(model, channel)
        if data is None:
            raise NoVersionError(f"no {channel} version of {model} in {self.root}")
        path = self.version_dir(model, data["version"])
        if not path.is_dir():  # pragma: no cover - pointed-to versions are never pruned
            raise RegistryError(f"{model} {channel} points at missing {path}")
        return path

    def status(self, model: str) -> dict:
        prod = self.pointer(model, "production") or {}
        return {
            "model": model,
            "production": prod.get("version"),
            "previous": (prod.get("previous") or [None])[0],
            "canary": self.current_version(model, "canary"),
            "versions": self.versions(model),
        }

    # ----------------------------------------------------------------------------- writes
    def register(self, model: str, src_dir: Path, metrics: dict | None = None, **metadata: Any) -> str:
        """Copies ``src_dir`` in as the next version; returns the version (``v0001`` ...)."""
        src_dir = Path(src_dir)
        if not src_dir.is_dir():
            raise RegistryError(f"{src_dir} is not a directory")
        with self._locked(model) as root:
            existing = self.versions(model)
            counter = _read_json(root / "counter.json") or {}
            number = max([int(v[1:]) for v in existing] + [int(counter.get("last", 0))]) + 1
            version = f"v{number:04d}"
            staging = root / f".staging-{uuid.uuid4().hex}"
            try:
                shutil.copytree(src_dir, staging)
                meta = {"model": model, "version": version, "created_at": _now(), "source": str(src_dir),
                        "metrics": dict(metrics or {}), **metadata}
                _write_json_atomic(staging / VERSION_META, meta)
                os.rename(staging, root / version)  # the version appears complete or not at all
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            _write_json_atomic(root / "counter.json", {"last": number})
            _fsync_dir(root)
            self._audit(model, "register", version=version, source=str(src_dir))
            self._prune(model)
        log.info("registered %s %s from %s", model, version, src_dir)
        return version

    def update_metadata(self, model: str, version: str, **fields: Any) -> dict:
        with self._locked(model):
            meta = self.metadata(model, version)
            meta.update(fields)
            _write_json_atomic(self.version_dir(model, version) / VERSION_META, meta)
        return meta

    def promote(self, model: str, version: str, reason: str = "") -> dict:
        """Points ``production`` at ``version``; the old production becomes the rollback target.
        A canary of the same version ends (it is production now)."""
        with self._locked(model):
            self._require(model, version)
            current = self.pointer(model, "production") or {}
            previous = list(current.get("previous") or [])
            if current.get("version") and current["version"] != version:
                previous = [current["version"], *[v for v in previous if v != current["version"]]]
            previous = [v for v in previous if v != version][:HISTORY_LIMIT]
            data = {"version": version, "previous": previous, "updated_at": _now(), "reason": reason}
            _write_json_atomic(self._pointer(model, "production"), data)
            if self.current_version(model, "canary") == version:
                self._clear(model, "canary")
            self._audit(model, "promote", version=version, replaced=current.get("version"), reason=reason)
        log.info("%s production -> %s (was %s)", model, version, current.get("version"))
        return data

    def start_canary(self, model: str, version: str, percent: int = 10, reason: str = "") -> dict:
        if not 0 < percent < 100:
            raise ValueError("canary percent must be in 1..99")
        with self._locked(model):
            self._require(model, version)
            if self.current_version(model, "production") == version:
                raise RegistryError(f"{model} {version} is already production")
            data = {"version": version, "percent": int(percent), "started_at": _now(), "reason": reason,
                    "production": self.current_version(model, "production")}
            _write_json_atomic(self._pointer(model, "canary"), data)
            self._audit(model, "start_canary", version=version, percent=percent, reason=reason)
        return data

    def stop_canary(self, model: str, reason: str = "") -> str | None:
        """Ends the canary without promoting it (traffic goes back to production)."""
        with self._locked(model):
            version = self.current_version(model, "canary")
            if version:
                self._clear(model, "canary")
                self._audit(model, "stop_canary", version=version, reason=reason)
        return version

    def promote_canary(self, model: str, reason: str = "") -> str:
        version = self.current_version(model, "canary")
        if not version:
            raise NoVersionError(f"{model} has no canary to promote")
        self.promote(model, version, reason=reason or "canary promoted")
        return version

    def rollback(self, model: str, reason: str = "") -> str:
        """Production goes back to the previous production; any canary stops. Returns the version."""
        with self._locked(model):
            current = self.pointer(model, "production")
            previous = list((current or {}).get("previous") or [])
            previous = [v for v in previous if self.version_dir(model, v).is_dir()]
            if current is None or not previous:
                raise NoVersionError(f"{model} has no previous production to roll back to")
            target, rest = previous[0], previous[1:]
            data = {"version": target, "previous": rest, "updated_at": _now(),
                    "reason": reason or "rollback", "rolled_back_from": current["version"]}
            _write_json_atomic(self._pointer(model, "production"), data)
            self._clear(model, "canary")
            self._audit(model, "rollback", version=target, rolled_back_from=current["version"], reason=reason)
        log.warning("%s rolled back %s -> %s (%s)", model, current["version"], target, reason)
        return target

    def request_reload(self, model: str, reason: str = "") -> int:
        """Asks every process serving ``model`` (any channel) to load it again at its next pointer
        check, even when the version did not change: e.g. the unregistered build directory
        (``models_dir/<model>``) was retrained in place. Returns the new reload generation."""
        with self._locked(model) as root:
            generation = int((_read_json(root / "reload.json") or {}).get("generation", 0)) + 1
            _write_json_atomic(root / "reload.json", {"generation": generation, "requested_at": _now(),
                                                      "reason": reason})
            self._audit(model, "request_reload", generation=generation, reason=reason)
        log.info("%s reload requested (generation %d)", model, generation)
        return generation

    def _require(self, model: str, version: str) -> None:
        if not (self.version_dir(model, version) / VERSION_META).is_file():
            raise NoVersionError(f"{model} has no version {version}")

    def _clear(self, model: str, channel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pointer(model, channel))
        self._cache.pop((model, channel), None)

    def _prune(self, model: str) -> list[str]:
        """Deletes versions beyond ``keep_last`` that no pointer refers to (lock held)."""
        versions = self.versions(model)
        pinned = set()
        for channel in CHANNELS:
            data = self.pointer(model, channel) or {}
            pinned.add(data.get("version"))
            pinned.update(data.get("previous") or [])
        keep = set(versions[-self.keep_last:]) | pinned
        removed = []
        for version in versions:
            if version in keep:
                continue
            doomed = self.model_root(model) / f".deleted-{version}-{uuid.uuid4().hex}"
            try:
                os.rename(self.version_dir(model, version), doomed)
            except OSError as exc:  # pragma: no cover
                if exc.errno != errno.ENOENT:
                    raise
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(version)
        if removed:
            self._audit(model, "prune", versions=removed)
        return removed


# ------------------------------------------------------------------------------- serving side
def model_dir(settings: Any, model: str = "ranker", channel: Channel = "production") -> Path:
    """Where a serving component loads ``model`` from: the registry's channel when it has one,
    else the directory ``naviyam build`` writes (``models_dir/<model>``) for production."""
    try:
        return ModelRegistry.from_settings(settings).resolve(model, channel)
    except NoVersionError:
        if channel == "canary":
            raise
        return Path(settings.models_dir) / model


T = TypeVar("T")


@dataclass(frozen=True)
class Loaded(Generic[T]):
    version: str | None
    path: Path
    value: T


class HotModel(Generic[T]):
    """A loaded model that follows a registry channel: ``get()`` returns what to serve with.

    ``maybe_reload()`` (call it per request, on a timer, or from a /reload endpoint) loads the new
    version outside any lock the request path takes and then swaps one reference, so requests in
    flight finish on the old model and the next ones see the new one; no request ever sees a
    half-loaded model. A failed load keeps the old model (logged), so a bad push cannot take the
    service down.
    """

    def __init__(self, registry: ModelRegistry, model: str, loader: Callable[[Path], T],
                 channel: Channel = "production", fallback_dir: Path | None = None,
                 min_check_interval_s: float = 0.0) -> None:
        self.registry, self.model, self.channel = registry, model, channel
        self._loader = loader
        self._fallback = Path(fallback_dir) if fallback_dir is not None else None
        self._interval = min_check_interval_s
        self._next_check = 0.0
        self._reload_lock = threading.Lock()
        self._current: Loaded[T] | None = None
        self._generation = 0  # the registry's reload generation the current model was loaded under
        self.reloads = 0
        self.failures = 0
        self.maybe_reload(force=True)

    def get(self) -> Loaded[T]:
        current = self._current
        if current is None:
            raise NoVersionError(f"no {self.channel} version of {self.model} loaded")
        return current

    @property
    def version(self) -> str | None:
        return self._current.version if self._current else None

    @property
    def check_due(self) -> bool:
        """Whether ``maybe_reload`` would look at the registry now (cheap; lets an async server
        run only the due checks - which may load a model - off its event loop)."""
        return time.monotonic() >= self._next_check

    def maybe_reload(self, force: bool = False) -> bool:
        """Loads the channel's version when it changed or a reload was requested
        (``ModelRegistry.request_reload``); True when a new model was swapped in."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self._interval
        if not force and not self._stale():
            return False
        if not self._reload_lock.acquire(blocking=force):
            return False  # another thread is loading; keep serving the current model
        try:
            if not force and not self._stale():
                return False
            generation = self.registry.reload_generation(self.model)
            wanted = self.registry.current_version(self.model, self.channel)
            try:
                if wanted is None:
                    if self._fallback is None or self.channel == "canary":
                        return False
                    path = self._fallback
                else:
                    path = self.registry.version_dir(self.model, wanted)
                value = self._loader(path)
            except Exception:  # noqa: BLE001 - keep serving the model we have
                self.failures += 1
                log.exception("loading %s %s %s failed; keeping %s", self.model, self.channel, wanted,
                              self._current.version if self._current else None)
                if self._current is None:
                    raise
                return False
            self._current = Loaded(wanted, path, value)
            self._generation = generation
            self.reloads += 1
            log.info("%s %s now serving %s", self.model, self.channel, wanted or path)
            return True
        finally:
            self._reload_lock.release()

    def _stale(self) -> bool:
        current = self._current
        return (current is None or current.version != self.registry.current_version(self.model, self.channel)
                or self._generation != self.registry.reload_generation(self.model))
