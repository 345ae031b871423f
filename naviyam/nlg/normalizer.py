"""Child-friendly post-processing applied to every answer, template or LLM.

Rules, not a model: the output must stay predictable (and grounded) after normalisation, so it
only swaps hard words for easy ones, softens formal endings and adds one emoji per topic.
"""
from __future__ import annotations

import re

from naviyam.lexicon import EASY_WORDS

CATEGORY_EMOJI = {
    "치킨": "🍗", "피자": "🍕", "햄버거": "🍔", "분식": "🍢", "한식": "🍚", "중식": "🥟", "일식": "🍣",
    "양식": "🍝", "카페·디저트": "🍰", "베이커리": "🥐", "편의점": "🏪", "도시락": "🍱",
}
_FORMAL_ENDINGS = ((r"합니다\.", "해요."), (r"입니다\.", "이에요."), (r"습니다\.", "어요."), (r"하십시오\.", "하세요."))
_EASY_PATTERN = re.compile("|".join(re.escape(w) for w in sorted(EASY_WORDS, key=len, reverse=True)))


def normalise_for_children(text: str, category: str | None = None) -> str:
    out = _EASY_PATTERN.sub(lambda m: EASY_WORDS[m.group(0)], text)
    for pattern, easy in _FORMAL_ENDINGS:
        out = re.sub(pattern, easy, out)
    emoji = CATEGORY_EMOJI.get(category or "")
    first_line, _, rest = out.partition("\n")
    if emoji and emoji not in first_line:
        first_line = f"{first_line} {emoji}"
    out = first_line + ("\n" + rest if rest else "")
    # Collapse runs of blank lines an LLM may leave behind.
    return re.sub(r"\n{3,}", "\n\n", out).strip()
