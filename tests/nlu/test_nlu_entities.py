"""The rule-based entity tagger: payment, time, place, food, shop names, follow-ups."""
from __future__ import annotations

import pytest

from naviyam.nlu.entities import tag_entities
from naviyam.nlu.followup import detect_followup
from naviyam.nlu.shops import ShopMatcher
from naviyam.schemas import FollowUp, TimeSlot


@pytest.fixture(scope="module")
def tag(preprocessor):
    def _tag(text, shops=()):
        pre = preprocessor(text)
        hit = ShopMatcher(shops).find(pre.cleaned_text) if shops else None
        return tag_entities(pre, hit).entities
    return _tag


@pytest.mark.parametrize("text, method", [
    ("급식카드 되는 치킨집", "meal_card"), ("아동카드로 살 수 있어?", "meal_card"), ("꿈나무카드 잔액", "meal_card"),
    ("급카 되는 데", "meal_card"), ("급식 카드 돼?", "meal_card"), ("아동 급식 카드 쓸 수 있는 곳", "meal_card"),
    ("행복카드 되나요", "meal_card"), ("현금으로 낼게", "cash"), ("체크카드 돼?", "card"), ("신용카드 되나", "card"),
    ("카드 돼?", None), ("떡볶이 먹고 싶어", None),
])
def test_payment_method(tag, text, method):
    assert tag(text).payment_method == method


@pytest.mark.parametrize("text, slot", [
    ("아침에 먹을 거", TimeSlot.MORNING), ("등교 전에 뭐 먹지", TimeSlot.MORNING), ("점심 뭐 먹지", TimeSlot.LUNCH),
    ("학교 끝나고 떡볶이", TimeSlot.AFTER_SCHOOL), ("학원 가기 전에 간단히", TimeSlot.AFTER_SCHOOL),
    ("방과후에 친구랑", TimeSlot.AFTER_SCHOOL), ("저녁 뭐 먹지", TimeSlot.DINNER), ("야식으로 치킨", TimeSlot.NIGHT),
    ("새벽에 배고파", TimeSlot.NIGHT), ("치킨 먹고 싶어", None),
    # "모닝빵" is bread, not the morning
    ("모닝빵 살래", None),
])
def test_time_slot(tag, text, slot):
    assert tag(text).time_slot == slot


@pytest.mark.parametrize("text, place", [
    ("학교 앞 떡볶이", "학교 앞"), ("학교앞에서 먹을래", "학교 앞"), ("역삼동에서 짜장면", "역삼동"),
    ("집 근처 분식집", "집 근처"), ("학원 근처 김밥", "학원 근처"), ("미술학원 근처 떡볶이", "미술학원 근처"),
    ("강남역 근처 피자", "강남역 근처"), ("우리 동네 맛집", "우리동네"), ("정자동 치킨", "정자동"),
    ("서현역에 있는 카페", "서현역"),
    # words that only end like places
    ("운동 끝나고 배고파", None), ("아동 카드로 살래", None), ("이 지역 맛집", None), ("학원 끝나고 뭐 먹지", None),
])
def test_location(tag, text, place):
    assert tag(text).location == place


@pytest.mark.parametrize("text, category, menu", [
    ("떡볶이 먹고 싶어", "분식", "떡볶이"), ("짜장면 먹을래", "중식", "짜장면"), ("통닭 시켜 먹자", "치킨", None),
    ("치맥 하고 싶다", "치킨", None), ("급식카드 되는 치킨집", "치킨", None), ("치킨마요 도시락 있어?", "도시락", "치킨마요 도시락"),
    ("분식집 떡볶이", "분식", "떡볶이"), ("편의점 샌드위치", "편의점", "샌드위치"), ("샌드위치 먹을래", "베이커리", "샌드위치"),
    ("피짜 ㄱㄱ", "피자", None), ("떡뽁이", "분식", "떡볶이"), ("돈까스 먹고 싶어", "한식", "돈가스"), ("pizza 먹고싶어", "피자", None), ("김밥집 알려줘", "분식", "김밥"),
    ("마라탕 먹을래", "중식", None), ("치킨먹고싶어", "치킨", None), ("햄버거세트", "햄버거", None),
    # the food the child rejects does not count
    ("치킨 말고 피자 먹을래", "피자", None), ("치킨은 싫고 초밥 먹을래", "일식", None), ("치킨 말고 다른 거", None, None),
    # nor does one the child cannot eat (the allergy becomes a hard filter elsewhere)
    ("돼지고기 알레르기 있어 치킨 먹고 싶어", "치킨", None), ("삼겹살 못 먹어서 피자 먹을래", "피자", None),
    ("새우 알러지 있는데 짜장면 먹을래", "중식", "짜장면"), ("돼지고기 먹고 싶어", "한식", None),
    # "라면" as a grammatical ending, and food emoji only without food words
    ("만원이라면 뭐 먹어", None, None), ("라면 먹자", "분식", "라면"), ("배고파 🍗🍗", "치킨", None),
    ("떡볶이 먹을래 🍕", "분식", "떡볶이"), ("뭐 먹지", None, None),
])
def test_food_category_and_menu(tag, text, category, menu):
    entities = tag(text)
    assert (entities.food_category, entities.menu_item) == (category, menu)


def test_shop_name_is_read_around():
    matcher = ShopMatcher(["맛있는치킨 역삼점", "학교앞분식", "새싹버거하우스 대치점"])
    assert matcher.find("맛있는치킨 몇 시에 열어?").name == "맛있는치킨"            # base name of a branch
    assert matcher.find("맛있는치킨 몇 시에 열어?").exact
    assert matcher.find("맛있는 치킨 역삼점 어디야").name == "맛있는치킨 역삼점"      # spacing-insensitive
    assert not matcher.find("맛있는 치킨 역삼점 어디야").exact
    assert matcher.find("새싹버거하우스 대치점 어디").name == "새싹버거하우스 대치점"
    assert matcher.find("새싹버거하오스 메뉴 뭐 있어").name == "새싹버거하우스"       # one typo inside
    assert not matcher.find("맛있는치킨집 추천").exact                                 # "a tasty chicken place"
    assert matcher.find("치킨 먹고 싶어") is None
    assert matcher.find("우리동네에 있는 분식", fuzzy=True) is None
    assert ShopMatcher([]).find("맛있는치킨") is None


def test_entities_inside_a_shop_name_are_not_read(tag):
    entities = tag("학교앞분식 몇 시까지 해?", shops=["학교앞분식"])
    assert entities.shop_name == "학교앞분식"
    assert entities.location is None and entities.food_category is None


@pytest.mark.parametrize("text, followup", [
    ("거기 말고 다른 데는?", FollowUp.OTHER), ("다른 곳 추천해줘", FollowUp.OTHER), ("딴 데 없어?", FollowUp.OTHER),
    ("다른 거 추천해줘", FollowUp.OTHER), ("더 싼 곳은?", FollowUp.CHEAPER), ("더 저렴한 데 알려줘", FollowUp.CHEAPER),
    ("더싼데", FollowUp.CHEAPER), ("더 가까운 데", FollowUp.CLOSER), ("여기보다 가까운 곳 있어?", FollowUp.CLOSER),
    ("다른 데 더 싼 곳 없어?", FollowUp.CHEAPER),
    ("다른 거 물어봐도 돼?", FollowUp.NONE), ("치킨 먹고 싶어", FollowUp.NONE), ("제일 싼 메뉴 뭐야", FollowUp.NONE),
])
def test_followups(text, followup):
    assert detect_followup(text) is followup
