"""``GraphRouter`` walks an InferenceGraph for one request as KServe's Go router does
(``cmd/router/main.go``, v0.20); ``inference_graph.router`` serves it over HTTP.

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

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inference_graph import conditions
from inference_graph.client import RetryPolicy, ServiceClient, TriesFailed, Upstream
from inference_graph.gjson_path import UnsupportedCondition
from inference_graph.go_http import go_call_error
from inference_graph.go_json import GoDecodeError, go_decode, go_marshal, map_predictions_to_instances
from inference_graph.headers import compile_header_patterns, outgoing_headers
from inference_graph.metrics import RouterMetrics
from inference_graph.outcomes import (
    INVALID_RESPONSE, SPLITTER_NO_ROUTE, SWITCH_NO_MATCH, GraphResponse, RoutingError, StepResult, dumps,
    error_body, ok,
)
from inference_graph.plan import Node, Step, compile_node, endpoints
from inference_graph.spec import ROOT_NODE, InferenceGraph, RouterType

log = logging.getLogger(__name__)


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
        self._nodes = {name: compile_node(name, node, self._upstreams, self.retry)
                       for name, node in graph.nodes.items()}

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
        resp = await self.route_bytes(dumps(request_json), headers)
        return resp.status, resp.body

    async def route_bytes(self, body: bytes,
                          headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> GraphResponse:
        """Route a raw request body, whatever it holds (KServe's graphHandler)."""
        out_headers = outgoing_headers(self._patterns, headers)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.graph_timeout_s):
                res = await self._route_node(ROOT_NODE, body, out_headers)
        except TimeoutError:
            cause = f"the graph did not answer within its timeout of {self.graph_timeout_s:g}s"
            log.warning("graph %s: %s", self.graph.name, cause)
            return GraphResponse(504, error_body(cause))
        except RoutingError as exc:
            where = f" (step {exc.step})" if exc.step else ""
            log.warning("graph %s: %s%s, answered %d", self.graph.name, exc.detail, where, exc.status)
            return GraphResponse(exc.status, error_body(exc.cause), exc.step)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("graph %s answered in %.2f ms", self.graph.name, (time.perf_counter() - started) * 1e3)
        if res.failed_step and not ok(res.status):
            log.info("graph %s: answered %d from step %s", self.graph.name, res.status, res.failed_step)
            return GraphResponse(res.status, res.body, res.failed_step)
        return GraphResponse(res.status, res.body)

    # -- nodes (Go: routeStep) -----------------------------------------------------------------
    async def _route_node(self, name: str, data: bytes, headers: list[tuple[str, str]]) -> StepResult:
        node = self._nodes.get(name)
        if node is None:
            # Go reads the zero InferenceRouter of a node that is not in the graph.
            raise RoutingError(500, "invalid route type: ", name, f'no node "{name}" in the graph')
        if node.kind is RouterType.SEQUENCE:
            return await self._sequence(node, data, headers)
        if node.kind is RouterType.ENSEMBLE:
            return await self._ensemble(node, data, headers)
        if node.kind is RouterType.SWITCH:
            step = self._pick_by_condition(node, data)
            if step is None:
                raise RoutingError(404, SWITCH_NO_MATCH, name, f'{SWITCH_NO_MATCH} (Switch node "{name}")')
            return await self._execute(step, data, headers)
        if node.kind is RouterType.SPLITTER:
            step = self._pick_by_weight(node)
            if step is None:
                raise RoutingError(500, SPLITTER_NO_ROUTE, name, f'{SPLITTER_NO_ROUTE} (Splitter node "{name}")')
            return await self._execute(step, data, headers)
        raise RoutingError(500, f"invalid route type: {node.kind.value}", name)  # pragma: no cover

    async def _sequence(self, node: Node, data: bytes, headers) -> StepResult:
        last: StepResult | None = None
        for step in node.steps:
            request = last.body if (step.use_response and last is not None) else data
            if step.map_predictions:
                request = map_predictions_to_instances(request)
            if step.condition:
                # Checked against the previous step's response (none for the first step), not the input.
                valid, doc = conditions.parse(last.body if last is not None else None)
                if not valid:
                    raise RoutingError(500, INVALID_RESPONSE, step.path,
                                       f"step {step.path} has a condition and the previous step's response is "
                                       + ("not JSON" if last is not None else "missing (it is the first step)"))
                if not self._condition_holds(step, doc):
                    log.debug("%s: condition %r unmet, the sequence stops", step.path, step.condition)
                    return StepResult(last.body, 200)  # type: ignore[union-attr]
            last = await self._execute(step, request, headers)
            if step.hard and not ok(last.status):
                log.info("%s: hard dependency answered %d, the sequence stops", step.path, last.status)
                return last
        if last is None:  # pragma: no cover - spec validation refuses empty Sequences
            raise RoutingError(500, "empty Sequence", node.name)
        return last

    async def _ensemble(self, node: Node, data: bytes, headers) -> StepResult:
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
                if step.hard and not ok(res.status):
                    log.info("%s: hard dependency answered %d, the ensemble fails", step.path, res.status)
                    return StepResult(go_marshal(value), res.status, res.failed_step)
                if not ok(res.status):
                    log.info("%s: soft dependency answered %d, merged as is", step.path, res.status)
                merged[step.label] = value
            return StepResult(go_marshal(merged), 200)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()

    async def _ensemble_member(self, step: Step, data: bytes, headers) -> tuple[StepResult, Any]:
        res = await self._execute(step, data, headers)
        # Go unmarshals into map[string]interface{}: an object or null, nothing else.
        try:
            value = go_decode(res.body)
            if value is not None and not isinstance(value, dict):
                kind = {list: "array", str: "string", float: "number", bool: "bool"}[type(value)]
                raise GoDecodeError(f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
        except GoDecodeError as exc:
            raise RoutingError(500, str(exc), step.path,
                               f"step {step.path} answered {res.status} with a body that is not a JSON object: "
                               f"{res.body[:200]!r}") from None
        return res, value

    def _condition_holds(self, step: Step, doc: Any) -> bool:
        try:
            return conditions.exists(doc, step.condition)
        except UnsupportedCondition as exc:  # pragma: no cover - refused when the graph loads
            raise RoutingError(500, f"unsupported condition {step.condition!r}", step.path, str(exc)) from None

    def _pick_by_condition(self, node: Node, data: bytes) -> Step | None:
        valid, doc = conditions.parse(data)
        if not valid:
            return None
        for step in node.steps:
            if self._condition_holds(step, doc):
                return step
        return None

    def _pick_by_weight(self, node: Node) -> Step | None:
        point = self._rng.randrange(100)  # Go: crypto/rand.Int(100), in [0, 100)
        end = 0
        for step in node.steps:
            end += step.weight
            if point < end:
                return step
        return None

    # -- steps (Go: executeStep / callService) -------------------------------------------------
    async def _execute(self, step: Step, data: bytes, headers) -> StepResult:
        try:
            if step.node is not None:
                return await self._route_node(step.node, data, headers)
            return await self._call(step, data, headers)
        except RoutingError as exc:
            raise exc.as_child_error() from None

    async def _call(self, step: Step, data: bytes, headers) -> StepResult:
        upstream = step.upstream
        assert upstream is not None
        if step.url_error:
            raise RoutingError(500, step.url_error, step.path)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.step_timeout_s):
                url, resp = await upstream.post(self.client, data, headers)
        except TimeoutError:
            self.metrics.observe_step(step.path, "failed", started)
            raise RoutingError(500, go_call_error(step.url or "", None, timeout=True), step.path,
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
            raise RoutingError(500, go_call_error(url, err), step.path, detail) from None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (%s) -> %d in %.2f ms", step.path, url, resp.status_code,
                      (time.perf_counter() - started) * 1e3)
        status = resp.status_code
        self.metrics.observe_step(step.path, status, started)
        return StepResult(resp.content, status, None if ok(status) else step.path)


def new_client(max_connections: int = 100) -> ServiceClient:
    """The router's HTTP client (see inference_graph/client.py for why aiohttp)."""
    return ServiceClient(max_connections=max_connections)
