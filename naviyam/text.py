"""Text cleaning shared by the request schemas and step 3, with no analyser behind it.

``UserInput`` normalises a child's message the same jamo-safe way the preprocessor does, so what
is stored, logged and quoted is the text the NLU saw; keeping that here (not in
``naviyam.preprocess``) means validating a request never loads kiwipiepy.
"""
from __future__ import annotations

import re
import unicodedata

# Hangul compatibility jamo ("ㅋㅋ", "ㅎㅇ", "ㅠㅠ") are how children type laughter and slang, but
# NFKC turns them into conjoining jamo that render oddly and may fuse with neighbours. They are
# left out of NFKC and any conjoining jamo that NFKC produced (half-width forms) are mapped back.
_COMPAT_JAMO_RUN = re.compile(r"([\u3131-\u318e]+)")
_CONJOINING_TO_COMPAT = {
    unicodedata.normalize("NFKC", chr(cp)): chr(cp)
    for cp in range(0x3131, 0x318F)
    if len(unicodedata.normalize("NFKC", chr(cp))) == 1
}
_CONJOINING_TABLE = str.maketrans(_CONJOINING_TO_COMPAT)

# Emoji and pictographs: kept in original_text (they carry mood) but stripped from cleaned_text.
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols, flags
    "\u2600-\u27bf"          # misc symbols and dingbats (♥ ☀ ✨ ❤)
    "\u2b00-\u2bff"          # arrows and stars (⭐)
    "\ufe0e\ufe0f"           # variation selectors
    "\u200d"                 # zero-width joiner inside emoji sequences
    "\u20e3"                 # keycap
    "]+"
)
# Runs of the same jamo or punctuation ("ㅋㅋㅋㅋ", "!!!!", "~~~") squash to two; digits never
# squash ("1000원") and syllables are left alone ("하하하" is a word).
_REPEATS = re.compile(r"([\u3131-\u318e!?.~^;,*♡\-_=+])\1{2,}")
_SPACES = re.compile(r"\s+")


def normalize_unicode(text: str) -> str:
    """NFKC that leaves Hangul compatibility jamo ("ㅋㅋ", "ㅠㅠ") as the child typed them."""
    parts = _COMPAT_JAMO_RUN.split(text)
    # split() with one capture group alternates non-jamo (even) and jamo (odd) runs.
    text = "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))
    return text.translate(_CONJOINING_TABLE)


def clean_text(text: str) -> str:
    """NFKC (jamo-safe), no control characters or emoji, squashed repeats, single spaces."""
    text = _EMOJI.sub(" ", normalize_unicode(text))
    chars = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc":
            chars.append(" ")          # newlines, tabs and friends separate words
        elif category in ("Cf", "Co", "Cs"):
            continue                   # zero-width and private-use characters carry nothing
        else:
            chars.append(ch)
    text = _REPEATS.sub(r"\1\1", "".join(chars))
    return _SPACES.sub(" ", text).strip()
