"""The graph compiled for routing: each node's steps with their targets resolved."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inference_graph.client import RetryPolicy, Upstream
from inference_graph.go_http import url_error
from inference_graph.spec import DATA_RESPONSE, InferenceRouter, RouterType


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    label: str  # name, or index as KServe's Ensemble uses
    path: str  # "node/label", for the failed-step header and logs
    node: str | None  # nodeName target
    upstream: Upstream | None  # the resolved serviceName / serviceUrl: its endpoints and retry policy
    use_response: bool
    condition: str  # "" when unset, as Go's zero string
    hard: bool
    weight: int
    map_predictions: bool
    url_error: str | None  # what Go's url.Parse says of a serviceUrl it cannot parse

    @property
    def url(self) -> str | None:
        """The service's first endpoint (for messages and readiness)."""
        return self.upstream.urls[0] if self.upstream else None


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    kind: RouterType
    steps: tuple[Step, ...]


def compile_node(name: str, node: InferenceRouter, upstreams: dict[str, Upstream], retry: RetryPolicy) -> Node:
    """``node``'s steps, each with its ``Upstream``: a service's is taken from ``upstreams`` (shared by
    every step that calls it), a ``serviceUrl`` step's is added there under its URL."""
    steps = []
    for i, s in enumerate(node.steps):
        upstream = None
        if s.service_name:
            upstream = upstreams[s.service_name]
        elif s.service_url:
            upstream = upstreams.setdefault(s.service_url, Upstream(s.service_url, [s.service_url], retry))
        steps.append(Step(index=i, label=s.label(i), path=f"{name}/{s.label(i)}", node=s.node_name,
                          upstream=upstream, use_response=s.data == DATA_RESPONSE and i > 0,
                          condition=s.condition or "", hard=s.is_hard, weight=s.weight or 0,
                          map_predictions=bool(s.map_predictions_to_instances),
                          url_error=url_error(s.service_url) if s.service_url else None))
    return Node(name, node.router_type, tuple(steps))


def endpoints(urls: str | Sequence[str]) -> list[str]:
    """A service's endpoint list from one URL or several."""
    out = [urls] if isinstance(urls, str) else list(urls)
    if not out or not all(isinstance(u, str) and u for u in out):
        raise ValueError(f"a service needs one or more URLs, got {urls!r}")
    return out
