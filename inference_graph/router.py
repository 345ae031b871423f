"""The local InferenceGraph router's HTTP app and CLI: ``create_app`` serves a ``GraphRouter``
(``inference_graph.graph_router``: what each node does, as KServe's Go router does it). Any method
and path routes the graph, as Go's ``http.HandleFunc("/", graphHandler)`` does, except our
``/healthz``, ``/readyz`` and ``/metrics``; ``python -m inference_graph.router`` runs it.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from starlette.requests import Request  # module level: FastAPI resolves the handlers' annotations here
from starlette.responses import JSONResponse, Response

from inference_graph.client import CALL_ERRORS, RetryPolicy, ServiceClient
from inference_graph.graph_router import GraphRouter
from inference_graph.headers import PROPAGATE_ENV, patterns_from_env
from inference_graph.metrics import RouterMetrics
from inference_graph.outcomes import FAILED_STEP_HEADER
from inference_graph.request_body import BodyTooLarge, read_body
from inference_graph.server_timeouts import RouterApp, server_timeouts
from inference_graph.spec import DEFAULT_CRD_DIR, load_graph


def load_service_urls(path: str | Path) -> dict[str, str | list[str]]:
    """``services.yaml``: ``{serviceName: predict URL or [URL, ...] (replicas)}``, optionally under a
    ``services:`` key."""
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

    app = RouterApp(title=f"InferenceGraph {graph.name}", lifespan=lifespan, docs_url=None, redoc_url=None,
                    openapi_url=None)
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

    async def graph_asgi(scope, receive, send) -> None:
        response = await infer(Request(scope, receive))
        await response(scope, receive, send)

    # Last, so the paths above win for their GETs; everything else is the graph's. RouterApp
    # sends the graph's requests to graph_asgi before FastAPI; the route is the same ``infer``.
    app.add_api_route("/{path:path}", infer, methods=_GRAPH_METHODS, include_in_schema=False)
    app.graph_handler = graph_asgi
    app.graph_methods = frozenset(_GRAPH_METHODS)
    app.own_paths = frozenset(("/healthz", "/readyz", "/metrics"))
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

    idle_s = server_timeouts(app.state.router.graph)[2]  # Go's IdleTimeout: how long a keep-alive waits
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False,
                timeout_keep_alive=int(idle_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
