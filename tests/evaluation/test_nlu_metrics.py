"""NLU metrics on a scripted backend (no model needed)."""
from __future__ import annotations

import pytest

from naviyam.evaluation.nlu_metrics import evaluate_nlu, expected_calibration_error, per_intent_f1
from naviyam.schemas import Entities, FollowUp, Intent, NLUResult, Preprocessed


class ScriptedNLU:
    """Answers from a table keyed by the text; records the shop names it was given."""

    version = "scripted"

    def __init__(self, answers: dict[str, NLUResult]):
        self.answers = answers
        self.shop_names: list = []

    def parse(self, pre: Preprocessed, known_shop_names=()) -> NLUResult:
        self.shop_names.append(list(known_shop_names))
        return self.answers[pre.original_text]


def preprocess(text: str) -> Preprocessed:
    return Preprocessed(original_text=text, cleaned_text=text)


def row(text, intent, followup="none", **entities):
    return {"text": text, "intent": intent, "entities": Entities(**entities).model_dump(mode="json"),
            "followup": followup}


ROWS = [
    row("a", "FOOD_RECOMMENDATION", food_category="치킨", payment_method="meal_card"),
    row("b", "BUDGET_INQUIRY", budget=10000),
    row("c", "SHOP_INFO", shop_name="해피피자"),
    row("d", "GREETING", followup="none"),
]
ANSWERS = {
    "a": NLUResult(intent=Intent.FOOD_RECOMMENDATION, confidence=0.9,
                   entities=Entities(food_category="치킨", payment_method="meal_card")),
    "b": NLUResult(intent=Intent.FOOD_RECOMMENDATION, confidence=0.6, entities=Entities(budget=10000)),
    "c": NLUResult(intent=Intent.SHOP_INFO, confidence=0.8, entities=Entities(shop_name="해피피자")),
    "d": NLUResult(intent=Intent.GREETING, confidence=0.95, followup=FollowUp.OTHER),
}


def test_accuracies_and_f1():
    nlu = ScriptedNLU(ANSWERS)
    m = evaluate_nlu(nlu, ROWS, preprocess)
    assert m["n"] == 4
    assert m["intent_accuracy"] == 0.75
    assert m["food_category_accuracy"] == 1.0 and m["budget_accuracy"] == 1.0 and m["payment_accuracy"] == 1.0
    assert m["shop_name_accuracy"] == 1.0 and m["followup_accuracy"] == 0.75
    f1 = m["per_intent_f1"]
    assert f1["FOOD_RECOMMENDATION"] == pytest.approx(2 / 3, abs=1e-3)
    assert f1["BUDGET_INQUIRY"] == 0.0 and f1["SHOP_INFO"] == 1.0 and f1["GREETING"] == 1.0
    assert "UNSAFE_REQUEST" not in f1    # absent from gold and predictions
    assert m["confusion"] == {"BUDGET_INQUIRY->FOOD_RECOMMENDATION": 1}
    assert m["parse_ms_p50"] >= 0.0
    # The rows' shop names stand in for the catalog.
    assert nlu.shop_names[0] == ["해피피자"]
    evaluate_nlu(nlu, ROWS, preprocess, known_shop_names=["a", "b"])
    assert nlu.shop_names[-1] == ["a", "b"]


def test_per_intent_f1_counts():
    assert per_intent_f1(["A", "A", "B"], ["A", "B", "B"]) == {}  # only real intents are reported
    f1 = per_intent_f1(["GREETING", "GREETING", "GOODBYE"], ["GREETING", "GOODBYE", "GOODBYE"])
    assert f1 == {"GREETING": pytest.approx(0.6667, abs=1e-4), "GOODBYE": pytest.approx(0.6667, abs=1e-4)}


def test_calibration_error():
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.9, 0.9], [False, False]) == pytest.approx(0.9)
    assert expected_calibration_error([0.75, 0.75, 0.75, 0.75], [True, True, True, False]) == 0.0
