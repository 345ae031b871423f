"""Fake KServe model servers for the router tests: one uvicorn server on 127.0.0.1 (random free port,
background thread) answering ``POST /v1/models/<name>:predict`` per a per-test behaviour table.
Everything tests need comes as a fixture: ``fake`` (the services) and ``kit`` (helpers)."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.local_stack import free_ports
from inference_graph.graph_router import GraphRouter, new_client
from inference_graph.outcomes import GraphResponse
from inference_graph.spec import InferenceGraph, parse_graph


@dataclass
class Reply:
    body: Any = None  # JSON-able, or bytes sent as they are
    status: int = 200
    delay: float = 0.0


@dataclass
class Call:
    name: str
    body: Any  # parsed JSON, or the raw bytes when not JSON
    headers: dict[str, str]
    start: float
    end: float = 0.0
    raw: bytes = b""


Behaviour = Reply | Callable[[Any], Reply]


def echo(**extra: Any) -> Callable[[Any], Reply]:
    """Answer the request object updated with ``extra``."""
    def handler(body: Any) -> Reply:
        return Reply({**body, **extra})
    return handler


@dataclass
class FakeServices:
    port: int = 0
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    not_ready: set[str] = field(default_factory=set)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/v1/models/{name}:predict"

    def urls(self, *names: str) -> dict[str, str]:
        return {n: self.url(n) for n in names}

    def set(self, name: str, behaviour: Behaviour) -> None:
        self.behaviours[name] = behaviour

    def reset(self) -> None:
        self.behaviours.clear()
        self.calls.clear()
        self.not_ready.clear()

    def called(self) -> list[str]:
        return [c.name for c in self.calls]

    def body_of(self, name: str) -> Any:
        found = [c.body for c in self.calls if c.name == name]
        assert len(found) == 1, f"{name} called {len(found)} times"
        return found[0]

    # -- the ASGI side --
    async def predict(self, request: Request) -> Response:
        spec = request.path_params["spec"]
        name, _, verb = spec.partition(":")
        raw = await request.body()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            body = raw
        call = Call(name, body, dict(request.headers), time.perf_counter(), raw=raw)
        self.calls.append(call)
        behaviour = self.behaviours.get(name)
        if verb != "predict" or behaviour is None:
            return Response(json.dumps({"error": f"model {name} not found"}), 404, media_type="application/json")
        reply = behaviour(body) if callable(behaviour) else behaviour
        if reply.delay:
            await asyncio.sleep(reply.delay)
        call.end = time.perf_counter()
        content = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body, ensure_ascii=False)
        return Response(content, reply.status, media_type="application/json")

    async def model_ready(self, request: Request) -> Response:
        name = request.path_params["spec"]
        ready = name in self.behaviours and name not in self.not_ready
        return Response(json.dumps({"name": name, "ready": ready}), 200 if ready else 503,
                        media_type="application/json")


def free_port() -> int:
    return free_ports(1)[0]


class ThreadedServer:
    """An ASGI app on 127.0.0.1 in a daemon thread (bounded start and stop)."""

    def __init__(self, app, port: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                                   timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def fake_server():
    fake = FakeServices()
    app = Starlette(routes=[
        Route("/v1/models/{spec}", fake.predict, methods=["POST"]),
        Route("/v1/models/{spec}", fake.model_ready, methods=["GET"]),
    ])
    with ThreadedServer(app) as server:
        fake.port = server.port
        yield fake


@pytest.fixture()
def fake(fake_server):
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def graph_of(nodes: dict[str, Any], **spec: Any) -> InferenceGraph:
    return parse_graph({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                        "metadata": {"name": "test-graph"}, "spec": {"nodes": nodes, **spec}})


def run(coro):
    return asyncio.run(coro)


def route(graph: InferenceGraph, payload: Any, urls: dict[str, str] | None = None, *,
          headers: Any = None, **kwargs: Any) -> GraphResponse:
    """Route one request through a fresh GraphRouter (own client, closed after)."""
    async def go() -> GraphResponse:
        async with new_client() as client:
            router = GraphRouter(graph, urls or {}, kwargs.pop("step_timeout_s", None), client, **kwargs)
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            return await router.route_bytes(body, headers)
    return run(go())


def closed_port_url(name: str = "down") -> str:
    return f"http://127.0.0.1:{free_port()}/v1/models/{name}:predict"


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, handed to tests as a fixture (test modules import nothing from here)."""
    return SimpleNamespace(Reply=Reply, echo=echo, graph_of=graph_of, route=route, run=run, free_port=free_port,
                           closed_port_url=closed_port_url, ThreadedServer=ThreadedServer)
