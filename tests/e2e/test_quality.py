"""The acceptance numbers of issue A, on held-out data."""
from __future__ import annotations

from naviyam.build import read_jsonl
from naviyam.evaluation.nlu_metrics import evaluate_nlu


def test_nlu_held_out_accuracy(settings, models):
    rows = read_jsonl(settings.data_dir / "nlu" / "nlu_test.jsonl")
    metrics = evaluate_nlu(models.nlu, rows, models.preprocessor)
    assert metrics["intent_accuracy"] >= 0.95, metrics
    assert metrics["food_category_accuracy"] >= 0.95, metrics


def test_ranker_beats_popularity(settings, models):
    from naviyam.data.generate import load_events
    from naviyam.ranking.evaluate import evaluate_ranker

    metrics = evaluate_ranker(settings, models.catalog, load_events(settings.data_dir), settings.models_dir / "ranker")
    assert metrics["ndcg@5"] >= 1.2 * metrics["popularity_ndcg@5"], metrics
    assert metrics["auc"] > metrics["popularity_auc"], metrics
