"""What a node, a step and the whole graph answer, and KServe's error body for a routing error."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inference_graph.go_http import JSON_CT, sniff_content_type
from inference_graph.go_json import json_valid

ROUTING_ERROR = "Failed to process request"  # KServe's prepareErrorResponse message
SWITCH_NO_MATCH = "None of the routes matched with the switch condition"
INVALID_RESPONSE = "invalid response"  # a Sequence condition on a missing or non-JSON response
SPLITTER_NO_ROUTE = "no route was selected by the splitter"
FAILED_STEP_HEADER = "x-graph-failed-step"


def ok(status: int) -> bool:
    return 200 <= status <= 299


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_body(cause: str) -> bytes:
    """KServe's error body, and nothing else: which step failed goes in a header and the log."""
    return dumps({"error": ROUTING_ERROR, "cause": cause})


@dataclass(frozen=True, slots=True)
class GraphResponse:
    """What the graph answers: status, raw body, and the step whose status or error it carries
    (for the ``x-graph-failed-step`` header; never in the body)."""

    status: int
    body: bytes
    failed_step: str | None = None

    @property
    def content_type(self) -> str | None:
        # graphHandler sets application/json only for valid JSON; otherwise Go's ResponseWriter
        # sniffs the body (http.DetectContentType), and an empty body gets no Content-Type at all.
        return JSON_CT if json_valid(self.body)[0] else sniff_content_type(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's or node's outcome (Go: ``responseBytes, statusCode, nil``)."""

    body: bytes
    status: int
    failed_step: str | None = None  # set while the status is a non-2xx one from this service call


class RoutingError(Exception):
    """Go: ``nil, statusCode, err`` - the graph answers with KServe's error body. ``cause`` is what
    Go's error would say; ``detail`` (ours, for the log) says where and why."""

    def __init__(self, status: int, cause: str, step: str | None = None, detail: str | None = None):
        super().__init__(cause)
        self.status = status
        self.cause = cause
        self.step = step
        self.detail = detail or cause

    def as_child_error(self) -> "RoutingError":
        # Every parent node returns `nil, 500, err` for a child's error.
        return self if self.status == 500 else RoutingError(500, self.cause, self.step, self.detail)
