"""The graph router's Prometheus metrics."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram


class RouterMetrics:
    """The router's own metrics, on a registry of its own (one per app: tests build many in one
    process; the served router has one, at ``GET /metrics``)."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("naviyam_router_requests", "Graph requests answered, by HTTP status", ["status"],
                                registry=r)
        self.latency = Histogram("naviyam_router_request_seconds", "Time to answer a graph request",
                                 registry=r, buckets=self.BUCKETS)
        # A label per step path ("node/step"): the graph fixes them, requests cannot add any.
        self.steps = Histogram("naviyam_router_step_seconds", "Time of each service call of the graph, by step "
                                                              "and status (failed: no answer)", ["step", "status"],
                               registry=r, buckets=self.BUCKETS)

    def observe_step(self, step: str, status: int | str, started: float) -> None:
        self.steps.labels(step=step, status=str(status)).observe(time.perf_counter() - started)

    def observe_request(self, status: int, started: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(time.perf_counter() - started)
