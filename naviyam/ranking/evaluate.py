"""Offline evaluation of a saved ranker on the held-out time window (the retrain pipeline's validation gate).

For every test session with at least one positive, the candidate list is the session's shown
shops plus up to ``extra_candidates`` shops near the child's school that were *not* shown
(seeded), mimicking the candidate pool the ranker sees in the chatbot. Relevance is graded like
the training weights: order 2 / favourite 1.5 / click 1 (0 otherwise).

The model is scored through the serving path (``OnnxRanker`` + its saved feature snapshot), so
what is measured is exactly what is deployed. The popularity baseline ranks by training-window
views and orders (weights from ``CandidateSettings.popularity_weights``).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.evaluation.ranking_metrics import auc, ndcg_at_k, precision_at_k, recall_at_k
from naviyam.ranking.samples import TEST_DAYS, label_events, time_split
from naviyam.ranking.scorer import OnnxRanker

log = logging.getLogger(__name__)

EXTRA_CANDIDATES = 15


def popularity_scores(train_events: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    """shop_id -> w_view * views/max + w_order * orders/max over the training window.

    Each count is scaled by its maximum so the (far more numerous) views do not drown the orders.
    """
    counts = train_events.groupby(["shop_id", "event_type"]).size().unstack(fill_value=0)
    score = pd.Series(0.0, index=counts.index)
    for event_type, w in (("view", weights.get("view", 0.4)), ("order", weights.get("order", 0.6))):
        if event_type in counts and counts[event_type].max() > 0:
            score += w * counts[event_type] / counts[event_type].max()
    return score


def evaluation_candidates(catalog: Catalog, test_events: pd.DataFrame, extra: int = EXTRA_CANDIDATES,
                          seed: int = 7) -> pd.DataFrame:
    """One row per (test session, candidate shop): session_id, user_id, shop_id, relevance,
    time_slot, now. Sessions without a positive are dropped (no ranking to judge)."""
    labelled = label_events(test_events)
    labelled["relevance"] = np.where(labelled["label"] > 0, labelled["weight"], 0.0)
    with_positive = labelled.groupby("session_id")["label"].transform("max") > 0
    labelled = labelled[with_positive]
    shops_by_school = catalog.shops.groupby("school_id")["shop_id"].agg(list).to_dict()
    user_school = catalog.users["school_id"]
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("session_id", "user_id", "shop_id", "relevance", "time_slot", "now")}
    for session_id, group in labelled.groupby("session_id", sort=True):
        user_id = group["user_id"].iloc[0]
        shown = group["shop_id"].tolist()
        seen = set(shown)
        nearby = [s for s in shops_by_school.get(user_school.get(user_id), []) if s not in seen]
        picked = sorted(rng.choice(len(nearby), size=min(extra, len(nearby)), replace=False)) if nearby else []
        shop_ids = np.array(shown + [nearby[i] for i in picked], dtype=object)
        relevance = np.concatenate([group["relevance"].to_numpy(dtype=np.float64), np.zeros(len(picked))])
        # Shuffle so score ties are not broken in favour of the shown (and clicked) shops.
        order = rng.permutation(len(shop_ids))
        cols["shop_id"].append(shop_ids[order])
        cols["relevance"].append(relevance[order])
        for key, value in (("session_id", session_id), ("user_id", user_id),
                           ("time_slot", group["time_slot"].iloc[0]), ("now", group["timestamp"].iloc[0])):
            cols[key].append([value] * len(order))
    if not cols["shop_id"]:
        return pd.DataFrame(columns=list(cols))
    return pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()}).astype({"now": "datetime64[ns]"})


def _model_scores(ranker: OnnxRanker, catalog: Catalog, cands: pd.DataFrame) -> np.ndarray:
    users = cands["user_id"].tolist()
    profiles = catalog.users.reindex(users).assign(user_id=users)
    schools = catalog.schools.reindex(catalog.users["school_id"].reindex(users).tolist())
    context = pd.DataFrame({
        "now": cands["now"].to_numpy(), "time_slot": cands["time_slot"].astype(str).to_numpy(),
        "origin_lat": schools["lat"].to_numpy(dtype=np.float64),
        "origin_lon": schools["lon"].to_numpy(dtype=np.float64),
    })
    return ranker.predict(ranker.features.build_inputs(profiles, cands["shop_id"].tolist(), context))


def _truth_relevance(settings: Settings, cands: pd.DataFrame) -> np.ndarray | None:
    """sigmoid(hidden utility) = simulated click probability; None when no truth is available."""
    try:
        from naviyam.data.generate import load_truth
    except ImportError:
        return None
    try:
        truth = load_truth(settings.data_dir)
    except Exception as exc:  # noqa: BLE001 - no truth (e.g. real data): the metric is simply absent
        log.info("no truth model for truth_ndcg@5: %s", exc)
        return None
    rel = np.full(len(cands), np.nan)
    for slot, idx in cands.groupby("time_slot").indices.items():
        sub = cands.iloc[idx]
        try:
            rel[idx] = truth.scores(sub["user_id"].tolist(), sub["shop_id"].tolist(), slot)
        except KeyError as exc:
            log.warning("truth model lacks ids (%s); truth_ndcg@5 skipped", exc)
            return None
    return 1.0 / (1.0 + np.exp(-rel))


def _session_metrics(scores: np.ndarray, relevance: np.ndarray, bounds: list[tuple[int, int]]) -> dict[str, float]:
    rows: dict[str, list[float]] = {"ndcg@5": [], "precision@5": [], "recall@10": [], "auc": []}
    for start, stop in bounds:
        s, r = scores[start:stop], relevance[start:stop]
        rows["ndcg@5"].append(ndcg_at_k(s, r, 5))
        rows["precision@5"].append(precision_at_k(s, r, 5))
        rows["recall@10"].append(recall_at_k(s, r, 10))
        rows["auc"].append(auc(s, r))
    # Sessions where every candidate is positive have no AUC; they are left out of its mean.
    return {k: float(np.nanmean(v)) if len(v) else math.nan for k, v in rows.items()}


def evaluate_ranker(settings: Settings, catalog: Catalog, events: pd.DataFrame, model_dir: Path, *,
                    holdout_days: int = TEST_DAYS, extra_candidates: int = EXTRA_CANDIDATES,
                    seed: int | None = None) -> dict:
    """Ranking metrics of the model in ``model_dir`` and of the popularity baseline."""
    ranker = OnnxRanker.load(Path(model_dir))
    split = time_split(events, holdout_days)
    trained_until = ranker.meta.get("train_window", {}).get("end")
    if trained_until is not None and pd.Timestamp(trained_until) > split.cutoff:
        raise ValueError(f"model {ranker.version} saw events up to {trained_until}, after the test window "
                         f"starts ({split.cutoff}); its metrics would be leaked")
    seed = settings.ranking.seed if seed is None else seed
    cands = evaluation_candidates(catalog, split.test, extra_candidates, seed)
    if cands.empty:
        raise ValueError("no held-out session has a positive; nothing to evaluate")

    # Rows of one session are contiguous; bounds index them without a groupby per metric.
    codes = pd.factorize(cands["session_id"])[0]
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], edges])
    bounds = list(zip(starts, np.concatenate([edges, [len(cands)]])))

    relevance = cands["relevance"].to_numpy(dtype=np.float64)
    model = _model_scores(ranker, catalog, cands).astype(np.float64)
    popularity = popularity_scores(split.train, settings.candidates.popularity_weights)
    pop = popularity.reindex(cands["shop_id"]).fillna(0.0).to_numpy(dtype=np.float64)

    out: dict[str, float | int | str] = {}
    out.update(_session_metrics(model, relevance, bounds))
    out.update({f"popularity_{k}": v for k, v in _session_metrics(pop, relevance, bounds).items()})
    out["pooled_auc"] = auc(model, relevance)
    out["popularity_pooled_auc"] = auc(pop, relevance)
    truth = _truth_relevance(settings, cands)
    if truth is not None:
        out["truth_ndcg@5"] = float(np.mean([ndcg_at_k(model[a:b], truth[a:b], 5) for a, b in bounds]))
        out["popularity_truth_ndcg@5"] = float(np.mean([ndcg_at_k(pop[a:b], truth[a:b], 5) for a, b in bounds]))
    out["n_sessions"] = len(bounds)
    out["n_candidates"] = int(len(cands))
    out["model_version"] = ranker.version
    log.info("ranker %s on %d held-out sessions: ndcg@5 %.4f vs popularity %.4f", ranker.version,
             len(bounds), out["ndcg@5"], out["popularity_ndcg@5"])
    return out
