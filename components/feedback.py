"""Feedback service: `POST /v1/feedback` stores clicked/ordered/favorited/rated events durably.

Events are the training data of the learning loop: each is validated (4xx with a message when
not), checked against the catalogue (an unknown shop is refused, not stored), and written once
per event id (a retried POST is acknowledged but not duplicated).
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.events import EventStore
from naviyam.schemas import FeedbackEvent, validation_problems

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500


def create_app(settings: Settings, store: EventStore | None = None, shop_ids: set[str] | None = None) -> FastAPI:
    app = FastAPI(title="naviyam-feedback")
    store = store or EventStore(settings.state_dir / "events.sqlite")
    known_shops = shop_ids if shop_ids is not None else set(Catalog.load(settings.data_dir).shops["shop_id"])
    token = settings.serving.feedback_token

    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    @app.post("/v1/feedback")
    async def feedback(request: Request, authorization: str | None = Header(default=None)):
        if token and not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail=f"body over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"body is not valid JSON: {exc}") from None
        items = body.get("events") if isinstance(body, dict) and "events" in body else [body]
        if not isinstance(items, list) or not items:
            raise HTTPException(status_code=400, detail="send one event object or {\"events\": [ ... ]}")
        if len(items) > MAX_EVENTS:
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
            return JSONResponse(status_code=422, content={"detail": "invalid feedback", "problems": problems})
        stored = sum(store.add_feedback(e) for e in events)
        return {"stored": stored, "duplicates": len(events) - stored}

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
