"""Find a known shop name in a message: spacing-insensitive, branch-optional, one typo tolerated.

Catalog names look like "맛있는치킨 역삼점"; children say "맛있는치킨", "맛있는 치킨 역삼점" or
"맛잇는치킨". The answer is the catalog spelling of what was matched (the base name when no
branch was said), so it is a substring of every branch's full name for the shop filter.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from naviyam.nlu.text_index import Squashed

_BRANCH = re.compile(r"\s*\S+?\d*(?:호)?점$")
# Shorter names are too easy to hit by accident with one edit ("한데닭강정" vs "한입닭강정").
_MIN_FUZZY_LEN = 6


@dataclass(frozen=True)
class ShopHit:
    name: str          # catalog spelling (full name or its base without the branch)
    start: int         # span in the source text
    end: int
    exact: bool        # spelled exactly like the catalog, spaces included (not a loose reading)


def _base(name: str) -> str:
    """"맛있는치킨 역삼점" → "맛있는치킨"; names without a branch part are their own base."""
    if " " not in name.strip():
        return name.strip()
    base = _BRANCH.sub("", name.strip())
    return base.strip() or name.strip()


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class ShopMatcher:
    """Index over a fixed list of shop names; build once per list (it is reused across calls)."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self._exact: dict[str, str] = {}
        for name in self.names:
            for surface in (name, _base(name)):
                key = surface.replace(" ", "").lower()
                if len(key) >= 2:
                    # Several branches share a base; any of them spells it the same way.
                    self._exact.setdefault(key, surface)
        self._max_len = max((len(k) for k in self._exact), default=0)
        # One-deletion neighbourhoods (SymSpell): a typo'd name and the real one share a deletion.
        self._fuzzy: dict[str, list[str]] = {}
        for key in self._exact:
            if len(key) >= _MIN_FUZZY_LEN:
                for variant in _deletes(key) | {key}:
                    self._fuzzy.setdefault(variant, []).append(key)

    def find(self, text: str, fuzzy: bool = True) -> ShopHit | None:
        """The longest shop name in ``text`` (cleaned), or None."""
        if not self._exact:
            return None
        squashed = Squashed.of(text)
        hit = self._find_exact(squashed, text)
        if hit is None and fuzzy:
            hit = self._find_fuzzy(squashed, text)
        return hit

    def _find_exact(self, squashed: Squashed, text: str) -> ShopHit | None:
        s, best = squashed.text, None
        for i in range(len(s)):
            for length in range(min(self._max_len, len(s) - i), 1, -1):
                surface = self._exact.get(s[i:i + length])
                if surface is not None:
                    if best is None or length > best[1] - best[0]:
                        best = (i, i + length, surface)
                    break
        if best is None:
            return None
        start, end = squashed.span(best[0], best[1])
        # "맛있는치킨집" is a phrase ("a tasty chicken place") more than the shop 맛있는치킨.
        generic = squashed.text[best[1]:best[1] + 2].startswith(("집", "가게"))
        exact = text[start:end].lower() == best[2].lower() and not generic
        return ShopHit(best[2], start, end, exact)

    def _find_fuzzy(self, squashed: Squashed, text: str) -> ShopHit | None:
        s, found = squashed.text, []
        for length in range(_MIN_FUZZY_LEN - 1, min(self._max_len + 1, len(s)) + 1):
            for i in range(len(s) - length + 1):
                window = s[i:i + length]
                for variant in _deletes(window) | {window}:
                    # Shared deletions also pair words two edits apart; confirm one edit.
                    for key in self._fuzzy.get(variant, ()):
                        # The typo must be inside the name: both ends line up, so a particle or
                        # the next word ("우리동네에" vs "우리동네루") never passes for a letter.
                        if window[0] == key[0] and window[-1] == key[-1] and _within_one_edit(window, key):
                            found.append((len(key), -length, -i, i, length, key))
        if not found:
            return None
        *_, i, length, key = max(found)
        start, end = squashed.span(i, i + length)
        return ShopHit(self._exact[key], start, end, exact=False)


def _within_one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]
