"""Boundary models: what an HTTP endpoint accepts, and the 4xx message for what it refuses."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from naviyam.schemas import (
    MAX_BUDGET_WON, MAX_SHOP_LIST, MAX_TEXT_CHARS, Candidate, Entities, Envelope, FeedbackEvent, SearchFilters,
    UserInput, UserProfile, text_problem, validation_problems,
)


def problems(model, data) -> str:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return "; ".join(validation_problems(err.value, limit=20))


def chat(**kw) -> dict:
    return {"user_id": "user_1", "text": "치킨 먹고 싶어", **kw}


# -- UserInput.text ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, normalised", [
    ("ｈｉ　치킨", "hi 치킨"),                     # full-width forms (NFKC)
    ("ㅋㅋ 피자 ㅠㅠ", "ㅋㅋ 피자 ㅠㅠ"),          # compatibility jamo kept as typed (jamo-safe NFKC)
    ("  떡볶이\n먹을래\t", "떡볶이\n먹을래"),        # ordinary whitespace is fine; the ends are stripped
    ("카페\u200b라떼 🍰", "카페\u200b라떼 🍰"),     # zero-width space and emoji are text, not controls
    ("Å 커피", "Å 커피"),                           # Angstrom sign -> A with ring
])
def test_text_is_nfkc_normalised(raw, normalised):
    assert UserInput.model_validate(chat(text=raw)).text == normalised


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_refused_with_their_code_point(char):
    message = problems(UserInput, chat(text=f"치킨{char}먹자"))
    assert f"U+{ord(char):04X}" in message and "control character" in message and "position 2" in message


@pytest.mark.parametrize("char", ["\u202e", "\u2066"])
def test_bidi_overrides_are_refused(char):
    assert "bidi control" in problems(UserInput, chat(text=f"치킨{char}"))


def test_lone_surrogate_is_refused():
    # What json.loads makes of a "\ud800" escape; it can never be written as UTF-8.
    text = json.loads('"치킨 \\ud800"')
    assert problems(UserInput, chat(text=text)).startswith("text:")
    assert text_problem(text) == "lone surrogate U+D800 at position 3 is not valid Unicode text"


@pytest.mark.parametrize("text", ["", "   ", "\n\t\r "])
def test_empty_text_is_refused(text):
    assert problems(UserInput, chat(text=text)).startswith("text:")


def test_length_limit_applies_before_and_after_normalisation():
    UserInput.model_validate(chat(text="가" * MAX_TEXT_CHARS))
    assert f"at most {MAX_TEXT_CHARS} characters" in problems(UserInput, chat(text="가" * (MAX_TEXT_CHARS + 1)))
    # "㍿" is one character that NFKC turns into four ("株式会社"): within the raw limit, over it after.
    message = problems(UserInput, chat(text="㍿" * 300))
    assert f"over {MAX_TEXT_CHARS} characters after unicode normalisation" in message


# -- ids and numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("user_id", "../../etc"), ("user_id", "user 1"), ("user_id", "유저"), ("user_id", "a" * 65), ("user_id", ""),
    ("session_id", "s/1"), ("session_id", "s\n1"), ("session_id", "x" * 129),
])
def test_ids_follow_one_safe_pattern(field, value):
    assert problems(UserInput, chat(**{field: value})).startswith(field)


def test_good_ids_pass():
    UserInput.model_validate(chat(user_id="user_123", session_id="3f2a-9c:web.1"))


@pytest.mark.parametrize("field, value", [("lat", 91), ("lat", -90.5), ("lon", 181), ("lat", float("nan")),
                                          ("lon", float("inf"))])
def test_coordinates_are_bounded_and_finite(field, value):
    assert problems(UserInput, chat(**{field: value})).startswith(field)


def event(**kw) -> dict:
    return {"event_id": "e-1", "user_id": "user_1", "shop_id": "shop_0001", "feedback_type": "rated",
            "satisfaction_score": 4, **kw}


@pytest.mark.parametrize("field, value", [
    ("event_id", "e 1"), ("event_id", ""), ("event_id", "e" * 129), ("shop_id", "shop_0001\x00"),
    ("shop_id", "../shop"), ("request_id", "r;1"), ("satisfaction_score", 0.5), ("satisfaction_score", 6),
    ("satisfaction_score", float("nan")), ("order_amount", -1), ("order_amount", MAX_BUDGET_WON + 1),
])
def test_feedback_event_fields_are_checked(field, value):
    assert problems(FeedbackEvent, event(**{field: value})).startswith(field)


def test_a_child_s_huge_budget_is_capped_not_refused():
    # The NLU writes what the child said ("1조원"): it means "no limit", and stays int64-safe.
    assert Entities(budget=10**18).budget == MAX_BUDGET_WON
    assert Entities(budget=5000).budget == 5000
    assert SearchFilters(max_price=10**20).max_price == MAX_BUDGET_WON
    assert problems(SearchFilters, {"max_price": -1}).startswith("max_price")


@pytest.mark.parametrize("data", [{"open_at": "25:00"}, {"open_at": "9:00; drop"}, {"max_distance_km": -1},
                                  {"max_distance_km": float("inf")}, {"max_distance_km": 50_000}, {"near_school_id": "../s"}])
def test_search_filters_are_bounded(data):
    assert problems(SearchFilters, data).startswith(next(iter(data)))


def test_profile_numbers_are_bounded():
    base = {"user_id": "user_1", "age": 12, "school_id": "school_1"}
    UserProfile.model_validate(base)
    assert problems(UserProfile, {**base, "age": -3}).startswith("age")
    assert problems(UserProfile, {**base, "meal_card_balance": 10**12}).startswith("meal_card_balance")


# -- Envelope --------------------------------------------------------------------------------------
def envelope(**kw) -> dict:
    return {"request_id": "3f2a9c", "input": chat(), **kw}


def test_a_plain_envelope_passes():
    env = Envelope.model_validate(envelope(candidates=[{"shop_id": "shop_0001", "scores": {"rag": 0.5}}]))
    assert env.candidates[0].shop_id == "shop_0001"


@pytest.mark.parametrize("data, field", [
    ({"candidates": [{"shop_id": "shop_0001"}] * (MAX_SHOP_LIST + 1)}, "candidates"),
    ({"retrieval": [{"shop_id": "s", "rag_score": 1.0}] * (MAX_SHOP_LIST + 1)}, "retrieval"),
    ({"unsafe_terms": ["x"] * 1000}, "unsafe_terms"),
    ({"timings_ms": {str(i): 1.0 for i in range(1000)}}, "timings_ms"),
    ({"errors": {"nlu": "x" * 100_000}}, "errors"),
    ({"answer": "가" * 100_000}, "answer"),
    ({"request_id": "x/y"}, "request_id"),
    ({"started_at": float("inf")}, "started_at"),
    ({"candidates": [{"shop_id": "shop 1"}]}, "candidates"),
    ({"input": chat(text="\x00")}, "input"),
])
def test_forged_envelope_fields_are_bounded(data, field):
    assert problems(Envelope, envelope(**data)).startswith(field)


def test_candidate_score_map_is_bounded():
    assert problems(Candidate, {"shop_id": "s1", "scores": {str(i): 1.0 for i in range(100)}}).startswith("scores")
