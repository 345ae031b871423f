"""The router's GET /metrics: requests by status, request latency, each step's calls by status."""
from __future__ import annotations

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from inference_graph.graph_router import new_client
from inference_graph.metrics import RouterMetrics
from inference_graph.router import create_app


def write_graph(tmp_path):
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                                    "metadata": {"name": "metrics-test"}, "spec": {"nodes": {"root": {
                                        "routerType": "Sequence", "steps": [
                                            {"name": "a", "serviceName": "a", "dependency": "Hard"},
                                            {"name": "b", "serviceName": "b", "data": "$response"}]}}}}))
    return path


def parse(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def test_metrics_count_requests_and_time_each_step(fake, kit, tmp_path):
    fake.set("a", kit.Reply({"seen_a": True}))
    fake.set("b", kit.Reply({"error": "b broke"}, status=503))
    urls = {**fake.urls("a"), "b": fake.url("b")}

    async def go():
        async with new_client() as client:
            app = create_app(write_graph(tmp_path), urls, client=client)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as c:
                answered = await c.post("/", json={"x": 1})
                bad = await c.post("/", content=b"[1]", headers={"content-type": "application/json"})
                scraped = await c.get("/metrics")
            return answered, bad, scraped

    answered, bad, scraped = kit.run(go())
    # b is a soft step: its status is the answer; "[1]" is routed too (the router judges no body)
    assert answered.status_code == 503 and bad.status_code == 503
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    m = parse(scraped.text)
    assert m["naviyam_router_requests_total{status=503}"] == 2
    assert m["naviyam_router_request_seconds_count"] == 2
    assert m["naviyam_router_step_seconds_count{status=200,step=root/a}"] == 2
    assert m["naviyam_router_step_seconds_count{status=503,step=root/b}"] == 2


def test_a_call_that_gets_no_answer_is_counted_as_failed(fake, kit):
    graph = kit.graph_of({"root": {"routerType": "Sequence", "steps": [
        {"name": "down", "serviceUrl": kit.closed_port_url(), "dependency": "Hard"}]}})
    metrics = RouterMetrics()
    resp = kit.route(graph, {"x": 1}, metrics=metrics)
    assert resp.status == 500
    counts = {tuple(sorted(s.labels.items())): s.value for f in metrics.registry.collect() for s in f.samples
              if s.name == "naviyam_router_step_seconds_count"}
    assert counts == {(("status", "failed"), ("step", "root/down")): 1}


def test_each_app_has_its_own_registry(fake, kit, tmp_path):
    fake.set("a", kit.echo())
    fake.set("b", kit.echo())
    urls = {**fake.urls("a"), "b": fake.url("b")}
    one, two = create_app(write_graph(tmp_path), urls), create_app(write_graph(tmp_path), urls)
    assert one.state.router.metrics.registry is not two.state.router.metrics.registry
