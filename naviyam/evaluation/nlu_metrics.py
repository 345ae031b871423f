"""NLU evaluation on labelled rows ({"text", "intent", "entities"[, "followup"]}).

Entity accuracies count exact matches over all rows, "none" included: saying 치킨 where the child
named no food is as wrong as missing it. Calibration (ECE) shows whether ``confidence`` can be
trusted as a probability.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from naviyam.schemas import Intent, NLUResult, Preprocessed

ENTITY_METRICS = {
    "food_category_accuracy": "food_category",
    "menu_item_accuracy": "menu_item",
    "budget_accuracy": "budget",
    "payment_accuracy": "payment_method",
    "time_slot_accuracy": "time_slot",
    "location_accuracy": "location",
    "shop_name_accuracy": "shop_name",
}


def evaluate_nlu(nlu, rows: list[dict], preprocess: Callable[[str], Preprocessed],
                 known_shop_names: Sequence[str] | None = None) -> dict:
    """Accuracy of intent and each entity, per-intent F1, confidence calibration, parse latency.

    ``known_shop_names`` defaults to every shop the rows name, standing in for the catalog.
    """
    if known_shop_names is None:
        known_shop_names = sorted({r["entities"].get("shop_name") for r in rows} - {None})
    results: list[NLUResult] = []
    parse_ms: list[float] = []
    for row in rows:
        pre = preprocess(row["text"])
        start = time.perf_counter()
        results.append(nlu.parse(pre, known_shop_names))
        parse_ms.append((time.perf_counter() - start) * 1000)

    gold_intents = [r["intent"] for r in rows]
    pred_intents = [res.intent.value for res in results]
    correct = [g == p for g, p in zip(gold_intents, pred_intents)]
    out: dict = {"n": len(rows), "intent_accuracy": _mean(correct)}
    for metric, field in ENTITY_METRICS.items():
        out[metric] = _mean([_entity(res, field) == r["entities"].get(field) for r, res in zip(rows, results)])
    with_followup = [(r, res) for r, res in zip(rows, results) if "followup" in r]
    if with_followup:
        out["followup_accuracy"] = _mean([res.followup.value == r["followup"] for r, res in with_followup])
    out["per_intent_f1"] = per_intent_f1(gold_intents, pred_intents)
    out["macro_f1"] = _mean(list(out["per_intent_f1"].values())) if out["per_intent_f1"] else 0.0
    out["confusion"] = _confusions(gold_intents, pred_intents)
    out["expected_calibration_error"] = expected_calibration_error([res.confidence for res in results], correct)
    out["parse_ms_p50"] = round(float(np.percentile(parse_ms, 50)), 3) if parse_ms else 0.0
    out["parse_ms_p95"] = round(float(np.percentile(parse_ms, 95)), 3) if parse_ms else 0.0
    return out


def per_intent_f1(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """F1 per intent that occurs in gold or predictions."""
    out = {}
    for intent in (i.value for i in Intent):
        tp = sum(g == intent and p == intent for g, p in zip(gold, pred))
        fp = sum(g != intent and p == intent for g, p in zip(gold, pred))
        fn = sum(g == intent and p != intent for g, p in zip(gold, pred))
        if tp + fp + fn == 0:
            continue
        out[intent] = round(2 * tp / (2 * tp + fp + fn), 4)
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    if not confidences:
        return 0.0
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - hit[mask].mean())
    return round(float(ece), 4)


def _entity(result: NLUResult, field: str):
    value = getattr(result.entities, field)
    return value.value if hasattr(value, "value") else value


def _confusions(gold: Sequence[str], pred: Sequence[str], top: int = 10) -> dict[str, int]:
    """The most frequent "gold→predicted" mistakes."""
    counts = Counter(f"{g}->{p}" for g, p in zip(gold, pred) if g != p)
    return dict(counts.most_common(top))


def _mean(values: Sequence[bool | float]) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0
