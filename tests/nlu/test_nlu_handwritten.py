"""Hand-written child utterances (not template-generated) with gold labels: handwritten.jsonl."""
from __future__ import annotations

from naviyam.evaluation.nlu_metrics import evaluate_nlu
from naviyam.schemas import Entities, Intent


def test_handwritten_file_is_well_formed(handwritten_rows):
    rows = handwritten_rows
    assert len(rows) >= 80
    assert {r["intent"] for r in rows} == {i.value for i in Intent}
    for row in rows:
        Entities(**row["entities"])   # valid categories, slots and budgets
        assert row["text"].strip()


def test_handwritten_accuracy(trained_nlu, preprocessor, handwritten_rows):
    metrics = evaluate_nlu(trained_nlu, handwritten_rows, preprocessor)
    assert metrics["intent_accuracy"] >= 0.95, metrics
    assert metrics["food_category_accuracy"] >= 0.95, metrics
    assert metrics["budget_accuracy"] >= 0.95 and metrics["payment_accuracy"] >= 0.95, metrics
    assert metrics["followup_accuracy"] >= 0.95, metrics
