"""Base class of every graph node: a `kserve.Model` that takes an Envelope and returns it enriched.

Wire format (documented in components/README.md):
- v1 (`POST /v1/models/<name>:predict`): the body *is* the JSON object (the graph router passes
  each node's response body on as the next node's request). `{"instances": [obj]}` is accepted
  too and answered as `{"predictions": [obj]}`, KServe's v1 convention.
- v2 / open inference (`POST /v2/models/<name>/infer`): one BYTES input named `envelope`, shape
  [1], holding the JSON text; the answer has one BYTES output named `envelope`.

Bad input of any kind is a 4xx with a message: a body over ``MAX_BODY_BYTES`` is a 413, a v2
request KServe's own schema refuses is a 422 (which never echoes the input back: an echoed lone
surrogate or NaN would make the error answer itself fail with a 500), anything else a 400.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import kserve
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from pydantic import BaseModel, Field, ValidationError

from naviyam.bounds import MAX_SHOP_LIST, Bounded, StepMap, StepTextMap
from naviyam.config import Settings
from naviyam.schemas import ENVELOPE_VERSION, Candidate, Envelope, RetrievalHit, validation_problems

log = logging.getLogger(__name__)
ENVELOPE_TENSOR = "envelope"
# A real envelope is tens of KB (20 hits, ~150 candidates, 5 recommendations); 2 MiB leaves room
# and keeps a node from buffering and parsing arbitrarily large bodies.
MAX_BODY_BYTES = 2 * 1024 * 1024


def safe_text(message: str, limit: int = 1000) -> str:
    """``message`` cut to ``limit`` with lone surrogates escaped, so any error answer can be encoded."""
    return message[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _json_error(status: int, message: str) -> Response:
    # ensure_ascii: whatever a message quotes from the input, the answer is valid UTF-8 JSON.
    return Response(json.dumps({"error": safe_text(message)}, ensure_ascii=True), status_code=status,
                    media_type="application/json")


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before it is parsed
    (by Content-Length when sent, else while it streams in)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await self._too_large(scope, receive, send)
        seen = 0
        refused = False

        async def counting_receive():
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    await self._too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:  # the 413 has been sent; whatever the app answers to the disconnect is dropped
                await send(message)

        return await self.app(scope, counting_receive, guarded_send)

    async def _too_large(self, scope, receive, send):
        await _json_error(413, f"request body over {self.limit} bytes")(scope, receive, send)


async def _request_validation_handler(_request: Request, exc: RequestValidationError) -> Response:
    problems = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()[:5]]
    return _json_error(422, "invalid inference request: " + "; ".join(problems))


def guard_app(app: FastAPI) -> None:
    """Install the body limit and the non-echoing 422 on a KServe ModelServer's app.

    KServe's ModelServer builds one module-level FastAPI app and offers no hook for this; it adds
    its own handlers (InvalidInput -> 400, ...) at start, which these do not replace. Call before
    the server starts (components/server.py does); calling twice is harmless.
    """
    if getattr(app.state, "naviyam_guarded", False):
        return
    app.add_middleware(BodyLimit)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.state.naviyam_guarded = True


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python's json would accept them.
    raise ValueError(f"{name} is not a JSON value")


def decode(payload: Any) -> tuple[dict, str]:
    """(JSON object, wire form) from a v1 body or a v2 InferRequest."""
    if isinstance(payload, InferRequest):
        tensor = next((i for i in payload.inputs if i.name == ENVELOPE_TENSOR), None)
        if tensor is None or tensor.datatype != "BYTES":
            raise InvalidInput(f"v2 request needs one BYTES input named '{ENVELOPE_TENSOR}'")
        data = tensor.data
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], (str, bytes)):
            raise InvalidInput(f"'{ENVELOPE_TENSOR}' input must hold exactly one string (shape [1])")
        raw = data[0]
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            body = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidInput(f"'{ENVELOPE_TENSOR}' input is not UTF-8 JSON: {safe_text(str(exc), 200)}") from None
        return _require_object(body), "v2"
    body = _require_object(payload)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or len(instances) != 1:
            raise InvalidInput("'instances' must hold exactly one object")
        return _require_object(instances[0]), "v1-instances"
    return body, "v1"


def _require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def encode_answer(answer: BaseModel, form: str, model_name: str, response_headers: dict[str, str] | None,
                  exclude: frozenset[str] | None = None) -> Any:
    """A node's answer in the request's wire form, without the fields in ``exclude``. A plain v1
    body is pydantic's own JSON bytes (one pass, in the caller's thread) instead of a dict that
    KServe's event loop serialises again."""
    if form == "v1" and response_headers is not None:
        response_headers["content-type"] = "application/json"
        return answer.model_dump_json(exclude=exclude).encode("utf-8")
    return encode(answer.model_dump(mode="json", exclude=exclude), form, model_name)


def encode(body: dict, form: str, model_name: str) -> Any:
    if form == "v2":
        text = json.dumps(body, ensure_ascii=False)
        out = InferOutput(name=ENVELOPE_TENSOR, shape=[1], datatype="BYTES", data=[text])
        return InferResponse(response_id=uuid.uuid4().hex, model_name=model_name, infer_outputs=[out])
    if form == "v1-instances":
        return {"predictions": [body]}
    return body


# What step 4 (the NLU node) always fills; every later node reads them.
STEP4_FIELDS = ("preprocessed", "nlu", "profile", "filters", "context")


def parse_envelope(body: dict) -> Envelope:
    """The envelope a node after step 4 takes: valid, bounded, and carrying step 4's fields (a
    forged envelope without them would fail deep inside a step, a 500, instead of here, a 400)."""
    version = body.get("schema_version")
    if version is not None and version != ENVELOPE_VERSION:
        raise InvalidInput(safe_text(f"envelope schema_version {str(version)[:40]!r} is not supported "
                                     f"(expected {ENVELOPE_VERSION})"))
    try:
        env = Envelope.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(safe_text(f"invalid envelope: {'; '.join(validation_problems(exc))}")) from None
    missing = [name for name in STEP4_FIELDS if getattr(env, name) is None]
    if missing:
        raise InvalidInput(f"invalid envelope: {', '.join(missing)} missing (filled by naviyam-nlu)")
    return env


class StepResult(Bounded):
    """What the ranker transformer reads back from a step-5 node's answer: that step's own fields
    and the bookkeeping it adds. The rest of the answer echoes the envelope the transformer sent
    and already holds, so it is neither validated nor built again (pydantic ignores other keys)."""

    retrieval: list[RetrievalHit] | None = Field(default=None, max_length=MAX_SHOP_LIST)
    candidates: list[Candidate] | None = Field(default=None, max_length=MAX_SHOP_LIST)
    model_versions: StepTextMap = Field(default_factory=dict)
    timings_ms: StepMap = Field(default_factory=dict)
    errors: StepTextMap = Field(default_factory=dict)
    degraded: bool = False


def parse_step_result(raw: bytes) -> StepResult:
    """A step node's JSON answer, validated straight from the bytes (no intermediate dicts)."""
    return StepResult.model_validate_json(raw)


class EnvelopeModel(kserve.Model):
    """Subclasses implement ``load_parts()`` and ``handle(body) -> answer model`` (sync, CPU-bound)."""

    def __init__(self, name: str, settings: Settings):
        # Response headers: a v1 answer goes out as bytes, labelled JSON here (encode_answer).
        super().__init__(name, return_response_headers=True)
        self.settings = settings
        self.ready = False

    def load_parts(self) -> None:
        raise NotImplementedError

    def load(self) -> bool:
        self.load_parts()
        self.ready = True
        return self.ready

    def validate(self, payload: Any) -> Any:
        # kserve.Model.validate assumes a mapping ("inputs" in payload) and would 500 on `null`.
        if not isinstance(payload, (dict, InferRequest)):
            raise InvalidInput("request body must be a JSON object")
        return super().validate(payload)

    def handle(self, body: dict) -> BaseModel:
        raise NotImplementedError

    def handle_request(self, body: dict, headers: dict[str, str]) -> BaseModel:
        """``handle`` with the request's headers (KServe passes them lower-cased)."""
        return self.handle(body)

    def _answer(self, body: dict, headers: dict[str, str], form: str, response_headers: dict[str, str] | None) -> Any:
        return encode_answer(self.handle_request(body, headers), form, self.name, response_headers)

    @property
    def runs_inline(self) -> bool:
        """Whether a request's work runs on the event loop (as KServe runs a sync ``predict``).

        True for work that is a few milliseconds of CPU holding the GIL, the fast path: a worker
        thread could not run it beside other requests anyway, and handing each request to one and
        back cost the served graph about 7% of its CPU per turn (make bench, paired rounds).
        A node whose work can take seconds (an LLM backend) returns False and keeps the loop
        free for health checks and other requests."""
        return True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        body, form = decode(payload)
        if self.runs_inline:
            return self._answer(body, headers or {}, form, response_headers)
        return await asyncio.to_thread(self._answer, body, headers or {}, form, response_headers)
