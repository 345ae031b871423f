"""The router's HTTP face: any request routes the graph with its raw body (as KServe's router), /healthz,
/readyz, the opt-in body limit, and the CLI's argument checks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from inference_graph.graph_router import new_client
from inference_graph.outcomes import FAILED_STEP_HEADER
from inference_graph.router import create_app, load_service_urls, readiness_url
from inference_graph.spec import GraphValidationError

REPO = Path(__file__).resolve().parents[2]


def write_graph(tmp_path, nodes) -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                                    "metadata": {"name": "app-test"}, "spec": {"nodes": nodes}}))
    return path


@pytest.fixture()
def graph_file(tmp_path):
    return write_graph(tmp_path, {"root": {"routerType": "Sequence", "steps": [
        {"name": "a", "serviceName": "a", "dependency": "Hard"}]}})


def call(kit, app_args, method, path, app_kwargs=None, **kwargs) -> httpx.Response:
    async def go():
        async with new_client() as client:
            app = create_app(*app_args, client=client, **(app_kwargs or {}))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://router") as c:
                return await c.request(method, path, **kwargs)
    return kit.run(go())


@pytest.mark.parametrize("body", [
    b'{"message": "hi"', b"", b"   ", b"\xff\xfe{}", b"NaN", b"[1, 2]", b'"hello"', b"42", b"null",
    b"[" * 100_000 + b"]" * 100_000,
], ids=["truncated", "empty", "blank", "not-utf8", "nan", "list", "string", "number", "null", "deep"])
def test_any_request_body_reaches_the_first_node_as_sent(fake, kit, graph_file, body):
    """KServe's graphHandler forwards whatever bytes it read; the first node judges them (a model
    server answers 400 to what it cannot read, and a Hard first step makes that the answer)."""
    fake.set("a", kit.Reply({"seen": True}))
    resp = call(kit, (graph_file, fake.urls("a")), "POST", "/", content=body,
                headers={"content-type": "application/json"})
    assert resp.status_code == 200 and resp.json() == {"seen": True}
    assert [c.raw for c in fake.calls] == [body]


def test_the_first_nodes_refusal_is_the_answer_verbatim(fake, kit, graph_file):
    fake.set("a", kit.Reply({"error": "invalid chat request"}, status=400))
    resp = call(kit, (graph_file, fake.urls("a")), "POST", "/", content=b"{broken")
    assert resp.status_code == 400 and resp.json() == {"error": "invalid chat request"}
    assert resp.headers[FAILED_STEP_HEADER] == "root/a"


@pytest.mark.parametrize("method, path", [("GET", "/"), ("PUT", "/v1/anything"), ("POST", "/healthz"),
                                          ("DELETE", "/x/y")])
def test_every_method_and_path_routes_the_graph(fake, kit, graph_file, method, path):
    """Go's ServeMux sends every path but /readyz to graphHandler, whatever the method."""
    fake.set("a", kit.Reply({"seen": True}))
    resp = call(kit, (graph_file, fake.urls("a")), method, path)
    assert resp.status_code == 200 and resp.json() == {"seen": True} and len(fake.calls) == 1


def test_graph_requests_skip_fastapi_and_the_rest_keep_it(fake, kit, graph_file):
    """The hot path (the graph's methods on any path but our own three) is a plain ASGI handler;
    health, readiness, metrics, HEAD and lifespan stay the FastAPI app's."""
    app = create_app(graph_file, fake.urls("a"))
    for method, path in (("POST", "/"), ("GET", "/v1/models/x:predict"), ("POST", "/healthz"), ("OPTIONS", "/x")):
        assert app._app_for({"type": "http", "method": method, "path": path}) is app.graph_handler
    for method, path in (("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("HEAD", "/")):
        assert app._app_for({"type": "http", "method": method, "path": path}) is not app.graph_handler
    assert app._app_for({"type": "lifespan"}) is not app.graph_handler


def test_an_oversized_body_is_413_whether_its_length_is_declared_or_not(fake, kit, graph_file):
    """The opt-in limit (ours; KServe's router has none, so it is off unless asked for)."""
    fake.set("a", kit.Reply({}))
    big = b'{"text": "' + b"a" * (300 * 1024) + b'"}'
    limit = {"max_body_bytes": 256 * 1024}
    declared = call(kit, (graph_file, fake.urls("a")), "POST", "/", content=big, app_kwargs=limit,
                    headers={"content-type": "application/json"})

    async def chunks():
        for i in range(0, len(big), 16 * 1024):
            yield big[i:i + 16 * 1024]
    chunked = call(kit, (graph_file, fake.urls("a")), "POST", "/", content=chunks(), app_kwargs=limit,
                   headers={"content-type": "application/json"})
    for resp in (declared, chunked):
        assert resp.status_code == 413 and "over 262144 bytes" in resp.json()["cause"]
    assert fake.calls == []
    unlimited = call(kit, (graph_file, fake.urls("a")), "POST", "/", content=big)
    assert unlimited.status_code == 200 and fake.calls[0].raw == big


def test_post_routes_the_graph(fake, kit, graph_file):
    fake.set("a", kit.echo(answer="안녕"))
    resp = call(kit, (graph_file, fake.urls("a")), "POST", "/", json={"message": "hi"})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json() == {"message": "hi", "answer": "안녕"}
    assert FAILED_STEP_HEADER not in resp.headers


def test_failed_step_in_a_header_the_body_verbatim(fake, kit, graph_file):
    fake.set("a", kit.Reply({"error": "no"}, status=503))
    resp = call(kit, (graph_file, fake.urls("a")), "POST", "/", json={})
    assert resp.status_code == 503 and resp.headers[FAILED_STEP_HEADER] == "root/a"
    assert resp.content == b'{"error": "no"}'  # byte for byte what the step answered


def test_health_and_readiness(fake, kit, graph_file):
    fake.set("a", kit.Reply({}))
    args = (graph_file, fake.urls("a"))
    assert call(kit, args, "GET", "/healthz").status_code == 200
    ready = call(kit, args, "GET", "/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "graph": "app-test"}
    deep = call(kit, args, "GET", "/readyz?deep=true")
    assert deep.status_code == 200 and deep.json()["services"] == {fake.url("a"): True}
    fake.not_ready.add("a")
    assert call(kit, args, "GET", "/readyz?deep=true").status_code == 503


def test_create_app_checks_graph_and_services(tmp_path, graph_file):
    with pytest.raises(ValueError, match="no URL for service"):
        create_app(graph_file, {})
    bad = write_graph(tmp_path, {"main": {"routerType": "Sequence", "steps": [{"serviceUrl": "http://x"}]}})
    with pytest.raises(GraphValidationError, match="root node not found"):
        create_app(bad, {})


def test_service_file_formats(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("naviyam-nlu: http://127.0.0.1:9101/v1/models/naviyam-nlu:predict\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("services:\n  naviyam-nlg: http://127.0.0.1:9106/v1/models/naviyam-nlg:predict\n")
    assert load_service_urls(flat) == {"naviyam-nlu": "http://127.0.0.1:9101/v1/models/naviyam-nlu:predict"}
    assert list(load_service_urls(nested)) == ["naviyam-nlg"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError):
        load_service_urls(bad)
    assert readiness_url("http://h/v1/models/m:predict") == "http://h/v1/models/m"
    assert readiness_url("http://h/v2/models/m/infer") == "http://h/v2/models/m/ready"


def test_cli_refuses_a_graph_without_service_urls(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "inference_graph.router", "--graph", "inference_graph/naviyam.yaml",
                           "--service", "naviyam-nlu=http://127.0.0.1:1/v1/models/naviyam-nlu:predict"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no URL for service" in proc.stderr


def test_an_invalid_header_pattern_does_not_stop_the_router(fake, kit, graph_file, caplog):
    """KServe's router logs a pattern that does not compile and starts anyway (its own example
    ConfigMap has one, "*Trace-Id*"); the CLI used to die on re.error."""
    fake.set("a", kit.Reply({}))
    resp = call(kit, (graph_file, fake.urls("a")), "POST", "/", json={}, headers={"X-Request-Id": "r1"},
                app_kwargs={"propagate_headers": ["*Trace-Id*", "^X-Request-Id$"]})
    assert resp.status_code == 200 and fake.calls[0].headers["x-request-id"] == "r1"
    assert "failed to compile header pattern '*Trace-Id*'" in caplog.text
