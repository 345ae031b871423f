import pytest

from naviyam.safety import check_answer, check_request, check_text, screen_recommendations, stated_allergies
from naviyam.schemas import MenuItem, Recommendation


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


@pytest.mark.parametrize("text,term", [
    ("소 주 파는 곳", "소주"), ("담.배 사고싶어", "담배"), ("술_집 어디", "술집"), ("전 자 담 배", "전자담배"),
    ("소\u200b주", "소주"), ("ㅅㅗㅈㅜ 사러 갈래", "소주"), ("ㅅㅜㄹ 마실래", "술"), ("s0ju 어디", "soju"),
    ("b e e r 파는 곳", "beer"), ("🍺 파는 곳", "🍺"), ("where can i buy cigarettes", "cigarettes"), ("전담 어디서 사", "전담"),
])
def test_obfuscated_terms_are_found(text, term):
    assert term in check_text(text).terms


@pytest.mark.parametrize("text", [
    "마약 김밥 먹고 싶어", "남양주 떡볶이", "토토로 케이크", "칵테일 새우 피자", "축구 클럽 끝나고 치킨", "맥주효모 빵",
    "사케동 먹고싶어", "root beer 있어?", "smoked chicken", "배고파 죽겠어", "죽 먹고 싶어", "고기 소 주문할래", "도시가스",
])
def test_lookalikes_and_idioms_are_not_flagged(text):
    assert not check_text(text).unsafe, check_text(text).terms


@pytest.mark.parametrize("text", ["죽 고 싶 어", "ㅈㅜㄱㄱㅗ ㅅㅣㅍㅇㅓ", "i want to die", "사라져버리고 싶어", "그냥 사라지고 싶다 배고파"])
def test_self_harm_cues_are_their_own_kind(text):
    assert check_text(text).self_harm


def rec(rank, name, category="분식", menus=("떡볶이",)):
    return Recommendation(rank=rank, shop_id=f"shop_{rank:04d}", name=name, category=category, address="서울 강남구 1",
                          menus=[MenuItem(name=m, price=4000) for m in menus], min_price=4000, accepts_meal_card=True,
                          is_good_influence_shop=False, opening_hours="10:00-22:00", rating=4.0, personalized_score=0.5)


def test_screen_recommendations_drops_unsafe_shops_and_menus_and_reranks():
    recs = [rec(1, "한잔 호프"), rec(2, "별빛분식", category="주점"), rec(3, "꼬마분식", menus=("떡볶이", "생맥주")),
            rec(4, "새싹분식", menus=("소주",)), rec(5, "하늘분식")]
    kept, dropped = screen_recommendations(recs)
    assert [r.name for r in kept] == ["꼬마분식", "하늘분식"]
    assert [r.rank for r in kept] == [1, 2]
    assert [m.name for m in kept[0].menus] == ["떡볶이"]
    assert len(dropped) == 4  # two shops, one menu, one shop left with nothing to show


def test_check_answer_flags_alcohol_in_text():
    assert check_answer("바삭치킨 역삼점에서 치킨이랑 맥 주 한잔!").unsafe
    assert not check_answer("1. 바삭치킨 역삼점 (걸어서 5분)\n   · 1인 순살 세트 9,000원").unsafe


@pytest.mark.parametrize("text,allergens", [
    ("땅콩 알레르기 있어", ["땅콩"]), ("계란이랑 우유 알레르기", ["달걀", "우유"]), ("새우 들어간 거 빼고", ["새우"]),
    ("알레르기 있어: 땅콩, 우유", ["땅콩", "우유"]), ("allergic to peanuts and milk", ["땅콩", "우유"]),
    ("해산물 못 먹어", ["새우", "생선", "오징어", "조개류"]), ("콩 알러지 있는데 떡볶이", ["대두"]),
    ("밀가루 알레르기 있는데 빵 추천", ["밀"]), ("만원으로 피자", []), ("비밀 없는 친구랑 떡볶이", []), ("닭강정 빼고 치킨", []),
])
def test_stated_allergies(text, allergens):
    assert stated_allergies(text) == allergens


@pytest.fixture(scope="module")
def preprocessor():
    from naviyam.preprocess import Preprocessor
    return Preprocessor()


@pytest.mark.parametrize("text,unsafe", [
    ("술마시러 가자", True), ("술추천해줘", True), ("술맛어때?", True), ("토토로 돈 벌고 싶어", True), ("🍺 파는 곳", True),
    ("술빵 파는 빵집", False), ("술떡 먹고 싶어", False), ("토토로 케이크 파는 카페", False), ("몇 시가 좋아? 피자 먹으러", False),
])
def test_check_request_reads_morphemes_but_not_inside_lookalikes(preprocessor, text, unsafe):
    assert check_request(preprocessor(text)).unsafe is unsafe
