"""Prometheus metrics for the chatbot, on an instance-owned registry (no global state).

KServe's ModelServer serves ``/metrics`` from prometheus_client's default ``REGISTRY``: a served
process (components/server.py) makes one ``ChatMetrics(REGISTRY)`` and hands it to its model; the
CLI and tests, which make many bots in one process, leave each bot its own private registry.

Each metric is recorded by the step that knows it: the nlg node finishes the turn (intent,
latency, step timings, degraded, refusals, shops shown), every step counts its own failures, the
ranker transformer counts which ranker arm served a turn and whether Feast answered.
"""
from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Label values come from the code, never from a request: an envelope's timings are passed from
# node to node in the request body, and a forged step name must not make a new time series.
STEPS = ("preprocess", "nlu", "retrieval", "candidates", "fanout", "ranking", "nlg")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0, 5.0)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ChatMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("naviyam_requests", "Chat turns answered, by intent", ["intent"], registry=r)
        self.errors = Counter("naviyam_errors", "Failed steps by step name", ["step"], registry=r)
        self.degraded = Counter("naviyam_degraded", "Answers built without some step", registry=r)
        self.empty = Counter("naviyam_empty_recommendations", "Recommendation asks that found no shop", registry=r)
        self.refusals = Counter(
            "naviyam_refusals", "Safety refusals: unsafe requests refused (stage=request), answers or shops "
                                "withheld by an output check (stage=output)", ["stage"], registry=r)
        self.shown = Counter("naviyam_recommendations_shown", "Shops shown in answers", registry=r)
        self.lists = Counter("naviyam_recommendation_lists", "Answers that showed at least one shop", registry=r)
        self.client_clock_skewed = Counter(
            "naviyam_client_clock_skewed", "Turns whose device clock was too far from the server's to believe",
            registry=r)
        self.latency = Histogram("naviyam_response_seconds", "End-to-end response time", registry=r,
                                 buckets=LATENCY_BUCKETS)
        self.step_latency = Histogram(
            "naviyam_step_seconds", "Time of each step (hop) of a turn, from the envelope's timings", ["step"],
            registry=r, buckets=STEP_BUCKETS)
        self.ranker_turns = Counter(
            "naviyam_ranker_turns", "Turns the ranker scored (outcome=scored) or could not score (outcome=failed: "
                                    "ordered by relevance), by the arm that served them",
            ["channel", "version", "outcome"], registry=r)

    def observe_steps(self, timings_ms: Mapping[str, float]) -> None:
        for step in STEPS:
            ms = timings_ms.get(step)
            if isinstance(ms, (int, float)) and ms >= 0:
                self.step_latency.labels(step=step).observe(ms / 1000.0)

    def snapshot(self) -> dict[str, float]:
        """Flat name -> value view (for tests and `naviyam chat --json` debugging)."""
        return snapshot(self.registry)


class FeatureStoreMetrics:
    """The ranker transformer's view of Feast (only that process has one: a gauge anywhere else
    would read 0, "down")."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge("naviyam_feature_store_up", "1 while the ranker's features come from Feast's online store "
                                                    "and its last lookup worked; 0 while it serves the training "
                                                    "snapshot or lookups fail", registry=self.registry)
        self.failures = Counter(
            "naviyam_feature_store_failures", "Feature store failures: connect (start-up or retry, the snapshot is "
                                              "served meanwhile), lookup (a request's features)", ["stage"],
            registry=self.registry)


def snapshot(registry: CollectorRegistry) -> dict[str, float]:
    return flat_samples(registry.collect())


def scraped(exposition: str) -> dict[str, float]:
    """A scraped ``/metrics`` text in the same flat view as ``snapshot``."""
    from prometheus_client.parser import text_string_to_metric_families

    return flat_samples(text_string_to_metric_families(exposition))


def flat_samples(families) -> dict[str, float]:
    """``name{label=value,...}`` -> value, labels sorted, for every sample of ``families``."""
    out: dict[str, float] = {}
    for metric in families:
        for sample in metric.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out
