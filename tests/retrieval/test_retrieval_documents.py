"""Shop documents, the Kiwi tokenizer and snippets."""
from __future__ import annotations

from naviyam.lexicon import CATEGORY_SYNONYMS
from naviyam.retrieval import BM25Index, dense_text, shop_document
from naviyam.retrieval.documents import snippet
from naviyam.schemas import MenuItem

MENUS = [
    MenuItem(name="치킨너겟", price=5000, is_signature=False),
    MenuItem(name="후라이드치킨", price=18000, is_signature=True),
    MenuItem(name="양념치킨", price=19000, is_signature=True),
]


def _row(**overrides):
    row = {"shop_id": "s1", "name": "바삭치킨 역삼점", "category": "치킨", "address": "서울 강남구 역삼로 1",
           "accepts_meal_card": True, "is_good_influence_shop": True}
    row.update(overrides)
    return row


def test_shop_document_describes_the_shop():
    doc = shop_document(_row(), MENUS, school_name="역삼초등학교")
    assert doc.startswith("바삭치킨 역삼점 — 치킨 가게")
    assert "대표 메뉴: 후라이드치킨 18,000원, 양념치킨 19,000원." in doc
    assert "치킨너겟 5,000원" in doc
    assert "5,000원부터" in doc
    assert "급식카드 사용 가능" in doc
    assert "착한가게(선한영향력가게)" in doc
    assert "역삼초등학교 근처" in doc
    assert "서울 강남구 역삼로 1" in doc
    # child words for the category, typos included, so BM25 matches them
    for word in ("통닭", "치킨집", "치킹"):
        assert word in doc
    assert set(CATEGORY_SYNONYMS["치킨"]) - {"치킨"} <= set(doc.replace(",", " ").replace(".", " ").split())


def test_shop_document_never_mentions_a_missing_meal_card():
    doc = shop_document(_row(accepts_meal_card=False, is_good_influence_shop=False), MENUS)
    assert "급식카드" not in doc
    assert "착한가게" not in doc


def test_dense_text_is_compact_and_food_only():
    text = dense_text(_row(), MENUS)
    assert text.startswith("치킨 가게 치킨집:")
    assert "후라이드치킨" in text and "원" not in text and "바삭" not in text


def test_tokenizer_splits_unspaced_child_text(tokenizer):
    assert "치킨" in tokenizer.tokenize("치킨먹고싶어")
    assert tokenizer.tokenize("급식카드 되는 치킨집 추천해줘")[:2] == ["급식", "카드"]
    assert tokenizer.tokenize("GS25 편의점") == ["gs", "편의점"]
    assert tokenizer.tokenize("   ") == []


def test_bm25_finds_chicken_for_unspaced_text(tokenizer):
    docs = [
        shop_document(_row(), MENUS),
        shop_document(_row(name="엄마손분식", category="분식"), [MenuItem(name="떡볶이", price=4500)]),
        shop_document(_row(name="행복반점", category="중식"), [MenuItem(name="짜장면", price=7000)]),
    ]
    index = BM25Index.build(tokenizer.tokenize_many(docs))
    scores = index.scores(tokenizer.tokenize("치킨먹고싶어"))
    assert scores.argmax() == 0 and scores[0] > 0
    assert index.scores(tokenizer.tokenize("떡뽁이 먹을래")).argmax() == 1  # a typo from the lexicon


def test_snippet_prefers_the_sentence_matching_the_query(tokenizer):
    doc = shop_document(_row(), MENUS)
    text = snippet(doc, tokenizer.tokenize("급식카드 되는 치킨집"))
    assert text.startswith("바삭치킨 역삼점 — 치킨 가게") and "급식카드 사용 가능" in text
    assert "대표 메뉴" in snippet(doc, [])
    assert len(snippet(doc, [], max_chars=30)) == 30
