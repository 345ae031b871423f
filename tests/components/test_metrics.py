"""Served metrics of the components: the feedback service's /metrics and the ranker transformer's
feature-store fallback (visible in a gauge and a counter, retried until Feast answers)."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

import components.ranker_transformer as rt
from components.feedback import create_app
from naviyam.config import Settings
from naviyam.events import EventStore
from naviyam.metrics import ChatMetrics, scraped
from naviyam.registry import ModelRegistry


def scrape(client: TestClient) -> dict[str, float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return scraped(resp.text)


@pytest.fixture()
def feedback(tmp_path):
    settings = Settings(home=tmp_path, serving={"feedback_token": "secret"})
    store = EventStore(tmp_path / "events.sqlite")
    client = TestClient(create_app(settings, store, shop_ids={"shop_0001"}))
    yield SimpleNamespace(client=client, settings=settings)
    store.close()


AUTH = {"Authorization": "Bearer secret"}


def event(event_id: str, shop: str = "shop_0001") -> dict:
    return {"event_id": event_id, "user_id": "user_1", "shop_id": shop, "feedback_type": "clicked"}


def test_feedback_metrics_count_stored_duplicates_and_refusals(feedback):
    c = feedback.client
    assert c.post("/v1/feedback", json={"events": [event("e1"), event("e2")]}, headers=AUTH).status_code == 200
    assert c.post("/v1/feedback", json=event("e1"), headers=AUTH).json() == {"stored": 0, "duplicates": 1}
    # A batch with one unknown shop is refused whole: both of its events count as refused.
    assert c.post("/v1/feedback", json={"events": [event("e3"), event("e4", "shop_9999")]},
                  headers=AUTH).status_code == 422
    assert c.post("/v1/feedback", json=event("e5")).status_code == 401
    assert c.post("/v1/feedback", content=b"{broken", headers={**AUTH, "content-type": "application/json"}
                  ).status_code == 400
    assert c.post("/v1/feedback", json={"events": []}, headers=AUTH).status_code == 400
    m = scrape(c)
    assert m["naviyam_feedback_events_total{outcome=stored}"] == 2
    assert m["naviyam_feedback_events_total{outcome=duplicate}"] == 1
    assert m["naviyam_feedback_events_total{outcome=refused}"] == 2
    assert m["naviyam_feedback_refused_requests_total{reason=invalid}"] == 1
    assert m["naviyam_feedback_refused_requests_total{reason=auth}"] == 1
    assert m["naviyam_feedback_refused_requests_total{reason=body}"] == 1
    assert m["naviyam_feedback_refused_requests_total{reason=batch}"] == 1


def test_metrics_need_no_token_and_tell_nothing_personal(feedback):
    c = feedback.client
    c.post("/v1/feedback", json=event("e1"), headers=AUTH)
    resp = c.get("/metrics")
    assert resp.status_code == 200
    assert "user_1" not in resp.text and "e1" not in resp.text


def test_registry_channels_and_drift_retrain_requests_are_read_at_scrape_time(feedback, tmp_path):
    from naviyam.loop_state import LoopState

    c = feedback.client
    m = scrape(c)
    assert m["naviyam_drift_retrain_requests_total"] == 0 and m["naviyam_drift_retrain_requests_pending"] == 0
    assert not any(k.startswith("naviyam_model_version{") for k in m)
    assert "naviyam_drift_last_request_timestamp_seconds" not in m

    src = tmp_path / "ranker-src"
    src.mkdir()
    (src / "meta.json").write_text(json.dumps({"version": "x"}))
    registry = ModelRegistry.from_settings(feedback.settings)
    version = registry.register("ranker", src)
    registry.promote("ranker", version)
    store = LoopState.from_settings(feedback.settings)   # what pipelines.steps.request_retrain writes to
    store.add_request({"at": "2026-12-02T10:00:00+00:00", "reason": "data drift", "status": "done"})
    store.add_request({"at": "2026-12-02T11:00:00+00:00", "reason": "error rate", "status": "requested"})
    m = scrape(c)
    assert m[f"naviyam_model_version{{channel=production,model=ranker,version={version}}}"] == 1
    assert m["naviyam_drift_retrain_requests_total"] == 2
    assert m["naviyam_drift_retrain_requests_pending"] == 1
    assert m["naviyam_drift_last_request_timestamp_seconds"] == pytest.approx(1796209200.0)


# -- ranker transformer: Feast at start-up, the snapshot meanwhile --------------------------------
class FakeHot:
    """HotModel's surface the transformer uses; its loader reads the transformer's current source."""

    def __init__(self, transformer):
        self.transformer, self.loads = transformer, 0
        self.maybe_reload(force=True)

    def maybe_reload(self, force: bool = False) -> bool:
        self.loads += 1
        backend = "feast" if self.transformer._source is not None else "snapshot"
        self.value = ("features", "v3", backend)
        return True

    def get(self):
        return SimpleNamespace(value=self.value)


def transformer(tmp_path) -> rt.RankerTransformer:
    return rt.RankerTransformer("naviyam-ranker", Settings(home=tmp_path), channel="canary", metrics=ChatMetrics())


def test_feast_down_at_start_up_is_visible_and_retried(tmp_path, monkeypatch):
    t = transformer(tmp_path)
    monkeypatch.setattr(rt, "feature_source", lambda settings: None)
    t._source = t.connect_feature_store()
    t.hot = FakeHot(t)
    assert t._features_loaded() == "snapshot" and t.features_backend == "snapshot"
    snap = t.metrics.snapshot()
    assert snap["naviyam_feature_store_up"] == 0
    assert snap["naviyam_feature_store_failures_total{stage=connect}"] == 1

    assert t.reconnect_feature_store() is False  # still down: counted again, still the snapshot
    assert t.metrics.snapshot()["naviyam_feature_store_failures_total{stage=connect}"] == 2

    monkeypatch.setattr(rt, "feature_source", lambda settings: object())
    assert t.reconnect_feature_store() is True
    assert t.features_backend == "feast"
    assert t.metrics.snapshot()["naviyam_feature_store_up"] == 1


def test_the_retry_runs_off_the_request_path_at_most_every_interval(tmp_path, monkeypatch):
    t = transformer(tmp_path)
    calls = []

    def down(settings):
        calls.append(1)

    monkeypatch.setattr(rt, "feature_source", down)
    t._source = t.connect_feature_store()
    t.hot = FakeHot(t)

    async def requests():
        t._maybe_retry_feature_store()  # not due yet: the start-up attempt just failed
        assert t._retrying is None
        t._next_retry = 0.0
        t._maybe_retry_feature_store()
        await t._retrying
        t._maybe_retry_feature_store()  # the next one only after FEATURE_STORE_RETRY_S
        await asyncio.sleep(0)

    asyncio.run(requests())
    assert len(calls) == 2
