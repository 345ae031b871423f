"""The 8 steps together, on the real data set, through NaviyamChatbot.process()."""
from __future__ import annotations

from datetime import datetime

import pytest

from naviyam.nlg.grounding import check_grounding
from naviyam.dialogue.select import SCORE_RESOLUTION
from naviyam.schemas import Intent, UserInput

SEED = "급식카드 되는 치킨집 추천해줘"
AFTER_SCHOOL = datetime(2026, 12, 2, 16, 0)


def ask(bot, text, user_id="user_123", session_id="s1"):
    return bot.process(UserInput(user_id=user_id, text=text, session_id=session_id, timestamp=AFTER_SCHOOL))


def test_seed_example(bot, models):
    resp = ask(bot, SEED)
    assert resp.metadata.intent is Intent.FOOD_RECOMMENDATION
    assert resp.metadata.entities.food_category == "치킨"
    assert resp.metadata.entities.payment_method == "meal_card"
    assert 1 <= len(resp.recommendations) <= 5
    catalog = models.catalog
    for rec in resp.recommendations:
        shop = catalog.shop(rec.shop_id)  # exists
        assert shop.name == rec.name and shop.category == "치킨" and shop.accepts_meal_card
        for menu in rec.menus:  # every shown menu and price is the shop's own
            assert any(m.name == menu.name and m.price == menu.price for m in shop.menus)
        assert rec.name in resp.response
    # The answer names no shop other than the recommended ones (a shorter catalogue name inside a
    # recommended name, "행복한치킨" in "행복한치킨 대치점", is that same mention).
    text = resp.response
    for rec in resp.recommendations:
        text = text.replace(rec.name, "")
    assert [n for n in models.shop_names if n in text] == []
    assert check_grounding(resp.response, resp.recommendations, models.shop_names).ok
    md = resp.metadata
    assert {"preprocess", "nlu", "retrieval", "candidates", "ranking", "nlg", "response"} <= set(md.timings_ms)
    assert {"nlu", "retriever", "candidates", "ranking", "nlg"} <= set(md.model_versions)
    assert "category:치킨" in md.filters_applied and "payment:급식카드" in md.filters_applied
    assert not md.degraded
    assert "wide_deep" in md.recommendation_method
    # Best first; scores within select.SCORE_RESOLUTION are a tie that the shorter walk wins.
    keys = [(-round(r.personalized_score / SCORE_RESOLUTION), r.walk_minutes) for r in resp.recommendations]
    assert keys == sorted(keys)


def test_follow_up_other_and_cheaper(bot):
    first = ask(bot, SEED)
    shown = {r.shop_id for r in first.recommendations}
    other = ask(bot, "거기 말고 다른 데는?")
    assert other.recommendations, other.response
    assert shown.isdisjoint(r.shop_id for r in other.recommendations)
    assert all(r.category == "치킨" and r.accepts_meal_card for r in other.recommendations)
    # "더 싼 곳": cheaper than what was on screen on average, cheapest first, none shown before.
    mean_before = sum(r.min_price for r in other.recommendations) / len(other.recommendations)
    cheaper = ask(bot, "더 싼 곳은?")
    prices = [r.min_price for r in cheaper.recommendations]
    assert all(p < mean_before for p in prices) and prices == sorted(prices)
    assert all(r.category == "치킨" and r.accepts_meal_card for r in cheaper.recommendations)
    assert shown.isdisjoint(r.shop_id for r in cheaper.recommendations)
    assert cheaper.recommendations or "못 찾았어요" in cheaper.response


def test_follow_up_needs_its_own_conversation(bot):
    ask(bot, SEED, session_id="a")
    fresh = ask(bot, "떡볶이 먹고 싶어", session_id="b")
    assert all(r.category == "분식" for r in fresh.recommendations)


@pytest.mark.parametrize("text", ["술 마시고 싶어", "담배 파는 곳 알려줘", "성인 전용 가게 추천해줘", "맥주 파는 치킨집"])
def test_unsafe_requests_are_refused_kindly_without_shops(bot, text):
    resp = ask(bot, text)
    assert resp.metadata.intent is Intent.UNSAFE_REQUEST
    assert resp.recommendations == []
    assert "알려 줄 수 없" in resp.response


def test_new_user_gets_recommendations(bot, models):
    assert models.catalog.user("kid_never_seen") is None
    resp = ask(bot, "떡볶이 먹고 싶어", user_id="kid_never_seen")
    assert resp.recommendations and all(r.category == "분식" for r in resp.recommendations)


def test_allergies_from_profile_are_respected(bot, models):
    users = models.catalog.users
    allergic = users[users["allergies"].map(len) > 0].iloc[0]
    resp = ask(bot, "배고파 뭐 먹지", user_id=allergic.user_id)
    banned = set(allergic.allergies)
    for rec in resp.recommendations:
        assert all(not banned.intersection(m.allergens) for m in rec.menus)
        assert rec.menus, "a recommended shop must have something the child can eat"


def test_budget_is_a_hard_limit(bot):
    resp = ask(bot, "만원으로 떡볶이 먹고 싶어")
    assert resp.metadata.entities.budget == 10000
    assert resp.recommendations
    for rec in resp.recommendations:
        assert rec.min_price <= 10000 and all(m.price <= 10000 for m in rec.menus)


def test_greeting_and_out_of_scope_do_not_search(bot):
    hello = ask(bot, "안녕!")
    assert hello.metadata.intent is Intent.GREETING and hello.recommendations == []
    assert "나비얌" in hello.response  # the greeting itself, not the grounding guard's apology
    assert "retrieval" not in hello.metadata.timings_ms


def test_failed_retrieval_degrades_not_crashes(bot, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("index unavailable")

    monkeypatch.setattr(bot.models.retriever, "search", boom)
    resp = ask(bot, SEED)
    assert resp.metadata.degraded
    assert resp.recommendations and all(r.category == "치킨" and r.accepts_meal_card for r in resp.recommendations)


def test_interaction_is_logged_and_counted(bot):
    resp = ask(bot, SEED)
    logged = bot.events.interactions()
    assert logged[-1]["request_id"] == resp.metadata.request_id
    assert [r["shop_id"] for r in logged[-1]["shown_recommendations"]] == [r.shop_id for r in resp.recommendations]
    snap = bot.metrics.snapshot()
    assert snap["naviyam_requests_total{intent=FOOD_RECOMMENDATION}"] >= 1


def test_shop_info_never_guesses_a_shop(bot):
    resp = ask(bot, "없는가게 어디야")
    assert resp.metadata.intent is Intent.SHOP_INFO
    assert resp.recommendations == [] and "가게 이름" in resp.response


def test_shop_info_of_a_named_shop(bot, models):
    shop = models.catalog.shop("shop_0787")
    resp = ask(bot, f"{shop.name} 몇시에 열어?")
    assert [r.shop_id for r in resp.recommendations] == ["shop_0787"]
    assert shop.opening_hours in resp.response


def test_random_turns_never_crash_and_every_answer_is_grounded(bot, models, caplog):
    """Random mixes of food words, follow-ups, amounts, unsafe words, shop names and junk."""
    import logging
    import random
    import string

    rng = random.Random(7)
    shop = models.catalog.shop("shop_0787").name
    pieces = ["치킨", "급식카드", "만원", "오천원", "999999999999원", "0원", "거기 말고", "더 싼 곳", "더 가까운 데",
              "술", "🍗", "\u200b", "ㅋㅋㅋ", "  ", "<|endoftext|>", '{"a":1}', "'; DROP TABLE turns;--", shop,
              "몇시에 열어", "얼마야", "안녕", "%s%n", "-1원", "학교앞", "역삼동", "새벽", "아침", "떡볶이", "분식"]
    caplog.set_level(logging.ERROR, logger="naviyam.chatbot")
    for i in range(200):
        text = "".join(rng.choice([*pieces, rng.choice(string.printable)]) for _ in range(rng.randint(1, 10)))
        lat = rng.choice([None, 37.5, -89.9])
        try:
            user_input = UserInput(user_id=rng.choice(["user_1", "user_123", "kid_new"]), text=text or "x",
                                   session_id=f"f{i % 5}", lat=lat, lon=None if lat is None else 127.0,
                                   timestamp=datetime(2026, 11, 25, rng.randint(0, 23), rng.randint(0, 59)))
        except ValueError:
            continue  # rejected at the boundary (e.g. whitespace only): that is the clear error path
        resp = bot.process(user_input)
        assert resp.response
        named = [rec for rec in resp.recommendations if rec.name in resp.response]
        if len(named) < len(resp.recommendations):
            # Only a question about a shown shop keeps the list on screen and answers about one of them.
            assert resp.metadata.intent in (Intent.SHOP_INFO, Intent.MENU_INQUIRY) and named, resp.response
    assert not [r for r in caplog.records if "ungrounded" in r.getMessage()]
