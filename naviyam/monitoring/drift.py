"""Data drift and prediction drift of the served ranker, with Evidently (``DataDriftPreset``).

Compared per shown shop (an impression), on what the ranker sees and says:

- features: the child (age, school, meal card), the moment (time slot, hour) and the shop the
  answer showed (category, distance from the school, cheapest menu, rating);
- prediction: the ranker's ``score`` of each shown shop (prediction drift);
- intents: the NLU intent of every turn (separate report, turn level).

**Reference** = the production model's training window, replayed through the production ranker:
the sessions logged in that window (same children, hours, slots), asked the way the chatbot asks,
ranked by the production model (``naviyam.simulate.replay_requests`` + ``rank_requests``), so the
reference shows what production serves when the world looks like its training data; what the
app's old page showed, or candidates never ranked, would make every check drift. Turns the
serving log holds inside the window are used as they are. **Current** = the serving log's recent
turns. The intent reference is the serving log before the current window (the training data has
no intents).

Distances, not p-values (with thousands of impressions a p-value test flags harmless shifts):
Wasserstein normed by the reference's spread for numbers (drift at 0.2; 0.3 for the score, which
moves a little with every day the model's feature snapshot ages) and Jensen-Shannon for
categories (drift at 0.1). Five impressions share one turn's child and clock, so the effective
sample of the per-turn columns is the number of turns.

No personal data reaches Evidently (its HTML is shared with whoever reads the pipeline's
artefacts): only the monitored columns are handed over, never user/session/request ids or
coordinates, and school ids are replaced by pseudonyms keyed per report, so drift per school is
still measured (a relabelling leaves every distance unchanged) but no report names a child's school.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.simulate import candidate_pool, impression_frame, load_ranker, rank_requests, replay_requests

log = logging.getLogger(__name__)

NUMERICAL = ("user_age", "hour", "distance_km", "shop_min_price", "shop_rating")
CATEGORICAL = ("school_id", "has_meal_card", "time_slot", "shop_category")
PREDICTION = "score"
FEATURES = (*NUMERICAL, *CATEGORICAL)
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
THRESHOLD = 0.1             # Jensen-Shannon distance (categorical)
NUM_THRESHOLD = 0.2         # Wasserstein distance / reference std (numerical)
PREDICTION_THRESHOLD = 0.3  # the score: a model's scores move a little with every day of staleness
MIN_ROWS = 30
# Columns that identify or locate a child: never handed to Evidently, whatever a caller asks for.
IDENTIFIERS = frozenset({"user_id", "session_id", "request_id", "event_id", "lat", "lon", "origin_lat",
                         "origin_lon", "user_input", "final_response"})
PSEUDONYMISED = ("school_id",)  # monitored, but only under a per-report pseudonym


@dataclass
class DriftResult:
    drifted: bool                       # dataset drift or prediction drift
    dataset_drift: bool                 # share of drifted feature columns >= drift_share
    prediction_drift: bool              # the score column drifted
    drift_share: float                  # the threshold used
    drifted_share: float                # share of drifted columns (features + score)
    drifted_columns: list[str]
    columns: dict[str, dict[str, Any]]  # column -> {score, method, threshold, drifted}
    n_reference: int
    n_current: int
    intent_drift: bool | None = None    # None: no intent reference
    intent: dict[str, Any] = field(default_factory=dict)
    html: str | None = None
    intent_html: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------- frames
def monitoring_frame(catalog: Catalog, impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per impression with the monitored columns. Values the serving log carries
    (profile, distance, price, category) win over the catalogue: they are what was served."""
    imp = impressions.reset_index(drop=True)
    users = catalog.users.reindex(imp["user_id"].tolist())
    shops = catalog.shops.reindex(imp["shop_id"].tolist())

    def logged(col: str, fallback: np.ndarray) -> np.ndarray:
        if col not in imp:
            return fallback
        values = imp[col].to_numpy(dtype=object)
        missing = pd.isna(imp[col]).to_numpy()
        return np.where(missing, fallback, values)

    school = logged("school_id", users["school_id"].to_numpy(dtype=object))
    school_known = pd.Series(school).isin(catalog.schools.index).to_numpy()
    sch = catalog.schools.reindex([s if k else None for s, k in zip(school, school_known)])
    origin_lat = np.where(school_known, sch["lat"].to_numpy(dtype=np.float64), np.nan)
    origin_lon = np.where(school_known, sch["lon"].to_numpy(dtype=np.float64), np.nan)
    catalog_km = haversine_km(origin_lat, origin_lon, shops["lat"].to_numpy(dtype=np.float64),
                              shops["lon"].to_numpy(dtype=np.float64))
    dist_m = logged("distance_m", catalog_km * 1000).astype(np.float64)
    ts = pd.to_datetime(imp["timestamp"])
    return pd.DataFrame({
        "user_age": logged("age", users["age"].to_numpy(dtype=np.float64)).astype(np.float64),
        "hour": (ts.dt.hour + ts.dt.minute / 60.0).to_numpy(dtype=np.float64),
        "distance_km": dist_m / 1000.0,
        "shop_min_price": logged("min_price", shops["min_price"].to_numpy(dtype=np.float64)).astype(np.float64),
        "shop_rating": shops["rating"].to_numpy(dtype=np.float64),
        "school_id": pd.Series(school).fillna("unknown").astype(str).to_numpy(),
        "has_meal_card": pd.Series(logged("has_meal_card", users["has_meal_card"].to_numpy(dtype=object)))
                           .map({True: "yes", False: "no"}).fillna("unknown").to_numpy(),
        "time_slot": imp["time_slot"].astype(str).to_numpy(),
        "shop_category": pd.Series(logged("category", shops["category"].to_numpy(dtype=object)))
                           .fillna("unknown").astype(str).to_numpy(),
        PREDICTION: pd.to_numeric(imp["score"], errors="coerce").to_numpy(dtype=np.float64),
    })


def reference_impressions(catalog: Catalog, events: pd.DataFrame, model_dir: Path, *,
                          max_requests: int = 1500, seed: int = 7) -> pd.DataFrame:
    """The production model's training window replayed through the production ranker."""
    meta_path = Path(model_dir) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    window = meta.get("train_window") or {}
    rng = np.random.default_rng(seed)
    requests = replay_requests(catalog, events, window.get("start"), window.get("end"), max_requests, rng,
                               serve_from=window.get("end"))
    if requests.empty:
        raise ValueError(f"no logged sessions in the training window {window} of {model_dir}")
    cands = candidate_pool(catalog, requests, rng)
    shown = rank_requests(load_ranker(model_dir), catalog, requests, cands)
    return impression_frame(catalog, requests, shown)


# ---------------------------------------------------------------------------------- evidently
def evidently_frames(reference: pd.DataFrame, current: pd.DataFrame,
                     cols: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cols`` of both frames, the way Evidently may see them: identifiers refused, school ids
    pseudonymised with one random key for this pair (the same school gets the same label on both
    sides, and a different one in the next report)."""
    refused = IDENTIFIERS.intersection(cols)
    if refused:
        raise ValueError(f"identifying columns must not reach a drift report: {sorted(refused)}")
    key = secrets.token_bytes(16)

    def pseudonym(value: object) -> str:
        return "school-" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:10]

    def clean(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[cols].reset_index(drop=True)
        for col in PSEUDONYMISED:
            if col in out:
                out[col] = out[col].map(pseudonym)
        return out

    return clean(reference), clean(current)


def _run_report(reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str],
                drift_share: float):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    cols = numerical + categorical
    reference, current = evidently_frames(reference, current, cols)
    per_column = {PREDICTION: PREDICTION_THRESHOLD} if PREDICTION in cols else None
    report = Report([DataDriftPreset(columns=cols, drift_share=drift_share, num_method=NUM_METHOD,
                                     cat_method=CAT_METHOD, num_threshold=NUM_THRESHOLD, cat_threshold=THRESHOLD,
                                     per_column_threshold=per_column)], include_tests=True)
    return report.run(current_data=Dataset.from_pandas(current, data_definition=definition),
                      reference_data=Dataset.from_pandas(reference, data_definition=definition))


def parse_snapshot(snapshot_dict: dict) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """(per-column {score, method, threshold, drifted}, {count, share}) from ``snapshot.dict()``."""
    columns: dict[str, dict[str, Any]] = {}
    by_metric: dict[str, str] = {}
    overall = {"count": math.nan, "share": math.nan}
    for metric in snapshot_dict.get("metrics", []):
        config = metric.get("config") or {}
        kind = str(config.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            overall = {k: float(metric["value"][k]) for k in ("count", "share")}
        elif kind.endswith("ValueDrift"):
            col = config["column"]
            by_metric[metric.get("id")] = col
            method, threshold = str(config.get("method", "")), float(config.get("threshold", THRESHOLD))
            score = float(metric["value"])
            # Distances drift when large; p-value tests when small.
            is_distance = any(w in method.lower() for w in ("distance", "wasserstein", "jensen", "psi", "divergence"))
            columns[col] = {"score": score, "method": method, "threshold": threshold,
                            "drifted": score >= threshold if is_distance else score < threshold}
    for test in snapshot_dict.get("tests", []):
        col = by_metric.get((test.get("metric_config") or {}).get("metric_id"))
        if col is not None and test.get("status") in ("FAIL", "SUCCESS"):
            columns[col]["drifted"] = test["status"] == "FAIL"
    return columns, overall


def detect_drift(reference: pd.DataFrame, current: pd.DataFrame, *, drift_share: float = 0.5,
                 html_path: Path | None = None, features: tuple[str, ...] = FEATURES) -> DriftResult:
    """Evidently DataDriftPreset over the monitored features plus the score column.

    Drift = share of drifted columns >= ``drift_share`` (dataset drift) or the score drifted
    (prediction drift). Columns that are constant or empty on both sides are left out.
    """
    if len(reference) < MIN_ROWS or len(current) < MIN_ROWS:
        raise ValueError(f"too little data for drift detection: reference {len(reference)}, "
                         f"current {len(current)} rows (need {MIN_ROWS})")
    numerical = [c for c in (*NUMERICAL, PREDICTION) if c in features or c == PREDICTION]
    numerical = [c for c in numerical if reference[c].notna().any() and current[c].notna().any()]
    categorical = [c for c in CATEGORICAL if c in features]
    snapshot = _run_report(reference, current, numerical, categorical, drift_share)
    columns, overall = parse_snapshot(snapshot.dict())
    drifted = sorted(c for c, v in columns.items() if v["drifted"])
    share = overall["share"] if not math.isnan(overall["share"]) else len(drifted) / max(len(columns), 1)
    prediction_drift = bool(columns.get(PREDICTION, {}).get("drifted", False))
    dataset_drift = bool(share >= drift_share)
    html = None
    if html_path is not None:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
        html = str(html_path)
    return DriftResult(drifted=dataset_drift or prediction_drift, dataset_drift=dataset_drift,
                       prediction_drift=prediction_drift, drift_share=drift_share, drifted_share=float(share),
                       drifted_columns=drifted, columns=columns, n_reference=len(reference),
                       n_current=len(current), html=html)


def detect_intent_drift(reference_intents: pd.Series, current_intents: pd.Series, *,
                        html_path: Path | None = None) -> tuple[bool | None, dict]:
    """Jensen-Shannon drift of the intent distribution (None when either side is too small)."""
    ref = reference_intents.dropna().astype(str)
    cur = current_intents.dropna().astype(str)
    summary = {"n_reference": int(len(ref)), "n_current": int(len(cur)),
               "reference": ref.value_counts(normalize=True).round(4).to_dict(),
               "current": cur.value_counts(normalize=True).round(4).to_dict()}
    if len(ref) < MIN_ROWS or len(cur) < MIN_ROWS:
        return None, summary
    snapshot = _run_report(pd.DataFrame({"intent": ref}), pd.DataFrame({"intent": cur}), [], ["intent"], 0.5)
    columns, _ = parse_snapshot(snapshot.dict())
    summary.update(columns.get("intent", {}))
    if html_path is not None:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    return bool(columns.get("intent", {}).get("drifted", False)), summary


def placeholder_html(path: Path, title: str, body: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                          f"<body><h1>{title}</h1><p>{body}</p></body></html>", encoding="utf-8")
