from naviyam.nlg.grounding import check_grounding
from naviyam.schemas import MenuItem, Recommendation


def rec(rank=1, name="바삭치킨 역삼점", meal_card=True, good=False):
    return Recommendation(
        rank=rank, shop_id=f"shop_{rank:04d}", name=name, category="치킨", address="서울특별시 강남구 역삼로 1",
        walk_minutes=5, distance_m=300, menus=[MenuItem(name="1인 순살 세트", price=9000), MenuItem(name="치킨너겟", price=5000)],
        min_price=5000, accepts_meal_card=meal_card, is_good_influence_shop=good, opening_hours="15:00-01:00",
        rating=4.5, personalized_score=0.9,
    )


ALL_NAMES = ["바삭치킨 역삼점", "학교앞통닭 대치점", "맛있는분식 역삼점"]


def test_grounded_answer_passes():
    text = "급식카드로 먹을 수 있는 치킨집이에요!\n1. 바삭치킨 역삼점 (걸어서 5분)\n   · 1인 순살 세트 9,000원, 치킨너겟 5,000원\n   · 급식카드 OK"
    assert check_grounding(text, [rec()], ALL_NAMES).ok


def test_invented_price_is_rejected():
    text = "1. 바삭치킨 역삼점\n   · 1인 순살 세트 7,000원"
    report = check_grounding(text, [rec()], ALL_NAMES)
    assert not report.ok and any("price" in v for v in report.violations)


def test_shop_in_data_but_not_recommended_is_rejected():
    report = check_grounding("학교앞통닭 대치점도 맛있어요", [rec()], ALL_NAMES)
    assert not report.ok


def test_invented_shop_in_a_list_is_rejected():
    text = "1. 바삭치킨 역삼점\n2. 네네치킨 강남점"
    report = check_grounding(text, [rec()], ALL_NAMES)
    assert any("listed item" in v for v in report.violations)


def test_menu_not_shown_is_rejected():
    report = check_grounding("바삭치킨 역삼점에서 양념치킨을 먹어요", [rec()], ALL_NAMES)
    assert any("양념치킨" in v for v in report.violations)


def test_false_meal_card_claim_is_rejected():
    report = check_grounding("바삭치킨 역삼점은 급식카드 사용 가능해요", [rec(meal_card=False)], ALL_NAMES)
    assert any("meal card" in v for v in report.violations)


def test_false_good_shop_claim_is_rejected():
    report = check_grounding("바삭치킨 역삼점은 착한가게예요", [rec(good=False)], ALL_NAMES)
    assert not report.ok
    assert check_grounding("바삭치킨 역삼점은 착한가게예요", [rec(good=True)], ALL_NAMES).ok


def test_budget_amount_may_be_stated():
    assert check_grounding("10,000원으로 먹을 수 있어요", [rec()], ALL_NAMES, allowed_amounts={10000}).ok
    assert not check_grounding("10,000원으로 먹을 수 있어요", [rec()], ALL_NAMES).ok


def test_unsafe_words_in_output_are_rejected():
    assert not check_grounding("바삭치킨 역삼점은 맥주도 팔아요", [rec()], ALL_NAMES).ok


def test_shop_name_inside_a_recommended_name_is_not_another_shop():
    names = ["행복한치킨", "행복한치킨 역삼점"]
    r = rec(name="행복한치킨 역삼점")
    assert check_grounding("1. 행복한치킨 역삼점\n   · 1인 순살 세트 9,000원", [r], names).ok
    assert not check_grounding("1. 행복한치킨 역삼점\n행복한치킨도 좋아요", [r], names).ok


def test_meal_card_denial_must_match_the_data():
    assert check_grounding("바삭치킨 역삼점 · 급식카드는 안 돼요", [rec(meal_card=False)], ALL_NAMES).ok
    assert not check_grounding("바삭치킨 역삼점 · 급식카드는 안 돼요", [rec(meal_card=True)], ALL_NAMES).ok
    assert check_grounding("바삭치킨 역삼점 · 급식카드 OK", [rec(meal_card=True)], ALL_NAMES).ok
    assert not check_grounding("바삭치킨 역삼점 · 급식카드 OK", [rec(meal_card=False)], ALL_NAMES).ok


def test_two_recommended_names_starting_at_the_same_place():
    a, b = rec(1, name="행복한치킨"), rec(2, name="행복한치킨 역삼점")
    text = "1. 행복한치킨 역삼점\n   · 급식카드 OK\n2. 행복한치킨\n   · 급식카드 OK"
    assert check_grounding(text, [a, b], ["행복한치킨", "행복한치킨 역삼점"]).ok


def test_a_name_inside_a_longer_recommended_name_is_the_other_shop():
    short = rec(1, name="하늘식당", meal_card=True)
    longer = rec(2, name="하늘식당 문정점", meal_card=False)
    text = "1. 하늘식당 문정점\n   · 급식카드는 안 돼요\n2. 하늘식당\n   · 급식카드 OK"
    assert check_grounding(text, [longer, short], ["하늘식당", "하늘식당 문정점"]).ok
    swapped = "1. 하늘식당 문정점\n   · 급식카드 OK\n2. 하늘식당\n   · 급식카드는 안 돼요"
    assert not check_grounding(swapped, [longer, short], ["하늘식당", "하늘식당 문정점"]).ok
