"""FAISS vector index (flat and IVF, restricted search, persistence) and BM25 index."""
from __future__ import annotations

import numpy as np
import pytest

from naviyam.retrieval import BM25Index, VectorIndex
from naviyam.retrieval import vector_index as vector_index_module


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(600, 32)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _exact_top(vectors, q, k, allowed):
    scores = vectors[allowed] @ q
    return allowed[np.argsort(-scores)[:k]]


@pytest.mark.parametrize("threshold", [10_000, 100])
def test_index_type_follows_the_threshold(vectors, threshold):
    index = VectorIndex.build(vectors, ivf_threshold=threshold)
    assert index.kind == ("flat" if threshold >= len(vectors) else "ivf_flat")
    assert index.n_docs == 600 and index.dim == 32
    if index.kind == "ivf_flat":
        assert 1 < index.nlist < 600 and 1 <= index.nprobe <= index.nlist


def test_flat_search_is_exact_with_and_without_a_subset(vectors):
    index = VectorIndex.build(vectors, ivf_threshold=10_000)
    q = vectors[5]
    scores, ids = index.search(q, 10)
    np.testing.assert_array_equal(ids, _exact_top(vectors, q, 10, np.arange(600)))
    assert ids[0] == 5 and np.all(np.diff(scores) <= 1e-6)
    allowed = np.arange(1, 600, 7)
    _, ids = index.search(q, 10, allowed)
    np.testing.assert_array_equal(ids, _exact_top(vectors, q, 10, allowed))


@pytest.mark.parametrize("exact_subset_max", [4096, 0])
def test_ivf_restricted_search_never_leaves_the_subset(vectors, monkeypatch, exact_subset_max):
    # exact_subset_max=0 forces the IDSelector path instead of the exact small-subset scan.
    monkeypatch.setattr(vector_index_module, "EXACT_SUBSET_MAX", exact_subset_max)
    index = VectorIndex.build(vectors, ivf_threshold=100)
    rng = np.random.default_rng(1)
    for _ in range(20):
        allowed = np.sort(rng.choice(600, size=int(rng.integers(1, 300)), replace=False))
        q = vectors[int(rng.integers(600))]
        scores, ids = index.search(q, 15, allowed)
        assert set(ids.tolist()) <= set(allowed.tolist())
        assert len(ids) == min(15, len(allowed))
        np.testing.assert_allclose(scores, vectors[ids] @ q, atol=1e-5)


def test_ivf_finds_the_query_itself(vectors):
    index = VectorIndex.build(vectors, ivf_threshold=100)
    assert all(index.search(vectors[i], 1)[1][0] == i for i in range(0, 600, 50))


def test_empty_subset_and_scores_for(vectors):
    index = VectorIndex.build(vectors, ivf_threshold=100)
    scores, ids = index.search(vectors[0], 5, np.array([], dtype=np.int64))
    assert scores.size == 0 and ids.size == 0
    np.testing.assert_allclose(index.scores_for(vectors[0], [0, 3]), vectors[[0, 3]] @ vectors[0], atol=1e-5)


@pytest.mark.parametrize("threshold", [10_000, 100])
def test_vector_index_save_load_round_trip(vectors, tmp_path, threshold):
    index = VectorIndex.build(vectors, ivf_threshold=threshold)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", nprobe=index.nprobe)
    assert loaded.kind == index.kind and loaded.nprobe == index.nprobe
    allowed = np.arange(0, 600, 3)
    for q in vectors[:5]:
        for subset in (None, allowed):
            a, b = index.search(q, 10, subset), loaded.search(q, 10, subset)
            np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_allclose(a[0], b[0])


def test_bm25_scores_subset_unknown_words_and_round_trip(tmp_path):
    corpus = [["치킨", "가게", "후라이드"], ["분식", "떡볶이", "김밥"], ["치킨", "치킨", "양념"]]
    index = BM25Index.build(corpus)
    scores = index.scores(["치킨"])
    assert scores.shape == (3,) and scores[1] == 0 and scores[0] > 0 and scores[2] > 0
    np.testing.assert_allclose(index.scores(["치킨"], doc_ids=np.array([2, 0])), scores[[2, 0]])
    np.testing.assert_array_equal(index.scores(["우주선"]), np.zeros(3))
    np.testing.assert_array_equal(index.scores([]), np.zeros(3))
    # a repeated query word counts once
    np.testing.assert_allclose(index.scores(["치킨", "치킨"]), scores)
    index.save(tmp_path / "bm25")
    np.testing.assert_allclose(BM25Index.load(tmp_path / "bm25").scores(["떡볶이", "김밥"]), index.scores(["떡볶이", "김밥"]))
