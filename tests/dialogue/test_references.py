"""Which shown shop a turn points at: ordinals, demonstratives, partial names, never a guess."""
from __future__ import annotations

from naviyam.dialogue import policy
from naviyam.dialogue.acts import Act, FrameUpdate, Reference
from naviyam.dialogue.references import resolve
from naviyam.dialogue.state import DialogueState
from naviyam.schemas import Intent

NAMES = {"s1": "새싹밥상 서현점", "s2": "행복한치킨 역삼점", "s3": "하늘분식", "x9": "새싹밥상 정자점"}
STATE = DialogueState(shown=["s1", "s2", "s3"], searched=True)


def ref(text, reference=None, state=STATE, catalogue=()):
    return resolve(reference, state, text, NAMES.__getitem__, lambda name: list(catalogue))


def test_ordinals_count_from_one_and_minus_one_is_the_last():
    assert ref("두 번째 가게", Reference(ordinal=2)) == "s2"
    assert ref("마지막 집", Reference(ordinal=-1)) == "s3"
    assert ref("다섯 번째", Reference(ordinal=5)) is None   # not on screen: no guess


def test_demonstratives_mean_the_shop_last_asked_about_else_the_first():
    assert ref("거기 주소", Reference(demonstrative=True)) == "s1"
    focused = STATE.model_copy(update={"focus": "s3"})
    assert ref("그 집 메뉴", Reference(demonstrative=True), focused) == "s3"


def test_partial_names_match_the_distinctive_part_only():
    assert ref("행복한치킨 몇 시까지 해?") == "s2"
    assert ref("새싹밥상 어디야") == "s1"       # the one on screen, not the other branch
    assert ref("치킨집 몇 시까지") == "s1"       # "치킨" alone names no shop: the first shown


def test_a_named_shop_not_on_screen_comes_from_the_catalogue():
    assert ref("별빛피자 몇 시에 열어?", Reference(name="별빛피자"), DialogueState(), ["p7"]) == "p7"
    assert ref("별빛피자 몇 시에 열어?", Reference(name="별빛피자"), DialogueState(), []) is None


def test_settle_keeps_stated_allergies_whatever_the_backend_read():
    chit = FrameUpdate(act=Act.CHITCHAT)
    settled = policy.settle(chit, STATE, Intent.OUT_OF_SCOPE, unsafe=False, stated_allergens=["땅콩"])
    assert settled.act is Act.STATEMENT and settled.ops[-1].value == ["땅콩"]
    assert policy.settle(chit, STATE, Intent.OUT_OF_SCOPE, unsafe=True, stated_allergens=["땅콩"]).act is Act.SAFETY


def test_settle_turns_a_question_about_nothing_on_screen_into_small_talk():
    ask = FrameUpdate(act=Act.ASK_SHOP, questions=["hours"])
    assert policy.settle(ask, DialogueState(), Intent.OUT_OF_SCOPE, unsafe=False, stated_allergens=[]).act is Act.CHITCHAT
    assert policy.settle(ask, STATE, Intent.OUT_OF_SCOPE, unsafe=False, stated_allergens=[]).act is Act.ASK_SHOP
