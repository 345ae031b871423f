"""Ranking metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from naviyam.evaluation.ranking_metrics import (
    auc, dcg_at_k, ndcg_at_k, precision_at_k, ranked_relevance, recall_at_k,
)

# Ranked order by score: d0 (rel 1), d1 (0), d2 (2), d3 (0), d4 (1)
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]
REL = [1, 0, 2, 0, 1]


def test_ranked_relevance_sorts_by_score_and_keeps_ties_stable():
    assert ranked_relevance([0.1, 0.9, 0.5], [3, 1, 2]).tolist() == [1, 2, 3]
    assert ranked_relevance([0.5, 0.5, 0.9], [1, 2, 3]).tolist() == [3, 1, 2]


def test_precision_at_k():
    assert precision_at_k(SCORES, REL, 1) == 1.0
    assert precision_at_k(SCORES, REL, 2) == 0.5
    assert precision_at_k(SCORES, REL, 5) == pytest.approx(3 / 5)
    # Short lists still divide by k.
    assert precision_at_k(SCORES, REL, 10) == pytest.approx(3 / 10)
    # Order of the input does not matter, only the scores.
    assert precision_at_k(SCORES[::-1], REL[::-1], 2) == 0.5


def test_recall_at_k():
    assert recall_at_k(SCORES, REL, 1) == pytest.approx(1 / 3)
    assert recall_at_k(SCORES, REL, 3) == pytest.approx(2 / 3)
    assert recall_at_k(SCORES, REL, 5) == 1.0
    assert recall_at_k(SCORES, [0, 0, 0, 0, 0], 3) == 0.0


def test_dcg_and_ndcg_hand_computed():
    # DCG@3 of ranked rels [1, 0, 2] = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2
    assert dcg_at_k([1, 0, 2], 3) == pytest.approx(2.0)
    # ideal [2, 1, 1]: 2 + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5
    ideal3 = 2 + 1 / math.log2(3) + 0.5
    assert ndcg_at_k(SCORES, REL, 3) == pytest.approx(2.0 / ideal3)
    # @5 adds d4 at rank 5: 1/log2(6)
    dcg5 = 2.0 + 1 / math.log2(6)
    assert ndcg_at_k(SCORES, REL, 5) == pytest.approx(dcg5 / ideal3)
    # graded: putting the order (2) first is perfect
    assert ndcg_at_k([0.1, 0.2, 0.9], [1, 0, 2], 2) == pytest.approx((2 + 0) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k([3, 2, 1], [2, 1, 0], 3) == pytest.approx(1.0)
    assert ndcg_at_k(SCORES, [0] * 5, 5) == 0.0


def test_auc_hand_computed_and_matches_sklearn():
    # pairs (pos, neg): (0.35 vs 0.1 ok, vs 0.4 no), (0.8 vs both ok) -> 3/4
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts half
    assert auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert auc([1, 2, 3], [1, 1, 0]) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = rng.integers(0, 4, 12).astype(float)
        r = np.array([0, 1] + list(rng.integers(0, 3, 10)))
        assert auc(s, r) == pytest.approx(roc_auc_score(r > 0, s))


def test_auc_single_class_is_nan():
    assert math.isnan(auc([0.1, 0.2], [0, 0]))
    assert math.isnan(auc([0.1, 0.2], [1, 2]))


@pytest.mark.parametrize("fn", [precision_at_k, recall_at_k, ndcg_at_k])
def test_invalid_arguments(fn):
    with pytest.raises(ValueError):
        fn([0.1, 0.2], [1], 1)
    with pytest.raises(ValueError):
        fn([0.1, 0.2], [1, 0], 0)
    with pytest.raises(ValueError):
        fn([0.1, 0.2], [-1, 0], 1)
