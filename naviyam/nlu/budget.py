"""Money amounts in children's Korean: "만원", "오천원", "5천원", "1만2천원", "칠천 원", "3,000원".

Only a spelled amount counts. A Korean numeral needs a unit (백/천/만) and either "원" or a
money-like follower ("오천 있는데", "만오천으로"), so "만두", "치킨만" and "천천히" stay money-free.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DIGIT = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "륙": 6, "칠": 7, "팔": 8, "구": 9}
_SMALL_UNIT = {"십": 10, "백": 100, "천": 1000}

_KDIGIT = "[일이삼사오육륙칠팔구]"
# A part below 만: "5천5백", "천오백", "3500", "3,000", "1.5".
_PART = rf"(?:(?:\d+(?:\.\d+)?|{_KDIGIT})?[십백천])"
_BELOW_MAN = rf"(?:{_PART}+(?:\d+|{_KDIGIT})?|\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?)"
_AMOUNT = re.compile(
    rf"(?<!\d)(?<!\d[.,])"
    rf"(?P<amount>(?:{_BELOW_MAN}\s?|{_KDIGIT})?만(?:\s?{_BELOW_MAN})?|{_BELOW_MAN})"
    rf"(?P<won>\s?원(?![래숭]))?"   # not 원래 ("originally") or 원숭이
)
_MONEY_FOLLOWERS = re.compile(
    r"^\s?(?:으로|로|이면|면|있|이써|잇|짜리|까지|이하|이내|정도|밖에|안으로|안에서|내로|내에서|가지고|갖고|남|뿐|쯤|가량)"
)
_RANGE_JOIN = re.compile(r"^\s?(?:~|-|에서|부터)\s?")


@dataclass(frozen=True)
class Amount:
    value: int
    start: int
    end: int


def _small_korean(text: str) -> int | None:
    """Value of a Korean numeral below 10,000 ("오천오백" → 5500, "천" → 1000)."""
    total, digit = 0, None
    for ch in text:
        if ch in _DIGIT:
            if digit is not None:
                return None            # two digits in a row ("오오") is not a number
            digit = _DIGIT[ch]
        elif ch in _SMALL_UNIT:
            total += (digit if digit is not None else 1) * _SMALL_UNIT[ch]
            digit = None
        else:
            return None
    if digit is not None:
        total += digit
    return total


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    if text[0].isdigit():
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return None
    return _small_korean(text)


def _mixed_below_man(text: str) -> float | None:
    """A part below 만 that may mix digits and Korean units: "5천", "2천5백", "3500", "천오백"."""
    text = text.replace(" ", "")
    if not text:
        return 0
    if re.fullmatch(r"[\d,.]+", text):
        return _number(text)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?|[일이삼사오육륙칠팔구])?([십백천])", text):
        if m.start() != pos:
            return None
        head = m.group(1)
        value = (float(head) if head and head[0].isdigit() else _DIGIT[head] if head else 1)
        total += value * _SMALL_UNIT[m.group(2)]
        pos = m.end()
    rest = text[pos:]
    if rest:
        tail = _number(rest)
        if tail is None:
            return None
        total += tail
    return total


def _value(amount: str) -> tuple[int | None, bool]:
    """(won, has_unit) for the matched amount text."""
    compact = amount.replace(" ", "")
    has_unit = any(u in compact for u in "만천백")
    if "만" in compact:
        head, _, tail = compact.partition("만")
        high = _mixed_below_man(head) if head else 1
        low = _mixed_below_man(tail)
        if high is None or low is None:
            return None, has_unit
        return int(round(high * 10000 + low)), has_unit
    value = _mixed_below_man(compact)
    return (None if value is None else int(round(value))), has_unit


def find_amounts(text: str, numerals: frozenset[str] | None = None) -> list[Amount]:
    """Every money amount in ``text`` with its character span, in order.

    ``numerals`` are the runs of kiwipiepy NR (numeral) morphemes of the message. They settle
    amounts glued to a word: in "떡볶이만원" the numeral is 만 (이 ends 떡볶이), in "용돈오천원" it
    is 오천 (not 천).
    """
    out: list[Amount] = []
    for m in _AMOUNT.finditer(text):
        raw, start = m.group("amount"), m.start()
        with_won = m.group("won") is not None
        if not raw[0].isdigit() and start > 0 and _is_hangul(text[start - 1]):
            raw = _unglue(raw, numerals)
            if raw is None or not with_won:
                continue   # "치킨만", "천천히": a Korean numeral inside a word is money only with 원
            start = m.start("amount") + len(m.group("amount")) - len(raw)
        value, has_unit = _value(raw)
        if value is None or value <= 0:
            continue
        has_digits = any(ch.isdigit() for ch in raw)
        follows = _MONEY_FOLLOWERS.match(text[m.end():]) is not None
        if has_digits:
            # "3000원", "5천", "1만 2천" are money; a bare "3000" only with a money-like follower,
            # and small bare numbers ("2개", "3시") never.
            ok = with_won or (has_unit and value >= 100) or (value >= 500 and follows)
        else:
            # Korean numerals need a unit and 원 or a money-like follower: "그럼 이만" is goodbye.
            ok = has_unit and (with_won or follows)
        if ok:
            out.append(Amount(value=value, start=start, end=m.end()))
    return out


def _unglue(raw: str, numerals: frozenset[str] | None) -> str | None:
    """The numeral part of an amount glued to the word before it, or None."""
    compact = raw.replace(" ", "")
    if numerals is None:
        # Without morphemes, trust only a leading 만/천 ("떡볶이만원" → 만원).
        stripped = raw.lstrip("일이삼사오육륙칠팔구")
        return stripped if stripped and stripped[0] in "만천" else None
    if any(run.endswith(compact) for run in numerals):
        return raw
    if len(compact) > 1 and any(run.endswith(compact[1:]) for run in numerals):
        return raw[1:].lstrip()
    return None


def numeral_runs(morphemes) -> frozenset[str]:
    """Concatenated runs of consecutive NR morphemes ("이천" + "오백" → "이천오백")."""
    runs, current = set(), ""
    for m in morphemes:
        if m.tag == "NR":
            current += m.form
        else:
            if current:
                runs.add(current)
            current = ""
    if current:
        runs.add(current)
    return frozenset(runs)


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def parse_budget(text: str, numerals: frozenset[str] | None = None) -> int | None:
    """The budget in won a message states, or None. For a range ("5천~만원") the upper end."""
    return pick_budget(find_amounts(text, numerals), text)


def pick_budget(amounts: list[Amount], text: str) -> int | None:
    """The budget among the amounts found in ``text``: the first, or a range's upper end."""
    if not amounts:
        return None
    first = amounts[0]
    for nxt in amounts[1:]:
        between = text[first.end:nxt.start]
        if _RANGE_JOIN.match(between) and not between.strip(" ~-에서부터"):
            return max(first.value, nxt.value)
    return first.value
