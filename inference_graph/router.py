"""A local InferenceGraph router that behaves as KServe's Go router (``cmd/router/main.go``, v0.20).

``GraphRouter`` walks the graph for one request; ``create_app`` serves it (any method and path
routes the graph, as Go's ``http.HandleFunc("/", graphHandler)`` does, except our ``/healthz``,
``/readyz`` and ``/metrics``); ``python -m inference_graph.router`` runs it.

What each node does (``routeStep`` in main.go; README.md has the table and the reasoning):

- The request body goes to the root node as received - empty, not JSON, anything: the first node
  judges it, as on a cluster.
- Sequence: steps in order. A step gets the node's input, or with ``data`` exactly ``$response``
  (not on the first step) the previous step's response body, whatever its status; any other
  ``data`` value sends the input. ``mapPredictionsToInstances`` turns a JSON object whose
  ``predictions`` is a non-empty list into ``{"instances": [...]}`` (that key alone). A step
  ``condition`` is a GJSON path checked against the *previous step's response*: no response (the
  first step) or not JSON -> 500 ``invalid response``; the path does not exist -> the Sequence
  stops and returns that response with status 200. A ``Hard`` step with a non-2xx status stops
  the Sequence, which returns that body and status; a Soft (or unset) step's failure flows on.
  The Sequence returns the last step's body and status.
- Switch: the first step whose condition exists in the node's input (which must be JSON) gets that
  input. None matching -> 404 ``None of the routes matched with the switch condition`` (500 when the
  Switch is not the root node: every parent turns a child's error into 500).
- Splitter: one step drawn by integer weight in [0, 100) gets the input.
- Ensemble: every step gets the input, concurrently. Each response must be a JSON object (or null);
  the node answers 200 with ``{stepName or index: response}`` re-encoded as Go's encoding/json does
  (keys sorted, numbers as float64). A Soft step's non-2xx response is merged like a success; a
  Hard one's is returned instead (re-encoded), with its status (first in step order).
- A failed call (connection refused, timeout, malformed URL, ...) is an error, whatever the
  dependency: the graph answers ``{"error": "Failed to process request", "cause": ...}``, KServe's
  error body and nothing else. Which step failed goes in the ``x-graph-failed-step`` response
  header and the log, never in a body.

What the mesh does under it (not KServe's router; see README.md "Replicas and retries"): a
service may have several endpoints (``service_urls`` maps a name to a URL or a list of them), and
``retry`` (an ``inference_graph.client.RetryPolicy``) retries a call that failed to connect, was
reset or outlived its per-try timeout on another endpoint - what Istio does for the router's calls
on a cluster. A call is "failed" in the sense above only when every try failed. The default
policy retries nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest,
)
from starlette.requests import Request  # module level: FastAPI resolves the handlers' annotations here
from starlette.responses import JSONResponse, Response

from inference_graph import conditions
from inference_graph.client import CALL_ERRORS, RetryPolicy, ServiceClient, TriesFailed, Upstream
from inference_graph.request_body import BodyTooLarge, read_body
from inference_graph.spec import (
    DATA_RESPONSE,
    DEFAULT_CRD_DIR,
    ROOT_NODE,
    InferenceGraph,
    RouterType,
    load_graph,
)

log = logging.getLogger(__name__)

ROUTING_ERROR = "Failed to process request"  # KServe's prepareErrorResponse message
SWITCH_NO_MATCH = "None of the routes matched with the switch condition"
INVALID_RESPONSE = "invalid response"  # a Sequence condition on a missing or non-JSON response
SPLITTER_NO_ROUTE = "no route was selected by the splitter"
FAILED_STEP_HEADER = "x-graph-failed-step"
JSON_CT = "application/json"
# KServe's constants.RouterTimeoutsServerRead/ServerWrite/ServerIdle (seconds), when the graph sets none.
DEFAULT_SERVER_READ_S, DEFAULT_SERVER_WRITE_S, DEFAULT_SERVER_IDLE_S = 60, 60, 180
PROPAGATE_ENV = "PROPAGATE_HEADERS"  # what KServe's controller sets from router.headers.propagate
# Never forwarded even when a propagation pattern matches: the client sets its own.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding",
                          "te", "trailer", "upgrade", "expect", "proxy-connection"})


# -- metrics ---------------------------------------------------------------------------------
class RouterMetrics:
    """The router's own metrics, on a registry of its own (one per app: tests build many in one
    process; the served router has one, at ``GET /metrics``)."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("naviyam_router_requests", "Graph requests answered, by HTTP status", ["status"],
                                registry=r)
        self.latency = Histogram("naviyam_router_request_seconds", "Time to answer a graph request",
                                 registry=r, buckets=self.BUCKETS)
        # A label per step path ("node/step"): the graph fixes them, requests cannot add any.
        self.steps = Histogram("naviyam_router_step_seconds", "Time of each service call of the graph, by step "
                                                              "and status (failed: no answer)", ["step", "status"],
                               registry=r, buckets=self.BUCKETS)

    def observe_step(self, step: str, status: int | str, started: float) -> None:
        self.steps.labels(step=step, status=str(status)).observe(time.perf_counter() - started)

    def observe_request(self, status: int, started: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(time.perf_counter() - started)


# -- results ---------------------------------------------------------------------------------
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
        return JSON_CT if _parse(self.body)[0] else sniff_content_type(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Result:
    """A step's or node's outcome (Go: ``responseBytes, statusCode, nil``)."""

    body: bytes
    status: int
    failed_step: str | None = None  # set while the status is a non-2xx one from this service call


class _RoutingError(Exception):
    """Go: ``nil, statusCode, err`` - the graph answers with KServe's error body. ``cause`` is what
    Go's error would say; ``detail`` (ours, for the log) says where and why."""

    def __init__(self, status: int, cause: str, step: str | None = None, detail: str | None = None):
        super().__init__(cause)
        self.status = status
        self.cause = cause
        self.step = step
        self.detail = detail or cause

    def as_child_error(self) -> "_RoutingError":
        # Every parent node returns `nil, 500, err` for a child's error.
        return self if self.status == 500 else _RoutingError(500, self.cause, self.step, self.detail)


@dataclass(frozen=True, slots=True)
class _Step:
    index: int
    label: str  # name, or index as KServe's Ensemble uses
    path: str  # "node/label", for the failed-step header and logs
    node: str | None  # nodeName target
    upstream: Upstream | None  # the resolved serviceName / serviceUrl: its endpoints and retry policy
    use_response: bool
    condition: str  # "" when unset, as Go's zero string
    hard: bool
    weight: int
    map_predictions: bool
    url_error: str | None  # what Go's url.Parse says of a serviceUrl it cannot parse

    @property
    def url(self) -> str | None:
        """The service's first endpoint (for messages and readiness)."""
        return self.upstream.urls[0] if self.upstream else None


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    kind: RouterType
    steps: tuple[_Step, ...]


def _ok(status: int) -> bool:
    return 200 <= status <= 299


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(body: bytes | None) -> tuple[bool, Any]:
    """(valid JSON?, value) - Go's json.Valid: strict JSON, no NaN/Infinity."""
    if not body:
        return False, None
    try:
        return True, json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # incl. UnicodeDecodeError, JSONDecodeError; absurd nesting
        return False, None


def gjson_exists(doc: Any, path: str | None) -> bool:
    """Go's ``gjson.Get(json, path).Exists()`` on a parsed (plain Python) document."""
    return conditions.exists(conditions.from_python(doc), path or "")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- Go's encoding/json, for the bodies the Go router re-encodes ---------------------------------
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")


class GoDecodeError(ValueError):
    """What json.Unmarshal would refuse (its message as ``str``)."""


def go_decode(body: bytes) -> Any:
    """json.Unmarshal into ``interface{}``: numbers become float64, invalid UTF-8 becomes U+FFFD."""
    if not body.strip():
        raise GoDecodeError("unexpected end of JSON input")
    try:
        value = json.loads(body.decode("utf-8", "replace"), parse_int=float, parse_float=float,
                           parse_constant=_reject_constant)
    except RecursionError:
        raise GoDecodeError("exceeded max depth") from None
    except ValueError:
        first = body.lstrip()[:1].decode("latin-1")
        raise GoDecodeError(f"invalid character {first!r} looking for beginning of value"
                            if first not in '{["-0123456789tfn' else "invalid JSON") from None
    _check_finite(value)
    return value


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise GoDecodeError("json: cannot unmarshal number into Go value of type float64")
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(v)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v)


def _go_float(f: float) -> str:
    # strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it: shortest digits.
    if f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21):
        text = repr(f)
        return text[:-2] + text[-1] if re.search(r"e-0\d$", text) else text
    return format(Decimal(repr(f)).normalize(), "f")


def _go_string(s: str) -> str:
    text = json.dumps(_LONE_SURROGATE.sub("\ufffd", s), ensure_ascii=False)
    return _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group()], text)


def _go_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    items = sorted(((_LONE_SURROGATE.sub("\ufffd", k), v) for k, v in value.items()),
                   key=lambda kv: kv[0].encode("utf-8"))
    return "{" + ",".join(f"{_go_string(k)}:{_go_json(v)}" for k, v in items) + "}"


def go_marshal(value: Any) -> bytes:
    """json.Marshal of a decoded ``interface{}``: map keys sorted, floats in Go's shortest form,
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    return _go_json(value).encode("utf-8")


class _Pairs(list):
    """A JSON object's (key, value) pairs, told apart from an array."""


def _map_predictions_to_instances(data: bytes) -> bytes:
    """``mapPredictionsToInstances``: Go decodes the request into ``{predictions, instances}``
    (keys matched case-insensitively, other keys dropped); when that succeeds and ``predictions``
    is a non-empty list, the request becomes ``{"instances": predictions}``; else it goes as is."""
    try:
        pairs = json.loads(data.decode("utf-8", "replace"), object_pairs_hook=_Pairs, parse_int=float,
                           parse_float=float, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return data
    if not isinstance(pairs, _Pairs):
        return data  # null decodes to nothing to move; an array or scalar fails the decode
    fields: dict[str, Any] = {}
    for key, value in pairs:
        field = key.casefold()
        if field in ("predictions", "instances"):
            if value is not None and (not isinstance(value, list) or isinstance(value, _Pairs)):
                return data  # a type mismatch is a decode error: the request goes unchanged
            fields[field] = value
    predictions = fields.get("predictions")
    if not predictions:
        return data
    try:
        restored = [_plain(v) for v in predictions]
        _check_finite(restored)
    except GoDecodeError:
        return data
    return b'{"instances":' + go_marshal(restored) + b"}"


def _plain(value: Any) -> Any:
    """Pairs back to dicts, the last duplicate winning (Go's map)."""
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- HTTP details as Go's net/http has them --------------------------------------------------------
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def canonical_header(name: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: ``x-request-id`` -> ``X-Request-Id`` (names with a
    character outside the token set are left as they are)."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return name
    out, upper = [], True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


# Python re features RE2 (Go's regexp) refuses: Go skips such a pattern, so must we.
_NOT_RE2 = re.compile(r"\(\?(?:[=!]|<[=!]|P=)|\\[1-9]")


def compile_header_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """KServe's compilePatterns: each pattern that compiles, in order; one that does not is
    logged and skipped (the router still starts)."""
    compiled = []
    for p in patterns:
        try:
            if _NOT_RE2.search(p):
                raise re.error("uses syntax Go's regexp does not have (lookaround or a backreference)")
            compiled.append(re.compile(p))
        except re.error as exc:
            log.error("failed to compile header pattern %r, skipped: %s", p, exc)
    return compiled


def patterns_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """``PROPAGATE_HEADERS``, comma-separated, as KServe's router reads it (unset: none)."""
    value = environ.get(PROPAGATE_ENV)
    return [] if value is None else value.split(",")


_HOST_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")


def url_error(url: str) -> str | None:
    """What Go's url.Parse refuses in a service URL (the host's characters), as its error says."""
    try:
        host = urlsplit(url).netloc.rpartition("@")[2]
    except ValueError as exc:
        return f'parse "{url}": {exc}'
    bad = next((ch for ch in host if not _HOST_OK.fullmatch(ch)), None)
    return f'parse "{url}": invalid character "{bad}" in host name' if bad else None


def _go_call_error(url: str, exc: BaseException | None, timeout: bool = False) -> str:
    """The cause Go's http.Client gives for a call that got no answer (url.Error's format)."""
    if timeout or isinstance(exc, TimeoutError):
        return f'Post "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc) or "refused" in str(exc).lower():
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f'Post "{url}": dial tcp {parts.hostname}:{port}: connect: connection refused'
    return f'Post "{url}": {type(exc).__name__}: {exc}'


_HTML_SIGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT", b"<TABLE",
              b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--")
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x1f\x8b\x08", "application/x-gzip"),
          (b"PK\x03\x04", "application/zip"), (b"\xfe\xff", "text/plain; charset=utf-16be"),
          (b"\xff\xfe", "text/plain; charset=utf-16le"), (b"\xef\xbb\xbf", "text/plain; charset=utf-8"))
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniff_content_type(body: bytes) -> str | None:
    """The common cases of Go's http.DetectContentType (what a Go handler's response gets when it
    sets no Content-Type); None for an empty body."""
    if not body:
        return None
    head = body[:512]
    text = head.lstrip(b"\t\n\x0c\r ")
    for sig in _HTML_SIGS:
        if text[:len(sig)].upper() == sig and text[len(sig):len(sig) + 1] in (b" ", b">"):
            return "text/html; charset=utf-8"
    if text.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    return "application/octet-stream" if any(b in _BINARY for b in head) else "text/plain; charset=utf-8"


# -- the router ------------------------------------------------------------------------------
class GraphRouter:
    """Routes requests through ``graph`` from its ``root`` node.

    ``service_urls`` maps each ``serviceName`` to a full predict URL (what KServe's controller
    resolves on a cluster). ``step_timeout_s`` bounds each service call (default: the graph's
    ``routerTimeouts.serviceClient``, Go's HTTP client timeout; a timed-out call is a failed call:
    500). ``graph_timeout_s`` bounds the whole request (default: the graph's ``spec.timeout``,
    which the platform enforces on a cluster; on expiry the graph answers 504). ``client`` is reused
    for every call (keep-alive); without one the router makes and owns one. ``propagate_headers``
    are regexes matched (case-sensitively, unanchored) against each request header's canonical
    name (``X-Request-Id``); matching headers are passed on to every step (KServe's
    ``PROPAGATE_HEADERS``; a pattern that does not compile is logged and skipped). ``rng`` draws
    the Splitter's routes. ``service_urls`` values may list several endpoints; ``retry`` is the
    mesh's retry policy for every service call (the step timeout bounds all tries of one call
    together). ``metrics`` times every service call (a private ``RouterMetrics`` when not given).
    """

    def __init__(self, graph: InferenceGraph, service_urls: Mapping[str, str | Sequence[str]],
                 step_timeout_s: float | None = None, client: ServiceClient | None = None, *,
                 graph_timeout_s: float | None = None, rng: random.Random | None = None,
                 propagate_headers: Iterable[str] = (), retry: RetryPolicy | None = None,
                 metrics: RouterMetrics | None = None):
        graph.validate_graph()
        missing = sorted(graph.service_names() - set(service_urls))
        if missing:
            raise ValueError(f"no URL for service(s) {', '.join(missing)} of graph {graph.name!r} "
                             f"(known: {', '.join(sorted(service_urls)) or 'none'})")
        for warning in graph.run_time_warnings():
            log.warning("graph %s: %s", graph.name, warning)
        self.graph = graph
        self.service_urls = {name: endpoints(urls) for name, urls in service_urls.items()}
        self.retry = retry or RetryPolicy()
        # One Upstream per service (shared by every step that calls it: round-robin and ejections
        # are the service's, not the step's); a serviceUrl step gets its own single endpoint.
        self._upstreams = {name: Upstream(name, urls, self.retry) for name, urls in self.service_urls.items()}
        rt = graph.spec.router_timeouts
        self.step_timeout_s = step_timeout_s if step_timeout_s is not None else (
            float(rt.service_client) if rt and rt.service_client else None)
        self.graph_timeout_s = graph_timeout_s if graph_timeout_s is not None else (
            float(graph.spec.timeout) if graph.spec.timeout else None)
        self._rng = rng or random.Random()
        self._patterns = compile_header_patterns(propagate_headers)
        self._client = client
        self._owns_client = client is None
        self.metrics = metrics if metrics is not None else RouterMetrics()
        self._nodes = {name: self._compile(name, node) for name, node in graph.nodes.items()}

    def _compile(self, name: str, node) -> _Node:
        steps = []
        for i, s in enumerate(node.steps):
            upstream = None
            if s.service_name:
                upstream = self._upstreams[s.service_name]
            elif s.service_url:
                upstream = self._upstreams.setdefault(s.service_url, Upstream(s.service_url, [s.service_url],
                                                                              self.retry))
            steps.append(_Step(index=i, label=s.label(i), path=f"{name}/{s.label(i)}", node=s.node_name,
                               upstream=upstream, use_response=s.data == DATA_RESPONSE and i > 0,
                               condition=s.condition or "", hard=s.is_hard, weight=s.weight or 0,
                               map_predictions=bool(s.map_predictions_to_instances),
                               url_error=url_error(s.service_url) if s.service_url else None))
        return _Node(name, node.router_type, tuple(steps))

    # -- client --------------------------------------------------------------------------
    @property
    def client(self) -> ServiceClient:
        if self._client is None:
            self._client = new_client()
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def service_targets(self) -> dict[str, str]:
        """``step path -> URL`` of every service the graph calls (a service's first endpoint)."""
        return {s.path: s.url for n in self._nodes.values() for s in n.steps if s.url}

    def endpoint_urls(self) -> list[str]:
        """Every endpoint of every service the graph calls."""
        return sorted({u for n in self._nodes.values() for s in n.steps if s.upstream for u in s.upstream.urls})

    # -- entry points ----------------------------------------------------------------------
    async def route(self, request_json: Any, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
                    ) -> tuple[int, bytes]:
        """Route one JSON request; returns (status, body bytes)."""
        resp = await self.route_bytes(_dumps(request_json), headers)
        return resp.status, resp.body

    async def route_bytes(self, body: bytes,
                          headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> GraphResponse:
        """Route a raw request body, whatever it holds (KServe's graphHandler)."""
        out_headers = self._outgoing_headers(headers)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.graph_timeout_s):
                res = await self._route_node(ROOT_NODE, body, out_headers)
        except TimeoutError:
            cause = f"the graph did not answer within its timeout of {self.graph_timeout_s:g}s"
            log.warning("graph %s: %s", self.graph.name, cause)
            return GraphResponse(504, _dumps({"error": ROUTING_ERROR, "cause": cause}))
        except _RoutingError as exc:
            where = f" (step {exc.step})" if exc.step else ""
            log.warning("graph %s: %s%s, answered %d", self.graph.name, exc.detail, where, exc.status)
            return GraphResponse(exc.status, _dumps({"error": ROUTING_ERROR, "cause": exc.cause}), exc.step)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("graph %s answered in %.2f ms", self.graph.name, (time.perf_counter() - started) * 1e3)
        if res.failed_step and not _ok(res.status):
            log.info("graph %s: answered %d from step %s", self.graph.name, res.status, res.failed_step)
            return GraphResponse(res.status, res.body, res.failed_step)
        return GraphResponse(res.status, res.body)

    def _outgoing_headers(self, headers) -> list[tuple[str, str]]:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        out = []
        if self._patterns:
            # Go's http.Header holds canonical names; its patterns are matched against those.
            for k, v in items:
                name = canonical_header(k)
                if name.lower() not in _HOP_HEADERS and any(p.search(name) for p in self._patterns):
                    out.append((name, v))
        if not any(k.lower() == "content-type" and v for k, v in out):
            out.append(("Content-Type", JSON_CT))
        return out

    # -- nodes (Go: routeStep) -----------------------------------------------------------------
    async def _route_node(self, name: str, data: bytes, headers: list[tuple[str, str]]) -> _Result:
        node = self._nodes.get(name)
        if node is None:
            # Go reads the zero InferenceRouter of a node that is not in the graph.
            raise _RoutingError(500, "invalid route type: ", name, f'no node "{name}" in the graph')
        if node.kind is RouterType.SEQUENCE:
            return await self._sequence(node, data, headers)
        if node.kind is RouterType.ENSEMBLE:
            return await self._ensemble(node, data, headers)
        if node.kind is RouterType.SWITCH:
            step = self._pick_by_condition(node, data)
            if step is None:
                raise _RoutingError(404, SWITCH_NO_MATCH, name, f'{SWITCH_NO_MATCH} (Switch node "{name}")')
            return await self._execute(step, data, headers)
        if node.kind is RouterType.SPLITTER:
            step = self._pick_by_weight(node)
            if step is None:
                raise _RoutingError(500, SPLITTER_NO_ROUTE, name, f'{SPLITTER_NO_ROUTE} (Splitter node "{name}")')
            return await self._execute(step, data, headers)
        raise _RoutingError(500, f"invalid route type: {node.kind.value}", name)  # pragma: no cover

    async def _sequence(self, node: _Node, data: bytes, headers) -> _Result:
        last: _Result | None = None
        for step in node.steps:
            request = last.body if (step.use_response and last is not None) else data
            if step.map_predictions:
                request = _map_predictions_to_instances(request)
            if step.condition:
                # Checked against the previous step's response (none for the first step), not the input.
                valid, doc = conditions.parse(last.body if last is not None else None)
                if not valid:
                    raise _RoutingError(500, INVALID_RESPONSE, step.path,
                                        f"step {step.path} has a condition and the previous step's response is "
                                        + ("not JSON" if last is not None else "missing (it is the first step)"))
                if not self._condition_holds(step, doc):
                    log.debug("%s: condition %r unmet, the sequence stops", step.path, step.condition)
                    return _Result(last.body, 200)  # type: ignore[union-attr]
            last = await self._execute(step, request, headers)
            if step.hard and not _ok(last.status):
                log.info("%s: hard dependency answered %d, the sequence stops", step.path, last.status)
                return last
        if last is None:  # pragma: no cover - spec validation refuses empty Sequences
            raise _RoutingError(500, "empty Sequence", node.name)
        return last

    async def _ensemble(self, node: _Node, data: bytes, headers) -> _Result:
        tasks = [asyncio.create_task(self._ensemble_member(step, data, headers)) for step in node.steps]
        try:
            merged: dict[str, Any] = {}
            for i, step in enumerate(node.steps):
                # Wait for step i, failing fast when another step errs first (Go: select on errChan).
                while not tasks[i].done():
                    await asyncio.wait([t for t in tasks[i:] if not t.done()], return_when=asyncio.FIRST_COMPLETED)
                    for t in tasks[i + 1:]:
                        if t.done() and t.exception() is not None:
                            raise t.exception()  # type: ignore[misc]
                res, value = tasks[i].result()
                if step.hard and not _ok(res.status):
                    log.info("%s: hard dependency answered %d, the ensemble fails", step.path, res.status)
                    return _Result(go_marshal(value), res.status, res.failed_step)
                if not _ok(res.status):
                    log.info("%s: soft dependency answered %d, merged as is", step.path, res.status)
                merged[step.label] = value
            return _Result(go_marshal(merged), 200)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()

    async def _ensemble_member(self, step: _Step, data: bytes, headers) -> tuple[_Result, Any]:
        res = await self._execute(step, data, headers)
        # Go unmarshals into map[string]interface{}: an object or null, nothing else.
        try:
            value = go_decode(res.body)
            if value is not None and not isinstance(value, dict):
                kind = {list: "array", str: "string", float: "number", bool: "bool"}[type(value)]
                raise GoDecodeError(f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
        except GoDecodeError as exc:
            raise _RoutingError(500, str(exc), step.path,
                                f"step {step.path} answered {res.status} with a body that is not a JSON object: "
                                f"{res.body[:200]!r}") from None
        return res, value

    def _condition_holds(self, step: _Step, doc: Any) -> bool:
        try:
            return conditions.exists(doc, step.condition)
        except conditions.UnsupportedCondition as exc:  # pragma: no cover - refused when the graph loads
            raise _RoutingError(500, f"unsupported condition {step.condition!r}", step.path, str(exc)) from None

    def _pick_by_condition(self, node: _Node, data: bytes) -> _Step | None:
        valid, doc = conditions.parse(data)
        if not valid:
            return None
        for step in node.steps:
            if self._condition_holds(step, doc):
                return step
        return None

    def _pick_by_weight(self, node: _Node) -> _Step | None:
        point = self._rng.randrange(100)  # Go: crypto/rand.Int(100), in [0, 100)
        end = 0
        for step in node.steps:
            end += step.weight
            if point < end:
                return step
        return None

    # -- steps (Go: executeStep / callService) -------------------------------------------------
    async def _execute(self, step: _Step, data: bytes, headers) -> _Result:
        try:
            if step.node is not None:
                return await self._route_node(step.node, data, headers)
            return await self._call(step, data, headers)
        except _RoutingError as exc:
            raise exc.as_child_error() from None

    async def _call(self, step: _Step, data: bytes, headers) -> _Result:
        upstream = step.upstream
        assert upstream is not None
        if step.url_error:
            raise _RoutingError(500, step.url_error, step.path)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.step_timeout_s):
                url, resp = await upstream.post(self.client, data, headers)
        except TimeoutError:
            self.metrics.observe_step(step.path, "failed", started)
            raise _RoutingError(500, _go_call_error(step.url or "", None, timeout=True), step.path,
                                f"step {step.path} ({step.url}): no answer within the step timeout of "
                                f"{self.step_timeout_s:g}s") from None
        except TriesFailed as exc:
            self.metrics.observe_step(step.path, "failed", started)
            url, err = exc.tries[-1]
            if len(exc.tries) == 1:
                detail = (f"no answer within the per-try timeout of {self.retry.per_try_timeout_s:g}s"
                          if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}")
                detail = f"step {step.path} ({url}): {detail}"
            else:
                detail = f"step {step.path}: all {len(exc.tries)} tries failed: {exc}"
            raise _RoutingError(500, _go_call_error(url, err), step.path, detail) from None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (%s) -> %d in %.2f ms", step.path, url, resp.status_code,
                      (time.perf_counter() - started) * 1e3)
        status = resp.status_code
        self.metrics.observe_step(step.path, status, started)
        return _Result(resp.content, status, None if _ok(status) else step.path)


def endpoints(urls: str | Sequence[str]) -> list[str]:
    """A service's endpoint list from one URL or several."""
    out = [urls] if isinstance(urls, str) else list(urls)
    if not out or not all(isinstance(u, str) and u for u in out):
        raise ValueError(f"a service needs one or more URLs, got {urls!r}")
    return out


def new_client(max_connections: int = 100) -> ServiceClient:
    """The router's HTTP client (see inference_graph/client.py for why aiohttp)."""
    return ServiceClient(max_connections=max_connections)


# -- the HTTP app ----------------------------------------------------------------------------
def load_service_urls(path: str | Path) -> dict[str, str | list[str]]:
    """``services.yaml``: ``{serviceName: predict URL or [URL, ...] (replicas)}``, optionally under a
    ``services:`` key."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
        doc = doc["services"]

    def is_urls(v: Any) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(u, str) for u in v))

    if not isinstance(doc, dict) or not all(isinstance(k, str) and is_urls(v) for k, v in doc.items()):
        raise ValueError(f"{path}: expected a mapping of service name to URL (or a list of URLs)")
    return dict(doc)


def readiness_url(predict_url: str) -> str | None:
    """KServe model readiness URL of a predict URL (v1 ``:predict`` or v2 ``/infer``)."""
    if predict_url.endswith(":predict"):
        return predict_url[: -len(":predict")]
    if predict_url.endswith("/infer"):
        return predict_url[: -len("/infer")] + "/ready"
    return None


def server_timeouts(graph: InferenceGraph) -> tuple[float, float, float]:
    """(serverRead, serverWrite, serverIdle) seconds of ``routerTimeouts``, KServe's defaults
    (60, 60, 180) for those it leaves unset (Go: initTimeouts)."""
    rt = graph.spec.router_timeouts
    read = rt.server_read if rt and rt.server_read is not None else DEFAULT_SERVER_READ_S
    write = rt.server_write if rt and rt.server_write is not None else DEFAULT_SERVER_WRITE_S
    idle = rt.server_idle if rt and rt.server_idle is not None else DEFAULT_SERVER_IDLE_S
    return float(read), float(write), float(idle)


def _serving_app_class():
    from fastapi import FastAPI

    class RouterApp(FastAPI):
        """The router's ASGI app with Go's http.Server ReadTimeout and WriteTimeout, applied here,
        outside Starlette's middleware, where the server's own ``send`` (and so the connection) is
        still at hand. ``server_read_s``: the request body must have arrived by then (Go's handler
        ignores the read error and routes what it got; so does this). ``server_write_s``: a
        response not begun by then is never written - Go's write fails and the connection
        closes, so the client sees it close without an answer."""

        server_read_s: float | None = None
        server_write_s: float | None = None

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] != "http" or (self.server_read_s is None and self.server_write_s is None):
                await super().__call__(scope, receive, send)
                return
            started = time.monotonic()
            read_s, write_s = self.server_read_s, self.server_write_s
            body_done = False
            dropped = False

            async def timed_receive():
                nonlocal body_done
                if body_done or read_s is None:
                    return await receive()
                try:
                    async with asyncio.timeout(max(0.0, started + read_s - time.monotonic())):
                        message = await receive()
                except TimeoutError:
                    log.warning("request body not complete within serverRead (%gs): routed with what arrived",
                                read_s)
                    message = {"type": "http.request", "body": b"", "more_body": False}
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
                return message

            async def timed_send(message) -> None:
                nonlocal dropped
                if dropped:
                    return
                if (message["type"] == "http.response.start" and write_s is not None
                        and time.monotonic() - started > write_s):
                    dropped = True
                    log.warning("%s %s: the answer came after serverWrite (%gs): connection closed without it",
                                scope.get("method"), scope.get("path"), write_s)
                    # uvicorn's send is its request cycle's bound method; the cycle holds the transport.
                    transport = getattr(getattr(send, "__self__", None), "transport", None)
                    if transport is None:
                        raise ConnectionAbortedError(f"no answer within serverWrite ({write_s:g}s)")
                    transport.abort()
                    await asyncio.sleep(0)  # connection_lost marks the cycle disconnected: no 500 follows
                    return
                await send(message)

            await super().__call__(scope, timed_receive, timed_send)

    return RouterApp


# Every method Go's ServeMux hands to graphHandler; HEAD comes with GET.
_GRAPH_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(graph_path: str | Path, service_urls: Mapping[str, str | Sequence[str]], *,
               step_timeout_s: float | None = None, graph_timeout_s: float | None = None,
               propagate_headers: Sequence[str] = (), rng: random.Random | None = None,
               client: ServiceClient | None = None, crd_dir: Path | None = DEFAULT_CRD_DIR,
               retry: RetryPolicy | None = None, max_body_bytes: int | None = None):
    """FastAPI app: any request outside the paths below routes the graph with its raw body, as
    KServe's router does; ``GET /healthz`` (alive); ``GET /readyz`` (ready; ``?deep=true`` also
    asks every model server whether it is ready); ``GET /metrics`` (Prometheus text: requests by
    status, latency, each step's calls, the process's CPU and memory). ``max_body_bytes`` (ours,
    off by default like Go) answers 413 to a larger body before it is read. The graph's
    ``routerTimeouts.serverRead``/``serverWrite`` apply to every request (``serverIdle`` is the
    server's keep-alive, set by ``main``)."""
    graph = load_graph(graph_path, crd_dir=crd_dir)
    metrics = RouterMetrics()
    ProcessCollector(registry=metrics.registry)
    router = GraphRouter(graph, service_urls, step_timeout_s, client, graph_timeout_s=graph_timeout_s,
                         rng=rng, propagate_headers=propagate_headers, retry=retry, metrics=metrics)
    state = {"shutting_down": False}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        state["shutting_down"] = True
        await router.aclose()

    app = _serving_app_class()(title=f"InferenceGraph {graph.name}", lifespan=lifespan, docs_url=None,
                               redoc_url=None, openapi_url=None)
    app.server_read_s, app.server_write_s, _idle = server_timeouts(graph)
    app.state.router = router

    def too_large() -> Response:
        return JSONResponse({"error": "Payload too large", "cause": f"the request body is over {max_body_bytes} bytes"},
                            status_code=413)

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        resp = await answer(request)
        metrics.observe_request(resp.status_code, started)
        return resp

    async def answer(request: Request) -> Response:
        try:
            raw = await read_body(request, max_body_bytes)
        except BodyTooLarge:
            return too_large()
        resp = await router.route_bytes(raw, request.headers.items())
        headers = {FAILED_STEP_HEADER: resp.failed_step} if resp.failed_step else None
        return Response(resp.body, status_code=resp.status, media_type=resp.content_type, headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz")
    async def readyz(deep: bool = False) -> Response:
        if state["shutting_down"]:
            return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503)
        body: dict[str, Any] = {"ready": True, "graph": graph.name}
        if deep:
            services = await _probe_services(router)
            body["services"] = services
            body["ready"] = all(services.values())
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    # Last, so the paths above win for their GETs; everything else is the graph's.
    app.add_api_route("/{path:path}", infer, methods=_GRAPH_METHODS, include_in_schema=False)
    return app


async def _probe_services(router: GraphRouter) -> dict[str, bool]:
    urls = router.endpoint_urls()

    async def probe(url: str) -> tuple[str, bool]:
        ready_url = readiness_url(url)
        if ready_url is None:
            return url, True  # unknown protocol: nothing to ask
        try:
            resp = await router.client.get(ready_url, timeout=2.0)
        except (*CALL_ERRORS, TimeoutError):
            return url, False
        return url, resp.status_code == 200

    return dict(await asyncio.gather(*(probe(u) for u in sorted(urls))))


# -- CLI -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference_graph.router",
                                     description="Serve an InferenceGraph over local KServe model servers.")
    parser.add_argument("--graph", required=True, help="InferenceGraph YAML")
    parser.add_argument("--services", help="YAML mapping serviceName -> predict URL")
    parser.add_argument("--service", action="append", default=[], metavar="NAME=URL",
                        help="a service URL (repeatable; overrides --services)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--step-timeout", type=float, default=None, help="seconds per service call")
    parser.add_argument("--graph-timeout", type=float, default=None, help="seconds per request (default: spec.timeout)")
    parser.add_argument("--propagate-header", action="append", default=[], metavar="REGEX",
                        help="pass request headers whose canonical name (X-Request-Id) matches to every step "
                             f"(repeatable; added to the comma-separated ${PROPAGATE_ENV}, read as KServe does)")
    parser.add_argument("--retries", type=int, default=0,
                        help="retry a failed call this many times on another endpoint (Istio retries.attempts)")
    parser.add_argument("--per-try-timeout", type=float, default=None, help="seconds per try (perTryTimeout)")
    parser.add_argument("--retry-on", default="connect-failure,reset", help="comma-separated: connect-failure, reset")
    parser.add_argument("--ejection", type=float, default=0.0,
                        help="seconds an endpoint whose try failed sits out (outlierDetection.baseEjectionTime)")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="larger request bodies get 413 before they are read (default: no limit, as KServe)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    urls = load_service_urls(args.services) if args.services else {}
    for item in args.service:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            parser.error(f"--service expects NAME=URL, got {item!r}")
        urls[name] = url
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        retry = RetryPolicy(attempts=args.retries, per_try_timeout_s=args.per_try_timeout,
                            retry_on=frozenset(filter(None, (p.strip() for p in args.retry_on.split(",")))),
                            ejection_s=args.ejection)
        app = create_app(args.graph, urls, step_timeout_s=args.step_timeout, graph_timeout_s=args.graph_timeout,
                         propagate_headers=[*patterns_from_env(), *args.propagate_header], retry=retry,
                         max_body_bytes=args.max_body_bytes)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    idle_s = server_timeouts(app.state.router.graph)[2]  # Go's IdleTimeout: how long a keep-alive waits
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False,
                timeout_keep_alive=int(idle_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
