"""Versioned model store with atomically switched ``production`` / ``canary`` pointers.

The versions are files, on the models volume, under ``settings.models_dir / "registry"``::

    <model>/                     ranker (a Wide&Deep model dir), lora (a LoRA adapter dir: the
                                 production pointer is the adapter the LLM serves)
        v0001/ v0002/ ...        one immutable copy of the registered directory each
            registry.json        version metadata: metrics, source, created_at, notes

What points at them - the pointers, the version counter, the reload generation and the audit
log - lives in one of two backends (same interface, same behaviour):

- **files** (the default: no ``state.dsn``), beside the versions::

        production.json          {"version", "previous": [older productions, newest first], ...}
        canary.json              {"version", ...}; absent when no canary runs
        reload.json              {"generation", ...}: bumped by ``request_reload``; serving processes
                                 load their model again (same version included) when it changes
        counter.json             last version number handed out (never reused after a prune)
        events.jsonl             audit log: register / promote / canary / rollback / prune
        .lock                    fcntl lock taken by every writer

  Readers never lock. Pointers are replaced with ``os.replace`` (a reader sees the old or the
  new file, never half of one). Writers hold an exclusive ``fcntl.flock``, which serialises them
  across threads and processes of one machine (not dependably over NFS: use a database there).
- **database** (``state.dsn`` set: PostgreSQL; a SQLite path works the same), naviyam.storage
  store ``registry``: tables ``registry_models`` (counter, reload generation),
  ``registry_pointers`` (one row per model and channel) and ``registry_audit``. Every write is one
  transaction - the pointer switch together with its audit row - and writers of one model queue
  on a PostgreSQL advisory lock (SQLite: ``BEGIN IMMEDIATE``). A reader's poll is one primary-key
  SELECT and sees the committed pointer before or after a switch, never a mix. The first time a
  process opens a database over a file registry, the pointers, counter, reload generation and
  audit log of each model the database does not know yet are copied in (the files stay; switch
  every writer at once).

Either way a version directory appears with one ``rename`` before any pointer can name it, so a
serving process that calls ``resolve()`` while a pipeline promotes or rolls back always gets a
complete, existing model directory.

``keep_last`` versions are kept; older ones are deleted unless a pointer (production, canary,
or the rollback history) still refers to them.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from naviyam import storage
from naviyam.config import RegistrySettings
from naviyam.registry_state import (  # noqa: F401 - CHANNELS is part of this module's API
    CHANNELS, _DatabaseState, _FileState, _now, _read_json, _write_json_atomic,
)

log = logging.getLogger(__name__)

Channel = Literal["production", "canary"]
VERSION_META = "registry.json"
VERSION_RE = re.compile(r"^v(\d{4,})$")
MODEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
HISTORY_LIMIT = 20  # previous productions remembered for rollback
# The models the loop versions here (one name each, shared by trainers, pipelines and servers).
RANKER = "ranker"
LORA = "lora"


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


class ModelRegistry:
    def __init__(self, root: Path, keep_last: int = 5, dsn: str | Path | None = None) -> None:
        """``dsn``: where the pointers live - a PostgreSQL DSN (or a SQLite path); None: as files
        beside the versions under ``root``. The versions themselves are always under ``root``."""
        if keep_last < 1:
            raise ValueError("keep_last must be >= 1")
        self.root = Path(root)
        self.keep_last = keep_last
        self.dsn = dsn
        self._state: _FileState | _DatabaseState = _FileState(self) if dsn is None else _DatabaseState(self, dsn)

    @classmethod
    def from_settings(cls, settings: Any) -> "ModelRegistry":
        """The home's registry; its pointers in the state database when ``state.dsn`` is set."""
        dsn = storage.registry_target(settings) if getattr(settings, "state", None) is not None else None
        return cls(Path(settings.models_dir) / "registry", registry_settings(settings).keep_last, dsn=dsn)

    @property
    def backend(self) -> str:
        """``files``, or the database's dialect (``postgresql``, ``sqlite``)."""
        return "files" if self.dsn is None else storage.backend_of(self.dsn)

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

    @staticmethod
    def _channel(channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        return channel

    @contextlib.contextmanager
    def _writing(self, model: str):
        """The model's writers one at a time (files: ``fcntl.flock``; database: one transaction,
        advisory lock on PostgreSQL); everything written inside is committed together."""
        self.model_root(model).mkdir(parents=True, exist_ok=True)
        with self._state.writing(model) as write:
            yield write

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
        """The pointer's content, or None when the channel is empty."""
        self.model_root(model)
        return self._state.pointer(model, self._channel(channel))

    def current_version(self, model: str, channel: Channel = "production") -> str | None:
        """The version a channel points at (None when empty). Cheap enough to poll per request:
        files: one ``stat``, the file read again only after a pointer switch replaced it;
        database: one primary-key SELECT."""
        self.model_root(model)
        return self._state.current_version(model, self._channel(channel))

    def reload_generation(self, model: str) -> int:
        """How many reloads of ``model`` were requested (0: none); polled like ``current_version``."""
        self.model_root(model)
        return self._state.reload_generation(model)

    def serving_state(self, model: str, channel: Channel = "production") -> tuple[str | None, int]:
        """``(current_version, reload_generation)`` in one read: what ``HotModel`` polls."""
        self.model_root(model)
        return self._state.serving_state(model, self._channel(channel))

    def audit(self, model: str) -> list[dict]:
        """The audit log, oldest first: ``{"at", "action", ...}`` per register / promote /
        start_canary / stop_canary / rollback / request_reload / prune."""
        self.model_root(model)
        return self._state.audit(model)

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
        with self._writing(model) as write:
            root = self.model_root(model)
            existing = self.versions(model)
            number = max([int(v[1:]) for v in existing] + [write.last_number()]) + 1
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
            write.set_last_number(number)
            write.audit("register", version=version, source=str(src_dir))
            self._prune(model, write)
        log.info("registered %s %s from %s", model, version, src_dir)
        return version

    def update_metadata(self, model: str, version: str, **fields: Any) -> dict:
        with self._writing(model):
            meta = self.metadata(model, version)
            meta.update(fields)
            _write_json_atomic(self.version_dir(model, version) / VERSION_META, meta)
        return meta

    def promote(self, model: str, version: str, reason: str = "") -> dict:
        """Points ``production`` at ``version``; the old production becomes the rollback target.
        A canary of the same version ends (it is production now)."""
        with self._writing(model) as write:
            self._require(model, version)
            current = write.pointer("production") or {}
            previous = list(current.get("previous") or [])
            if current.get("version") and current["version"] != version:
                previous = [current["version"], *[v for v in previous if v != current["version"]]]
            previous = [v for v in previous if v != version][:HISTORY_LIMIT]
            data = {"version": version, "previous": previous, "updated_at": _now(), "reason": reason}
            write.set_pointer("production", data)
            if write.current_version("canary") == version:
                write.clear("canary")
            write.audit("promote", version=version, replaced=current.get("version"), reason=reason)
        log.info("%s production -> %s (was %s)", model, version, current.get("version"))
        return data

    def start_canary(self, model: str, version: str, percent: int = 10, reason: str = "") -> dict:
        if not 0 < percent < 100:
            raise ValueError("canary percent must be in 1..99")
        with self._writing(model) as write:
            self._require(model, version)
            production = write.current_version("production")
            if production == version:
                raise RegistryError(f"{model} {version} is already production")
            data = {"version": version, "percent": int(percent), "started_at": _now(), "reason": reason,
                    "production": production}
            write.set_pointer("canary", data)
            write.audit("start_canary", version=version, percent=percent, reason=reason)
        return data

    def stop_canary(self, model: str, reason: str = "") -> str | None:
        """Ends the canary without promoting it (traffic goes back to production)."""
        with self._writing(model) as write:
            version = write.current_version("canary")
            if version:
                write.clear("canary")
                write.audit("stop_canary", version=version, reason=reason)
        return version

    def promote_canary(self, model: str, reason: str = "") -> str:
        version = self.current_version(model, "canary")
        if not version:
            raise NoVersionError(f"{model} has no canary to promote")
        self.promote(model, version, reason=reason or "canary promoted")
        return version

    def rollback(self, model: str, reason: str = "") -> str:
        """Production goes back to the previous production; any canary stops. Returns the version."""
        with self._writing(model) as write:
            current = write.pointer("production")
            previous = list((current or {}).get("previous") or [])
            previous = [v for v in previous if self.version_dir(model, v).is_dir()]
            if current is None or not previous:
                raise NoVersionError(f"{model} has no previous production to roll back to")
            target, rest = previous[0], previous[1:]
            data = {"version": target, "previous": rest, "updated_at": _now(),
                    "reason": reason or "rollback", "rolled_back_from": current["version"]}
            write.set_pointer("production", data)
            write.clear("canary")
            write.audit("rollback", version=target, rolled_back_from=current["version"], reason=reason)
        log.warning("%s rolled back %s -> %s (%s)", model, current["version"], target, reason)
        return target

    def request_reload(self, model: str, reason: str = "") -> int:
        """Asks every process serving ``model`` (any channel) to load it again at its next pointer
        check, even when the version did not change: e.g. the unregistered build directory
        (``models_dir/<model>``) was retrained in place. Returns the new reload generation."""
        with self._writing(model) as write:
            generation = write.reload_generation() + 1
            write.set_reload({"generation": generation, "requested_at": _now(), "reason": reason})
            write.audit("request_reload", generation=generation, reason=reason)
        log.info("%s reload requested (generation %d)", model, generation)
        return generation

    def _require(self, model: str, version: str) -> None:
        if not (self.version_dir(model, version) / VERSION_META).is_file():
            raise NoVersionError(f"{model} has no version {version}")

    def _prune(self, model: str, write: Any) -> list[str]:
        """Deletes versions beyond ``keep_last`` that no pointer refers to (writer's lock held)."""
        versions = self.versions(model)
        pinned = set()
        for channel in CHANNELS:
            data = write.pointer(channel) or {}
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
            write.audit("prune", versions=removed)
        return removed


def registry_of(model_root: str | Path, keep_last: int = 5) -> tuple[ModelRegistry, str]:
    """The file registry that ``model_root`` (``<root>/<model>``) is the model directory of, and
    the model's name: an adapter store of its own (``llm.adapter_dir``, a test, a pipeline task's
    artifact) uses the same versions and pointers as the home registry, just somewhere else."""
    model_root = Path(model_root)
    if not MODEL_RE.match(model_root.name):
        raise ValueError(f"{model_root}: a model directory's name must match {MODEL_RE.pattern}")
    return ModelRegistry(model_root.parent, keep_last), model_root.name


def adapter_registry(settings: Any, llm: Any = None) -> tuple[ModelRegistry, str]:
    """Where the LLM's LoRA adapters are versioned: the home registry's ``lora`` model (beside the
    ranker, same backend), or the file registry of ``llm.adapter_dir`` when one is configured
    (``llm``: LLM settings in place of ``settings.llm``)."""
    adapter_dir = getattr(llm if llm is not None else getattr(settings, "llm", None), "adapter_dir", None)
    if adapter_dir:
        return registry_of(adapter_dir, registry_settings(settings).keep_last)
    return ModelRegistry.from_settings(settings), LORA


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
            wanted = None
            try:
                wanted, generation = self.registry.serving_state(self.model, self.channel)
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
        """Whether the registry points elsewhere (one read of it). A registry that cannot be read
        now (the database restarting) is not a reason to stop serving: logged, checked again later."""
        current = self._current
        if current is None:
            return True
        try:
            version, generation = self.registry.serving_state(self.model, self.channel)
        except Exception:  # noqa: BLE001 - keep serving the model we have
            log.warning("%s %s: registry check failed; still serving %s", self.model, self.channel,
                        current.version, exc_info=True)
            return False
        return current.version != version or self._generation != generation
