"""The text retrieval indexes for each shop, and the Korean tokenizer for BM25.

Two texts per shop:

- ``shop_document``: the full Korean description (menus with prices, 급식카드, 착한가게, address).
  BM25 indexes it and answers quote it (``matched_content``).
- ``dense_text``: a compact version for the embedder: name, category, child words for the
  category and menu names. The e5 engine costs ~0.4 ms per token per text on 2 cores, and
  prices/addresses carry no meaning the embedding can use (budget and distance are hard
  filters), so dropping them keeps a 2,400-shop build well under a minute.

Category synonyms from the lexicon go into both, so a child's word ("통닭", "중국집") matches
a shop whose menu never says it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kiwipiepy import Kiwi

from naviyam.lexicon import CATEGORY_SYNONYMS
from naviyam.schemas import MenuItem

SYNONYMS_PER_DOC = 5      # a few child words per category; more only dilutes the embedding
MENUS_IN_DOCUMENT = 8
MENUS_IN_DENSE_TEXT = 4
SNIPPET_CHARS = 120

# Content morphemes: nouns, verb/adjective stems, roots, foreign words and hanja. Particles,
# endings and numbers are dropped (prices are a hard filter, not a lexical match).
_KEEP_TAGS = frozenset({"NNG", "NNP", "VV", "VA", "XR", "SL", "SH"})
_SENTENCE_END = re.compile(r"(?<=\.)\s+")


def category_words(category: str, limit: int = SYNONYMS_PER_DOC) -> list[str]:
    """A few child words for a category, without the category name itself."""
    words = [w for w in CATEGORY_SYNONYMS.get(category, ()) if w != category]
    return words[:limit]


def _ordered_menus(menus: Sequence[MenuItem]) -> list[MenuItem]:
    """Signature menus first (what the shop is known for), then the cheaper ones."""
    return sorted(menus, key=lambda m: (not m.is_signature, m.price))


def _won(price: int) -> str:
    return f"{int(price):,}원"


def shop_document(shop_row: Mapping[str, Any], menus: Sequence[MenuItem], school_name: str | None = None) -> str:
    """Full Korean description of one shop; ``shop_row`` is a row of ``Catalog.shops``.

    Every sentence ends with ". " so snippets can be cut at sentence boundaries.
    """
    category = str(shop_row["category"])
    sentences = [f"{shop_row['name']} — {category} 가게 ({', '.join(category_words(category))})."]
    ordered = _ordered_menus(menus)[:MENUS_IN_DOCUMENT]
    signature = [m for m in ordered if m.is_signature]
    others = [m for m in ordered if not m.is_signature]
    if signature:
        sentences.append("대표 메뉴: " + ", ".join(f"{m.name} {_won(m.price)}" for m in signature) + ".")
    if others:
        label = "다른 메뉴" if signature else "메뉴"
        sentences.append(f"{label}: " + ", ".join(f"{m.name} {_won(m.price)}" for m in others) + ".")
    if menus:
        sentences.append(f"{_won(min(m.price for m in menus))}부터 먹을 수 있어요.")
    # Only positive statements: "급식카드 사용 불가" would make BM25 match "급식카드" queries.
    if bool(shop_row["accepts_meal_card"]):
        sentences.append("급식카드 사용 가능.")
    if bool(shop_row["is_good_influence_shop"]):
        sentences.append("착한가게(선한영향력가게).")
    if school_name:
        sentences.append(f"{school_name} 근처.")
    sentences.append(f"주소 {shop_row['address']}.")
    return " ".join(sentences)


def dense_text(shop_row: Mapping[str, Any], menus: Sequence[MenuItem]) -> str:
    """Compact text for the embedder (see the module docstring for why it is shorter)."""
    category = str(shop_row["category"])
    names = [m.name for m in _ordered_menus(menus)[:MENUS_IN_DENSE_TEXT]]
    text = f"{shop_row['name']}: {category} 가게, {', '.join(category_words(category, 3))}."
    if names:
        text += " 메뉴: " + ", ".join(names) + "."
    if bool(shop_row["accepts_meal_card"]):
        text += " 급식카드 가능."
    return text


def snippet(document: str, query_tokens: Iterable[str], max_chars: int = SNIPPET_CHARS) -> str:
    """The sentence of ``document`` that shares most query tokens (the name sentence and the
    menus when none does), cut to ``max_chars``."""
    sentences = [s for s in _SENTENCE_END.split(document) if s]
    if not sentences:
        return ""
    tokens = {t for t in query_tokens if len(t) > 1}  # one-syllable stems ("먹") match everywhere
    overlaps = [sum(t in s.lower() for t in tokens) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
    text = sentences[best] if overlaps[best] else " ".join(sentences[:2])
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class Tokenizer:
    """Kiwi morpheme tokenizer for BM25: lower-cased content morphemes.

    "치킨먹고싶어" -> ["치킨", "먹"], so a child's unspaced sentence still hits "치킨".
    Holds one Kiwi (loading its model takes ~1 s; reuse the instance).
    """

    def __init__(self, kiwi: Kiwi | None = None) -> None:
        self._kiwi = kiwi or Kiwi()

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        # Kiwi marks (ir)regular conjugation as "VV-R"/"VA-I"; the base tag is what matters.
        return [t.form.lower() for t in self._kiwi.tokenize(text) if t.tag.split("-")[0] in _KEEP_TAGS]

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]
