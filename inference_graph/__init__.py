"""Naviyam's KServe InferenceGraph: the spec (``spec``), the graph (``naviyam.yaml``) and a local
router with the semantics of KServe's Go router (``graph_router``, served over HTTP by ``router``).
See README.md."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NAVIYAM_GRAPH": "spec",
    "InferenceGraph": "spec", "GraphValidationError": "spec", "load_graph": "spec", "parse_graph": "spec",
    "crd_validation_errors": "spec", "GraphRouter": "graph_router", "GraphResponse": "outcomes",
    "create_app": "router", "load_service_urls": "router",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m inference_graph.router` does not import the router module twice.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
