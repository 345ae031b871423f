"""Rule-based entity tagger: lexicon and regex readings of a cleaned message.

It never guesses: every entity comes from a word the child wrote. Besides the ``Entities`` it
returns the character spans it read (shop, food, money, meal card, time, place), which the
classifier uses to see "SHOP 몇 시에 열어" instead of one of 2,400 shop names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from naviyam import lexicon
from naviyam.nlu.budget import find_amounts, numeral_runs, pick_budget
from naviyam.nlu.food import emoji_category, find_food, noun_forms, resolve_food
from naviyam.nlu.shops import ShopHit
from naviyam.nlu.text_index import Squashed, longest_matches
from naviyam.schemas import Entities, Preprocessed, TimeSlot

# Spelling variants the lexicon lacks; the lexicon's own words come first.
_EXTRA_MEAL_CARD = ("꿈나무", "아동급식", "급식비카드", "꿈카")
_CASH_WORDS = ("현금", "현찰", "지폐", "동전")
_CARD_WORDS = ("체크카드", "신용카드", "엄마카드", "아빠카드", "부모님카드", "카드결제", "카카오페이", "삼성페이",
               "네이버페이")
_EXTRA_TIME_WORDS = {
    "morning": ("조식", "아침에", "등교길", "등굣길에"),
    "lunch": ("점심시간", "낮에"),
    "after_school": ("방과 후", "학교 마치고", "학교 끝나면", "하굣길", "학원가기전", "수업 끝나면", "학원 마치고"),
    "dinner": ("저녁식사", "저녁시간"),
    "night": ("밤에", "늦은 밤", "밤 늦게", "자정", "야밤"),
}
PaymentMethod = Literal["meal_card", "cash", "card"]
# Meal card first: "급식카드" must not read as a plain "card"; "카드" alone is left unknown.
_PAYMENT_PRIORITY: tuple[PaymentMethod, ...] = ("meal_card", "card", "cash")


def _payment_words() -> dict[str, PaymentMethod]:
    words: dict[str, PaymentMethod] = {}
    tables: tuple[tuple[PaymentMethod, tuple[str, ...]], ...] = (
        ("meal_card", (*lexicon.MEAL_CARD_WORDS, *_EXTRA_MEAL_CARD)), ("card", _CARD_WORDS), ("cash", _CASH_WORDS))
    for method, table in tables:
        for word in table:
            words.setdefault(word.replace(" ", "").lower(), method)
    return words


def _time_words() -> dict[str, TimeSlot]:
    words: dict[str, TimeSlot] = {}
    for table in (lexicon.TIME_SLOT_WORDS, _EXTRA_TIME_WORDS):
        for slot, slot_words in table.items():
            for word in slot_words:
                words.setdefault(word.replace(" ", ""), TimeSlot(slot))
    return words


_PAYMENT_WORDS = _payment_words()
_TIME_WORDS = _time_words()
_MAX_PAYMENT = max(map(len, _PAYMENT_WORDS))
_MAX_TIME = max(map(len, _TIME_WORDS))

# Places children name: "학교 앞", "미술학원 근처", "집 근처", "역삼동", "강남역 근처", "우리 동네".
_PLACE = (
    r"[가-힣]{1,6}(?:초등학교|중학교|고등학교|학교|학원)|우리\s?(?:집|학교|동네)|학교|학원|집|교문|정문|후문|놀이터"
    r"|도서관|공원|시장|아파트|교회|성당|체육관|수영장|태권도장|문구점|버스정류장|정류장|[가-힣]{1,5}역|[가-힣]{1,4}동"
    r"|[가-힣]{1,5}(?:초|중|고)"
)
_RELATION = r"앞|근처|주변|옆|쪽|뒤|건너편|맞은편|근방|부근|사거리"
_AFTER_WORD = r"(?=$|[^가-힣]|에|에서|으로|로|이|가|은|는|의|까지|도|인데|이야|사는|살)"
# A relation word is distinctive enough to be followed by anything ("학교앞에서", "근처먹을 데").
_PLACE_NEAR = re.compile(rf"(?<![가-힣])(?P<place>{_PLACE})\s?(?P<rel>{_RELATION})")
_DONG = re.compile(rf"(?<![가-힣])(?P<place>[가-힣]{{1,4}}동){_AFTER_WORD}")
_STATION = re.compile(rf"(?<![가-힣])(?P<place>[가-힣]{{1,5}}역){_AFTER_WORD}")
_NEIGHBOURHOOD = re.compile(r"(?<![가-힣])(?P<place>우리\s?동네|동네)")
# Common words that merely end in 동 / 역 ("운동 끝나고", "아동 카드", "이 지역"). Whole-word
# matches, since real names end the same way (정자동, 서현역, 홍대입구역); a few endings mark
# compounds that are never places ("체육활동").
_NOT_DONG = frozenset({"운동", "활동", "행동", "이동", "감동", "자동", "아동", "노동", "충동", "출동", "작동", "진동",
                       "공동", "협동", "소동", "난동", "변동", "발동", "가동", "연동", "부동", "선동", "파동", "폭동",
                       "동동", "야동", "율동"})
_NOT_DONG_ENDINGS = ("활동", "운동", "행동", "이동", "감동", "율동")
_NOT_STATION = frozenset({"지역", "영역", "무역", "전역", "구역", "통역", "번역", "대역", "배역", "현역", "광역", "수역",
                          "성역", "해역", "권역", "기역", "역역", "반역", "이역", "주역", "하역", "어역"})
_BLANK = "|"   # fills spans already read, so words can't be read twice; never a word character


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str     # SHOP, FOOD, MONEY, CARD, TIME, PLACE


@dataclass(frozen=True)
class Tagged:
    entities: Entities
    spans: tuple[Span, ...] = field(default=())


def tag_entities(pre: Preprocessed, shop: ShopHit | None = None) -> Tagged:
    """All entities of one message. ``shop`` is the shop the caller decided the child named."""
    text = pre.cleaned_text
    spans: list[Span] = []
    if shop is not None:
        spans.append(Span(shop.start, shop.end, "SHOP"))
    # Everything else is read around the shop name ("학교앞분식" is not a place plus 분식).
    work = _blank(text, spans)

    food_hits = find_food(work, noun_forms(pre.morphemes))
    category, menu = resolve_food(food_hits)
    if not food_hits:
        category = emoji_category(pre.original_text)
    spans += [Span(h.start, h.end, "FOOD") for h in food_hits]
    work = _blank(text, spans)   # "모닝빵" is bread, not the morning

    numerals = numeral_runs(pre.morphemes)
    amounts = find_amounts(work, numerals)
    spans += [Span(a.start, a.end, "MONEY") for a in amounts]
    payment, payment_spans = _payment(work)
    spans += payment_spans
    time_slot, time_spans = _time_slot(_blank(text, spans))
    spans += time_spans
    location, place_span = _location(_blank(text, spans))
    if place_span is not None:
        spans.append(place_span)

    entities = Entities(
        food_category=category,
        menu_item=menu,
        shop_name=shop.name if shop is not None else None,
        budget=pick_budget(amounts, work),
        location=location,
        payment_method=payment,
        time_slot=time_slot,
    )
    return Tagged(entities=entities, spans=tuple(sorted(spans, key=lambda s: s.start)))


def _blank(text: str, spans: list[Span]) -> str:
    chars = list(text)
    for span in spans:
        chars[span.start:span.end] = _BLANK * (span.end - span.start)
    return "".join(chars)


def _payment(text: str) -> tuple[PaymentMethod | None, list[Span]]:
    squashed = Squashed.of(text)
    hits = longest_matches(squashed.text, _PAYMENT_WORDS, _MAX_PAYMENT)
    if not hits:
        return None, []
    kinds = {_PAYMENT_WORDS[key] for _, _, key in hits}
    method = next(k for k in _PAYMENT_PRIORITY if k in kinds)
    spans = [Span(*squashed.span(s, e), "CARD") for s, e, key in hits if _PAYMENT_WORDS[key] == "meal_card"]
    return method, spans


def _time_slot(text: str) -> tuple[TimeSlot | None, list[Span]]:
    squashed = Squashed.of(text)
    hits = longest_matches(squashed.text, _TIME_WORDS, _MAX_TIME)
    if not hits:
        return None, []
    start, end, key = hits[0]   # the first time the child mentions is the one they mean
    return _TIME_WORDS[key], [Span(*squashed.span(start, end), "TIME")]


def _location(text: str) -> tuple[str | None, Span | None]:
    """The first place the child names, canonically spelled: place without spaces + relation."""
    candidates = []
    for m in _PLACE_NEAR.finditer(text):
        place = m.group("place").replace(" ", "")
        if _not_a_place(place):
            continue
        candidates.append((m.start(), m.end(), f"{place} {m.group('rel')}"))
        break
    for pattern in (_DONG, _STATION, _NEIGHBOURHOOD):
        for m in pattern.finditer(text):
            place = m.group("place").replace(" ", "")
            if _not_a_place(place):
                continue
            candidates.append((m.start(), m.end(), place))
            break
    if not candidates:
        return None, None
    # The earliest place wins; at one position the longer reading ("강남역 근처" over "강남역").
    start, end, value = min(candidates, key=lambda c: (c[0], -(c[1] - c[0])))
    return value, Span(start, end, "PLACE")


def _not_a_place(place: str) -> bool:
    return place in _NOT_DONG or place in _NOT_STATION or place.endswith(_NOT_DONG_ENDINGS)
