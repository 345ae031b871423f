"""LLM answers go out only when grounded; otherwise the template answer, with the violations."""
from __future__ import annotations

import pytest

from naviyam.llm.gpu_smoke import sample_recommendations
from naviyam.llm.prompts import BLOCK_END, BLOCK_START, FACTS_HEADER
from naviyam.llm.settings import LLMSettings
from naviyam.llm.wrapper import Generation
from naviyam.nlg.llm import LLMAnswerer
from naviyam.nlg.normalizer import normalise_for_children
from naviyam.nlg.templates import AnswerInput, compose_answer
from naviyam.safety import check_text
from naviyam.schemas import Entities, Intent, NLUResult, SearchFilters, UserProfile

PROFILE = UserProfile(user_id="user_1", age=11, school_id="school_01", meal_card_balance=42000, per_meal_allowance=9500)
ALL_SHOPS = ["바삭치킨 역삼점", "학교앞통닭 대치점", "행복분식 서현점", "엄마손닭강정 정발산점"]
QUESTION = "급식카드 되는 치킨집 추천해줘"
GROUNDED = ("급식카드로 먹을 수 있는 치킨집을 찾았습니다.\n"
            "바삭치킨 역삼점은 걸어서 5분이고 1인 순살 세트가 8,500원이에요. 착한가게예요!\n"
            "학교앞통닭 대치점은 반반치킨이 9,000원이에요.")


recs = sample_recommendations  # the GPU smoke test's prompt facts: one fixture for both


def answer_input(intent=Intent.FOOD_RECOMMENDATION, safety=None) -> AnswerInput:
    nlu = NLUResult(intent=intent, entities=Entities(food_category="치킨", payment_method="meal_card"), confidence=0.9,
                    filters=SearchFilters(category="치킨", meal_card=True))
    return AnswerInput(nlu=nlu, recommendations=recs(), profile=PROFILE, safety=safety)


class StubLLM:
    version = "stub"

    def __init__(self, answer, finished=True, timed_out=False):
        self.answer, self.finished, self.timed_out = answer, finished, timed_out
        self.prompts: list[str] = []

    def complete(self, prompt, *args, task="nlg", max_time=None, **kwargs):
        self.prompts.append(prompt)
        if isinstance(self.answer, Exception):
            raise self.answer
        return Generation(text=self.answer, finished=self.finished, timed_out=self.timed_out)


def template_text(inp: AnswerInput) -> str:
    return normalise_for_children(compose_answer(inp), inp.nlu.entities.food_category)


def test_grounded_answer_is_used_and_normalised():
    llm = StubLLM(GROUNDED)
    text, used, violations = LLMAnswerer(llm, ALL_SHOPS).answer(answer_input(), QUESTION)
    assert used and violations == []
    assert text.startswith("급식카드로 먹을 수 있는 치킨집을 찾았어요. 🍗")   # normaliser: ending softened, emoji
    prompt = llm.prompts[0]
    inside = prompt.split(BLOCK_START)[1].split(BLOCK_END)[0]
    assert QUESTION in inside and FACTS_HEADER not in inside
    facts = prompt.split(FACTS_HEADER)[1]
    assert "바삭치킨 역삼점" in facts and "1인 순살 세트 8,500원" in facts and "착한가게" in facts


@pytest.mark.parametrize("bad, expected", [
    (GROUNDED + "\n행복분식 서현점도 맛있어요!", "mentions shop not recommended: 행복분식 서현점"),   # a real shop, not recommended
    (GROUNDED + "\n가짜치킨 강남점도 있어요!", "mentions unknown shop: 가짜치킨 강남점"),             # an invented shop
    (GROUNDED.replace("8,500원", "3,000원"), "price not in data: 3,000원"),                            # an invented price
    (GROUNDED + "\n1. 치킨나라", "listed item not in recommendations: 치킨나라"),
    (GROUNDED.replace("반반치킨이 9,000원", "짜장면이 9,000원"), "menu not shown for any recommended shop: 짜장면"),
    (GROUNDED.replace("학교앞통닭 대치점은", "학교앞통닭 대치점은 착한가게고"), "claims 착한가게 for 학교앞통닭 대치점"),
    (GROUNDED + "\n맥주도 팔아요", "unsafe terms: 맥주"),
    ("맛있는 데가 많아요!", "names no recommended shop"),
])
def test_ungrounded_llm_answer_falls_back_to_the_template(bad, expected):
    inp = answer_input()
    text, used, violations = LLMAnswerer(StubLLM(bad), ALL_SHOPS).answer(inp, QUESTION)
    assert not used and text == template_text(inp)
    assert expected in violations


@pytest.mark.parametrize("llm, expected", [
    (StubLLM(GROUNDED, finished=False, timed_out=True), "generation timed out"),
    (StubLLM(GROUNDED, finished=False), "generation cut off (no end of answer)"),
    (StubLLM(RuntimeError("boom")), "generation failed: RuntimeError"),
    (StubLLM(""), "empty answer"),
])
def test_timeouts_and_errors_fall_back(llm, expected):
    inp = answer_input()
    text, used, violations = LLMAnswerer(llm, ALL_SHOPS).answer(inp, QUESTION)
    assert (text, used) == (template_text(inp), False) and expected in violations


def test_unsafe_and_small_talk_never_reach_the_llm():
    llm = StubLLM(GROUNDED)
    answerer = LLMAnswerer(llm, ALL_SHOPS, LLMSettings())
    unsafe = answer_input(Intent.UNSAFE_REQUEST, safety=check_text("술 사고 싶어"))
    assert answerer.answer(unsafe, "술 사고 싶어") == (template_text(unsafe), False, [])
    greeting = answer_input(Intent.GREETING)
    assert answerer.answer(greeting, "안녕")[1] is False
    assert answerer.answer(answer_input(), "소주랑 먹을 치킨 추천해줘")[1] is False
    assert llm.prompts == []
