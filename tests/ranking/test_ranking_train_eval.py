"""Training (from scratch and incremental), the saved model directory and held-out evaluation."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from naviyam.ranking.evaluate import evaluate_ranker, popularity_scores
from naviyam.ranking.features import RankingFeatures, TableFeatureSource
from naviyam.ranking.train import load_checkpoint, train_ranker

def _quick(settings):
    """One epoch: enough for tests that check plumbing rather than quality."""
    return settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"epochs": 1})})


EXPECTED_METRICS = {
    "ndcg@5", "precision@5", "recall@10", "auc", "popularity_ndcg@5", "popularity_precision@5",
    "popularity_recall@10", "popularity_auc", "n_sessions", "truth_ndcg@5",
}


def test_model_directory_layout_and_meta(trained):
    model_dir, meta = trained
    for name in ("model.pt", "model.onnx", "meta.json", "features/feature_space.json",
                 "features/normaliser.json", "features/user_features.parquet", "features/shop_features.parquet"):
        assert (model_dir / name).exists(), name
    on_disk = json.loads((model_dir / "meta.json").read_text())
    assert on_disk["version"] == meta["version"]
    assert re.fullmatch(r"wide_deep_\d{12}_[0-9a-f]{8}", meta["version"])
    assert meta["n_train"] == meta["n_positive"] + meta["n_negative"]
    assert meta["n_negative"] == 2 * meta["n_positive"]  # 1:2 balancing (there are plenty of negatives)
    assert {"trained_at", "train_window", "metrics", "losses"} <= set(meta)


def test_training_reduces_loss_and_beats_popularity(trained):
    _, meta = trained
    losses = meta["losses"]
    assert losses[-1] < losses[0]
    m = meta["metrics"]
    assert EXPECTED_METRICS <= set(m)
    assert m["auc"] > 0.6
    assert m["ndcg@5"] > m["popularity_ndcg@5"]
    assert m["auc"] > m["popularity_auc"]
    assert m["truth_ndcg@5"] > m["popularity_truth_ndcg@5"]


def test_checkpoint_and_feature_round_trip(trained, tmp_path):
    model_dir, _ = trained
    model, space, normaliser = load_checkpoint(model_dir)
    features = RankingFeatures.load(model_dir / "features")
    assert features.space == space and features.normaliser == normaliser
    assert not model.training
    ckpt = torch.load(model_dir / "model.pt", weights_only=True)
    assert {"state_dict", "config", "feature_space", "normaliser", "version"} <= set(ckpt)
    # the feature snapshot survives a save/load unchanged
    features.save(tmp_path)
    again = TableFeatureSource.load(tmp_path)
    pd.testing.assert_frame_equal(again.shops, features.source.shops)
    pd.testing.assert_frame_equal(again.users.drop(columns=["engaged_shops", "ordered_shops"]),
                                  features.source.users.drop(columns=["engaged_shops", "ordered_shops"]))


def test_training_is_deterministic(ranking_data, ranking_store, tmp_path):
    settings, catalog, events = ranking_data
    a = train_ranker(_quick(settings), catalog, events, tmp_path / "a", evaluate=False, feature_store=ranking_store)
    b = train_ranker(_quick(settings), catalog, events, tmp_path / "b", evaluate=False, feature_store=ranking_store)
    assert a["losses"] == b["losses"]
    sa, sb = (torch.load(tmp_path / d / "model.pt", weights_only=True)["state_dict"] for d in ("a", "b"))
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)


def test_incremental_training_starts_from_the_checkpoint(ranking_data, ranking_store, trained, tmp_path):
    settings, catalog, events = ranking_data
    model_dir, meta = trained
    inc = train_ranker(_quick(settings), catalog, events, tmp_path / "inc", init_from=model_dir, evaluate=False,
                       feature_store=ranking_store)
    assert inc["init_from"] == str(model_dir)
    assert inc["version"] != meta["version"] or inc["trained_at"] != meta["trained_at"]
    # continuing from a trained model starts far below a fresh model's first epoch
    assert inc["losses"][0] < meta["losses"][0]
    old_model, old_space, _ = load_checkpoint(model_dir)
    new_model, new_space, new_norm = load_checkpoint(tmp_path / "inc")
    assert new_space.users[: len(old_space.users)] == old_space.users
    assert new_norm == load_checkpoint(model_dir)[2]  # the normaliser is kept so old weights keep meaning


def test_evaluation_refuses_a_model_that_saw_the_test_window(ranking_data, ranking_store, tmp_path):
    settings, catalog, events = ranking_data
    train_ranker(_quick(settings), catalog, events, tmp_path / "all", holdout_days=0, feature_store=ranking_store)
    with pytest.raises(ValueError, match="leak"):
        evaluate_ranker(settings, catalog, events, tmp_path / "all")


def test_evaluation_is_reproducible(ranking_data, trained):
    settings, catalog, events = ranking_data
    model_dir, meta = trained
    again = evaluate_ranker(settings, catalog, events, model_dir)
    for key in EXPECTED_METRICS:
        assert again[key] == pytest.approx(meta["metrics"][key])
    assert again["n_sessions"] > 100


def test_popularity_baseline_weights():
    events = pd.DataFrame({"shop_id": ["a"] * 10 + ["b"] * 5 + ["b"] * 2,
                           "event_type": ["view"] * 10 + ["view"] * 5 + ["order"] * 2})
    pop = popularity_scores(events, {"view": 0.4, "order": 0.6})
    assert pop["a"] == pytest.approx(0.4)           # max views, no orders
    assert pop["b"] == pytest.approx(0.4 * 0.5 + 0.6)  # half the views, max orders
    assert np.isclose(pop.max(), 0.8)
