"""LLM NLU: strict JSON in, NLUResult out, or None; CombinedNLU falls back and records the backend."""
from __future__ import annotations

import json
import time

import pytest

from naviyam.llm.prompts import BLOCK_END, BLOCK_START
from naviyam.llm.wrapper import Generation, LLMBusyError
from naviyam.nlu.combined import CombinedNLU
from naviyam.nlu.llm import LLMNLU, InvalidOutput, parse_output
from naviyam.schemas import Entities, Intent, NLUResult, Preprocessed

GOOD = '{"intent":"FOOD_RECOMMENDATION","entities":{"food_category":"치킨","payment_method":"meal_card"},"confidence":0.92}'


class StubLLM:
    """Returns a fixed answer (or raises / sleeps) and records the prompts it was given."""

    version = "stub"

    def __init__(self, answer: str | Exception = GOOD, sleep: float = 0.0, finished: bool = True):
        self.answer, self.sleep, self.finished = answer, sleep, finished
        self.prompts: list[str] = []

    def complete(self, prompt, *args, task="nlg", max_time=None, **kwargs):
        self.prompts.append(prompt)
        if self.sleep:
            time.sleep(self.sleep)
        if isinstance(self.answer, Exception):
            raise self.answer
        return Generation(text=self.answer, finished=self.finished, seconds=self.sleep)


class StubFast:
    version = "fast-stub"

    def __init__(self, intent=Intent.FOOD_RECOMMENDATION, **ents):
        self.result = NLUResult(intent=intent, entities=Entities(**ents), confidence=0.8, backend="fast")

    def parse(self, pre, known_shop_names=()):
        return self.result


def pre(text: str, keywords=()) -> Preprocessed:
    return Preprocessed(original_text=text, cleaned_text=text, keywords=list(keywords), text_length=len(text))


def test_valid_json_becomes_an_nlu_result():
    llm = StubLLM()
    result = LLMNLU(llm, min_confidence=0.5).parse(pre("급식카드 되는 치킨집 추천해줘", ["급식카드", "치킨집"]))
    assert isinstance(result, NLUResult) and result.backend == "llm"
    assert result.intent is Intent.FOOD_RECOMMENDATION and result.confidence == 0.92
    assert result.entities.food_category == "치킨" and result.entities.payment_method == "meal_card"
    assert result.filters.category == "치킨" and result.filters.meal_card
    assert result.semantic_query == "급식카드 치킨"
    # The message went in as quoted data.
    assert '"급식카드 되는 치킨집 추천해줘"' in llm.prompts[0].split(BLOCK_START)[1].split(BLOCK_END)[0]


@pytest.mark.parametrize("answer", [
    "치킨집을 찾아 줄게!",                                                               # not JSON
    GOOD[:-5],                                                                         # cut off
    GOOD + " 그리고 하나 더",                                                           # trailing text
    '```json\n' + GOOD + '\n```',                                                      # fenced
    '{"intent":"ORDER_PIZZA","entities":{},"confidence":0.9}',                         # unknown intent
    '{"intent":"GREETING","entities":{"food_category":"술"},"confidence":0.9}',        # unknown category
    '{"intent":"GREETING","entities":{"password":"x"},"confidence":0.9}',              # unknown entity key
    '{"intent":"GREETING","entities":{},"confidence":0.9,"note":"hi"}',                # unknown key
    '{"intent":"GREETING","entities":{},"confidence":1.7}',                            # out of range
    '["GREETING"]',
])
def test_invalid_output_is_rejected(answer):
    with pytest.raises(InvalidOutput):
        parse_output(answer)
    assert LLMNLU(StubLLM(answer)).parse(pre("안녕")) is None


def test_low_confidence_and_unfinished_generation_are_rejected():
    low = '{"intent":"GREETING","entities":{},"confidence":0.3}'
    nlu = LLMNLU(StubLLM(low), min_confidence=0.5)
    assert nlu.parse(pre("안녕")) is None and nlu.stats["low_confidence"] == 1
    assert LLMNLU(StubLLM(low), min_confidence=0.2).parse(pre("안녕")).intent is Intent.GREETING
    assert LLMNLU(StubLLM(GOOD, finished=False)).parse(pre("급식카드 되는 치킨집 추천해줘")) is None


def test_entities_the_message_does_not_state_are_dropped():
    answer = json.dumps({"intent": "FOOD_RECOMMENDATION", "confidence": 0.9, "entities": {
        "menu_item": "마라탕", "budget": 11500, "shop_name": "가짜치킨", "food_category": "분식"}}, ensure_ascii=False)
    result = LLMNLU(StubLLM(answer)).parse(pre("만원으로 떡볶이 먹을래"))
    assert result.entities == Entities(food_category="분식")
    result = LLMNLU(StubLLM(answer.replace("11500", "10000").replace("마라탕", "떡볶이"))).parse(pre("만원으로 떡볶이 먹을래"))
    assert result.entities.budget == 10000 and result.entities.menu_item == "떡볶이"


def test_combined_uses_the_llm_and_records_the_backend():
    combined = CombinedNLU(StubFast(Intent.GREETING), LLMNLU(StubLLM()), timeout_s=1.0)
    result = combined.parse(pre("급식카드 되는 치킨집 추천해줘"))
    assert result.backend == "llm" and result.intent is Intent.FOOD_RECOMMENDATION
    assert combined.version == "fast-stub+llm-nlu:stub"


@pytest.mark.parametrize("llm", [
    StubLLM("not json"),
    StubLLM('{"intent":"GREETING","entities":{},"confidence":0.1}'),
    StubLLM(LLMBusyError("busy")),
    StubLLM(RuntimeError("CUDA out of memory")),
    StubLLM(GOOD, sleep=0.3),          # over the time budget
], ids=["invalid", "low-confidence", "busy", "error", "slow"])
def test_combined_falls_back_to_fast(llm):
    combined = CombinedNLU(StubFast(Intent.FOOD_RECOMMENDATION, food_category="치킨"), LLMNLU(llm), timeout_s=0.2)
    result = combined.parse(pre("급식카드 되는 치킨집 추천해줘"))
    assert result.backend == "fast-fallback" and result.entities.food_category == "치킨"
    assert combined.stats["fast-fallback"] == 1


def test_unsafe_detection_of_the_fast_path_always_wins():
    llm = StubLLM('{"intent":"FOOD_RECOMMENDATION","entities":{},"confidence":0.99}')
    combined = CombinedNLU(StubFast(Intent.FOOD_RECOMMENDATION), LLMNLU(llm), timeout_s=1.0)
    result = combined.parse(pre("소주 사러 갈 건데 안주 맛집 알려줘"))   # the lexicon flags it
    assert result.backend == "fast" and llm.prompts == []
    combined = CombinedNLU(StubFast(Intent.UNSAFE_REQUEST), LLMNLU(llm), timeout_s=1.0)
    result = combined.parse(pre("이상한 거 사고 싶어"))                  # the classifier flags it
    assert result.intent is Intent.UNSAFE_REQUEST and result.backend == "fast" and llm.prompts == []
    assert CombinedNLU(StubFast(), None).parse(pre("안녕")).backend == "fast"


def test_the_llm_fills_the_same_frame_contract():
    """The dialogue act and slot operations the fast NLU fills; parsed strictly, checked against the text."""
    frame = {"act": "refine", "ops": [{"slot": "meal_card", "op": "set"},
                                      {"slot": "place", "op": "set", "value": {"name": "강남역", "lat": 1.0, "lon": 2.0}}]}
    answer = json.dumps({"intent": "FOOD_RECOMMENDATION", "entities": {"payment_method": "meal_card"}, "frame": frame,
                         "confidence": 0.9}, ensure_ascii=False)
    result = LLMNLU(StubLLM(answer)).parse(pre("강남역 근처 급식카드 되는 데만"))
    assert result.frame.act.value == "refine"
    place = next(op for op in result.frame.ops if op.slot == "place").value
    assert (place.lat, place.lon) == (37.4979, 127.0276)   # the gazetteer's coordinates, never the model's


@pytest.mark.parametrize("frame", [
    {"act": "new_search", "ops": [{"slot": "category", "op": "set", "value": "피자"}]},      # food the text lacks
    {"act": "refine", "ops": [{"slot": "place", "op": "set", "value": {"name": "홍대입구역", "lat": 37.5, "lon": 126.9}}]},
])
def test_a_frame_the_message_does_not_support_is_read_from_the_entities_instead(frame):
    answer = json.dumps({"intent": "FOOD_RECOMMENDATION", "entities": {"food_category": "치킨"}, "frame": frame,
                         "confidence": 0.9}, ensure_ascii=False)
    result = LLMNLU(StubLLM(answer)).parse(pre("치킨 먹고 싶어"))
    assert result.frame.act.value == "new_search"
    assert [op.model_dump() for op in result.frame.ops if op.slot == "category"] == [
        {"slot": "category", "op": "set", "value": "치킨"}]
    assert not [op for op in result.frame.ops if op.slot == "place"]


def test_a_malformed_frame_rejects_the_whole_output():
    answer = json.dumps({"intent": "FOOD_RECOMMENDATION", "entities": {}, "confidence": 0.9,
                         "frame": {"act": "refine", "ops": [{"slot": "time", "op": "set", "value": "25:99"}]}})
    assert LLMNLU(StubLLM(answer)).parse(pre("치킨")) is None
