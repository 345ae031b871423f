"""Router overhead on loopback: the CLI-served router against the same echo service called directly,
each in its own process (as on a laptop). Asserts that the CLI-served router carries the bodies
unchanged through a 1-step graph and through naviyam.yaml; the overhead per hop is printed, not
asserted (speed targets live in `make bench`, which reports the router's CPU per request)."""
from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
SERVICES = ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-ranker", "naviyam-nlg")
# Every model echoes its request: nlu keeps needs_search=true, so naviyam.yaml takes the search path.
ECHO_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def echo(request):
    return Response(await request.body(), media_type="application/json")

async def ready(request):
    return Response('{"ready": true}', media_type="application/json")

app = Starlette(routes=[Route("/v1/models/{spec}", echo, methods=["POST"]),
                        Route("/v1/models/{spec}", ready, methods=["GET"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start(cmd: list[str], ready_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[1:3]} exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(ready_url, timeout=1, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{cmd[1:3]} did not become ready in 30 s")
        time.sleep(0.05)


def start_router(kit, graph: Path, urls: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = kit.free_port()
    cmd = [sys.executable, "-m", "inference_graph.router", "--graph", str(graph), "--port", str(port),
           "--log-level", "warning"]
    for name, url in urls.items():
        cmd += ["--service", f"{name}={url}"]
    base = f"http://127.0.0.1:{port}"
    return start(cmd, base + "/readyz"), base


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def median_ms(client: httpx.Client, url: str, body: dict, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.post(url, json=body)
        times.append((time.perf_counter() - t0) * 1e3)
        assert resp.status_code == 200, resp.text
    return statistics.median(times)


def write_graph(tmp_path: Path) -> Path:
    path = tmp_path / "one-step.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                                    "metadata": {"name": "one-step"},
                                    "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": [
                                        {"name": "a", "serviceName": "naviyam-nlu"}]}}}}))
    return path


def test_router_carries_bodies_unchanged_and_reports_overhead(kit, tmp_path, capsys):
    port = kit.free_port()
    url = {n: f"http://127.0.0.1:{port}/v1/models/{n}:predict" for n in SERVICES}
    body = {"message": "급식카드 되는 치킨집 추천해줘", "user_id": "user_123", "needs_search": True}
    procs = []
    try:
        procs.append(start([sys.executable, "-c", ECHO_SERVER, str(port)], url["naviyam-nlu"][: -len(":predict")]))
        one, base1 = start_router(kit, write_graph(tmp_path), {"naviyam-nlu": url["naviyam-nlu"]})
        procs.append(one)
        five, base5 = start_router(kit, REPO / "inference_graph" / "naviyam.yaml", url)
        procs.append(five)
        with httpx.Client(trust_env=False) as client:
            for target in (url["naviyam-nlu"], base1 + "/", base5 + "/"):  # warm up pools and code paths
                median_ms(client, target, body, 50)
            direct = median_ms(client, url["naviyam-nlu"], body, 300)
            routed1 = median_ms(client, base1 + "/", body, 300)
            routed5 = median_ms(client, base5 + "/", body, 300)
            answers = [client.post(u, json=body).json() for u in (url["naviyam-nlu"], base1 + "/", base5 + "/")]
    finally:
        for proc in procs:
            stop(proc)
    per_hop_1 = routed1 - direct
    # naviyam.yaml: client->router plus 5 service calls, 4 of them one after another (the fan-out's two
    # run together): what the router adds beyond 4 sequential direct calls, per service call.
    per_hop_5 = (routed5 - 4 * direct) / 5
    msg = (f"direct call {direct:.2f} ms | 1-step graph {routed1:.2f} ms (overhead {per_hop_1:.2f} ms/hop) | "
           f"naviyam graph, 5 services {routed5:.2f} ms (about {per_hop_5:.2f} ms/hop)")
    log.info(msg)
    with capsys.disabled():
        print("\n[router overhead] " + msg)
    assert answers == [body, body, body]  # echoed by every node, unchanged by the router
