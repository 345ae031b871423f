"""Step 6: personalised Wide&Deep ranking (trained in torch, served with onnxruntime).

Modules: ``features`` (feature space, sources, builders), ``model`` (network), ``samples``
(training samples from events), ``train``, ``export`` (ONNX), ``scorer`` (serving),
``evaluate`` (held-out metrics). Nothing here is imported eagerly: serving imports only
``scorer`` and ``features`` and must never pull in torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "FeatureSpace": "naviyam.ranking.features",
    "FeatureSource": "naviyam.ranking.features",
    "TableFeatureSource": "naviyam.ranking.features",
    "RankingFeatures": "naviyam.ranking.features",
    "OnnxRanker": "naviyam.ranking.scorer",
    "WideAndDeep": "naviyam.ranking.model",
    "train_ranker": "naviyam.ranking.train",
    "evaluate_ranker": "naviyam.ranking.evaluate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'naviyam.ranking' has no attribute {name!r}")
