"""A local InferenceGraph router with the semantics of KServe's Go router (``cmd/router/main.go``).

``GraphRouter`` walks the graph for one request; ``create_app`` serves it (``POST /``, like KServe's
router, plus ``/healthz``, ``/readyz`` and ``/metrics``); ``python -m inference_graph.router`` runs it.

What each node does (mirroring ``routeStep`` in main.go; see README.md for the reasoning):

- Sequence: steps in order. A step gets the node's input, or with ``data: $response`` (not on the
  first step) the previous step's response body, whatever its status. A step ``condition`` is a GJSON
  path checked against the *previous step's response*: if that response is not JSON -> 500; if the
  path does not exist -> the Sequence stops and returns that response with status 200. A ``Hard`` step
  with a non-2xx status stops the Sequence, which returns that body and status; a Soft (or unset)
  step's failure flows on. The Sequence returns the last step's body and status.
- Switch: the first step whose condition exists in the node's input (which must be JSON) gets that
  input. None matching -> error 404 "None of the routes matched with the switch condition" (500
  when the Switch is not the root node: every parent turns a child's error into 500).
- Splitter: one step drawn by integer weight (the weights sum to 100) gets the input.
- Ensemble: every step gets the input, concurrently. Each response must be a JSON object (or null);
  the node answers 200 with ``{stepName or index: response}``. A Soft step's non-2xx response is
  merged like a success; a Hard one's is returned instead, with its status (first in step order).
- A failed call (connection refused, timeout, ...) is an error, whatever the dependency: the graph
  answers 500 ``{"error": "Failed to process request", "cause": ...}`` - KServe's error body, plus
  ``failed_step`` (ours).

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
import random
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gjson
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest,
)
from starlette.requests import Request  # module level: FastAPI resolves the handlers' annotations here
from starlette.responses import JSONResponse, Response

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
FAILED_STEP_KEY = "failed_step"
FAILED_STEP_HEADER = "x-graph-failed-step"
JSON_CT = "application/json"
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
    """What the graph answers: status, raw body, and the step whose non-2xx status it carries."""

    status: int
    body: bytes
    failed_step: str | None = None

    @property
    def content_type(self) -> str | None:
        return JSON_CT if _parse(self.body)[0] else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Result:
    """A step's or node's outcome (Go: ``responseBytes, statusCode, nil``)."""

    body: bytes
    status: int
    failed_step: str | None = None  # set while the status is a non-2xx one from this service call


class _RoutingError(Exception):
    """Go: ``nil, statusCode, err`` - the graph answers with KServe's error body."""

    def __init__(self, status: int, cause: str, step: str | None = None):
        super().__init__(cause)
        self.status = status
        self.cause = cause
        self.step = step

    def as_child_error(self) -> "_RoutingError":
        # Every parent node returns `nil, 500, err` for a child's error.
        return self if self.status == 500 else _RoutingError(500, self.cause, self.step)


@dataclass(frozen=True, slots=True)
class _Step:
    index: int
    label: str  # name, or index as KServe's Ensemble uses
    path: str  # "node/label", for errors and logs
    node: str | None  # nodeName target
    upstream: Upstream | None  # the resolved serviceName / serviceUrl: its endpoints and retry policy
    use_response: bool
    condition: str | None
    hard: bool
    weight: int
    map_predictions: bool

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
    """(valid JSON?, value) - Go's gjson.ValidBytes/json.Valid: strict JSON, no NaN/Infinity."""
    if not body:
        return False, None
    try:
        return True, json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # incl. UnicodeDecodeError, JSONDecodeError; absurd nesting
        return False, None


def gjson_exists(doc: Any, path: str | None) -> bool:
    """Go's ``gjson.Get(json, path).Exists()`` on a parsed document, via gjson-py (which raises
    where Go returns a non-existent result)."""
    if not path:
        return False
    try:
        gjson.get(doc, path)
    except Exception:  # GJSONError and friends: nothing at that path, or a query gjson cannot read
        return False
    return True


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the router ------------------------------------------------------------------------------
class GraphRouter:
    """Routes requests through ``graph`` from its ``root`` node.

    ``service_urls`` maps each ``serviceName`` to a full predict URL (what KServe's controller
    resolves on a cluster). ``step_timeout_s`` bounds each service call (ours; defaults to the
    graph's ``routerTimeouts.serviceClient``; a timed-out call is a failed call: 500).
    ``graph_timeout_s`` bounds the whole request (default: the graph's ``spec.timeout``; on expiry
    the graph answers 504). ``client`` is reused for every call (keep-alive); without one the router
    makes and owns one. ``propagate_headers`` are regexes of request header names passed on to
    every step (KServe's ``PROPAGATE_HEADERS``). ``rng`` draws the Splitter's routes.
    ``service_urls`` values may list several endpoints; ``retry`` is the mesh's retry policy for
    every service call (the step timeout bounds all tries of one call together). ``metrics``
    times every service call (a private ``RouterMetrics`` when not given).
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
        self._patterns = [re.compile(p, re.IGNORECASE) for p in propagate_headers]
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
                               upstream=upstream, use_response=s.data == DATA_RESPONSE,
                               condition=s.condition,
                               hard=s.is_hard, weight=s.weight or 0,
                               map_predictions=bool(s.map_predictions_to_instances)))
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
    async def route(self, request_json: dict, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
                    ) -> tuple[int, bytes]:
        """Route one request; returns (status, body bytes)."""
        resp = await self.route_bytes(_dumps(request_json), headers)
        return resp.status, resp.body

    async def route_bytes(self, body: bytes,
                          headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> GraphResponse:
        """Route a raw request body (KServe's graphHandler)."""
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
            log.warning("graph %s: %s (status %d)", self.graph.name, exc.cause, exc.status)
            err = {"error": ROUTING_ERROR, "cause": exc.cause}
            if exc.step:
                err[FAILED_STEP_KEY] = exc.step
            return GraphResponse(exc.status, _dumps(err), exc.step)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("graph %s answered in %.2f ms", self.graph.name, (time.perf_counter() - started) * 1e3)
        if res.failed_step and not _ok(res.status):
            return GraphResponse(res.status, _annotate(res.body, res.failed_step), res.failed_step)
        return GraphResponse(res.status, res.body)

    def _outgoing_headers(self, headers) -> list[tuple[str, str]]:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        out = [(k, v) for k, v in items
               if k.lower() not in _HOP_HEADERS and any(p.search(k) for p in self._patterns)] if self._patterns else []
        if not any(k.lower() == "content-type" for k, _ in out):
            out.append(("content-type", JSON_CT))
        return out

    # -- nodes (Go: routeStep) -----------------------------------------------------------------
    async def _route_node(self, name: str, data: bytes, headers: list[tuple[str, str]]) -> _Result:
        node = self._nodes[name]
        if node.kind is RouterType.SEQUENCE:
            return await self._sequence(node, data, headers)
        if node.kind is RouterType.ENSEMBLE:
            return await self._ensemble(node, data, headers)
        if node.kind is RouterType.SWITCH:
            step = self._pick_by_condition(node, data)
            if step is None:
                raise _RoutingError(404, f'{SWITCH_NO_MATCH} (node "{name}")', name)
            return await self._execute(step, data, headers)
        if node.kind is RouterType.SPLITTER:
            return await self._execute(self._pick_by_weight(node), data, headers)
        raise _RoutingError(500, f"invalid route type: {node.kind}", name)  # pragma: no cover

    async def _sequence(self, node: _Node, data: bytes, headers) -> _Result:
        last: _Result | None = None
        for step in node.steps:
            request = last.body if (step.use_response and last is not None) else data
            if step.condition:
                # Checked against the previous step's response, not against this step's input.
                valid, doc = _parse(last.body if last is not None else None)
                if not valid:
                    raise _RoutingError(500, f"invalid response: step {step.path} has a condition but the "
                                             "previous step's response is not JSON", step.path)
                if not gjson_exists(doc, step.condition):
                    log.debug("%s: condition %r unmet, the sequence stops", step.path, step.condition)
                    return _Result(last.body, 200)  # type: ignore[union-attr]
            last = await self._execute(step, request, headers)
            if step.hard and not _ok(last.status):
                log.info("%s: hard dependency answered %d, the sequence stops", step.path, last.status)
                return last
        assert last is not None  # validation forbids empty nodes
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
                    return _Result(_dumps(value), res.status, res.failed_step)
                if not _ok(res.status):
                    log.info("%s: soft dependency answered %d, merged as is", step.path, res.status)
                merged[step.label] = value
            return _Result(_dumps(merged), 200)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()

    async def _ensemble_member(self, step: _Step, data: bytes, headers) -> tuple[_Result, Any]:
        res = await self._execute(step, data, headers)
        valid, value = _parse(res.body)
        # Go unmarshals into map[string]interface{}: an object or null, nothing else.
        if not valid or not (value is None or isinstance(value, dict)):
            raise _RoutingError(500, f"step {step.path} answered {res.status} with a body that is not a JSON "
                                     f"object: {res.body[:200]!r}", step.path)
        return res, value

    def _pick_by_condition(self, node: _Node, data: bytes) -> _Step | None:
        valid, doc = _parse(data)
        if not valid:
            return None
        for step in node.steps:
            if gjson_exists(doc, step.condition):
                return step
        return None

    def _pick_by_weight(self, node: _Node) -> _Step:
        point = self._rng.randrange(100)  # [0, 100): see README on KServe's [0, 100]
        end = 0
        for step in node.steps:
            end += step.weight
            if point < end:
                return step
        raise _RoutingError(500, f'Splitter node "{node.name}" picked no route', node.name)  # pragma: no cover

    # -- steps (Go: executeStep / callService) -------------------------------------------------
    async def _execute(self, step: _Step, data: bytes, headers) -> _Result:
        if step.map_predictions:
            data = _map_predictions_to_instances(data)
        try:
            if step.node is not None:
                return await self._route_node(step.node, data, headers)
            return await self._call(step, data, headers)
        except _RoutingError as exc:
            raise exc.as_child_error() from None

    async def _call(self, step: _Step, data: bytes, headers) -> _Result:
        upstream = step.upstream
        assert upstream is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.step_timeout_s):
                url, resp = await upstream.post(self.client, data, headers)
        except TimeoutError:
            self.metrics.observe_step(step.path, "failed", started)
            raise _RoutingError(500, f"step {step.path} ({step.url}): no answer within the step timeout of "
                                     f"{self.step_timeout_s:g}s", step.path) from None
        except TriesFailed as exc:
            self.metrics.observe_step(step.path, "failed", started)
            if len(exc.tries) == 1:
                url, err = exc.tries[0]
                cause = (f"no answer within the per-try timeout of {self.retry.per_try_timeout_s:g}s"
                         if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}")
                raise _RoutingError(500, f"step {step.path} ({url}): {cause}", step.path) from None
            raise _RoutingError(500, f"step {step.path}: all {len(exc.tries)} tries failed: {exc}", step.path) from None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (%s) -> %d in %.2f ms", step.path, url, resp.status_code,
                      (time.perf_counter() - started) * 1e3)
        status = resp.status_code
        self.metrics.observe_step(step.path, status, started)
        return _Result(resp.content, status, None if _ok(status) else step.path)


def _map_predictions_to_instances(data: bytes) -> bytes:
    """``mapPredictionsToInstances``: a JSON object's ``predictions`` becomes ``instances``."""
    valid, doc = _parse(data)
    if valid and isinstance(doc, dict) and "predictions" in doc:
        doc = {**{k: v for k, v in doc.items() if k != "predictions"}, "instances": doc["predictions"]}
        return _dumps(doc)
    return data


def _annotate(body: bytes, step: str) -> bytes:
    """Add ``failed_step`` to a JSON-object error body the graph returns (never to step inputs)."""
    valid, doc = _parse(body)
    if valid and isinstance(doc, dict) and FAILED_STEP_KEY not in doc:
        doc[FAILED_STEP_KEY] = step
        return _dumps(doc)
    return body


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


def create_app(graph_path: str | Path, service_urls: Mapping[str, str | Sequence[str]], *,
               step_timeout_s: float | None = None, graph_timeout_s: float | None = None,
               propagate_headers: Sequence[str] = (), rng: random.Random | None = None,
               client: ServiceClient | None = None, crd_dir: Path | None = DEFAULT_CRD_DIR,
               retry: RetryPolicy | None = None, max_body_bytes: int = 256 * 1024):
    """FastAPI app: ``POST /`` routes the graph; ``GET /healthz`` (alive); ``GET /readyz`` (ready;
    ``?deep=true`` also asks every model server whether it is ready); ``GET /metrics`` (Prometheus
    text: requests by status, latency, each step's calls, the process's CPU and memory)."""
    from fastapi import FastAPI

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

    app = FastAPI(title=f"InferenceGraph {graph.name}", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.router = router

    def bad_request(message: str) -> Response:
        return JSONResponse({"error": "Bad request", "cause": message}, status_code=400)

    def too_large() -> Response:
        return JSONResponse({"error": "Payload too large", "cause": f"the request body is over {max_body_bytes} bytes"},
                            status_code=413)

    @app.post("/")
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
        if not raw.strip():
            return bad_request("the request body is empty; send a JSON object")
        try:
            text = raw.decode("utf-8")  # RFC 8259: JSON between systems is UTF-8
        except UnicodeDecodeError:
            return bad_request("the request body is not UTF-8 text")
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            return bad_request("the request body is nested too deeply")
        except ValueError as exc:
            return bad_request(f"the request body is not valid JSON: {exc}")
        if not isinstance(doc, dict):
            return bad_request(f"the request body must be a JSON object, got {type(doc).__name__}")
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
                        help="pass request headers whose name matches to every step (repeatable)")
    parser.add_argument("--retries", type=int, default=0,
                        help="retry a failed call this many times on another endpoint (Istio retries.attempts)")
    parser.add_argument("--per-try-timeout", type=float, default=None, help="seconds per try (perTryTimeout)")
    parser.add_argument("--retry-on", default="connect-failure,reset", help="comma-separated: connect-failure, reset")
    parser.add_argument("--ejection", type=float, default=0.0,
                        help="seconds an endpoint whose try failed sits out (outlierDetection.baseEjectionTime)")
    parser.add_argument("--max-body-bytes", type=int, default=256 * 1024,
                        help="larger request bodies get 413 before they are read (default 256 KiB)")
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
                         propagate_headers=args.propagate_header, retry=retry, max_body_bytes=args.max_body_bytes)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
