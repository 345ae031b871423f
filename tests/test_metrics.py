"""naviyam.metrics: instance-owned registries, what each metric is called, and what the exposition says."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from naviyam.metrics import STEPS, ChatMetrics, FeatureStoreMetrics


def families(registry: CollectorRegistry) -> dict[str, list]:
    text = generate_latest(registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_each_instance_has_its_own_registry():
    # Tests and the CLI make many bots in one process: a second ChatMetrics must not collide.
    a, b = ChatMetrics(), ChatMetrics()
    a.requests.labels(intent="GREETING").inc()
    assert a.registry is not b.registry
    assert a.snapshot()["naviyam_requests_total{intent=GREETING}"] == 1
    assert "naviyam_requests_total{intent=GREETING}" not in b.snapshot()


def test_a_given_registry_is_used_and_shared_with_the_feature_store_metrics():
    registry = CollectorRegistry()
    chat = ChatMetrics(registry)
    store = FeatureStoreMetrics(chat.registry)
    assert chat.registry is registry and store.registry is registry
    names = set(families(registry))
    assert {"naviyam_requests", "naviyam_errors", "naviyam_degraded", "naviyam_empty_recommendations",
            "naviyam_refusals", "naviyam_recommendations_shown", "naviyam_recommendation_lists",
            "naviyam_client_clock_skewed", "naviyam_response_seconds", "naviyam_step_seconds",
            "naviyam_ranker_turns", "naviyam_feature_store_up", "naviyam_feature_store_failures"} <= names


def test_step_timings_become_seconds_and_unknown_steps_are_ignored():
    m = ChatMetrics()
    # An envelope reaches the nlg node in a request body: a forged step name must not add a series.
    m.observe_steps({"nlu": 12.5, "ranking": 40.0, "evil-step-name": 1.0, "nlg": "NaN?", "retrieval": -3})
    samples = families(m.registry)["naviyam_step_seconds"]
    counts = {s.labels["step"]: s.value for s in samples if s.name == "naviyam_step_seconds_count"}
    sums = {s.labels["step"]: s.value for s in samples if s.name == "naviyam_step_seconds_sum"}
    assert counts == {"nlu": 1, "ranking": 1}
    assert sums["nlu"] == 0.0125 and sums["ranking"] == 0.04
    assert set(counts) <= set(STEPS)


def test_ranker_arm_and_feature_store_exposition():
    m = ChatMetrics()
    store = FeatureStoreMetrics(m.registry)
    m.ranker_turns.labels(channel="canary", version="v7", outcome="scored").inc(3)
    m.ranker_turns.labels(channel="canary", version="v7", outcome="failed").inc()
    store.failures.labels(stage="connect").inc()
    store.up.set(0)
    snap = m.snapshot()
    assert snap["naviyam_ranker_turns_total{channel=canary,outcome=scored,version=v7}"] == 3
    assert snap["naviyam_ranker_turns_total{channel=canary,outcome=failed,version=v7}"] == 1
    assert snap["naviyam_feature_store_failures_total{stage=connect}"] == 1
    assert snap["naviyam_feature_store_up"] == 0


def test_labelled_counters_stay_silent_until_used():
    # Every served process carries the same families; one that never ranks shows no arm series
    # (no zero that a dashboard would read as a second arm).
    snap = ChatMetrics().snapshot()
    assert not any(k.startswith("naviyam_ranker_turns_total") for k in snap)
    assert snap["naviyam_degraded_total"] == 0
