"""Does a message point back at the previous answer? "거기 말고 다른 데는?", "더 싼 곳", "더 가까운 데".

Matched on the spacing-free text ("다른데는", "더싼곳"). Cheaper/closer win over "other" because
"다른 데 더 싼 곳 없어?" asks for something more specific than just another shop.
"""
from __future__ import annotations

import re

from naviyam.nlu.text_index import Squashed
from naviyam.schemas import FollowUp

_PLACE = r"(?:데|곳|가게|집|식당|거|것|걸|건)"
_CHEAPER = re.compile(
    rf"더(?:싼|싸|저렴|값싼|싸게)|덜비싼|보다(?:싼|싸|저렴)|싼{_PLACE}(?:는|은)?없|저렴한{_PLACE}(?:는|은)?없|가격(?:이|좀)?더낮"
)
_CLOSER = re.compile(rf"더가까|보다가까|가까운{_PLACE}(?:는|은)?없|덜먼|더근처|더가깝")
_SHOP = r"(?:데|곳|가게|집|식당)"
# "다른 거" is a follow-up only when it asks for food ("다른 거 추천", "다른 거 없어?"), not in
# "다른 거 물어봐도 돼?".
_THING_ASK = r"(?:거|것|건|걸)(?:는|은|로|으로|도|좀)?(?:추|초|ㅊ|없|업|있|이|먹|알|골|보여|찾|$|[?!~.])"
_OTHER = re.compile(
    rf"(?:거기|여기|저기|그거|그곳|그집|그가게|이거|저거|그건|거긴|이건|그데)말고|(?:다른|딴|새로운|또다른){_SHOP}"
    rf"|(?:다른|딴|새로운){_THING_ASK}|(?:다른|딴|다시)추천"
)


def detect_followup(text: str) -> FollowUp:
    squashed = Squashed.of(text).text
    if _CHEAPER.search(squashed):
        return FollowUp.CHEAPER
    if _CLOSER.search(squashed):
        return FollowUp.CLOSER
    if _OTHER.search(squashed):
        return FollowUp.OTHER
    return FollowUp.NONE
