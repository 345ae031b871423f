"""Hybrid retriever: Korean sanity, hard filters, IVF path, persistence."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from naviyam.config import RetrievalSettings
from naviyam.filtering import shop_mask
from naviyam.retrieval import RetrievalIndexError, Retriever
from naviyam.schemas import CATEGORIES, SearchFilters

# Same as the ``origin`` fixture; hypothesis-driven tests take no extra fixtures per example.
ORIGIN = (37.5, 127.03)


def _allowed(catalog, filters, origin=None) -> set[str]:
    return set(catalog.shops["shop_id"][shop_mask(catalog, filters, origin)])


def _shop_named(catalog, category, meal_card):
    shops = catalog.shops
    return shops[(shops["category"] == category) & (shops["accepts_meal_card"] == meal_card)].iloc[0]


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("급식카드 되는 치킨집 추천해줘", "치킨"),
        ("짜장면 먹을래", "중식"),
        ("떡볶이 먹고 싶어", "분식"),
        ("치킨먹고싶어", "치킨"),
        ("통닭 시켜줘", "치킨"),
        ("빵 사먹을래", "베이커리"),
        ("초밥 먹고싶다", "일식"),
    ],
)
def test_korean_queries_rank_the_right_category_first(retriever, categories, query, category):
    hits = retriever.search(query, SearchFilters(), top_k=5)
    assert categories[hits[0].shop_id] == category, [(categories[h.shop_id], h.rag_score) for h in hits]


def test_hits_are_sorted_scored_and_quoted(retriever, catalog):
    hits = retriever.search("급식카드 되는 치킨집 추천해줘", SearchFilters(), top_k=10)
    assert len(hits) == 10
    scores = [h.rag_score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores) and scores[0] > scores[-1]
    assert all(0.5 < h.dense_score <= 1.0 for h in hits)  # raw e5 cosines
    top = hits[0]
    assert top.bm25_score > 0
    name = catalog.shops.loc[top.shop_id, "name"]
    assert top.matched_content.startswith(name) and "급식카드" in top.matched_content
    assert retriever.get_document(top.shop_id).startswith(name)


def test_default_top_k_comes_from_settings(catalog, embedder, tokenizer, retriever):
    assert len(retriever.search("치킨", SearchFilters())) == RetrievalSettings().top_k
    small = Retriever.build(catalog, embedder, RetrievalSettings(top_k=3), tokenizer=tokenizer)
    assert len(small.search("치킨", SearchFilters())) == 3


def test_empty_query_zero_k_and_no_allowed_shop_give_nothing(retriever):
    assert retriever.search("   ", SearchFilters()) == []
    assert retriever.search("치킨", SearchFilters(), top_k=0) == []
    assert retriever.search("치킨", SearchFilters(shop_name="존재하지않는가게")) == []
    assert retriever.search("치킨", SearchFilters(max_price=100)) == []


# ---------------------------------------------------------------- hard filters
def test_category_filter_beats_a_strong_text_match(retriever, categories, catalog):
    chicken = _shop_named(catalog, "치킨", True)
    hits = retriever.search(f"{chicken['name']} 후라이드치킨 양념치킨 통닭", SearchFilters(category="분식"), top_k=50)
    assert hits and all(categories[h.shop_id] == "분식" for h in hits)


def test_meal_card_filter_excludes_a_perfectly_matching_shop(retriever, catalog):
    no_card = _shop_named(catalog, "치킨", False)
    query = f"{no_card['name']} {retriever.get_document(no_card['shop_id'])}"
    hits = retriever.search(query, SearchFilters(meal_card=True), top_k=50)
    assert hits and no_card["shop_id"] not in {h.shop_id for h in hits}
    assert all(catalog.shops.loc[h.shop_id, "accepts_meal_card"] for h in hits)
    # without the filter the same shop is the best match
    assert retriever.search(query, SearchFilters(), top_k=1)[0].shop_id == no_card["shop_id"]


def test_max_price_filter(retriever, catalog):
    hits = retriever.search("순살치킨 후라이드치킨 탕수육 초밥 10피스", SearchFilters(max_price=3000), top_k=50)
    assert hits
    for hit in hits:
        assert min(m.price for m in catalog.menus_of(hit.shop_id)) <= 3000


def test_exclude_and_allergy_filters(retriever, catalog):
    best = retriever.search("짜장면 먹을래", SearchFilters(), top_k=1)[0].shop_id
    hits = retriever.search("짜장면 먹을래", SearchFilters(exclude_shop_ids=[best]), top_k=50)
    assert hits and best not in {h.shop_id for h in hits}
    hits = retriever.search("빵 먹고 싶어", SearchFilters(allergies=["밀", "우유"]), top_k=50)
    assert hits
    for hit in hits:
        assert any(not {"밀", "우유"} & set(m.allergens) for m in catalog.menus_of(hit.shop_id))


def test_distance_filter_uses_the_origin(retriever, catalog, origin):
    assert origin == ORIGIN
    filters = SearchFilters(max_distance_km=1.0)
    hits = retriever.search("치킨", filters, top_k=50, origin=origin)
    assert {h.shop_id for h in hits} == _allowed(catalog, filters, origin)
    assert len(hits) < len(catalog.shops)


filter_strategy = st.builds(
    SearchFilters,
    category=st.none() | st.sampled_from(CATEGORIES),
    meal_card=st.booleans(),
    max_price=st.none() | st.integers(1000, 20000),
    exclude_shop_ids=st.lists(st.sampled_from([f"shop{i:04d}" for i in range(36)]), max_size=8),
    allergies=st.lists(st.sampled_from(["밀", "우유", "달걀", "대두", "돼지고기", "새우"]), max_size=3),
    open_at=st.none() | st.sampled_from(["08:00", "12:30", "17:00", "23:30"]),
    max_distance_km=st.none() | st.floats(0.2, 5.0),
)


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    filters=filter_strategy,
    query=st.sampled_from(["급식카드 되는 치킨집", "짜장면 먹을래", "떡볶이", "맛있는치킨 0호점 후라이드치킨", "아무거나"]),
    top_k=st.integers(1, 40),
)
def test_filters_are_hard_for_any_combination(retriever, catalog, filters, query, top_k):
    allowed = _allowed(catalog, filters, ORIGIN)
    hits = retriever.search(query, filters, top_k=top_k, origin=ORIGIN)
    ids = [h.shop_id for h in hits]
    assert set(ids) <= allowed
    assert len(ids) == len(set(ids)) == min(top_k, len(allowed))


# ---------------------------------------------------------------- IVF and persistence
@pytest.fixture(scope="module")
def ivf_retriever(catalog, embedder, tokenizer):
    return Retriever.build(catalog, embedder, RetrievalSettings(ivf_threshold=10), tokenizer=tokenizer)


def test_ivf_index_above_threshold_gives_sane_results(ivf_retriever, retriever, categories, catalog):
    assert ivf_retriever.meta["index_type"] == "ivf_flat" and ivf_retriever.meta["nlist"] > 1
    assert retriever.meta["index_type"] == "flat"
    assert ivf_retriever.version != retriever.version
    for query, category in [("급식카드 되는 치킨집 추천해줘", "치킨"), ("짜장면 먹을래", "중식"), ("떡볶이 먹고 싶어", "분식")]:
        assert categories[ivf_retriever.search(query, SearchFilters(), top_k=3)[0].shop_id] == category
    filters = SearchFilters(category="한식", meal_card=True)
    hits = ivf_retriever.search("치킨", filters, top_k=20)
    assert {h.shop_id for h in hits} == _allowed(catalog, filters)


QUERIES = [
    ("급식카드 되는 치킨집 추천해줘", SearchFilters()),
    ("짜장면 먹을래", SearchFilters(meal_card=True)),
    ("떡볶이", SearchFilters(max_price=5000, exclude_shop_ids=["shop0003"])),
]


@pytest.mark.parametrize("which", ["flat", "ivf"])
def test_save_load_round_trip_gives_identical_results(which, retriever, ivf_retriever, catalog, embedder, settings, tmp_path):
    original = retriever if which == "flat" else ivf_retriever
    original.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", catalog, embedder, settings)
    assert loaded.version == original.version
    assert loaded.meta == original.meta
    for query, filters in QUERIES:
        assert loaded.search(query, filters, top_k=10) == original.search(query, filters, top_k=10)


def test_rebuild_gives_the_same_version(retriever, catalog, embedder, settings, tokenizer):
    again = Retriever.build(catalog, embedder, settings, tokenizer=tokenizer)
    assert again.version == retriever.version
    assert again.meta["n_docs"] == 36 and again.meta["dim"] == 384 and again.meta["built_at"]


class _OtherEmbedder:
    """Same vectors, different model name: a saved index must refuse it."""

    def __init__(self, inner):
        self._inner, self.dim, self.name = inner, inner.dim, "some-other-model"

    def embed_queries(self, texts):
        return self._inner.embed_queries(texts)

    def embed_passages(self, texts):
        return self._inner.embed_passages(texts)


def test_load_refuses_a_mismatched_embedder_or_catalog(retriever, catalog, embedder, settings, make_catalog, tmp_path):
    retriever.save(tmp_path / "index")
    with pytest.raises(RetrievalIndexError, match="some-other-model"):
        Retriever.load(tmp_path / "index", catalog, _OtherEmbedder(embedder), settings)
    smaller = make_catalog(tmp_path / "small", n_shops=24)
    with pytest.raises(RetrievalIndexError, match="rebuild"):
        Retriever.load(tmp_path / "index", smaller, embedder, settings)
    with pytest.raises(FileNotFoundError):
        Retriever.load(tmp_path / "missing", catalog, embedder, settings)


def test_load_warns_when_the_catalog_changed(retriever, embedder, settings, make_catalog, tmp_path, caplog):
    retriever.save(tmp_path / "index")
    repriced = make_catalog(tmp_path / "repriced", seed=99)  # same shop ids, other menus
    with caplog.at_level(logging.WARNING, logger="naviyam.retrieval.retriever"):
        loaded = Retriever.load(tmp_path / "index", repriced, embedder, settings)
    assert "stale" in caplog.text
    # filters read the live catalog, so they stay exact even on a stale index
    filters = SearchFilters(max_price=4000)
    hits = loaded.search("떡볶이", filters, top_k=36)
    assert {h.shop_id for h in hits} == _allowed(repriced, filters)


def test_search_is_deterministic(retriever):
    runs = [retriever.search("치킨 먹고 싶어", SearchFilters(), top_k=15) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert np.all(np.isfinite([h.rag_score for h in runs[0]]))
