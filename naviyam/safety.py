"""Child-safety checks on the way in (before retrieval) and on the way out (the final answer).

Matching is word-aware: "술" must hit "술 사러 갈래" but not "미술학원" or "기술", so the
lexicon terms are matched against token boundaries and kiwipiepy morphemes, not raw substrings.
Children also hide words on purpose ("소 주", "담.배", "ㅅㅗㅈㅜ", "s0ju", "🍺"), so the text is
checked in several views: normalised, with letter-spaced syllables glued back, spacing-free (for
self-harm phrases), typed-out jamo recomposed, Latin words with leetspeak undone, and emoji.

Grooming (a stranger or someone met online + an offer of food, money, a gift or a meeting) and
distress (a feeling + withdrawal, or a feeling on its own with no food asked for) are no single word:
``cue_verdict`` reads them from cue pairs, for requests only (``check_request``), so that our own help
answers never trip ``check_answer``.

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
    ALLERGEN_WORDS, CATEGORY_SYNONYMS, FOOD_ALLERGENS, DISTRESS_FEELING_WORDS, DISTRESS_HARD_WITHDRAWAL_WORDS,
    DISTRESS_SOFT_WITHDRAWAL_WORDS, DISTRESS_STRONG_WORDS, FOOD_REQUEST_CUES, GROOMING_MEETING_WORDS,
    GROOMING_MET_WORDS, GROOMING_OFFER_WORDS, GROOMING_ONLINE_ONLY_WORDS, GROOMING_ONLINE_WORDS, GROOMING_PERSON_WORDS,
    GROOMING_SECRECY_WORDS, GROOMING_SECRET_OFFER_WORDS, GROOMING_STRANGER_WORDS, MENUS, SAFE_LOOKALIKES, SEA_ALLERGENS,
    SEA_ALLERGY_WORDS, SELF_HARM_LATIN, SELF_HARM_WORDS, UNSAFE_EMOJI_BY_KIND, UNSAFE_LATIN_BY_KIND, UNSAFE_WHOLE_WORDS,
    UNSAFE_WORDS_BY_KIND,
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

    @property
    def grooming(self) -> bool:
        return "grooming" in self.kinds

    @property
    def distress(self) -> bool:
        return "distress" in self.kinds


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
    cues = cue_verdict(pre.cleaned_text)
    if not verdict.unsafe:
        return cues
    split_by_grammar = {
        a.form + b.form for a, b in zip(morphemes, morphemes[1:]) if b.tag.startswith(_GRAMMAR_TAG_PREFIXES)
    }
    nouns = {m.form for m in morphemes if m.tag.startswith(("NN", "SL", "XR"))}
    terms = tuple(t for t in verdict.terms if t in nouns or t not in split_by_grammar)
    kinds = tuple(dict.fromkeys(_KIND_OF[t] for t in terms)) + cues.kinds
    terms += cues.terms
    return SafetyVerdict(unsafe=bool(terms), kinds=kinds, terms=terms)


# -- cue grammar: grooming and distress (requests only) ---------------------------------------------------
# No word of these kinds is unsafe alone ("사준대" from 엄마, "힘들었어" after an exam), so they are not in
# ``check_text``: they would also fire on our own help answers ("외로울 땐 1388에 전화해요") in
# ``check_answer``. A kind fires when cues of two groups meet in one message, on the spacing-free text.
def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(_NOT_LETTER.sub("", w.lower())) for w in sorted(set(words), key=len, reverse=True))


# "이모" in "이모티콘", "형" in "형태" and "아재" in "아재개그" are not people.
_PERSON = rf"(?:{_alt(GROOMING_PERSON_WORDS)})(?!티콘|태|식|편|광|개그)"
_GAP = rf"(?:방|톡방)?(?:에서|서|상|에|으로|로)?(?:{_alt(GROOMING_MET_WORDS)})"
# Stranger: "모르는 아저씨", "처음 보는 어른"; online acquaintance: "게임에서 만난 누나", "오픈채팅 오빠",
# "온라인 친구", "게임에서 알게 된 친구" (a bare "게임 친구" may be a classmate).
_STRANGER = re.compile(
    rf"(?:{_alt(GROOMING_STRANGER_WORDS)}){_PERSON}"
    rf"|(?:{_alt(GROOMING_ONLINE_WORDS)})(?:방|톡방)?(?:에서|서|상|에)?{_PERSON}"
    # "인스타 디엠으로 누나가": a direct message from someone met through an app (not "카톡으로 오빠가").
    rf"|(?:{_alt(GROOMING_ONLINE_WORDS)})(?:디엠|dm|메시지|메세지)(?:으로|로)?{_PERSON}"
    rf"|(?:{_alt(GROOMING_ONLINE_WORDS)}){_GAP}(?:{_PERSON}|친구)"
    rf"|(?:{_alt(GROOMING_ONLINE_ONLY_WORDS)})(?:방|톡방)?(?:에서|서|상|에)?친구"
)
_OFFER = re.compile(
    rf"{_alt(GROOMING_OFFER_WORDS + GROOMING_MEETING_WORDS)}"
    # "맛있는 거 준대", "사탕 준다고": something to eat given, not bought.
    r"|(?:거|걸|것|간식|과자|사탕|젤리|초콜릿|초콜렛|음료수|밥|음식|치킨|피자|떡볶이|햄버거)(?:를|을|도|좀)?"
    r"(?:준|줄|주겠|주신|줌|챙겨준)"
)
_SECRECY = re.compile(_alt(GROOMING_SECRECY_WORDS))
_SECRET_OFFER = re.compile(_alt(GROOMING_SECRET_OFFER_WORDS))
# An intensifier may sit inside a feeling: "기분이 너무 안 좋아", "혼자 있는 게 진짜 싫어".
_INTENSIFIER = r"(?:너무|넘|진짜|완전|정말|좀|많이|계속|맨날)?"
_FEELING = re.compile(
    _alt(DISTRESS_FEELING_WORDS)
    + rf"|(?:기분|마음|맘)(?:이|은|도|가)?{_INTENSIFIER}(?:안좋|나빠|별로|최악|우울|이상해)"
    + rf"|혼자(?:있는게|있기|지내는게|인게){_INTENSIFIER}(?:싫|무서)"
)
_STRONG_FEELING = re.compile(
    _alt(DISTRESS_STRONG_WORDS) + rf"|혼자(?:있는게|있기|지내는게|인게){_INTENSIFIER}(?:싫|무서)"
)
_HARD_WITHDRAWAL = re.compile(_alt(DISTRESS_HARD_WITHDRAWAL_WORDS))
_SOFT_WITHDRAWAL = re.compile(_alt(DISTRESS_SOFT_WITHDRAWAL_WORDS))
_FOOD_WORDS = FOOD_REQUEST_CUES + tuple(w for words in CATEGORY_SYNONYMS.values() for w in words) + tuple(
    m for menus in MENUS.values() for m in menus
)
_FOOD_REQUEST = re.compile(_alt(_FOOD_WORDS))


def _grooming(squashed: str) -> tuple[str, ...]:
    if (stranger := _STRANGER.search(squashed)) and (offer := _OFFER.search(squashed)):
        return stranger.group(0), offer.group(0)
    if (secret := _SECRECY.search(squashed)) and (offer := _SECRET_OFFER.search(squashed)):
        return secret.group(0), offer.group(0)
    return ()


def _feeling_besides(squashed: str, cue: re.Match, *patterns: re.Pattern) -> re.Match | None:
    """A feeling outside ``cue`` ("괴롭" inside "괴롭혀" is the same cue, not a second one)."""
    rest = squashed[: cue.start()] + " " + squashed[cue.end():]
    return next((m for p in (_FEELING, *patterns) if (m := p.search(rest))), None)


def _distress(squashed: str) -> tuple[str, ...]:
    # A feeling, or a second withdrawal ("괴롭혀서 학교 가기 싫어"), next to a hard withdrawal.
    hard = _HARD_WITHDRAWAL.search(squashed)
    if hard and (feeling := _feeling_besides(squashed, hard, _HARD_WITHDRAWAL)):
        return feeling.group(0), hard.group(0)
    # Appetite alone, or a feeling said on its own, yields to a food request in the same message:
    # "입맛 없는데 시원한 거 추천해줘", "시험 끝나서 너무 힘들었어 치킨 먹자", "외로운 사람을 위한 혼밥집".
    # The food cue is looked for outside the feeling/withdrawal cues ("밥맛이 없어" asks for no 밥).
    cues = (_FEELING, _STRONG_FEELING, _HARD_WITHDRAWAL, _SOFT_WITHDRAWAL)
    rest = squashed
    for pattern in cues:
        rest = pattern.sub(" ", rest)
    if _FOOD_REQUEST.search(rest):
        return ()
    if (soft := _SOFT_WITHDRAWAL.search(squashed)) and (feeling := _feeling_besides(squashed, soft)):
        return feeling.group(0), soft.group(0)
    if strong := _STRONG_FEELING.search(squashed):
        return (strong.group(0),)
    return ()


def cue_verdict(text: str) -> SafetyVerdict:
    """Grooming (a stranger or online acquaintance + an offer or meeting) and distress (a feeling +
    withdrawal, or a feeling said on its own with no food asked for) in a child's message.

    Only for requests (``check_request``); the matched cues are the verdict's terms.
    """
    squashed = _NOT_LETTER.sub("", _normalise(text))
    terms: list[str] = []
    kinds: list[str] = []
    for kind, found in (("grooming", _grooming(squashed)), ("distress", _distress(squashed))):
        if found:
            kinds.append(kind)
            terms.append(f"{kind}:{'+'.join(found)}")
    return SafetyVerdict(unsafe=bool(terms), kinds=tuple(kinds), terms=tuple(terms))


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
_AVOID_CUE = (_ALLERGY_CUE + r"|못\s?먹|못\s?머|먹으면\s?안|먹음\s?안|먹으면\s?큰일|안\s?들어간|빼고|빼\s?줘|빼서|없는|없이"
              r"|안\s?[돼되됨]|free")
_WORD_TO_ALLERGENS: dict[str, tuple[str, ...]] = {w: (label,) for label, words in ALLERGEN_WORDS.items() for w in words}
_WORD_TO_ALLERGENS.update({w: SEA_ALLERGENS for w in SEA_ALLERGY_WORDS})
for _food, _labels in FOOD_ALLERGENS.items():
    _WORD_TO_ALLERGENS.setdefault(_food, _labels)
# "계란이랑 우유 둘 다 못 먹어", "치즈는 진짜 안 돼".
_INTENSIFIER_WORDS = r"(?:좀|진짜|정말|절대|아예|다|둘\s?다|셋\s?다|모두|전부|잘|하나도)"
_ALLERGEN_WORD = "|".join(re.escape(w) for w in sorted(_WORD_TO_ALLERGENS, key=len, reverse=True))
# After an allergy cue only allergen names count: "우유 알레르기 있는데 빵집 추천해줘" is no bread allergy.
_STRICT_ALLERGEN_WORD = "|".join(re.escape(w) for w in sorted(
    {w for words in ALLERGEN_WORDS.values() for w in words} | set(SEA_ALLERGY_WORDS), key=len, reverse=True))
_PARTICLE = r"(?:이랑|하고|이나|이|가|은|는|을|를|도|만|랑|류|에|과|와)?"
_LIST_SEP = r"(?:\s*[,/·&]\s*|\s+and\s+|\s+)"
_WORD_LIST = rf"((?:(?:{_ALLERGEN_WORD}){_PARTICLE}{_LIST_SEP}?)+)"
_STRICT_WORD_LIST = rf"((?:(?:{_STRICT_ALLERGEN_WORD})(?![가-힣]){_PARTICLE}{_LIST_SEP}?)+)"
# "땅콩(이랑 우유) 알레르기", "계란 못 먹어", "새우 들어간 거 빼고", "peanut allergy".
_BEFORE_CUE = re.compile(
    rf"(?<![가-힣a-z]){_WORD_LIST}\s*(?:(?:가|이)?\s*(?:들어간|들어있는|들은|든)\s*(?:거|것|음식|메뉴|건|걸)?\s*)?"
    rf"(?:은|는|도)?\s*(?:{_INTENSIFIER_WORDS}\s*)?(?:{_AVOID_CUE})"
)
# "알레르기 있어: 땅콩, 우유", "allergic to peanuts and milk".
_AFTER_CUE = re.compile(
    rf"{_ALLERGY_CUE}\s*(?:가|는|이)?\s*(?:있어요|있어|있는데|있음|있고|있다|to)?\s*:?\s*{_STRICT_WORD_LIST}"
)
_WORD = re.compile(rf"(?<![가-힣a-z])({_ALLERGEN_WORD})(?![a-z])")


def stated_avoidance(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(allergen labels, the words the child used) the message asks to avoid:
    "치즈 못 먹어" -> (("우유",), ("치즈",)); "땅콩 알레르기 있어" -> (("땅콩",), ("땅콩",)).

    Reading too much only narrows the search; reading too little could hurt a child, so any
    allergen or food word next to an allergy or avoid cue counts (even "땅콩 알레르기는 없어").
    """
    norm = _normalise(text)
    labels: dict[str, None] = {}
    words: dict[str, None] = {}
    for pattern in (_BEFORE_CUE, _AFTER_CUE):
        for match in pattern.finditer(norm):
            for word in _WORD.findall(match.group(1)):
                words[word] = None
                labels.update(dict.fromkeys(_WORD_TO_ALLERGENS[word]))
    return tuple(sorted(labels)), tuple(words)


def stated_allergies(text: str) -> list[str]:
    """Allergen labels the message asks to avoid ("땅콩 알레르기 있어" -> ["땅콩"])."""
    return list(stated_avoidance(text)[0])
