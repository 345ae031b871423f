"""Applying a turn's act to the conversation's frame: what refines, what replaces, what lasts."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest
from pydantic import ValidationError

from naviyam.dialogue import policy
from naviyam.dialogue.acts import Act, FrameUpdate
from naviyam.dialogue.state import DialogueState
from naviyam.schemas import UserInput, UserProfile


def update(act: str, *ops: dict, **kw) -> FrameUpdate:
    return FrameUpdate.model_validate({"act": act, "ops": list(ops), **kw})


def test_refinement_keeps_everything_else():
    state = policy.apply(DialogueState(), update("new_search", {"slot": "category", "op": "set", "value": "치킨"}))
    state = policy.apply(state, update("refine", {"slot": "meal_card", "op": "set"}))
    state = policy.apply(state, update("refine", {"slot": "budget", "op": "set", "value": 7000}))
    assert state.goal() == {"category": "치킨", "meal_card": True, "budget_per_person": 7000}
    assert state.searched


def test_new_food_replaces_food_slots_and_keeps_lasting_facts():
    state = DialogueState(category="중식", menu_items=["짜장면"], allergens=["우유"], party_size=3, budget=15000,
                          sort="nearest", meal_card=True)
    state = policy.apply(state, update("new_search", {"slot": "menu_items", "op": "set", "value": ["돈가스"]}))
    assert state.category is None and state.menu_items == ["돈가스"] and state.sort == "relevance"
    assert (state.allergens, state.party_size, state.per_person_budget, state.meal_card) == (["우유"], 3, 5000, True)


def test_menu_add_and_avoid_accumulate():
    state = DialogueState(category="중식", menu_items=["짜장면"])
    state = policy.apply(state, update("refine", {"slot": "menu_items", "op": "add", "value": ["탕수육"]}))
    state = policy.apply(state, update("statement", {"slot": "allergens", "op": "add", "value": ["우유"]}))
    state = policy.apply(state, update("statement", {"slot": "allergens", "op": "add", "value": ["달걀", "우유"]}))
    assert state.menu_items == ["짜장면", "탕수육"] and state.allergens == ["우유", "달걀"]
    state = policy.apply(state, update("refine", {"slot": "menu_items", "op": "remove", "value": ["짜장면"]}))
    assert state.menu_items == ["탕수육"]


@pytest.mark.parametrize("act", ["ask_shop", "chitchat", "safety"])
def test_references_small_talk_and_safety_leave_the_frame(act):
    state = DialogueState(category="피자", allergens=["우유"], shown=["shop_0001"])
    assert policy.apply(state, update(act, {"slot": "category", "op": "set", "value": "치킨"})) == state


def test_after_answer_records_shown_shops_and_keeps_them_for_references():
    state = DialogueState(category="피자", searched=True)
    new = update("new_search")
    shown = policy.after_answer(state, new, ["s1", "s2"], None)
    assert shown.shown == ["s1", "s2"] and shown.seen == ["s1", "s2"]
    asked = policy.after_answer(shown, update("ask_shop"), ["s1", "s2"], "s2")
    assert asked.shown == ["s1", "s2"] and asked.focus == "s2"
    again = policy.after_answer(asked, update("refine", exclude_shown=True), ["s3"], None)
    assert again.shown == ["s3"] and again.seen == ["s1", "s2", "s3"] and again.focus is None


def test_the_contract_is_strict():
    with pytest.raises(ValidationError):
        FrameUpdate.model_validate({"act": "refine", "ops": [{"slot": "category", "op": "set", "value": "술집"}]})
    with pytest.raises(ValidationError):
        FrameUpdate.model_validate({"act": "refine", "ops": [{"slot": "time", "op": "set", "value": "25:00"}]})
    with pytest.raises(ValidationError):
        FrameUpdate.model_validate({"act": "refine", "extra": 1})
    with pytest.raises(ValidationError):
        FrameUpdate.model_validate({"act": "dance"})


def test_party_divides_the_budget():
    state = DialogueState(budget=10000, party_size=2)
    assert state.per_person_budget == 5000 and state.goal()["budget_per_person"] == 5000


def test_near_lasts_through_refinements_and_narrows_the_widest_walk():
    """"여기 근처 치킨": the pick widens to NEAR_WALK_MIN at most; "급식카드 되는 데" keeps that."""
    catalog = SimpleNamespace(shops=pd.DataFrame(index=pd.Index([], name="shop_id")))  # nothing on screen
    user = UserInput(user_id="user_1", text="여기 근처 치킨", lat=37.5133, lon=127.1001)
    profile = UserProfile(user_id="user_1", age=11, school_id="sch_01")
    local = datetime(2026, 12, 2, 12, 45)
    state = policy.apply(DialogueState(), update("new_search", {"slot": "category", "op": "set", "value": "치킨"},
                                                 {"slot": "near", "op": "set"}))
    state = policy.apply(state, update("refine", {"slot": "meal_card", "op": "set"}))
    assert state.near and "near" not in state.goal()  # not a slot of the evaluation's vocabulary
    near = policy.search(state, update("refine"), profile, user, catalog, 3.0, local).filters
    plain = policy.search(state.model_copy(update={"near": False}), update("refine"), profile, user, catalog, 3.0,
                          local).filters
    assert (near.prefer_walk_min, near.widen_walk_min) == (policy.CHILD_WALK_MIN, policy.NEAR_WALK_MIN)
    assert plain.widen_walk_min is None and "widen_walk_min:20" in near.describe()
    limited = policy.search(state.model_copy(update={"walk_max_min": 10}), update("refine"), profile, user, catalog,
                            3.0, local).filters
    assert limited.prefer_walk_min is None and limited.widen_walk_min is None  # a stated limit is the hard one
