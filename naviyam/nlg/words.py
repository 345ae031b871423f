"""Korean wording shared by every answer: won amounts, particles, what a walk may be called."""
from __future__ import annotations

MAX_WALK_MINUTES = 45  # beyond this "걸어서 N분" is not advice a child should get; give the distance


def won(amount: int) -> str:
    return f"{amount:,}원"


def josa(word: str, with_batchim: str, without: str) -> str:
    """Pick the Korean particle for ``word`` (을/를, 은/는, 이/가) from its last syllable."""
    last = word[-1] if word else ""
    if "가" <= last <= "힣":
        return word + (with_batchim if (ord(last) - 0xAC00) % 28 else without)
    return word + with_batchim
