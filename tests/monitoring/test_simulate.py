"""Simulated traffic: deterministic, split like the router's Splitter, a better ranker earns more clicks."""
from __future__ import annotations

import pandas as pd
import pytest

from naviyam.monitoring.live import metrics_by_arm, read_serving_log
from naviyam.ranking.train import train_ranker
from naviyam.simulate import Arm, simulate_drift, simulate_traffic


def test_traffic_is_seeded_and_split_by_weight(world, tmp_path):
    settings, _, _, ranker_dir = world
    arms = [Arm("production", ranker_dir, 90, "v0001"), Arm("canary", ranker_dir, 10, "v0002")]
    a = simulate_traffic(settings, 600, arms=arms, seed=1, db_path=tmp_path / "a.sqlite",
                         start="2026-11-05 00:00")
    b = simulate_traffic(settings, 600, arms=arms, seed=1, db_path=tmp_path / "b.sqlite",
                         start="2026-11-05 00:00")
    assert {k: v for k, v in a.items() if k != "db"} == {k: v for k, v in b.items() if k != "db"}
    assert a["requests"] == 600 and 30 <= a["per_arm"]["canary"] <= 90
    log = read_serving_log(tmp_path / "a.sqlite")
    assert set(log.interactions["variant"]) == {"production", "canary"}
    assert set(log.interactions["ranker_version"]) == {"v0001", "v0002"}
    assert log.interactions["timestamp"].min() >= pd.Timestamp("2026-11-05")
    assert (log.impressions.groupby("request_id").size() <= 5).all()


def test_better_ranker_gets_more_clicks(world, tmp_path):
    settings, catalog, events, weak_dir = world
    strong_dir = tmp_path / "strong"
    train_ranker(settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"epochs": 4})}),
                 catalog, events, strong_dir, init_from=weak_dir, evaluate=False)
    arms = [Arm("production", weak_dir, 50, "weak"), Arm("canary", strong_dir, 50, "strong")]
    simulate_traffic(settings, 1500, arms=arms, seed=2, db_path=tmp_path / "ab.sqlite")
    m = metrics_by_arm(read_serving_log(tmp_path / "ab.sqlite"), {"weak": {"weak"}, "strong": {"strong"}})
    assert m["strong"]["ctr"] > m["weak"]["ctr"] * 1.1, m


def test_drift_kinds(world, tmp_path):
    settings, _, _, ranker_dir = world
    arms = [Arm("production", ranker_dir, 100)]
    new = simulate_drift(settings, "new_school", 50, arms=arms, db_path=tmp_path / "n.sqlite")
    log = read_serving_log(tmp_path / "n.sqlite")
    assert new["requests"] == 50
    assert log.interactions["user_id"].str.startswith("nsch_").all()
    assert set(log.interactions["school_id"]) == {"school_new"}
    with pytest.raises(ValueError):
        simulate_drift(settings, "none", 10)
