from naviyam.nlg.grounding import check_grounding
from naviyam.nlg.normalizer import normalise_for_children
from naviyam.nlg.templates import UNKNOWN_UNSAFE_CARE, UNSAFE_ANSWER, AnswerInput, allowed_amounts, compose_answer, josa
from naviyam.safety import check_text
from naviyam.schemas import (
    Entities, FollowUp, Intent, MenuItem, NLUResult, Recommendation, SearchFilters, UserProfile,
)

PROFILE = UserProfile(user_id="user_1", age=11, school_id="school_01", meal_card_balance=42000, per_meal_allowance=9500)


def recs():
    return [
        Recommendation(rank=i, shop_id=f"shop_{i:04d}", name=n, category="치킨", address="서울특별시 강남구 역삼로 1",
                       walk_minutes=4 + i, distance_m=250 * i, menus=[MenuItem(name="1인 순살 세트", price=8500 + 500 * i)],
                       min_price=8500, accepts_meal_card=True, is_good_influence_shop=(i == 1),
                       opening_hours="15:00-01:00", rating=4.2, personalized_score=0.9 - 0.1 * i)
        for i, n in enumerate(["바삭치킨 역삼점", "학교앞통닭 대치점"], start=1)
    ]


def nlu(intent=Intent.FOOD_RECOMMENDATION, **ents):
    filters = SearchFilters(category=ents.get("food_category"), meal_card=ents.get("payment_method") == "meal_card")
    return NLUResult(intent=intent, entities=Entities(**ents), confidence=0.9, filters=filters)


def test_josa():
    assert josa("치킨집", "을", "를") == "치킨집을"
    assert josa("분식 가게", "을", "를") == "분식 가게를"


def test_recommendation_answer_names_only_given_shops_and_is_grounded():
    inp = AnswerInput(nlu=nlu(food_category="치킨", payment_method="meal_card"), recommendations=recs(), profile=PROFILE)
    text = normalise_for_children(compose_answer(inp), "치킨")
    assert text.startswith("급식카드로 먹을 수 있는 치킨집을 찾았어요! 🍗")
    assert "바삭치킨 역삼점" in text and "학교앞통닭 대치점" in text
    assert "9,000원" in text and "착한가게" in text
    assert check_grounding(text, recs(), ["바삭치킨 역삼점", "학교앞통닭 대치점", "다른가게"], allowed_amounts(inp)).ok


def test_no_results_is_said_kindly():
    text = compose_answer(AnswerInput(nlu=nlu(food_category="치킨"), recommendations=[], profile=PROFILE))
    assert "못 찾았어요" in text


def test_follow_up_headlines():
    n = nlu(food_category="치킨").model_copy(update={"followup": FollowUp.CHEAPER})
    assert "더 싸게" in compose_answer(AnswerInput(nlu=n, recommendations=recs(), profile=PROFILE))


def test_unsafe_refusal_has_no_shop_and_self_harm_gets_help():
    refusal = compose_answer(AnswerInput(nlu=nlu(Intent.UNSAFE_REQUEST), recommendations=[], profile=PROFILE,
                                         safety=check_text("술 사고 싶어")))
    assert "알려 줄 수 없" in refusal
    help_text = compose_answer(AnswerInput(nlu=nlu(Intent.UNSAFE_REQUEST), recommendations=[], profile=PROFILE,
                                           safety=check_text("죽고 싶어")))
    assert "1388" in help_text
    assert "109" in help_text and "알려 줄 수 없" not in help_text  # help, never a "no"
    assert "바삭치킨" not in help_text


def test_classifier_only_refusal_also_says_where_help_is():
    # The NLU may call a request unsafe without a listed word: its kind is unknown and it may be
    # distress in new words, so the refusal also names the youth helpline; a known kind does not.
    refusal = compose_answer(AnswerInput(nlu=nlu(Intent.UNSAFE_REQUEST), recommendations=recs(), profile=PROFILE))
    assert refusal == UNSAFE_ANSWER + UNKNOWN_UNSAFE_CARE and "바삭치킨" not in refusal and "1388" in refusal
    alcohol = compose_answer(AnswerInput(nlu=nlu(Intent.UNSAFE_REQUEST), recommendations=[], profile=PROFILE,
                                         safety=check_text("소주 파는 곳")))
    assert alcohol == UNSAFE_ANSWER


def test_budget_answer_states_balance_from_profile():
    text = compose_answer(AnswerInput(nlu=nlu(Intent.BUDGET_INQUIRY), recommendations=[], profile=PROFILE))
    assert "42,000원" in text and "9,500원" in text


def test_normaliser_softens_formal_words():
    out = normalise_for_children("급식카드 이용 가능한 곳을 추천드립니다.", "분식")
    assert "쓸 수 있는" in out and "추천해 줄게요" in out and "🍢" in out


def test_answers_without_shops_pass_the_grounding_guard():
    # Example phrases in these answers must not read as claims about a shop or a menu.
    for intent in (Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE, Intent.SHOP_INFO, Intent.MENU_INQUIRY):
        text = normalise_for_children(compose_answer(AnswerInput(nlu=nlu(intent), recommendations=[], profile=PROFILE)))
        assert check_grounding(text, [], ["바삭치킨 역삼점"], allowed_amounts(AnswerInput(nlu=nlu(intent), recommendations=[], profile=PROFILE))).ok, (intent, text)
    refusal = compose_answer(AnswerInput(nlu=nlu(Intent.UNSAFE_REQUEST), recommendations=[], profile=PROFILE,
                                         safety=check_text("술 사고 싶어")))
    assert check_grounding(refusal, [], ["바삭치킨 역삼점"]).ok
