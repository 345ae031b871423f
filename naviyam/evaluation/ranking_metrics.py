"""Ranking metrics over one candidate list (pure functions, no state).

Every function takes ``scores`` (higher = ranked earlier) and ``relevance`` (graded, 0 = not
relevant) aligned per candidate, so callers never have to sort themselves. Ties in ``scores``
keep the input order (stable sort), which makes the metrics deterministic.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _as_arrays(scores: ArrayLike, relevance: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    r = np.asarray(relevance, dtype=np.float64).ravel()
    if s.shape != r.shape:
        raise ValueError(f"scores and relevance differ in length: {s.shape[0]} vs {r.shape[0]}")
    if np.any(r < 0):
        raise ValueError("relevance must be >= 0")
    return s, r


def ranked_relevance(scores: ArrayLike, relevance: ArrayLike) -> np.ndarray:
    """Relevance in ranked order (descending score, stable for ties)."""
    s, r = _as_arrays(scores, relevance)
    return r[np.argsort(-s, kind="stable")]


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def precision_at_k(scores: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Share of the top-k slots holding a relevant item; divides by k even for short lists."""
    _check_k(k)
    top = ranked_relevance(scores, relevance)[:k]
    return float(np.count_nonzero(top > 0)) / k


def recall_at_k(scores: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Share of all relevant items that made the top k; 0.0 when nothing is relevant."""
    _check_k(k)
    ranked = ranked_relevance(scores, relevance)
    n_relevant = np.count_nonzero(ranked > 0)
    if n_relevant == 0:
        return 0.0
    return float(np.count_nonzero(ranked[:k] > 0)) / n_relevant


def dcg_at_k(ranked_rel: ArrayLike, k: int) -> float:
    """Linear-gain DCG: sum rel_i / log2(i + 2) over the first k ranked items."""
    _check_k(k)
    rel = np.asarray(ranked_rel, dtype=np.float64)[:k]
    discounts = np.log2(np.arange(2, rel.size + 2))
    return float(np.sum(rel / discounts))


def ndcg_at_k(scores: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """DCG of the given order over DCG of the ideal order (graded, linear gain).

    Linear gain keeps an order (2.0) worth twice a click (1.0), matching the sample weights the
    ranker is trained with. Returns 0.0 when nothing is relevant.
    """
    s, r = _as_arrays(scores, relevance)
    ideal = dcg_at_k(np.sort(r)[::-1], k)
    if ideal == 0.0:
        return 0.0
    return dcg_at_k(r[np.argsort(-s, kind="stable")], k) / ideal


def auc(scores: ArrayLike, relevance: ArrayLike) -> float:
    """ROC AUC of ``relevance > 0`` vs scores (ties count half); NaN when one class is missing.

    Computed from the Mann-Whitney rank sum: the same value as ``sklearn.metrics.roc_auc_score``
    but ~50x faster on short lists, which matters when evaluating thousands of sessions.
    """
    s, r = _as_arrays(scores, relevance)
    labels = r > 0
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # 1-based ranks, tied scores sharing their average rank.
    _, group, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[group]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
