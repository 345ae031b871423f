"""Evidently drift on simulated serving traffic: quiet when nothing changed, loud for each shift."""
from __future__ import annotations

import pytest

from naviyam.monitoring.drift import (
    PREDICTION, detect_drift, detect_intent_drift, monitoring_frame, parse_snapshot, reference_impressions,
)
from naviyam.monitoring.live import live_metrics, read_serving_log
from naviyam.simulate import Arm, simulate_drift, simulate_traffic


@pytest.fixture(scope="module")
def reference(world):
    settings, catalog, events, ranker_dir = world
    return monitoring_frame(catalog, reference_impressions(catalog, events, ranker_dir, max_requests=800))


def traffic(world, tmp_path, kind: str, n: int = 400, seed: int = 3):
    settings, catalog, _, ranker_dir = world
    db = tmp_path / f"{kind}-{seed}.sqlite"
    arms = [Arm("production", ranker_dir, 100, "v0001")]
    if kind == "none":
        simulate_traffic(settings, n, "none", arms=arms, seed=seed, db_path=db)
    else:
        simulate_drift(settings, kind, n, arms=arms, seed=seed, db_path=db)
    return read_serving_log(db)


def test_no_drift_without_a_change(world, reference, tmp_path):
    settings, catalog, _, _ = world
    log = traffic(world, tmp_path, "none")
    result = detect_drift(reference, monitoring_frame(catalog, log.impressions), html_path=tmp_path / "r.html")
    assert not result.drifted, result.columns
    assert result.n_current == len(log.impressions)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "drift" in html.lower() and len(html) > 10_000
    assert live_metrics(log)["error_rate"] < 0.05


@pytest.mark.parametrize("kind, expected", [
    ("new_school", {"school_id", "user_age"}),
    ("preference_shift", {"time_slot", "hour"}),
    ("broken_feature", {"distance_km", "shop_min_price", PREDICTION}),
])
def test_each_simulated_shift_is_detected(world, reference, tmp_path, kind, expected):
    settings, catalog, _, _ = world
    log = traffic(world, tmp_path, kind)
    result = detect_drift(reference, monitoring_frame(catalog, log.impressions))
    assert result.drifted
    assert expected <= set(result.drifted_columns), result.drifted_columns
    if kind == "broken_feature":
        assert result.prediction_drift
        assert live_metrics(log)["error_rate"] > 0.05


def test_intent_drift(world, tmp_path):
    before = traffic(world, tmp_path, "none", seed=4)
    same = traffic(world, tmp_path, "none", seed=5)
    shifted = traffic(world, tmp_path, "preference_shift", seed=6)
    drifted, summary = detect_intent_drift(before.interactions["intent"], same.interactions["intent"])
    assert drifted is False
    drifted, summary = detect_intent_drift(before.interactions["intent"], shifted.interactions["intent"])
    assert drifted is True and summary["current"]["MENU_INQUIRY"] > summary["reference"]["MENU_INQUIRY"]
    assert detect_intent_drift(before.interactions["intent"].head(5), shifted.interactions["intent"])[0] is None


def test_too_little_data_is_an_error(reference):
    with pytest.raises(ValueError, match="too little data"):
        detect_drift(reference, reference.head(5))


def test_parse_snapshot_reads_tests_and_distances():
    snap = {
        "metrics": [
            {"id": "m0", "config": {"type": "evidently:metric_v2:DriftedColumnsCount"}, "value": {"count": 1, "share": 0.5}},
            {"id": "m1", "config": {"type": "evidently:metric_v2:ValueDrift", "column": "a",
                                    "method": "Wasserstein distance (normed)", "threshold": 0.1}, "value": 0.3},
            {"id": "m2", "config": {"type": "evidently:metric_v2:ValueDrift", "column": "b",
                                    "method": "K-S p_value", "threshold": 0.05}, "value": 0.5},
        ],
        "tests": [{"metric_config": {"metric_id": "m2"}, "status": "FAIL"}],
    }
    columns, overall = parse_snapshot(snap)
    assert overall == {"count": 1.0, "share": 0.5}
    assert columns["a"]["drifted"] is True          # distance above threshold
    assert columns["b"]["drifted"] is True          # the test's verdict wins
