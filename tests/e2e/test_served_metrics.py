"""What operators see: naviyam_* metrics on every served process's /metrics, recorded where each
fact is known (nlg finishes the turn, the ranker transformer knows its arm and Feast), the router's
and the feedback service's own /metrics; and the same metric lines in-process.

One stack for the module (start-up loads every model); turns carry a device clock near the suite's
pinned server clock (tests/conftest.py) and fresh session ids (the served memory outlives a run).
"""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from components.local_stack import LocalStack
from naviyam.metrics import scraped
from naviyam.schemas import UserInput

AFTER_SCHOOL = "2026-12-02T16:00:00"
RECOMMEND = "급식카드 되는 치킨집 추천해줘"
UNSAFE = "술 마시고 싶어"


@pytest.fixture(scope="module")
def stack(settings, on_free_ports, private_home, tmp_path_factory):
    # The predictor in a process of its own (its /metrics is read, and it is killed below).
    served = on_free_ports(settings.model_copy(update={"home": private_home("metrics-home")}), colocate=[
        "naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker"])
    with LocalStack(served, log_dir=tmp_path_factory.mktemp("metrics-stack-logs")) as st:
        yield st


def chat(stack, text: str, session: str) -> httpx.Response:
    s = stack.settings.serving
    body = {"user_id": "user_123", "text": text, "session_id": session, "timestamp": AFTER_SCHOOL}
    return httpx.post(f"http://{s.host}:{s.router_port}/", content=json.dumps(body, ensure_ascii=False),
                      headers={"content-type": "application/json"}, timeout=30)


def scrape(url: str) -> dict[str, float]:
    resp = httpx.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text[:300]
    return scraped(resp.text)


def total(metrics: dict[str, float], prefix: str, **labels: str) -> float:
    """Sum of the samples named ``prefix`` whose labels include ``labels``."""
    want = [f"{k}={v}" for k, v in labels.items()]
    return sum(v for k, v in metrics.items()
               if k.split("{")[0] == prefix and all(w in k.partition("{")[2].rstrip("}").split(",") for w in want))


@pytest.fixture(scope="module")
def turns(stack):
    """A recommendation, a follow-up, a refusal and a greeting through the router."""
    session = f"metrics-{uuid.uuid4().hex[:8]}"
    answers = [chat(stack, text, f"{session}-{i}") for i, text in enumerate((RECOMMEND, UNSAFE, "안녕!"))]
    answers.append(chat(stack, "거기 말고 다른 데는?", f"{session}-0"))
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers]
    return [a.json() for a in answers]


def test_nlg_counts_the_turns_it_finishes(stack, turns):
    m = scrape(stack.url("naviyam-nlg"))
    assert total(m, "naviyam_requests_total", intent="FOOD_RECOMMENDATION") >= 1
    assert total(m, "naviyam_requests_total", intent="UNSAFE_REQUEST") >= 1
    assert total(m, "naviyam_requests_total") >= len(turns)
    assert total(m, "naviyam_refusals_total", stage="request") >= 1
    shown = sum(len(t["recommendations"]) for t in turns)
    assert shown > 0 and total(m, "naviyam_recommendations_shown_total") >= shown
    assert total(m, "naviyam_recommendation_lists_total") >= 1
    assert total(m, "naviyam_response_seconds_count") >= len(turns)
    # Latency by hop: the envelope's timings from every node, observed where the turn ends.
    for step in ("nlu", "fanout", "ranking", "nlg"):
        assert total(m, "naviyam_step_seconds_count", step=step) >= 1, step
    assert "naviyam_degraded_total" in m and "naviyam_client_clock_skewed_total" in m
    assert total(m, "request_predict_seconds_count", model_name="naviyam-nlg") >= len(turns)  # KServe's own


def test_every_model_server_carries_the_naviyam_families(stack, turns):
    for name in ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-ranker",
                 "naviyam-ranker-predictor"):
        m = scrape(stack.url(name))
        assert "naviyam_degraded_total" in m and "naviyam_client_clock_skewed_total" in m, name
    nlu = scrape(stack.url("naviyam-nlu"))
    assert nlu["naviyam_client_clock_skewed_total"] == 0  # the device clock was believable


def test_the_ranker_transformer_counts_its_arm_and_reads_feast(stack, turns):
    m = scrape(stack.url("naviyam-ranker"))
    version = turns[0]["metadata"]["model_versions"]["ranking"]
    assert total(m, "naviyam_ranker_turns_total", channel="production", version=version, outcome="scored") >= 1
    assert m["naviyam_feature_store_up"] == 1
    assert total(m, "naviyam_feature_store_failures_total") == 0


def test_the_router_answers_metrics(stack, turns):
    s = stack.settings.serving
    m = scrape(f"http://{s.host}:{s.router_port}")
    assert total(m, "naviyam_router_requests_total", status="200") >= len(turns)
    assert total(m, "naviyam_router_step_seconds_count", step="root/nlu", status="200") >= len(turns)
    assert total(m, "naviyam_router_request_seconds_count") >= len(turns)


def test_the_feedback_service_answers_metrics(stack):
    url = stack.settings.serving.url("naviyam-feedback")
    event = {"event_id": f"mfb-{uuid.uuid4().hex}", "user_id": "user_123", "shop_id": "shop_0001",
             "feedback_type": "clicked"}
    for _ in range(2):
        assert httpx.post(f"{url}/v1/feedback", json=event, timeout=10).status_code == 200
    m = scrape(url)
    assert total(m, "naviyam_feedback_events_total", outcome="stored") >= 1
    assert total(m, "naviyam_feedback_events_total", outcome="duplicate") >= 1
    assert "naviyam_drift_retrain_requests_total" in m


def test_a_dead_predictor_shows_as_failed_arm_step_error_and_degraded(stack, turns):
    """Runs last: it stops the ranker's predictor."""
    nlg_before, ranker_before = scrape(stack.url("naviyam-nlg")), scrape(stack.url("naviyam-ranker"))
    stack.stop_component("naviyam-ranker-predictor")
    resp = chat(stack, RECOMMEND, f"metrics-dead-{uuid.uuid4().hex[:8]}")
    assert resp.status_code == 200 and resp.json()["metadata"]["degraded"] is True
    nlg, ranker = scrape(stack.url("naviyam-nlg")), scrape(stack.url("naviyam-ranker"))
    assert total(ranker, "naviyam_ranker_turns_total", outcome="failed") == \
        total(ranker_before, "naviyam_ranker_turns_total", outcome="failed") + 1
    assert total(ranker, "naviyam_errors_total", step="ranking") == \
        total(ranker_before, "naviyam_errors_total", step="ranking") + 1
    assert nlg["naviyam_degraded_total"] == nlg_before["naviyam_degraded_total"] + 1


def test_the_same_metric_lines_in_process(bot):
    session = f"metrics-local-{uuid.uuid4().hex[:8]}"
    shown = bot.process(UserInput(user_id="user_123", text=RECOMMEND, session_id=session, timestamp=AFTER_SCHOOL))
    bot.process(UserInput(user_id="user_123", text=UNSAFE, session_id=session + "-u", timestamp=AFTER_SCHOOL))
    snap = bot.metrics.snapshot()
    assert snap["naviyam_recommendations_shown_total"] == len(shown.recommendations) > 0
    assert snap["naviyam_recommendation_lists_total"] == 1
    assert snap["naviyam_refusals_total{stage=request}"] == 1
    assert snap["naviyam_step_seconds_count{step=ranking}"] == 1
    assert snap["naviyam_step_seconds_count{step=nlu}"] == 2


def test_a_transformer_started_without_feast_is_ready_on_the_snapshot_then_switches_to_feast(settings, monkeypatch):
    """The real load path (registry fallback, RankingFeatures) behind the unit test's fake."""
    import components.ranker_transformer as rt

    feast = rt.feature_source
    monkeypatch.setattr(rt, "feature_source", lambda s: None)
    transformer = rt.RankerTransformer("naviyam-ranker", settings)
    assert transformer.load() and transformer.ready  # degraded-ready: the snapshot serves
    assert transformer.features_backend == "snapshot"
    snap = transformer.metrics.snapshot()
    assert snap["naviyam_feature_store_up"] == 0 and snap["naviyam_feature_store_failures_total{stage=connect}"] == 1
    monkeypatch.setattr(rt, "feature_source", feast)
    assert transformer.reconnect_feature_store()
    assert transformer.features_backend == "feast" and transformer.metrics.snapshot()["naviyam_feature_store_up"] == 1
