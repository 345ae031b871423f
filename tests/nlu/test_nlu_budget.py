"""Korean money amounts → won."""
from __future__ import annotations

import pytest

from naviyam.nlu.budget import find_amounts, numeral_runs, parse_budget


@pytest.mark.parametrize("text, won", [
    # the spellings the spec lists
    ("만원", 10000), ("오천원", 5000), ("5천원", 5000), ("8000원", 8000), ("만오천원", 15000),
    ("1만2천원", 12000), ("칠천 원", 7000), ("3,000원", 3000),
    # more ways children write it
    ("만 원", 10000), ("1만 5천원", 15000), ("만 오천원", 15000), ("1.5만원", 15000), ("삼천오백원", 3500),
    ("5천5백원", 5500), ("천원", 1000), ("천 원", 1000), ("오백원", 500), ("2만원", 20000), ("이만원", 20000),
    ("15,000원", 15000), ("10000원", 10000), ("구천오백원", 9500), ("팔천원짜리", 8000),
    # in a sentence, with or without 원
    ("만원으로 뭐 먹지", 10000), ("오천원 있는데 뭐 사먹을 수 있어", 5000), ("오천 있는데", 5000), ("5천 있어", 5000),
    ("3000 있어", 3000), ("칠천오백으로 해결 가능?", 7500), ("만원이라면 뭐 먹어", 10000), ("만원 이하로", 10000),
    # ranges give the upper end
    ("5천~만원", 10000), ("오천원에서 만원 사이", 10000),
])
def test_budget_spellings(text, won):
    assert parse_budget(text) == won


@pytest.mark.parametrize("text", [
    "만두 먹고 싶어", "치킨만 먹을래", "천천히 먹자", "2개 주세요", "3시에 열어?", "원래 좋아해", "그럼 이만",
    "1인 세트", "gs25 어디야", "급식카드 잔액 얼마야", "이만 갈게",
])
def test_words_that_are_not_money(text):
    assert parse_budget(text) is None


def test_amount_glued_to_the_word_before():
    # "떡볶이만원": the 이 belongs to 떡볶이; without morphemes only a leading 만/천 is trusted.
    assert parse_budget("떡볶이만원") == 10000
    # kiwipiepy's numeral morphemes settle the ambiguous cases.
    assert parse_budget("용돈오천원남았어", frozenset({"오천"})) == 5000
    assert parse_budget("돈이이만육천원밖에없어", frozenset({"이만육천"})) == 26000
    assert parse_budget("떡볶이만원", frozenset({"만"})) == 10000


def test_amount_spans_point_at_the_text():
    text = "역삼동에서 만원으로 짜장면"
    (amount,) = find_amounts(text)
    assert text[amount.start:amount.end] == "만원" and amount.value == 10000


def test_numeral_runs_join_consecutive_numerals(preprocessor):
    pre = preprocessor("한끼이천오백원인데")
    assert "이천오백" in numeral_runs(pre.morphemes)
