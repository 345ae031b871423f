"""Step 5B — Layer 1 of the recommender: four candidate funnels run in parallel, then merged.

Lifecycle (like a served model): heavy work once in ``build``/``load`` (popularity vector, CF
matrix, slot priors); per request ``generate`` only computes the shared hard-constraint mask once
and fans the four funnels out on a thread pool owned by the instance. A funnel that raises,
times out or misbehaves is reported in ``CandidateResult.funnel_errors`` and the others still
answer: the step degrades, it never fails the request.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from naviyam.artifacts import read_meta
from naviyam.candidates.collaborative import CollaborativeFunnel
from naviyam.candidates.content import ContentFunnel
from naviyam.candidates.contextual import ContextualFunnel
from naviyam.candidates.merge import Funnel, FunnelOutput, merge_candidates
from naviyam.candidates.popularity import PopularityFunnel
from naviyam.config import CandidateSettings, Settings
from naviyam.data.catalog import Catalog
from naviyam.filtering import shop_mask
from naviyam.schemas import Candidate, RequestContext, SearchFilters, UserProfile

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_TIMEOUT_S = 0.25   # the whole step has a ~20 ms budget; 250 ms means "something is stuck"
META_FILE = "meta.json"


class CandidateResult(BaseModel):
    candidates: list[Candidate] = Field(default_factory=list)
    per_funnel_counts: dict[str, int] = Field(default_factory=dict)
    funnel_errors: dict[str, str] = Field(default_factory=dict)
    # Expected, non-error reasons a funnel returned nothing (e.g. CF cold start for a new user).
    funnel_notes: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return bool(self.funnel_errors)


def _candidate_settings(settings: Settings | CandidateSettings) -> CandidateSettings:
    return settings.candidates if isinstance(settings, Settings) else settings


def _fingerprint(states: Mapping[str, Mapping[str, np.ndarray]], settings: CandidateSettings) -> str:
    """Content hash of what was built: same data + same settings -> same version, after load too."""
    digest = hashlib.sha256(settings.model_dump_json().encode())
    for name in sorted(states):
        for key in sorted(states[name]):
            digest.update(f"{name}/{key}".encode())
            digest.update(np.ascontiguousarray(states[name][key]).tobytes())
    return f"cand-{digest.hexdigest()[:12]}"


class CandidateGenerator:
    """Owns the four funnels and a thread pool; use as a context manager or call ``close()``."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings | CandidateSettings,
        funnels: Mapping[str, Funnel],
        version: str,
        *,
        timeout_s: float | None = None,
        max_workers: int | None = None,
    ) -> None:
        self._catalog = catalog
        self._settings = _candidate_settings(settings)
        self._funnels = dict(funnels)
        self._version = version
        self._timeout_s = timeout_s if timeout_s is not None else self._settings.funnel_timeout_s
        self._shop_ids = catalog.shops["shop_id"].to_numpy()
        self._row_of = {sid: i for i, sid in enumerate(self._shop_ids)}
        # Two workers per funnel: a funnel stuck past its timeout keeps its thread busy (Python
        # threads cannot be killed), and the spare workers keep the next requests running.
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers or 2 * len(self._funnels), thread_name_prefix="candidate-funnel"
        )

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls, catalog: Catalog, events: pd.DataFrame | None, settings: Settings | CandidateSettings, **kwargs
    ) -> "CandidateGenerator":
        cs = _candidate_settings(settings)
        started = time.perf_counter()
        funnels: dict[str, Funnel] = {
            "popularity": PopularityFunnel.build(catalog, events, cs),
            "content": ContentFunnel(catalog, cs),
            "collaborative": CollaborativeFunnel.build(catalog, events, cs),
            "contextual": ContextualFunnel.build(catalog, events, cs),
        }
        version = _fingerprint(cls._states(funnels), cs)
        logger.info("candidate generator %s built in %.0f ms", version, (time.perf_counter() - started) * 1e3)
        return cls(catalog, cs, funnels, version, **kwargs)

    @staticmethod
    def _states(funnels: Mapping[str, Funnel]) -> dict[str, dict[str, np.ndarray]]:
        # The content funnel is derived from the catalog alone, so it has nothing to save.
        return {name: f.state() for name, f in funnels.items() if hasattr(f, "state")}

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        states = self._states(self._funnels)
        for name, state in states.items():
            np.savez(directory / f"{name}.npz", **state)  # type: ignore[arg-type]  # numpy stub quirk
        meta = {
            "version": self._version,
            "format": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "settings": self._settings.model_dump(),
            "n_shops": len(self._shop_ids),
            "saved_funnels": sorted(states),
        }
        # meta.json last: a directory with meta.json is a complete save.
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        logger.info("candidate generator %s saved to %s", self._version, directory)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, catalog: Catalog, settings: Settings | CandidateSettings, **kwargs
    ) -> "CandidateGenerator":
        directory = Path(directory)
        meta = read_meta(directory, what="candidate generator", format_version=FORMAT_VERSION, meta_file=META_FILE)
        cs = _candidate_settings(settings)
        if meta["settings"].get("popularity_weights") != cs.popularity_weights:
            logger.warning("popularity was built with weights %s, not the configured %s; rebuild to apply",
                           meta["settings"].get("popularity_weights"), cs.popularity_weights)

        def state(name: str) -> dict[str, np.ndarray]:
            with np.load(directory / f"{name}.npz", allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}

        funnels: dict[str, Funnel] = {
            "popularity": PopularityFunnel.from_state(catalog, cs, state("popularity")),
            "content": ContentFunnel(catalog, cs),
            "collaborative": CollaborativeFunnel.from_state(catalog, cs, state("collaborative")),
            "contextual": ContextualFunnel.from_state(catalog, cs, state("contextual")),
        }
        return cls(catalog, cs, funnels, meta["version"], **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "CandidateGenerator":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def version(self) -> str:
        return self._version

    @property
    def funnels(self) -> Mapping[str, Funnel]:
        return MappingProxyType(self._funnels)

    # -- request -----------------------------------------------------------------------------
    def generate(self, user: UserProfile, filters: SearchFilters, context: RequestContext) -> CandidateResult:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        errors: dict[str, str] = {}
        notes: dict[str, str] = {}
        outputs: dict[str, FunnelOutput] = {}

        filters = self._with_profile_allergies(filters, user)
        t0 = time.perf_counter()
        allowed = shop_mask(self._catalog, filters, origin=(context.origin_lat, context.origin_lon))
        allowed.setflags(write=False)  # shared by four threads: nobody may change it in place
        timings["mask"] = (time.perf_counter() - t0) * 1e3

        futures: dict[str, Future] = {}
        for name, funnel in self._funnels.items():
            limit = self._settings.per_funnel.get(name, 0)
            if limit <= 0:
                continue
            futures[name] = self._pool.submit(_timed, funnel, user, filters, context, limit, allowed)
        wait(futures.values(), timeout=self._timeout_s)

        for name, future in futures.items():
            if not future.done():
                future.cancel()
                errors[name] = f"timeout after {self._timeout_s * 1e3:.0f} ms"
                timings[name] = self._timeout_s * 1e3
                logger.warning("candidate funnel %s timed out after %.0f ms", name, self._timeout_s * 1e3)
                continue
            pairs, error, elapsed_ms = future.result()
            timings[name] = elapsed_ms
            if error is not None:
                errors[name] = f"{type(error).__name__}: {error}"
                logger.warning("candidate funnel %s raised; continuing without it", name, exc_info=error)
                continue
            outputs[name] = self._checked(name, pairs, allowed, errors)
            if not outputs[name] and name not in errors:
                notes[name] = self._funnels[name].empty_reason(user)

        t0 = time.perf_counter()
        candidates = merge_candidates(outputs)
        timings["merge"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - started) * 1e3
        return CandidateResult(
            candidates=candidates,
            per_funnel_counts={name: len(outputs.get(name, [])) for name in futures},
            funnel_errors=errors,
            funnel_notes=notes,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )

    @staticmethod
    def _with_profile_allergies(filters: SearchFilters, user: UserProfile) -> SearchFilters:
        """Profile allergies always apply, even when the turn's filters forgot them (only stricter)."""
        missing = [a for a in user.allergies if a not in filters.allergies]
        if not missing:
            return filters
        return filters.model_copy(update={"allergies": [*filters.allergies, *missing]})

    def _checked(self, name: str, pairs: FunnelOutput, allowed: np.ndarray, errors: dict[str, str]) -> FunnelOutput:
        """Safety net over a funnel's output: drop disallowed/unknown shops and invalid scores."""
        out: FunnelOutput = []
        dropped = 0
        for shop_id, score in pairs:
            row = self._row_of.get(shop_id)
            score = float(score)
            if row is None or not allowed[row] or not np.isfinite(score):
                dropped += 1
                continue
            out.append((shop_id, min(1.0, max(0.0, score))))
        if dropped:
            errors[name] = f"returned {dropped} disallowed or invalid shop(s); dropped"
            logger.error("candidate funnel %s returned %d disallowed or invalid shop(s)", name, dropped)
        return out


def _timed(
    funnel: Funnel, user: UserProfile, filters: SearchFilters, context: RequestContext, limit: int,
    allowed: np.ndarray,
) -> tuple[FunnelOutput, Exception | None, float]:
    """Runs in a pool thread; returns (pairs, error, ms) so one funnel's failure stays its own."""
    t0 = time.perf_counter()
    try:
        pairs = funnel.generate(user, filters, context, limit, allowed=allowed)
        return pairs, None, (time.perf_counter() - t0) * 1e3
    except Exception as exc:  # noqa: BLE001 — any funnel bug must degrade the step, not fail it
        return [], exc, (time.perf_counter() - t0) * 1e3
