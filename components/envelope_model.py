"""Base class of every graph node: a `kserve.Model` that takes an Envelope and returns it enriched.

Wire format (documented in components/README.md):
- v1 (`POST /v1/models/<name>:predict`): the body *is* the JSON object (the graph router passes
  each node's response body on as the next node's request). `{"instances": [obj]}` is accepted
  too and answered as `{"predictions": [obj]}`, KServe's v1 convention.
- v2 / open inference (`POST /v2/models/<name>/infer`): one BYTES input named `envelope`, shape
  [1], holding the JSON text; the answer has one BYTES output named `envelope`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import kserve
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from pydantic import ValidationError

from naviyam.config import Settings
from naviyam.schemas import ENVELOPE_VERSION, Envelope, validation_problems

log = logging.getLogger(__name__)
ENVELOPE_TENSOR = "envelope"


def decode(payload: Any) -> tuple[dict, str]:
    """(JSON object, wire form) from a v1 body or a v2 InferRequest."""
    if isinstance(payload, InferRequest):
        tensor = next((i for i in payload.inputs if i.name == ENVELOPE_TENSOR), None)
        if tensor is None:
            raise InvalidInput(f"v2 request needs one BYTES input named '{ENVELOPE_TENSOR}'")
        raw = tensor.data[0]
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        try:
            body = json.loads(raw)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"'{ENVELOPE_TENSOR}' input is not JSON: {exc}") from None
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


def encode(body: dict, form: str, model_name: str) -> Any:
    if form == "v2":
        text = json.dumps(body, ensure_ascii=False)
        out = InferOutput(name=ENVELOPE_TENSOR, shape=[1], datatype="BYTES", data=[text])
        return InferResponse(response_id=uuid.uuid4().hex, model_name=model_name, infer_outputs=[out])
    if form == "v1-instances":
        return {"predictions": [body]}
    return body


def parse_envelope(body: dict) -> Envelope:
    version = body.get("schema_version")
    if version is not None and version != ENVELOPE_VERSION:
        raise InvalidInput(f"envelope schema_version {version!r} is not supported (expected {ENVELOPE_VERSION})")
    try:
        return Envelope.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(f"invalid envelope: {'; '.join(validation_problems(exc))}") from None


class EnvelopeModel(kserve.Model):
    """Subclasses implement ``load_parts()`` and ``handle(body) -> dict`` (sync, CPU-bound)."""

    def __init__(self, name: str, settings: Settings):
        super().__init__(name)
        self.settings = settings
        self.ready = False

    def load_parts(self) -> None:
        raise NotImplementedError

    def load(self) -> bool:
        self.load_parts()
        self.ready = True
        return self.ready

    def handle(self, body: dict) -> dict:
        raise NotImplementedError

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        body, form = decode(payload)
        # Model work is CPU-bound; keep the event loop free for health checks and other requests.
        result = await asyncio.to_thread(self.handle, body)
        return encode(result, form, self.name)


def serve(model: kserve.Model, http_port: int, workers: int = 1) -> None:
    """Start one KServe ModelServer for one model (REST v1 + v2; no gRPC on a laptop)."""
    model.load()
    kserve.ModelServer(http_port=http_port, workers=workers, enable_grpc=False,
                       enable_latency_logging=False).start([model])
