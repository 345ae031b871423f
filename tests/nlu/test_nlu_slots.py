"""The slot grammar on children's spellings: time, party, walking, order, what to avoid, references."""
from __future__ import annotations

import pytest

from naviyam.dialogue.acts import ChitChat, ShopFact
from naviyam.nlu.slots import read_slots


@pytest.mark.parametrize("text, want", [
    ("학원 끝나고 9시에 먹을 수 있는 데", "21:00"), ("저녁 8시 반에 갈 수 있는 떡볶이집", "20:30"),
    ("아침 7시에 여는 빵집", "07:00"), ("밤 10시에 열려있는 곳", "22:00"), ("3시쯤 갈 건데", "15:00"),
    ("오후 세시에 먹을래", "15:00"), ("20:30에 먹을 거", "20:30"), ("아홉시 반에 갈 수 있어?", "21:30"),
    ("학교 가기 전에 7시 20분에 먹을 데", "07:20"), ("지금 문 연 카페", "now"), ("지금 열려있는 데 있어?", "now"),
    ("몇 시에 열어?", None), ("세 시간 뒤에", None), ("떡볶이 먹고 싶어", None),
])
def test_time(text, want):
    assert read_slots(text).time == want


@pytest.mark.parametrize("text, want", [
    ("친구랑 둘이 만원", 2), ("셋이서 2만원", 3), ("4명이서 먹을 거야", 4), ("친구 세 명이랑 같이 먹을 건데", 4),
    ("우리 다섯명인데", 5), ("두 번째 가게", None), ("세 시에 갈래", None), ("떡볶이 2인분", None),
])
def test_party(text, want):
    assert read_slots(text).party == want


@pytest.mark.parametrize("text, want", [
    ("걸어서 10분 안에", 10), ("5분 안에 갈 수 있는 데", 5), ("도보 15분 이내", 15), ("500m 안에 있는 곳", 8),
    ("1km 이내", 15), ("걸어서 갈 만한 데", 15), ("걸어서 몇 분이야?", None), ("십분 거리", 10),
])
def test_walk(text, want):
    assert read_slots(text).walk_max_min == want


@pytest.mark.parametrize("text, want", [
    ("여기 근처 치킨", True), ("이근처 떡볶이집 ㅊㅊ", True), ("학교 주변에 있는 분식", True), ("가까운 피자집 있어?", True),
    ("집에서 가까이 있는 데", True), ("홍대입구역 근처 분식집", True), ("근처 말고 좀 멀어도 돼", False),
    ("치킨 먹고 싶어", False), ("걸어서 10분 안에", False),
])
def test_near(text, want):
    assert read_slots(text).near is want


@pytest.mark.parametrize("text, want", [
    ("가까운 데로", "nearest"), ("제일 가까운 순서로", "nearest"), ("젤 가까운데", "nearest"), ("제일 싼 데", "cheapest"),
    ("가격 낮은 순", "cheapest"), ("더 싼 데", None), ("가까운 편의점 있어?", None),
])
def test_sort(text, want):
    assert read_slots(text).sort == want


@pytest.mark.parametrize("text, allergens, foods", [
    ("치즈 못먹어", ("우유",), ("치즈",)), ("우유 들어간 거 못 먹어", ("우유",), ("우유",)),
    ("계란 안돼요", ("달걀",), ("계란",)), ("밀가루 못 먹는데 점심 뭐 먹지", ("밀",), ("밀가루",)),
    ("새우랑 오징어 빼고", ("새우", "오징어"), ("새우", "오징어")), ("땅콩 알레르기 있어", ("땅콩",), ("땅콩",)),
    ("치즈 좋아해", (), ()), ("계란말이 먹고 싶어", (), ()),
])
def test_avoid(text, allergens, foods):
    slots = read_slots(text)
    assert (slots.allergens, slots.avoid_foods) == (allergens, foods)


@pytest.mark.parametrize("text", ["매운 거 못 먹어", "안 매운 걸로", "맵찔이라서", "맵지 않은 거"])
def test_not_spicy(text):
    assert read_slots(text).not_spicy


@pytest.mark.parametrize("text, ordinal, demonstrative", [
    ("두 번째 가게 몇 시까지 해?", 2, False), ("첫번째 집 주소", 1, False), ("세 번째 집은 몇 시에 문 열어?", 3, False),
    ("마지막 가게 전화번호 있어?", -1, False), ("2번 어디야", 2, False), ("거기 위치 어디야?", None, True),
    ("그 집 메뉴 더 알려줘", None, True), ("거기 말고 다른 데", None, None),
])
def test_reference(text, ordinal, demonstrative):
    ref = read_slots(text).reference
    if demonstrative is None:
        assert ref is None
    else:
        assert (ref.ordinal, ref.demonstrative) == (ordinal, demonstrative)


@pytest.mark.parametrize("text, fact", [
    ("두 번째 가게 몇 시까지 해?", ShopFact.CLOSE), ("몇 시에 문 열어?", ShopFact.OPEN), ("주소 알려줘", ShopFact.ADDRESS),
    ("걸어서 몇 분이야?", ShopFact.WALK), ("전화번호 있어?", ShopFact.PHONE), ("급식카드 돼?", ShopFact.MEAL_CARD),
    ("메뉴 뭐 있어", ShopFact.MENU), ("얼마야?", ShopFact.PRICE),
])
def test_questions(text, fact):
    assert fact in read_slots(text).questions


@pytest.mark.parametrize("text, kind", [
    ("넌 뭐 할 수 있어?", ChitChat.CAPABILITIES), ("너 이름이 뭐야", ChitChat.NAME), ("고마워!!", ChitChat.THANKS),
    ("잘 가", ChitChat.GOODBYE), ("ㅎㅇ", ChitChat.GREETING), ("떡볶이 먹고 싶어", None),
])
def test_chitchat(text, kind):
    assert read_slots(text).chitchat == kind


def test_good_shop_words():
    assert read_slots("착한가게 있어?").good_shop and read_slots("선한영향력가게 알려줘").good_shop
    assert not read_slots("착하다").good_shop


@pytest.mark.parametrize("text, ok", [("카드 되는 곳으로요", True), ("카드도 돼야됨ㅋㅋ", True), ("체크카드 돼?", False),
                                      ("카드 게임 하자", False)])
def test_a_card_that_pays_is_the_meal_card(text, ok):
    assert read_slots(text).card_ok is ok


def test_after_an_allergy_cue_only_allergen_names_count():
    assert read_slots("나 우유알레르기 있는데 빵집 추천해줘").allergens == ("우유",)
    assert read_slots("알레르기 있어: 땅콩, 우유").allergens == ("땅콩", "우유")
