"""Go's http.Server timeouts for the router: ``routerTimeouts.serverRead``/``serverWrite`` applied to
every request by ``RouterApp``, ``serverIdle`` as the server's keep-alive."""
from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI

from inference_graph.spec import InferenceGraph

log = logging.getLogger(__name__)

# KServe's constants.RouterTimeoutsServerRead/ServerWrite/ServerIdle (seconds), when the graph sets none.
DEFAULT_SERVER_READ_S, DEFAULT_SERVER_WRITE_S, DEFAULT_SERVER_IDLE_S = 60, 60, 180


def server_timeouts(graph: InferenceGraph) -> tuple[float, float, float]:
    """(serverRead, serverWrite, serverIdle) seconds of ``routerTimeouts``, KServe's defaults
    (60, 60, 180) for those it leaves unset (Go: initTimeouts)."""
    rt = graph.spec.router_timeouts
    read = rt.server_read if rt and rt.server_read is not None else DEFAULT_SERVER_READ_S
    write = rt.server_write if rt and rt.server_write is not None else DEFAULT_SERVER_WRITE_S
    idle = rt.server_idle if rt and rt.server_idle is not None else DEFAULT_SERVER_IDLE_S
    return float(read), float(write), float(idle)


class RouterApp(FastAPI):
    """The router's ASGI app with Go's http.Server ReadTimeout and WriteTimeout, applied here,
    outside Starlette's middleware, where the server's own ``send`` (and so the connection) is
    still at hand. ``server_read_s``: the request body must have arrived by then (Go's handler
    ignores the read error and routes what it got; so does this). ``server_write_s``: a
    response not begun by then is never written - Go's write fails and the connection
    closes, so the client sees it close without an answer."""

    server_read_s: float | None = None
    server_write_s: float | None = None
    # The graph's own requests (``graph_methods`` on any path but a GET of ``own_paths``) go to
    # ``graph_handler``, a plain ASGI callable: FastAPI's middleware, routing and endpoint layers
    # cost the router more CPU per chat turn than routing the graph itself. The rest (health,
    # readiness, metrics, lifespan, odd methods) is the FastAPI app's, as before.
    graph_handler = None
    graph_methods: frozenset[str] = frozenset()
    own_paths: frozenset[str] = frozenset()

    def _app_for(self, scope):
        if (self.graph_handler is not None and scope["type"] == "http" and scope["method"] in self.graph_methods
                and scope["path"].startswith("/")
                and not (scope["method"] == "GET" and scope["path"] in self.own_paths)):
            return self.graph_handler
        return super().__call__

    async def __call__(self, scope, receive, send) -> None:
        app = self._app_for(scope)
        if scope["type"] != "http" or (self.server_read_s is None and self.server_write_s is None):
            await app(scope, receive, send)
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

        await app(scope, timed_receive, timed_send)
