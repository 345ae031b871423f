"""naviyam-api: feedback intake and the model admin endpoints (one small control service).

`POST /v1/feedback` stores clicked/ordered/favorited/rated events durably. Events are the training
data of the learning loop: each is validated (4xx with a message when not), checked against the
catalogue (an unknown shop is refused, not stored), committed before it is acknowledged, and
written once per event id (a retried POST is acknowledged but not duplicated).

`POST /v1/admin/rollback` and `POST /v1/admin/reload` move the model registry's pointers, which
the model servers follow (``naviyam.registry.HotModel``); `GET /v1/admin/models/{model}` shows
them. They need ``serving.admin_token`` and are refused (503) while none is configured.

`GET /metrics` (Prometheus text, no token: counts only): events stored / duplicate / refused,
requests refused whole by reason, the version each registry channel serves, and the retrains the
drift monitor requested (read from the loop store at each scrape: the loop's jobs are not scraped).

Tokens are compared in constant time and never logged; logs carry counts and model names, never
a user id, a location or a header.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
from datetime import datetime
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from inference_graph.request_body import BodyTooLarge, read_body
from naviyam.clock import Clock
from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.events import EventStore
from naviyam.loop_state import LoopState
from naviyam.storage import events_target
from naviyam.registry import MODEL_RE, ModelRegistry, NoVersionError
from naviyam.schemas import TRAFFIC_HEADER, FeedbackEvent, traffic_kind, validation_problems

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
MAX_ADMIN_BODY_BYTES = 4 * 1024
MAX_EVENTS = 500
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str = Field(default="ranker", pattern=MODEL_RE.pattern)
    # production: back to the previous production version; canary: end the canary (traffic goes
    # back to production).
    channel: Literal["production", "canary"] = "production"
    reason: str = Field(default="", max_length=200)


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str = Field(default="ranker", pattern=MODEL_RE.pattern)
    reason: str = Field(default="", max_length=200)


class FeedbackMetrics:
    """The service's metrics, on a registry of its own (one per app: tests build many)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.events = Counter(
            "naviyam_feedback_events", "Feedback events by outcome: stored, duplicate (a retried event id: "
                                       "acknowledged, not stored again), refused (in a batch refused whole "
                                       "for an invalid event or an unknown shop)",
            ["outcome"], registry=self.registry)
        self.refused = Counter(
            "naviyam_feedback_refused_requests", "Feedback requests refused whole, by reason (auth, traffic, body, "
                                                 "batch, invalid)", ["reason"], registry=self.registry)


class LoopStateCollector:
    """What the model registry and the drift monitor recorded, read at each scrape.

    The drift monitor runs as pipeline jobs nobody scrapes; each time it finds drift (or an error
    rate over its threshold) it records a retrain request in the loop store (naviyam.loop_state, via
    pipelines.steps.request_retrain: state/loop.sqlite on the same volume, or the state database),
    which this service turns into ``naviyam_drift_retrain_requests_total``.
    """

    def __init__(self, settings: Settings, registry: ModelRegistry):
        self.settings, self.models = settings, registry

    def collect(self):
        served = GaugeMetricFamily("naviyam_model_version", "1 for the version each registry channel points at",
                                   labels=["model", "channel", "version"])
        try:
            for model in self.models.models():
                for channel in ("production", "canary"):
                    version = self.models.current_version(model, channel)
                    if version:
                        served.add_metric([model, channel, version], 1)
        except (OSError, ValueError, SQLAlchemyError) as exc:  # a scrape must not fail on the registry
            log.debug("registry unreadable for /metrics: %s", exc)
        yield served
        requests = self._retrain_requests()
        total = CounterMetricFamily("naviyam_drift_retrain_requests",
                                    "Retrains the drift monitor requested (drift or error rate over its threshold)")
        total.add_metric([], len(requests))
        yield total
        yield GaugeMetricFamily("naviyam_drift_retrain_requests_pending", "Retrain requests not started yet",
                                value=sum(r.get("status") == "requested" for r in requests))
        stamps = [_epoch(r.get("at")) for r in requests]
        stamps = [t for t in stamps if t is not None]
        if stamps:
            yield GaugeMetricFamily("naviyam_drift_last_request_timestamp_seconds",
                                    "When the drift monitor last requested a retrain", value=max(stamps))

    def _retrain_requests(self) -> list[dict]:
        """Every request the loop store holds (``state/loop.sqlite`` or the ``state.dsn`` database)."""
        try:
            store = LoopState.from_settings(self.settings, create=False)
            return store.requests() if store is not None else []  # None: none requested yet
        except (OSError, SQLAlchemyError) as exc:  # a scrape must not fail on the store being away
            log.debug("loop state unreadable for /metrics: %s", exc)
            return []


def _epoch(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header.

    Both sides are hashed first so that ``hmac.compare_digest`` compares equal-length values:
    its time then depends on neither the token's content nor its length."""
    presented = hashlib.sha256((authorization or "").encode()).digest()
    expected = hashlib.sha256(f"Bearer {token}".encode()).digest()
    return hmac.compare_digest(presented, expected)


async def read_json(request: Request, limit: int, empty: Any = None) -> Any:
    """The JSON body (``empty`` for a blank body when given), 413 over ``limit``, 400 when broken."""
    try:
        raw = await read_body(request, limit)
    except BodyTooLarge:
        raise HTTPException(status_code=413, detail=f"body over {limit} bytes") from None
    if empty is not None and not raw.strip():
        return empty
    try:
        return json.loads(raw)
    except RecursionError:
        raise HTTPException(status_code=400, detail="body is nested too deeply") from None
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"body is not valid JSON: {exc}") from None


def parse_admin(model_cls: type[BaseModel], body: Any) -> Any:
    try:
        return model_cls.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=validation_problems(exc)) from None


def create_app(settings: Settings, store: EventStore | None = None, shop_ids: set[str] | None = None,
               registry: ModelRegistry | None = None) -> FastAPI:
    app = FastAPI(title="naviyam-api")
    store = store or EventStore(events_target(settings))
    known_shops = shop_ids if shop_ids is not None else set(Catalog.load(settings.data_dir).shops["shop_id"])
    registry = registry or ModelRegistry.from_settings(settings)
    metrics = FeedbackMetrics()
    metrics.registry.register(LoopStateCollector(settings, registry))
    ProcessCollector(registry=metrics.registry)
    app.state.metrics = metrics
    token = settings.serving.feedback_token
    clock = Clock.from_settings(settings)
    admin_token = settings.serving.admin_token

    def require_admin(authorization: str | None) -> None:
        if not admin_token:
            # Off unless configured: an admin endpoint left open by a missing setting could roll
            # production back for anyone who can reach the service.
            raise HTTPException(status_code=503, detail="admin endpoints are disabled: no serving.admin_token "
                                                        "is configured (NAVIYAM_SERVING__ADMIN_TOKEN)")
        if not bearer_matches(authorization, admin_token):
            log.warning("admin request refused: missing or wrong bearer token")
            raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers=BEARER_CHALLENGE)

    def served_model(model: str) -> None:
        if model not in registry.models() and not (settings.models_dir / model).is_dir():
            raise HTTPException(status_code=404, detail=f"no model {model!r} in the registry or {settings.models_dir}")

    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    @app.get("/metrics")
    def metrics_text():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/feedback")
    async def feedback(request: Request, authorization: str | None = Header(default=None)):
        if token and not bearer_matches(authorization, token):
            log.warning("feedback refused: missing or wrong bearer token")
            metrics.refused.labels(reason="auth").inc()
            raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers=BEARER_CHALLENGE)
        received_at = clock.now()  # the event time: the device's clock is kept, never trusted
        try:
            traffic = traffic_kind(request.headers.get(TRAFFIC_HEADER))
        except ValueError as exc:
            metrics.refused.labels(reason="traffic").inc()
            raise HTTPException(status_code=400, detail=str(exc)) from None
        try:
            body = await read_json(request, MAX_BODY_BYTES)
        except HTTPException:
            metrics.refused.labels(reason="body").inc()
            raise
        items = body.get("events") if isinstance(body, dict) and "events" in body else [body]
        if not isinstance(items, list) or not items:
            metrics.refused.labels(reason="batch").inc()
            raise HTTPException(status_code=400, detail="send one event object or {\"events\": [ ... ]}")
        if len(items) > MAX_EVENTS:
            metrics.refused.labels(reason="batch").inc()
            raise HTTPException(status_code=413, detail=f"at most {MAX_EVENTS} events per request")
        events, problems = [], []
        for i, item in enumerate(items):
            try:
                event = FeedbackEvent.model_validate(item)
            except ValidationError as exc:
                problems.append({"index": i, "errors": validation_problems(exc, limit=10)})
                continue
            if event.shop_id not in known_shops:
                problems.append({"index": i, "errors": [f"shop_id: unknown shop {event.shop_id!r}"]})
                continue
            if event.feedback_type == "rated" and event.satisfaction_score is None:
                problems.append({"index": i, "errors": ["satisfaction_score: required for 'rated'"]})
                continue
            events.append(event)
        # All or nothing: a batch with a bad event is refused whole, so a client can fix and resend it.
        if problems:
            log.info("feedback refused: %d of %d events invalid", len(problems), len(items))
            metrics.refused.labels(reason="invalid").inc()
            metrics.events.labels(outcome="refused").inc(len(items))
            return JSONResponse(status_code=422, content={"detail": "invalid feedback", "problems": problems})
        # Each event is committed (synchronous=FULL) before this returns: an acknowledged event
        # survives a crash; a crash before the answer makes the client retry, stored once by id.
        stored = sum(store.add_feedback(e, received_at, traffic) for e in events)
        log.debug("feedback: %d stored, %d duplicates", stored, len(events) - stored)
        metrics.events.labels(outcome="stored").inc(stored)
        metrics.events.labels(outcome="duplicate").inc(len(events) - stored)
        return {"stored": stored, "duplicates": len(events) - stored}

    @app.get("/v1/admin/models/{model}")
    def admin_status(model: str, authorization: str | None = Header(default=None)):
        require_admin(authorization)
        if not MODEL_RE.match(model):
            raise HTTPException(status_code=422, detail=f"bad model name {model!r}")
        served_model(model)
        return {**registry.status(model), "reload_generation": registry.reload_generation(model)}

    @app.post("/v1/admin/rollback")
    async def admin_rollback(request: Request, authorization: str | None = Header(default=None)):
        require_admin(authorization)
        req = parse_admin(RollbackRequest, await read_json(request, MAX_ADMIN_BODY_BYTES, empty={}))
        served_model(req.model)
        reason = req.reason or "admin rollback"
        if req.channel == "canary":
            stopped = registry.stop_canary(req.model, reason=reason)
            if stopped is None:
                raise HTTPException(status_code=409, detail=f"{req.model} has no canary running")
            log.warning("admin: %s canary %s stopped", req.model, stopped)
            return {"model": req.model, "channel": "canary", "stopped": stopped, "status": registry.status(req.model)}
        before = registry.current_version(req.model, "production")
        try:
            version = registry.rollback(req.model, reason=reason)
        except NoVersionError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        log.warning("admin: %s production rolled back %s -> %s", req.model, before, version)
        return {"model": req.model, "channel": "production", "version": version, "rolled_back_from": before,
                "status": registry.status(req.model)}

    @app.post("/v1/admin/reload")
    async def admin_reload(request: Request, authorization: str | None = Header(default=None)):
        require_admin(authorization)
        req = parse_admin(ReloadRequest, await read_json(request, MAX_ADMIN_BODY_BYTES, empty={}))
        served_model(req.model)
        generation = registry.request_reload(req.model, reason=req.reason or "admin reload")
        log.warning("admin: %s reload requested (generation %d)", req.model, generation)
        return {"model": req.model, "reload_generation": generation,
                "detail": "every server of this model loads it again at its next registry check"}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="components.feedback")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level)
    port = args.port or settings.serving.ports["naviyam-feedback"]
    uvicorn.run(create_app(settings), host=settings.serving.host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
