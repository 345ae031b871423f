"""Prometheus metrics for the chatbot, on an instance-owned registry (no global state).

KServe model servers expose ``/metrics`` from the default registry; a served component passes
that registry in, the CLI and tests use their own.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ChatMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.requests = Counter("naviyam_requests", "Chat requests by intent", ["intent"], registry=self.registry)
        self.errors = Counter("naviyam_errors", "Failed steps by step name", ["step"], registry=self.registry)
        self.degraded = Counter("naviyam_degraded", "Answers built without some step", registry=self.registry)
        self.empty = Counter("naviyam_empty_recommendations", "Recommendation asks that found no shop",
                             registry=self.registry)
        self.client_clock_skewed = Counter(
            "naviyam_client_clock_skewed", "Turns whose device clock was too far from the server's to believe",
            registry=self.registry)
        self.latency = Histogram(
            "naviyam_response_seconds", "End-to-end response time", registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0, 5.0),
        )

    def snapshot(self) -> dict[str, float]:
        """Flat name -> value view (for tests and `naviyam chat --json` debugging)."""
        out: dict[str, float] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        return out
