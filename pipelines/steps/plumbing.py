"""Plumbing shared by the steps: settings (and the task's logging), the registry, the event
store, the loop state, the first production model, and the serving log the loop learns from."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from naviyam.clock import Clock
from naviyam.config import Settings
from naviyam.loop_state import LEGACY_REQUESTS_FILE, LEGACY_STATE_FILE, LoopState
from naviyam.monitoring.live import admit, read_serving_log
from naviyam.registry import LORA, RANKER, ModelRegistry, NoVersionError  # noqa: F401 - LORA re-exported
from naviyam.storage import events_target

# Where the loop kept its state before naviyam.loop_state (taken in, once, from an older home).
LOOP_STATE = LEGACY_STATE_FILE
RETRAIN_REQUESTS = LEGACY_REQUESTS_FILE
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """The task process's logging (``settings.log_level``): called by each KFP component body,
    its entry point; ``load_settings`` leaves the process's logging alone. A no-op when the root
    logger already has a handler (``logging.basicConfig``)."""
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)


def load_settings(home: str = "", config: str = "") -> Settings:
    overrides = {"home": home} if home else {}
    settings = Settings.load(config or None, **overrides)
    return settings


def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.from_settings(settings)


def store_path(settings: Settings) -> Path | str:
    """The event store: a SQLite file, or the PostgreSQL DSN (naviyam.storage)."""
    return events_target(settings)


def loop_state(settings: Settings) -> LoopState:
    """The loop's state and retrain requests: ``state/loop.sqlite``, or the ``state.dsn`` database."""
    return LoopState.from_settings(settings)


def read_state(settings: Settings) -> dict:
    return loop_state(settings).read()


def update_state(settings: Settings, **fields: Any) -> dict:
    """Sets ``fields`` (the other keys stay) atomically; the state after it."""
    return loop_state(settings).update(**fields)


def _clean(value: Any) -> Any:
    """JSON- and KFP-metadata-safe numbers (NaN -> None)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def ensure_bootstrap(settings: Settings) -> str | None:
    """First run: the ranker ``naviyam build`` wrote becomes the registry's first production."""
    reg = registry(settings)
    if reg.current_version(RANKER, "production") is not None:
        return None
    built = settings.models_dir / RANKER
    if not (built / "meta.json").exists():
        return None
    meta = json.loads((built / "meta.json").read_text(encoding="utf-8"))
    version = reg.register(RANKER, built, meta.get("metrics", {}), model_version=meta.get("version"),
                           note="bootstrap: the model `naviyam build` trained")
    reg.promote(RANKER, version, reason="bootstrap")
    return version


def learned_log(settings: Settings, start: Any = None):
    """The serving log as the learning loop may read it (``naviyam.monitoring.live.admit``): the
    ``learning.traffic`` kinds, dated up to the server's clock (and from ``start``)."""
    return admit(read_serving_log(store_path(settings)), settings.learning.traffic,
                 now=Clock.from_settings(settings).local_now(), start=start)


def production_dir(settings: Settings, model: str = RANKER) -> Path | None:
    try:
        return registry(settings).resolve(model, "production")
    except NoVersionError:
        return None
