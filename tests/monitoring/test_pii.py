"""No child's id, coordinates or school name leaves in an Evidently drift report (HTML or result)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from naviyam.monitoring.drift import PREDICTION, detect_drift, evidently_frames

SCHOOLS = ["sch_gangnam_07", "sch_mapo_12", "sch_suwon_03"]


def served_frame(rng: np.random.Generator, n: int, offset: int, schools: list[str]) -> pd.DataFrame:
    """Monitoring columns plus the identifying ones a serving log carries next to them."""
    return pd.DataFrame({
        "user_age": rng.integers(8, 18, n).astype(float), "hour": rng.uniform(11, 20, n),
        "distance_km": rng.uniform(0.1, 3, n), "shop_min_price": rng.integers(4, 12, n) * 1000.0,
        "shop_rating": rng.uniform(3, 5, n), "school_id": [schools[i % len(schools)] for i in range(n)],
        "has_meal_card": rng.choice(["yes", "no"], n), "time_slot": rng.choice(["lunch", "dinner"], n),
        "shop_category": rng.choice(["치킨", "분식", "한식"], n), PREDICTION: rng.uniform(0, 1, n),
        "user_id": [f"user_{offset + i:05d}" for i in range(n)],
        "session_id": [f"sess-{offset + i:05d}" for i in range(n)],
        "lat": 37.4 + (offset + np.arange(n)) * 1.37e-5, "lon": 127.0 + (offset + np.arange(n)) * 1.91e-5,
    })


def secrets_of(frame: pd.DataFrame) -> set[str]:
    return {*frame["user_id"], *frame["session_id"], *(f"{v:.5f}" for v in (*frame["lat"], *frame["lon"])),
            *frame["school_id"]}


def test_drift_report_names_no_child_school_or_place(tmp_path):
    rng = np.random.default_rng(11)
    reference = served_frame(rng, 120, 0, SCHOOLS[:2])
    current = served_frame(rng, 120, 500, SCHOOLS)  # a new school appears: school_id drifts
    result = detect_drift(reference, current, html_path=tmp_path / "drift.html")
    assert "school_id" in result.drifted_columns  # still measured under pseudonyms
    html = (tmp_path / "drift.html").read_text(encoding="utf-8")
    exported = html + json.dumps(result.to_dict(), ensure_ascii=False, default=str)
    leaked = sorted(s for s in secrets_of(reference) | secrets_of(current) if s in exported)
    assert leaked == []
    assert len(html) > 10_000 and "school-" in html
    for column in ("user_id", "session_id", "lat", "lon"):
        assert f'"{column}"' not in exported


def test_identifying_columns_are_refused_and_school_pseudonyms_are_per_report():
    rng = np.random.default_rng(3)
    frame = served_frame(rng, 40, 0, SCHOOLS)
    for column in ("user_id", "lat", "lon", "session_id"):
        with pytest.raises(ValueError, match="identifying"):
            evidently_frames(frame, frame, ["hour", column])
    ref, cur = evidently_frames(frame, frame, ["school_id", "hour"])
    assert list(ref.columns) == ["school_id", "hour"]
    assert ref["school_id"].tolist() == cur["school_id"].tolist()  # one key for both sides of a report
    assert ref["school_id"].nunique() == len(SCHOOLS) and not set(ref["school_id"]) & set(SCHOOLS)
    again, _ = evidently_frames(frame, frame, ["school_id", "hour"])
    assert set(again["school_id"]).isdisjoint(ref["school_id"])  # unlinkable across reports
