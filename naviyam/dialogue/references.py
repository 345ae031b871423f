"""Which shown shop does the child mean? "두 번째 가게", "마지막 집", "거기", "그 집", "행복분식".

Resolved against the shops of the last answer (the frame's ``shown``), so an ordinal is always a
shop the child saw; a demonstrative means the shop last asked about, else the first one shown.
A name that is no shown shop may still be a shop of the catalogue the child knows by name.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from naviyam.dialogue.acts import Reference
from naviyam.dialogue.state import DialogueState

# Parts of a shop name that say nothing about which shop it is ("역삼점", "분식", "치킨").
_GENERIC = re.compile(r"점$|^(?:분식|치킨|피자|버거|식당|카페|가게|집|본점|김밥|떡볶이)$")


def resolve(reference: Reference | None, state: DialogueState, text: str,
            name_of: Callable[[str], str], find_by_name: Callable[[str], Sequence[str]]) -> str | None:
    """The shop id the turn refers to, or None when it points at nothing we can name."""
    shown = state.shown
    if reference is not None and reference.ordinal is not None:
        k = reference.ordinal
        if shown and -len(shown) <= k <= len(shown) and k != 0:
            return shown[k - 1] if k > 0 else shown[k]
        return None
    if shown:
        by_name = _partial_name(text, shown, name_of)
        if by_name is not None:
            return by_name
    if reference is not None and reference.name:
        hits = [sid for sid in shown if reference.name in name_of(sid)] or list(find_by_name(reference.name))
        if hits:
            return hits[0]
    if shown:
        return state.focus if state.focus in shown else shown[0]
    return None


def _partial_name(text: str, shown: Sequence[str], name_of: Callable[[str], str]) -> str | None:
    """A shown shop whose distinctive name part the message contains ("새싹밥상" of "새싹밥상 서현점")."""
    squashed = text.replace(" ", "")
    hits = []
    for sid in shown:
        parts = [p for p in name_of(sid).split() if len(p) >= 2 and not _GENERIC.search(p)]
        if any(p in squashed for p in parts):
            hits.append(sid)
    return hits[0] if len(hits) == 1 else None
