"""Child-safety checks on the way in (before retrieval) and on the way out (the final answer).

Matching is word-aware: "술" must hit "술 사러 갈래" but not "미술학원" or "기술", so the
lexicon terms are matched against token boundaries and kiwipiepy morphemes, not raw substrings.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from naviyam.lexicon import SELF_HARM_WORDS, UNSAFE_WORDS

# Kinds decide the tone of the refusal (self-harm gets help resources, not a "no").
_KIND_OF: dict[str, str] = {}
for _w in ("술", "소주", "맥주", "막걸리", "와인", "양주", "보드카", "위스키", "칵테일", "하이볼", "호프", "술집", "포차", "이자카야"):
    _KIND_OF[_w] = "alcohol"
for _w in ("담배", "전자담배", "액상", "궐련", "베이프", "시가"):
    _KIND_OF[_w] = "tobacco"
for _w in ("도박", "토토", "카지노", "사설토토", "불법"):
    _KIND_OF[_w] = "gambling"
for _w in UNSAFE_WORDS:
    _KIND_OF.setdefault(_w, "adult")
for _w in SELF_HARM_WORDS:
    _KIND_OF[_w] = "self_harm"
del _w

# One-syllable terms are only unsafe as a whole word (or a whole morpheme): "술" yes, "미술" no.
_SHORT_TERMS = {w for w in _KIND_OF if len(w) <= 1}
# Longer terms are distinctive enough to match inside a word ("맥주집", "전자담배샵").
_LONG_PATTERN = re.compile("|".join(sorted((re.escape(w) for w in _KIND_OF if len(w) > 1), key=len, reverse=True)))
# Korean particles that may follow a one-syllable noun: "술을", "술이", "술 마시자".
_SHORT_PATTERN = re.compile(
    r"(?<![가-힣])(" + "|".join(re.escape(w) for w in sorted(_SHORT_TERMS)) + r")(?:을|를|이|가|은|는|도|만|좀|집|이나|랑|하고)?(?![가-힣])"
)
# Food words that contain a flagged term but are fine for children.
_ALLOWED = ("시가지", "시가총액", "룸메이트", "클럽하우스샌드위치", "불법주차", "액상과당")

# A term that kiwipiepy splits into noun + particle/ending is not that term: "시가" in "몇 시가" is 시 + 가.
_GRAMMAR_TAG_PREFIXES = ("J", "E", "VCP", "XS")

SELF_HARM_RESOURCES = "청소년상담전화 1388, 자살예방상담전화 109"


@dataclass(frozen=True)
class SafetyVerdict:
    unsafe: bool
    kinds: tuple[str, ...] = ()
    terms: tuple[str, ...] = field(default=())

    @property
    def self_harm(self) -> bool:
        return "self_harm" in self.kinds


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def check_text(text: str, morphemes: Iterable[str] = ()) -> SafetyVerdict:
    """Unsafe terms in a request or an answer; ``morphemes`` (kiwipiepy forms) catch "술마시러"."""
    norm = _normalise(text)
    for ok in _ALLOWED:
        norm = norm.replace(ok, " ")
    terms: list[str] = [m.group(0) for m in _LONG_PATTERN.finditer(norm)]
    terms += [m.group(1) for m in _SHORT_PATTERN.finditer(norm)]
    terms += [m for m in morphemes if m in _SHORT_TERMS]
    # A self-harm phrase ("죽고 싶") is matched on the spacing-free text as children drop spaces.
    squashed = norm.replace(" ", "")
    terms += [w for w in SELF_HARM_WORDS if w.replace(" ", "") in squashed]
    unique = tuple(dict.fromkeys(terms))
    kinds = tuple(dict.fromkeys(_KIND_OF[t] for t in unique))
    return SafetyVerdict(unsafe=bool(unique), kinds=kinds, terms=unique)


def check_request(pre) -> SafetyVerdict:
    """``check_text`` on a preprocessed message, dropping terms its morphemes show to be grammar.

    ``pre`` is a ``naviyam.schemas.Preprocessed``.
    """
    verdict = check_text(pre.cleaned_text, (m.form for m in pre.morphemes))
    if not verdict.unsafe:
        return verdict
    split_by_grammar = {
        a.form + b.form for a, b in zip(pre.morphemes, pre.morphemes[1:]) if b.tag.startswith(_GRAMMAR_TAG_PREFIXES)
    }
    nouns = {m.form for m in pre.morphemes if m.tag.startswith(("NN", "SL", "XR"))}
    terms = tuple(t for t in verdict.terms if t in nouns or t not in split_by_grammar)
    kinds = tuple(dict.fromkeys(_KIND_OF[t] for t in terms))
    return SafetyVerdict(unsafe=bool(terms), kinds=kinds, terms=terms)
