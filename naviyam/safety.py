"""Child-safety checks on the way in (before retrieval) and on the way out (the final answer).

Matching is word-aware: "술" must hit "술 사러 갈래" but not "미술학원" or "기술", so the
lexicon terms are matched against token boundaries and kiwipiepy morphemes, not raw substrings.
Children also hide words on purpose ("소 주", "담.배", "ㅅㅗㅈㅜ", "s0ju", "🍺"), so the text is
checked in several views: normalised, with letter-spaced syllables glued back, spacing-free (for
self-harm phrases), typed-out jamo recomposed, Latin words with leetspeak undone, and emoji.

The same module holds the output side: ``screen_recommendations`` drops a shop or a menu whose
name or category is unsafe, ``check_answer`` rechecks the final text; and ``stated_allergies``
reads allergies from the message so that they become hard filters like the profile's.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from naviyam.lexicon import (
    ALLERGEN_WORDS, SAFE_LOOKALIKES, SEA_ALLERGENS, SEA_ALLERGY_WORDS, SELF_HARM_LATIN, SELF_HARM_WORDS,
    UNSAFE_EMOJI_BY_KIND, UNSAFE_LATIN_BY_KIND, UNSAFE_WHOLE_WORDS, UNSAFE_WORDS_BY_KIND,
)
from naviyam.schemas import Recommendation

# Kinds decide the tone of the refusal (self-harm gets help resources, not a "no").
_KIND_OF: dict[str, str] = {w: kind for kind, words in UNSAFE_WORDS_BY_KIND.items() for w in words}
_KIND_OF.update({w: kind for kind, words in UNSAFE_LATIN_BY_KIND.items() for w in words})
_KIND_OF.update({w: kind for kind, words in UNSAFE_EMOJI_BY_KIND.items() for w in words})
_KIND_OF.update({w: "self_harm" for w in SELF_HARM_WORDS + SELF_HARM_LATIN})

_HANGUL_TERMS = [w for words in UNSAFE_WORDS_BY_KIND.values() for w in words]
# One-syllable terms (and listed slang) are only unsafe as a whole word or morpheme: "술" yes, "미술" no.
_SHORT_TERMS = {w for w in _HANGUL_TERMS if len(w) <= 1} | set(UNSAFE_WHOLE_WORDS)
# Longer terms are distinctive enough to match inside a word ("맥주집", "전자담배샵").
_LONG_PATTERN = re.compile(
    "|".join(sorted((re.escape(w) for w in _HANGUL_TERMS if w not in _SHORT_TERMS), key=len, reverse=True))
)
# Korean particles that may follow a short noun: "술을", "술이", "술 마시자", "전담 피는".
_SHORT_PATTERN = re.compile(
    r"(?<![가-힣])(" + "|".join(re.escape(w) for w in sorted(_SHORT_TERMS, key=len, reverse=True))
    + r")(?:을|를|이|가|은|는|도|만|좀|집|이나|랑|하고|이랑|으로|로)?(?![가-힣])"
)
_LATIN_PATTERN = re.compile(
    r"(?<![a-z])(" + "|".join(sorted((re.escape(w) for w in _KIND_OF if w.isascii()), key=len, reverse=True))
    + r")(?![a-z])"
)
_EMOJI_TERMS = [w for words in UNSAFE_EMOJI_BY_KIND.values() for w in words]
# Lookalikes may be typed with any spacing ("마약 김밥"); they are blanked before matching.
_LOOKALIKE_PATTERN = re.compile(
    "|".join(r"\s*".join(re.escape(ch) for ch in w.replace(" ", "")) if not w.isascii() else re.escape(w)
             for w in sorted(SAFE_LOOKALIKES, key=len, reverse=True))
)
# Letter-spaced syllables or letters ("소 주", "담.배", "술_집", "b e e r"): runs of single
# characters separated by anything that is not a letter; glued back together they are checked again.
_SPACED_RUN = re.compile(r"(?<![^\W_])[가-힣a-z](?:[\W_]+[가-힣a-z](?![^\W_]))+")
_NOT_LETTER = re.compile(r"[\W_]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"[a-z0-9@$]*[a-z][a-z0-9@$]*")

# A term that kiwipiepy splits into noun + particle/ending is not that term: "시가" in "몇 시가" is 시 + 가.
_GRAMMAR_TAG_PREFIXES = ("J", "E", "VCP", "XS")

SELF_HARM_RESOURCES = "청소년상담전화 1388, 자살예방상담전화 109"

# Hangul compatibility jamo in the order of the Unicode syllable formula (leading, vowel, trailing).
_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"
_JAMO_RUN = re.compile(r"[\u3131-\u318e]{2,}")


@dataclass(frozen=True)
class SafetyVerdict:
    unsafe: bool
    kinds: tuple[str, ...] = ()
    terms: tuple[str, ...] = field(default=())

    @property
    def self_harm(self) -> bool:
        return "self_harm" in self.kinds


def _compose_jamo(run: str) -> str:
    """"ㅅㅗㅈㅜ" -> "소주", "ㅅㅜㄹ" -> "술"; jamo that form no syllable ("ㅋㅋ") stay as they are."""
    out: list[str] = []
    i = 0
    while i < len(run):
        lead = _CHO.find(run[i])
        vowel = _JUNG.find(run[i + 1]) if i + 1 < len(run) else -1
        if lead < 0 or vowel < 0:
            out.append(run[i])
            i += 1
            continue
        tail, step = 0, 2
        if i + 2 < len(run):
            t = _JONG.find(run[i + 2]) if run[i + 2] != " " else -1
            # A consonant followed by a vowel starts the next syllable instead of closing this one.
            next_is_vowel = i + 3 < len(run) and _JUNG.find(run[i + 3]) >= 0
            if t > 0 and not next_is_vowel:
                tail, step = t, 3
        out.append(chr(0xAC00 + (lead * 21 + vowel) * 28 + tail))
        i += step
    return "".join(out)


def _normalise(text: str) -> str:
    text = _JAMO_RUN.sub(lambda m: _compose_jamo(m.group(0)), text)
    text = unicodedata.normalize("NFKC", text).lower()
    # Zero-width and other format characters split a word invisibly ("소\u200b주").
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _glue_spaced(text: str) -> str:
    return _SPACED_RUN.sub(lambda m: _NOT_LETTER.sub("", m.group(0)), text)


def _find_terms(norm: str) -> list[str]:
    terms = [m.group(0) for m in _LONG_PATTERN.finditer(norm)]
    terms += [m.group(1) for m in _SHORT_PATTERN.finditer(norm)]
    latin = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), norm)
    terms += [m.group(1) for m in _LATIN_PATTERN.finditer(latin)]
    return terms


def check_text(text: str, morphemes: Iterable[str] = ()) -> SafetyVerdict:
    """Unsafe terms in a request or an answer; ``morphemes`` (kiwipiepy forms) catch "술마시러"."""
    norm = _LOOKALIKE_PATTERN.sub(" ", _normalise(text))
    glued = _LOOKALIKE_PATTERN.sub(" ", _glue_spaced(norm))
    terms = _find_terms(norm) + _find_terms(glued)
    terms += [m for m in morphemes if m in _SHORT_TERMS]
    terms += [e for e in _EMOJI_TERMS if e in text]
    # A self-harm phrase ("죽고 싶") is matched on the spacing-free text as children drop spaces.
    squashed = _NOT_LETTER.sub("", norm)
    terms += [w for w in SELF_HARM_WORDS if _NOT_LETTER.sub("", w) in squashed]
    unique = tuple(dict.fromkeys(terms))
    kinds = tuple(dict.fromkeys(_KIND_OF[t] for t in unique))
    return SafetyVerdict(unsafe=bool(unique), kinds=kinds, terms=unique)


def check_request(pre) -> SafetyVerdict:
    """``check_text`` on a preprocessed message, dropping terms its morphemes show to be grammar.

    ``pre`` is a ``naviyam.schemas.Preprocessed``. Emoji are read from the original text because
    preprocessing strips them.
    """
    morphemes = pre.morphemes
    # kiwipiepy splits "술마시러" and "술추천" but also the bread "술빵" into 술 + ...; a morpheme
    # counts only where it is not part of a lookalike.
    outside_lookalikes = _LOOKALIKE_PATTERN.sub(" ", _normalise(pre.cleaned_text))
    standalone = [m.form for m in morphemes if m.form in _SHORT_TERMS and m.form in outside_lookalikes]
    emoji = "".join(e for e in _EMOJI_TERMS if e in pre.original_text)
    verdict = check_text(f"{pre.cleaned_text} {emoji}", standalone)
    if not verdict.unsafe:
        return verdict
    split_by_grammar = {
        a.form + b.form for a, b in zip(morphemes, morphemes[1:]) if b.tag.startswith(_GRAMMAR_TAG_PREFIXES)
    }
    nouns = {m.form for m in morphemes if m.tag.startswith(("NN", "SL", "XR"))}
    terms = tuple(t for t in verdict.terms if t in nouns or t not in split_by_grammar)
    kinds = tuple(dict.fromkeys(_KIND_OF[t] for t in terms))
    return SafetyVerdict(unsafe=bool(terms), kinds=kinds, terms=terms)


# -- output side ----------------------------------------------------------------------------------
def check_answer(text: str) -> SafetyVerdict:
    """The final answer text, rechecked after ranking and NLG (whatever produced it)."""
    return check_text(text)


def screen_recommendations(recommendations: list[Recommendation]) -> tuple[list[Recommendation], list[str]]:
    """(safe recommendations re-ranked 1..n, what was dropped and why).

    A shop whose name or category is unsafe goes; so does an unsafe menu, and a shop left with no
    menu to show. Runs on every answer: the catalogue is data, and data can be wrong.
    """
    kept: list[Recommendation] = []
    dropped: list[str] = []
    for rec in recommendations:
        verdict = check_text(f"{rec.name} {rec.category}")
        if verdict.unsafe:
            dropped.append(f"{rec.shop_id}: {','.join(verdict.terms)}")
            continue
        menus = [m for m in rec.menus if not check_text(m.name).unsafe]
        if len(menus) < len(rec.menus):
            dropped.append(f"{rec.shop_id} menus: {','.join(m.name for m in rec.menus if m not in menus)}")
            if not menus:
                continue
        kept.append(rec.model_copy(update={"rank": len(kept) + 1, "menus": menus}))
    return kept, dropped


# -- allergies stated in the message ------------------------------------------------------------------
_ALLERGY_CUE = r"(?:알레르기|알러지|알레르|알러르기|알르레기|알라지|allergy|allergic)"
_AVOID_CUE = _ALLERGY_CUE + r"|못\s?먹|먹으면\s?안|먹으면\s?큰일|안\s?들어간|빼고|없는|없이|free"
_WORD_TO_ALLERGENS: dict[str, tuple[str, ...]] = {w: (label,) for label, words in ALLERGEN_WORDS.items() for w in words}
_WORD_TO_ALLERGENS.update({w: SEA_ALLERGENS for w in SEA_ALLERGY_WORDS})
_ALLERGEN_WORD = "|".join(re.escape(w) for w in sorted(_WORD_TO_ALLERGENS, key=len, reverse=True))
_PARTICLE = r"(?:이랑|하고|이나|이|가|은|는|을|를|도|만|랑|류|에|과|와)?"
_LIST_SEP = r"(?:\s*[,/·&]\s*|\s+and\s+|\s+)"
_WORD_LIST = rf"((?:(?:{_ALLERGEN_WORD}){_PARTICLE}{_LIST_SEP}?)+)"
# "땅콩(이랑 우유) 알레르기", "계란 못 먹어", "새우 들어간 거 빼고", "peanut allergy".
_BEFORE_CUE = re.compile(
    rf"(?<![가-힣a-z]){_WORD_LIST}\s*(?:들어간\s*(?:거|것|음식|메뉴)?\s*)?(?:{_AVOID_CUE})"
)
# "알레르기 있어: 땅콩, 우유", "allergic to peanuts and milk".
_AFTER_CUE = re.compile(
    rf"{_ALLERGY_CUE}\s*(?:가|는|이)?\s*(?:있어요|있어|있는데|있음|있고|있다|to)?\s*:?\s*{_WORD_LIST}"
)
_WORD = re.compile(rf"(?<![가-힣a-z])({_ALLERGEN_WORD})(?![a-z])")


def stated_allergies(text: str) -> list[str]:
    """Allergen labels the message asks to avoid ("땅콩 알레르기 있어" -> ["땅콩"]).

    Reading too much only narrows the search; reading too little could hurt a child, so any
    allergen word next to an allergy or avoid cue counts (even "땅콩 알레르기는 없어").
    """
    norm = _normalise(text)
    found: set[str] = set()
    for pattern in (_BEFORE_CUE, _AFTER_CUE):
        for match in pattern.finditer(norm):
            for word in _WORD.findall(match.group(1)):
                found.update(_WORD_TO_ALLERGENS[word])
    return sorted(found)
