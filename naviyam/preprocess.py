"""Step 3: clean a child's message, split it into morphemes, pull out keywords and a rough mood.

``Preprocessor()("급식카드 되는 치킨집 추천해줘")`` gives cleaned_text (same text), keywords
``["급식카드", "치킨집", "추천"]``, emotion NEUTRAL and text_length 16.
Validation of empty input happens upstream (``UserInput``); here "   " simply cleans to "".
"""
from __future__ import annotations

import logging
import re
from typing import Literal

from kiwipiepy import Kiwi

from naviyam import lexicon
from naviyam.schemas import Morpheme, Preprocessed
from naviyam.text import clean_text, normalize_unicode

__all__ = ["Preprocessor", "clean_text", "detect_emotion", "make_kiwi", "normalize_unicode"]

log = logging.getLogger(__name__)

# Parts of speech worth keeping as keywords: nouns, roots, foreign words and Chinese characters.
_KEYWORD_TAGS = frozenset({"NNG", "NNP", "SL", "SH", "XR"})
# Endings, particles, copula and suffixes: a lexicon phrase never starts with one of these.
_GRAMMAR_TAGS = ("E", "J", "VCP", "XS")
# Nouns too generic to be a keyword.
_STOP_NOUNS = frozenset({"거", "것", "뭐", "때", "좀", "중", "정도", "진짜", "그냥", "오늘", "지금"})

# Lexicon phrases (possibly several morphemes, "급식카드" = 급식 + 카드) become one keyword.
_LEXICON_PHRASES: tuple[str, ...] = tuple(sorted(
    {w for words in lexicon.CATEGORY_SYNONYMS.values() for w in words}
    | {m for menus in lexicon.MENUS.values() for m in menus}
    | set(lexicon.MEAL_CARD_WORDS)
    | {w for words in lexicon.TIME_SLOT_WORDS.values() for w in words},
    key=len, reverse=True,
))
_LEXICON_PATTERN = re.compile(
    "|".join(r"\s*".join(re.escape(ch) for ch in w.replace(" ", "")) for w in _LEXICON_PHRASES),
    re.IGNORECASE,
)

# Mood word stems, matched on the spacing-free text. Hunger wins: it is what the bot acts on.
_HUNGRY = ("배고프", "배고파", "배고픔", "배고푸", "배고팡", "배고퐈", "배곺", "배가고파", "배가고프", "출출", "허기", "꼬르륵", "굶")
_NEGATIVE = ("싫", "짜증", "우울", "슬퍼", "슬프", "힘들", "힘드", "ㅠ", "ㅜ", "화나", "화가나", "별로", "최악", "속상",
             "지겨", "피곤", "맛없", "외로", "무서", "불안", "😢", "😭", "😡", "😞", "😔", "💔")
_POSITIVE = ("좋아", "좋다", "좋은", "최고", "맛있", "고마", "감사", "신나", "신난", "행복", "짱", "ㅎㅎ", "사랑", "기대",
             "재밌", "설레", "굿", "😋", "😍", "🥰", "😊", "😄", "😆", "👍", "❤", "♥")

Emotion = Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "HUNGRY"]


def detect_emotion(cleaned: str, original: str) -> Emotion:
    """HUNGRY / NEGATIVE / POSITIVE / NEUTRAL from word lists (emoji read from the original)."""
    squashed = cleaned.replace(" ", "") + original
    if any(w in squashed for w in _HUNGRY):
        return "HUNGRY"
    negative = sum(squashed.count(w) for w in _NEGATIVE)
    positive = sum(squashed.count(w) for w in _POSITIVE)
    if negative > positive:
        return "NEGATIVE"
    if positive > negative:
        return "POSITIVE"
    return "NEUTRAL"


def make_kiwi() -> Kiwi:
    """The process's Kiwi analyser, as step 3 and the retriever's BM25 tokenizer both build it.

    Without Kiwi's multi-word dictionary: building drops from ~2.5 s to ~1.2 s and ~185 MB per
    process. Measured over the 2,400 shop documents and the 5,000 NLU utterances, it changed the
    analysis of one utterance (a misspelt "담배 핑우고 싶어", refused by the safety check either way).
    """
    return Kiwi(load_multi_dict=False)


class Preprocessor:
    """Callable step 3. Holds one Kiwi analyser: building it takes about a second and ~500 MB,
    so build once and pass the same one to the retriever's tokenizer (``ModelBundle.kiwi``)."""

    def __init__(self, kiwi: Kiwi | None = None) -> None:
        self._kiwi = kiwi or make_kiwi()
        # The first analysis loads model tables lazily (~1 s); pay that here, not on a request.
        self._kiwi.tokenize("급식카드 되는 치킨집 추천해줘")
        log.debug("kiwipiepy ready")

    def __call__(self, text: str) -> Preprocessed:
        cleaned = clean_text(text)
        tokens = self._kiwi.tokenize(cleaned) if cleaned else []
        morphemes = [Morpheme(form=t.form, tag=t.tag) for t in tokens]
        return Preprocessed(
            original_text=text,
            cleaned_text=cleaned,
            morphemes=morphemes,
            keywords=_keywords(cleaned, tokens),
            emotion=detect_emotion(cleaned, text),
            text_length=len(cleaned),
        )


def _keywords(cleaned: str, tokens) -> list[str]:
    """Lexicon phrases aligned with morpheme boundaries, then the remaining content nouns, in order."""
    content_starts = {t.start for t in tokens if not t.tag.startswith(_GRAMMAR_TAGS)}
    ends = {t.start + t.len for t in tokens}
    found: list[tuple[int, str]] = []
    covered: set[int] = set()
    for match in _LEXICON_PATTERN.finditer(cleaned):
        # A phrase must span whole morphemes and start with a content one: that keeps "라면"
        # out of "만원이라면" (an ending) and "빵" out of "빵빵".
        if match.start() in content_starts and match.end() in ends:
            found.append((match.start(), match.group(0)))
            covered.update(range(match.start(), match.end()))
    for t in tokens:
        if t.tag in _KEYWORD_TAGS and t.form not in _STOP_NOUNS and t.start not in covered:
            found.append((t.start, t.form))
    found.sort(key=lambda item: item[0])
    return list(dict.fromkeys(word for _, word in found))
