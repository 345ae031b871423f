"""Step 3: cleaning, morphemes, keywords, emotion."""
from __future__ import annotations

import pytest

from naviyam.preprocess import clean_text


def test_seed_sentence_matches_the_design_guide(preprocessor):
    out = preprocessor("급식카드 되는 치킨집 추천해줘")
    assert out.cleaned_text == "급식카드 되는 치킨집 추천해줘"
    assert out.keywords == ["급식카드", "치킨집", "추천"]
    assert out.emotion == "NEUTRAL"
    assert out.text_length == 16
    assert ("치킨", "NNG") in [(m.form, m.tag) for m in out.morphemes]


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\u200b"])
def test_blank_input_cleans_to_nothing(preprocessor, text):
    out = preprocessor(text)
    assert out.cleaned_text == "" and out.morphemes == [] and out.keywords == [] and out.text_length == 0
    assert out.original_text == text


@pytest.mark.parametrize("raw, cleaned", [
    ("배고파ㅋㅋㅋㅋㅋ!!!!!", "배고파ㅋㅋ!!"),
    ("치킨   먹고\n\t싶어", "치킨 먹고 싶어"),
    ("ｈｉ　안녕", "hi 안녕"),                       # full-width forms (NFKC)
    ("ㅎㅇ ㅎㅇ", "ㅎㅇ ㅎㅇ"),                      # compatibility jamo survive NFKC
    ("피자🍕 먹을래😋😋", "피자 먹을래"),            # emoji out of the cleaned text
    ("안녕\u200b하세요\x07", "안녕하세요"),           # zero-width and control characters
    ("10000원 있어~~~~", "10000원 있어~~"),           # digits never squash
    ("ㅠㅠㅠㅠ 떡볶이", "ㅠㅠ 떡볶이"),
])
def test_cleaning(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_emoji_stay_in_the_original(preprocessor):
    out = preprocessor("치킨 🍗 먹고 싶어")
    assert "🍗" in out.original_text and "🍗" not in out.cleaned_text


@pytest.mark.parametrize("text, emotion", [
    ("배고파 죽겠어", "HUNGRY"), ("배고푸다ㅠㅠ", "HUNGRY"), ("출출한데 뭐 먹지", "HUNGRY"),
    ("떡볶이 맛없어 ㅠㅠ", "NEGATIVE"), ("오늘 너무 짜증나", "NEGATIVE"),
    ("고마워 최고야 😍", "POSITIVE"), ("여기 진짜 맛있어", "POSITIVE"),
    ("메뉴 뭐 있어?", "NEUTRAL"),
])
def test_emotion(preprocessor, text, emotion):
    assert preprocessor(text).emotion == emotion


def test_keywords_without_spaces_and_with_lexicon_phrases(preprocessor):
    assert preprocessor("치킨먹고싶어").keywords == ["치킨"]
    assert preprocessor("오늘 저녁 짜장면 먹을래").keywords == ["저녁", "짜장면"]
    # "라면" inside the ending "-이라면" is not noodles
    assert "라면" not in preprocessor("만원이라면 뭐 먹어").keywords


def test_morphemes_are_reused_downstream(preprocessor):
    out = preprocessor("치킨 먹고 싶어")
    assert [m.form for m in out.morphemes][:2] == ["치킨", "먹"]
