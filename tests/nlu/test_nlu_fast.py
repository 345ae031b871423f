"""The trained fast NLU: intents, safety rules, filters, persistence, held-out accuracy, speed."""
from __future__ import annotations

import json

import pytest

from naviyam.evaluation.nlu_metrics import evaluate_nlu
from naviyam.nlu.base import NLUBackend
from naviyam.nlu.fast import FastNLU
from naviyam.schemas import FollowUp, Intent

SHOPS = ["바삭치킨 역삼점", "엄마손밥상", "해피피자", "행복한분식 대치점", "맛있는치킨"]


def test_seed_example(parse):
    result = parse("급식카드 되는 치킨집 추천해줘", SHOPS)
    assert result.intent is Intent.FOOD_RECOMMENDATION
    assert result.entities.food_category == "치킨"
    assert result.entities.payment_method == "meal_card"
    assert result.filters.category == "치킨" and result.filters.meal_card
    assert result.semantic_query == "급식카드 치킨"
    assert result.backend == "fast" and result.followup is FollowUp.NONE
    assert 0.5 < result.confidence <= 1.0
    assert set(result.intent_scores) == {i.value for i in Intent}
    assert abs(sum(result.intent_scores.values()) - 1.0) < 1e-2


def test_filters_follow_the_entities(parse):
    result = parse("만원으로 떡볶이 먹고 싶어")
    f = result.filters
    assert (f.category, f.menu_item, f.max_price, f.meal_card) == ("분식", "떡볶이", 10000, False)
    shop = parse("바삭치킨 몇 시에 열어?", SHOPS)
    assert shop.filters.shop_name == "바삭치킨" and shop.semantic_query.startswith("바삭치킨")


@pytest.mark.parametrize("text, intent", [
    ("거기 말고 다른 데는?", Intent.FOOD_RECOMMENDATION), ("더 싼 곳은?", Intent.FOOD_RECOMMENDATION),
    ("좀 더 가까운 데 알려줘", Intent.FOOD_RECOMMENDATION),
    ("급식카드 잔액 얼마야", Intent.BUDGET_INQUIRY), ("만원으로 뭐 먹지", Intent.BUDGET_INQUIRY),
    ("오천원 있는데 뭐 사먹을 수 있어", Intent.BUDGET_INQUIRY),
    ("떡볶이 얼마야", Intent.MENU_INQUIRY), ("메뉴 뭐 있어", Intent.MENU_INQUIRY),
    ("바삭치킨 몇 시에 열어?", Intent.SHOP_INFO), ("엄마손밥상 어디야", Intent.SHOP_INFO),
    ("안녕", Intent.GREETING), ("ㅎㅇ", Intent.GREETING), ("하이", Intent.GREETING),
    ("바이", Intent.GOODBYE), ("잘가", Intent.GOODBYE), ("ㅂㅂ", Intent.GOODBYE), ("고마워 끝", Intent.GOODBYE),
    ("숙제 도와줘", Intent.OUT_OF_SCOPE), ("오늘 날씨 어때", Intent.OUT_OF_SCOPE), ("게임 추천해줘", Intent.OUT_OF_SCOPE),
    ("수학 문제 풀어줘", Intent.OUT_OF_SCOPE),
    ("치킨먹고싶어", Intent.FOOD_RECOMMENDATION), ("배고파 죽겠어 뭐 먹을까", Intent.FOOD_RECOMMENDATION),
    ("머먹지 추천해죠", Intent.FOOD_RECOMMENDATION),
])
def test_intent_rules(parse, text, intent):
    assert parse(text, SHOPS).intent is intent


def test_followups_are_food_requests(parse):
    assert parse("거기 말고 다른 데는?").followup is FollowUp.OTHER
    assert parse("더 저렴한 데 없어?").followup is FollowUp.CHEAPER
    assert parse("더 가까운 데").followup is FollowUp.CLOSER


@pytest.mark.parametrize("text", [
    "술 마시고 싶어", "맥주 파는 데 알려줘", "담배 어디서 사?", "편의점에서 소주 살 수 있어?", "전자담배 추천해줘",
    "죽고 싶어", "자해하고 싶어", "도박 사이트 알려줘", "19금 보여줘", "맥주 파는 치킨집",
])
def test_unsafe_words_make_a_request_unsafe(parse, text):
    result = parse(text)
    assert result.intent is Intent.UNSAFE_REQUEST
    assert result.confidence >= 0.9


@pytest.mark.parametrize("text", [
    "미술학원 근처 떡볶이", "기술 시간 끝나고 배고파", "마술 보고 왔는데 치킨 먹을래", "술래잡기 하고 나서 피자 먹자",
    "예술제 끝나고 뭐 먹지", "몇 시가 제일 안 붐벼?",
])
def test_words_that_merely_contain_an_unsafe_word(parse, text):
    assert parse(text).intent is not Intent.UNSAFE_REQUEST


def test_a_loosely_written_shop_name_is_the_shop_only_when_asked_about(parse):
    asked = parse("맛있는 치킨 몇 시에 열어?", SHOPS)
    assert asked.intent is Intent.SHOP_INFO and asked.entities.shop_name == "맛있는치킨"
    wanted = parse("맛있는 치킨 추천해줘", SHOPS)
    assert wanted.intent is Intent.FOOD_RECOMMENDATION
    assert wanted.entities.shop_name is None and wanted.entities.food_category == "치킨"


def test_disagreement_lowers_confidence(parse):
    # A shop question with no shop named or pointed at is less certain than one with a name.
    named = parse("바삭치킨 몇 시까지 해?", SHOPS)
    assert named.intent is Intent.SHOP_INFO
    assert all(0.0 <= r.confidence <= 1.0 for r in (named, parse("ㅋㅋ"), parse("")))


def test_save_load_round_trip(trained_nlu, preprocessor, tmp_path):
    trained_nlu.save(tmp_path / "nlu")
    meta = json.loads((tmp_path / "nlu" / "meta.json").read_text(encoding="utf-8"))
    assert meta["version"] == trained_nlu.version and meta["version"].startswith("fast-nlu-")
    assert meta["n_train"] == 2500 and meta["train_intent_accuracy"] > 0.9
    loaded = FastNLU.load(tmp_path / "nlu")
    assert isinstance(loaded, NLUBackend)
    assert loaded.version == trained_nlu.version
    for text in ("급식카드 되는 치킨집 추천해줘", "만원으로 뭐 먹지", "바삭치킨 어디야", "안녕"):
        pre = preprocessor(text)
        assert loaded.parse(pre, SHOPS) == trained_nlu.parse(pre, SHOPS)


def test_held_out_accuracy(trained_nlu, preprocessor, held_out_rows):
    metrics = evaluate_nlu(trained_nlu, held_out_rows, preprocessor)
    assert metrics["n"] == 600
    assert metrics["intent_accuracy"] >= 0.93, metrics
    assert metrics["food_category_accuracy"] >= 0.95, metrics
    assert metrics["budget_accuracy"] >= 0.97 and metrics["payment_accuracy"] >= 0.97, metrics


def test_the_shop_index_is_built_once_per_catalogue(trained_nlu, preprocessor):
    # Speed lives in `make bench`; what keeps parsing cheap is that the catalogue-sized shop index
    # is built on the first parse and reused while the names are the same (and rebuilt when not).
    names = [f"{p}치킨 {d}점" for p in ("맛있는", "바삭", "행복한", "해피") for d in range(600)]  # catalog-sized
    pres = [preprocessor(t) for t in ("급식카드 되는 치킨집 추천해줘", "맛있는 치킨 몇 시에 열어?", "만원으로 뭐 먹지",
                                      "거기 말고 다른 데는?", "바삭치킨 메뉴 뭐 있어")]
    trained_nlu.parse(pres[0], names)
    first = trained_nlu._matcher(names)
    for pre in pres:
        trained_nlu.parse(pre, list(names))  # an equal copy of the list reuses the index
    assert trained_nlu._matcher(names) is first
    changed = [*names, "새로운 떡볶이"]
    assert trained_nlu._matcher(changed) is not first


def test_training_is_reproducible(train_rows, preprocessor):
    rows = train_rows[:400]
    a = FastNLU.train(rows, seed=3, preprocess=preprocessor)
    b = FastNLU.train(rows, seed=3, preprocess=preprocessor)
    assert a.version == b.version
    pre = preprocessor("떡볶이 먹고 싶어")
    assert a.parse(pre).intent_scores == b.parse(pre).intent_scores
