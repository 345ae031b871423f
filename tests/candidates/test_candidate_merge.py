"""merge_candidates: one Candidate per shop, per-funnel scores kept, deterministic order."""
from __future__ import annotations

import numpy as np
import pytest

from naviyam.candidates import MERGE_WEIGHTS, combined_score, merge_candidates
from naviyam.candidates.merge import top_allowed


def test_merge_deduplicates_and_keeps_per_funnel_scores():
    merged = merge_candidates({
        "popularity": [("a", 0.9), ("b", 0.5)],
        "content": [("b", 0.8), ("c", 0.7)],
        "collaborative": [],
        "contextual": [("a", 0.4), ("c", 0.2), ("d", 0.1)],
    })
    by_id = {c.shop_id: c.scores for c in merged}
    assert sorted(by_id) == ["a", "b", "c", "d"]
    assert len(merged) == 4
    assert by_id["a"] == {"popularity": 0.9, "contextual": 0.4}
    assert by_id["b"] == {"popularity": 0.5, "content": 0.8}
    assert by_id["c"] == {"content": 0.7, "contextual": 0.2}
    assert by_id["d"] == {"contextual": 0.1}


def test_merge_orders_by_weighted_sum():
    merged = merge_candidates({
        "popularity": [("a", 0.9), ("b", 0.5)],
        "content": [("b", 0.8), ("c", 0.7)],
        "contextual": [("a", 0.4), ("c", 0.2), ("d", 0.1)],
    })
    combined = [combined_score(c) for c in merged]
    assert combined == sorted(combined, reverse=True)
    assert combined[0] == pytest.approx(MERGE_WEIGHTS["popularity"] * 0.5 + MERGE_WEIGHTS["content"] * 0.8)
    assert [c.shop_id for c in merged] == ["b", "a", "c", "d"]
    assert sum(MERGE_WEIGHTS.values()) == pytest.approx(1.0)


def test_merge_rewards_agreement_and_breaks_ties_by_shop_id():
    merged = merge_candidates({"content": [("z", 0.5), ("y", 0.5)], "collaborative": [("x", 0.5), ("y", 0.5)]})
    assert [c.shop_id for c in merged] == ["y", "x", "z"]


def test_merge_keeps_the_best_score_of_a_duplicated_entry_and_handles_empty_input():
    merged = merge_candidates({"content": [("a", 0.2), ("a", 0.6)]})
    assert merged[0].scores == {"content": 0.6}
    assert merge_candidates({}) == []
    assert merge_candidates({"popularity": []}) == []


def test_top_allowed_picks_positive_allowed_scores_in_order():
    ids = np.array(["a", "b", "c", "d", "e"])
    scores = np.array([0.1, 0.9, 0.0, 0.5, 0.9])
    allowed = np.array([True, True, True, True, False])
    assert top_allowed(scores, allowed, ids, 10) == [("b", 0.9), ("d", 0.5), ("a", 0.1)]
    assert top_allowed(scores, allowed, ids, 2) == [("b", 0.9), ("d", 0.5)]
    assert top_allowed(scores, np.zeros(5, dtype=bool), ids, 2) == []
