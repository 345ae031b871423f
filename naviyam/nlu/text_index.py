"""Spacing-free view of a message with a map back to the original positions.

Children drop and add spaces freely ("치킨먹고싶어", "급식 카드"), so lexicon phrases are matched
on the text without spaces; the index map turns a hit back into a span of the cleaned text
(needed to mask a shop name or read what follows a food word).
"""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass


@dataclass(frozen=True)
class Squashed:
    text: str                 # lower-cased, no whitespace
    index: tuple[int, ...]    # index[i] = position in the source text of text[i]

    @classmethod
    def of(cls, source: str) -> "Squashed":
        chars, index = [], []
        for i, ch in enumerate(source):
            if not ch.isspace():
                chars.append(ch.lower())
                index.append(i)
        return cls("".join(chars), tuple(index))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Source span (start, end) of the squashed slice [start, end)."""
        return self.index[start], self.index[end - 1] + 1


def longest_matches(text: str, vocabulary: Container[str], max_len: int) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, key) hits of ``vocabulary`` keys in ``text``, longest first at
    each position, scanning left to right ("치킨마요도시락" is one hit, not 치킨 + 도시락)."""
    hits: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        for length in range(min(max_len, n - i), 0, -1):
            key = text[i:i + length]
            if key in vocabulary:
                hits.append((i, i + length, key))
                i += length
                break
        else:
            i += 1
    return hits
