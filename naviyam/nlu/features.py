"""What the intent classifier reads: two text channels built from one preprocessed message.

1. The cleaned text with tagged spans replaced by placeholders ("SHOP 몇 시에 열어",
   "MONEY으로 뭐 먹지"): character n-grams over it generalise across the thousands of shop names,
   foods and amounts a child can write, and survive typos and missing spaces.
2. kiwipiepy morphemes as ``form/TAG`` tokens (unigrams + bigrams): "치킨먹고싶어" and
   "치킨 먹고 싶어" look the same here. Morphemes inside a shop name are dropped.
3. Cue flags: which kinds of entity were read, whether anything about eating was said, and a
   NOFOOD flag when nothing was. "구구단 추천 좀" shares "추천 좀" with food requests; the flag
   lets the model tell them apart without having seen 구구단.
"""
from __future__ import annotations

import re

from naviyam.nlu.entities import Span
from naviyam.schemas import Preprocessed

# Placeholders are upper-case Latin; the text channel is lower-cased first, so children's own
# Latin words ("hi", "gs25") never collide with them.
MASKED_LABELS = frozenset({"SHOP", "FOOD", "MONEY", "CARD"})


def masked_text(pre: Preprocessed, spans: tuple[Span, ...]) -> str:
    text = pre.cleaned_text.lower()
    out, pos = [], 0
    for span in sorted((s for s in spans if s.label in MASKED_LABELS), key=lambda s: s.start):
        if span.start < pos:
            continue
        out.append(text[pos:span.start])
        out.append(f" {span.label} ")
        pos = span.end
    out.append(text[pos:])
    return " ".join("".join(out).split())


def morpheme_text(pre: Preprocessed, spans: tuple[Span, ...] = ()) -> str:
    shop_text = "".join(pre.cleaned_text[s.start:s.end] for s in spans if s.label == "SHOP").replace(" ", "")
    tokens = []
    for m in pre.morphemes:
        if shop_text and m.tag.startswith(("NN", "SL", "XR", "VA")) and m.form in shop_text:
            continue
        tokens.append(f"{m.form.lower()}/{m.tag}")
    return " ".join(tokens)


# Words about eating that are not foods themselves ("뭐 먹지", "배고파", "맛집", "식당").
_EATING = re.compile(r"먹|마시|배고|배곺|출출|허기|맛있|맛집|식당|밥|배달|주문|시켜|땡기|땡겨|당기|음식|메뉴|간식|요리|디저트|식사|끼니")
_CUE_LABELS = ("SHOP", "FOOD", "MONEY", "CARD", "TIME", "PLACE")


def cue_text(pre: Preprocessed, spans: tuple[Span, ...]) -> str:
    labels = {s.label for s in spans}
    cues = [f"HAS_{label}" for label in _CUE_LABELS if label in labels]
    if _EATING.search(pre.cleaned_text.replace(" ", "")):
        cues.append("EATING")
    if not cues or cues == ["HAS_TIME"]:
        cues.append("NOFOOD")
    return " ".join(cues)
