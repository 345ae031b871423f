import pytest

from naviyam.safety import check_text


@pytest.mark.parametrize("text,kind", [
    ("술 마시고 싶어", "alcohol"), ("술을 사고싶어", "alcohol"), ("맥주집 알려줘", "alcohol"),
    ("소주 파는 데", "alcohol"), ("담배 파는 편의점", "tobacco"), ("전자담배샵 어디", "tobacco"),
    ("토토 하는 곳", "gambling"), ("성인 pc방 가자", "adult"), ("죽고싶어", "self_harm"),
    ("요즘 살기 싫어", "self_harm"),
])
def test_unsafe_requests_are_flagged_with_their_kind(text, kind):
    verdict = check_text(text)
    assert verdict.unsafe
    assert kind in verdict.kinds


@pytest.mark.parametrize("text", [
    "미술학원 근처 떡볶이", "기술 시간 끝나고 치킨", "술래잡기 하고 피자", "마술 보고 햄버거",
    "액상과당 없는 음료 있어?", "급식카드 되는 치킨집 추천해줘",
])
def test_words_containing_unsafe_syllables_are_not_flagged(text):
    assert not check_text(text).unsafe


def test_morphemes_catch_unspaced_terms():
    # "술마시러" has no boundary after 술; kiwipiepy splits it into 술 + 마시 + ...
    assert check_text("술마시러 가자", morphemes=["술", "마시", "러", "가", "자"]).unsafe
