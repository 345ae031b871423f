"""What retrieval indexes for each shop, and the Korean tokenizer for BM25.

Two texts per shop:

- ``shop_document``: the full Korean description (menus with prices, 급식카드, 착한가게, address).
  BM25 indexes it and answers quote it (``matched_content``).
- ``dense_text``: a compact food-only version for the embedder: category, one child word for
  it and the main menu names. The e5 engine costs ~0.4 ms per token per text on 2 cores, and
  names, prices and addresses only add noise to the embedding (budget and distance are hard
  filters), so dropping them makes it both better and ~5x cheaper to build (about 31 tokens
  per shop instead of 158).

Category synonyms from the lexicon go into both, so a child's word ("통닭", "중국집") matches
a shop whose menu never says it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kiwipiepy import Kiwi

from naviyam.lexicon import CATEGORY_SYNONYMS
from naviyam.preprocess import make_kiwi
from naviyam.schemas import MenuItem

SYNONYMS_PER_DOC = 5      # child words in the first sentence (what snippets show); all of them end the doc
MENUS_IN_DOCUMENT = 8
MENUS_IN_DENSE_TEXT = 4
SNIPPET_CHARS = 120
ALIASES_LABEL = "이렇게도 불러요:"

# Content morphemes: nouns, verb/adjective stems, roots, foreign words and hanja. Particles,
# endings and numbers are dropped (prices are a hard filter, not a lexical match).
_KEEP_TAGS = frozenset({"NNG", "NNP", "VV", "VA", "XR", "SL", "SH"})
_SENTENCE_END = re.compile(r"(?<=\.)\s+")


def category_words(category: str, limit: int | None = SYNONYMS_PER_DOC) -> list[str]:
    """Child words for a category (the first ``limit``), without the category name itself."""
    words = [w for w in CATEGORY_SYNONYMS.get(category, ()) if w != category]
    return words if limit is None else words[:limit]


def _ordered_menus(menus: Sequence[MenuItem]) -> list[MenuItem]:
    """Signature menus first (what the shop is known for), then the cheaper ones."""
    return sorted(menus, key=lambda m: (not m.is_signature, m.price))


def _won(price: int) -> str:
    return f"{int(price):,}원"


def shop_document(shop_row: Mapping[str, Any], menus: Sequence[MenuItem], school_name: str | None = None) -> str:
    """Full Korean description of one shop; ``shop_row`` is a row of ``Catalog.shops``.

    Sentences end with ". " so snippets can be cut at sentence boundaries. The last sentence
    lists every child word for the category (typos included) so BM25 matches them too.
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
    sentences.append(f"{ALIASES_LABEL} {', '.join(category_words(category, limit=None))}.")
    return " ".join(sentences)


def dense_text(shop_row: Mapping[str, Any], menus: Sequence[MenuItem]) -> str:
    """Compact, food-only text for the embedder, e.g. "치킨 가게 치킨집: 순살치킨, 치킨너겟, ...".

    Measured on a 36-shop catalog with 20 child queries, this beat the full document (top-1
    category 0.85 vs 0.75) at under a third of the tokens: the shop name ("맛있는", "하늘") and
    prices only add noise to a small multilingual model. Names are matched by BM25 instead, and
    급식카드 is a hard filter.
    """
    category = str(shop_row["category"])
    names = [m.name for m in _ordered_menus(menus)[:MENUS_IN_DENSE_TEXT]]
    head = " ".join([f"{category} 가게", *category_words(category, limit=1)])
    return f"{head}: {', '.join(names)}" if names else head


def snippet(document: str, query_tokens: Iterable[str], max_chars: int = SNIPPET_CHARS) -> str:
    """The shop's first sentence (name and category) plus the sentence sharing most query tokens
    (the menus when none does), cut to ``max_chars``."""
    sentences = [s for s in _SENTENCE_END.split(document) if s and not s.startswith(ALIASES_LABEL)]
    if not sentences:
        return ""
    rest = sentences[1:]
    tokens = {t for t in query_tokens if len(t) > 1}  # one-syllable stems ("먹") match everywhere
    overlaps = [sum(t in s.lower() for t in tokens) for s in rest]
    if rest:
        best = max(range(len(rest)), key=lambda i: (overlaps[i], -i))
        text = f"{sentences[0]} {rest[best]}"
    else:
        text = sentences[0]
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class Tokenizer:
    """Kiwi morpheme tokenizer for BM25: lower-cased content morphemes.

    "치킨먹고싶어" -> ["치킨", "먹"], so a child's unspaced sentence still hits "치킨".
    Holds one Kiwi (building it and its first analysis take seconds, ~350 MB): pass the
    process's one (``ModelBundle.kiwi``, also step 3's) rather than building another.
    """

    def __init__(self, kiwi: Kiwi | None = None) -> None:
        self._kiwi = kiwi or make_kiwi()

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return _content_forms(self._kiwi.tokenize(text))

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Batch form: Kiwi spreads a list over its worker threads (index build time)."""
        return [_content_forms(tokens) for tokens in self._kiwi.tokenize(list(texts))]


def _content_forms(tokens) -> list[str]:
    # Kiwi marks (ir)regular conjugation as "VV-R"/"VA-I"; the base tag is what matters.
    return [t.form.lower() for t in tokens if t.tag.split("-")[0] in _KEEP_TAGS]
