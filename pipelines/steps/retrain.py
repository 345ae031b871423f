"""The retrain pipeline's steps: collect the learned traffic, train the ranker and the LoRA
adapter, gate and validate them, check the ONNX export, register (canary) or reject."""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam import llm
from naviyam.clock import Clock
from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import load_events
from naviyam.jsonl import write_jsonl
from naviyam.llm.settings import llm_settings
from naviyam.monitoring.live import good_conversations, instruction_samples, serving_events
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
from naviyam.ranking.samples import time_split
from pipelines.steps.plumbing import (
    LORA, RANKER, _clean, ensure_bootstrap, learned_log, production_dir, read_state, registry, store_path,
    update_state,
)
from pipelines.steps.reports import _now

log = logging.getLogger(__name__)

GATE_METRICS = ("ndcg@5", "precision@5")   # promote at +2 % on either (pipeline parameter)

ENGAGEMENT_EVENTS = ("click", "order", "favorite", "rating")


def collect(settings: Settings, events_out: Path, lora_out: Path, window_days: int = 0, *, holdout_days: int = 14,
            min_new_feedback: int = 50, min_holdout_sessions: int = 20) -> dict:
    """The training log (generated history + the serving turns of the learned traffic, as
    events), the LoRA instruction data, and whether there is enough to retrain on (``ready``,
    with the ``reason``): a run without new feedback, or whose hold-out has no session with a
    positive, keeps production instead of failing (pipelines/README.md, "Minimum data")."""
    bootstrapped = ensure_bootstrap(settings)
    now = Clock.from_settings(settings).local_now()
    catalog = Catalog.load(settings.data_dir)
    base = load_events(settings.data_dir)
    data_start = base["timestamp"].min()
    admitted = learned_log(settings, start=data_start)
    log_all = admitted.log
    served = serving_events(log_all, catalog.users.index, catalog.shops.index)
    events = pd.concat([base, served], ignore_index=True).drop_duplicates("event_id")
    events = events[(events["timestamp"] >= data_start) & (events["timestamp"] <= pd.Timestamp(now))]
    events = events.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    if window_days > 0:
        events = events[events["timestamp"] >= events["timestamp"].max() - pd.Timedelta(days=window_days)]
    Path(events_out).parent.mkdir(parents=True, exist_ok=True)
    events.to_parquet(events_out, index=False)

    since = new_since(settings)
    new_log = log_all.window(since=since) if since is not None else log_all
    lora = instruction_samples(good_conversations(new_log, settings.llm.good_min_satisfaction,
                                                  settings.llm.good_max_response_time_s))
    Path(lora_out).parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(Path(lora_out), lora)

    engaged = events["event_type"].isin(ENGAGEMENT_EVENTS)
    new_feedback = int((engaged & (events["timestamp"] > since)).sum()) if since is not None else int(engaged.sum())
    split = time_split(events, holdout_days)
    held = split.test
    holdout_sessions = int(held.loc[held["event_type"].isin(ENGAGEMENT_EVENTS), "session_id"].nunique())
    reasons = []
    if new_feedback < min_new_feedback:
        reasons.append(f"{new_feedback} new feedback events since {since} (a retrain needs {min_new_feedback})")
    if holdout_sessions < min_holdout_sessions:
        reasons.append(f"{holdout_sessions} held-out sessions with a positive in the last {holdout_days} days "
                       f"from {split.cutoff} (the gate needs {min_holdout_sessions})")
    ready = not reasons
    until = str(events["timestamp"].max())
    return _clean({
        "ready": ready, "reason": "; ".join(reasons) or
        f"{new_feedback} new feedback events, {holdout_sessions} held-out sessions with a positive",
        "events": int(len(events)), "base_events": int(len(base)), "serving_events": int(len(served)),
        "new_interactions": int(len(new_log.interactions)), "new_feedback": new_feedback,
        "holdout_sessions": holdout_sessions, "holdout_from": str(split.cutoff),
        "good_conversations": len(lora), "since": str(since) if since is not None else None, "until": until,
        "now": str(now), "window_start": str(events["timestamp"].min()), "window_end": until,
        "left_out": admitted.left_out, "traffic": list(settings.learning.traffic),
        "min_new_feedback": min_new_feedback, "min_holdout_sessions": min_holdout_sessions,
        "bootstrapped": bootstrapped,
    })


def new_since(settings: Settings) -> pd.Timestamp | None:
    """Where "new" starts: the newest event the last deciding retrain saw, else the end of the
    production ranker's training window (what it has not learned from), else nothing (all new)."""
    marks = []
    if read_state(settings).get("last_retrain_until"):
        marks.append(pd.Timestamp(read_state(settings)["last_retrain_until"]))
    prod = production_dir(settings)
    meta_path = (prod or settings.models_dir / RANKER) / "meta.json"
    if meta_path.exists():
        end = (json.loads(meta_path.read_text(encoding="utf-8")).get("train_window") or {}).get("end")
        if end:
            marks.append(pd.Timestamp(end))
    return max(marks) if marks else None


def keep_production(settings: Settings, collected: dict) -> dict:
    """Not enough to retrain on: production stays, "new since" stays where it was (the feedback
    keeps accumulating for the next run), and the decision is recorded."""
    update_state(settings, last_retrain={"at": _now(), "ranker": None, "kept": collected.get("reason")})
    return {"decision": "keep production", "reason": collected.get("reason"),
            "production": registry(settings).current_version(RANKER)}


def shuffle_training_labels(events: pd.DataFrame, holdout_days: int, seed: int) -> pd.DataFrame:
    """Chaos knob for tests and drills: the training window's clicks/orders/favourites move to
    random shown shops of other sessions (labels become noise; the held-out window is untouched)."""
    split = time_split(events, holdout_days)
    train = split.train.copy()
    views = train[train["event_type"] == "view"]
    signal = train["event_type"] != "view"
    rng = np.random.default_rng(seed)
    picks = views.iloc[rng.integers(0, len(views), int(signal.sum()))]
    for col in ("user_id", "shop_id", "session_id", "position", "time_slot"):
        train.loc[signal, col] = picks[col].to_numpy()
    train.loc[signal, "timestamp"] = picks["timestamp"].to_numpy() + pd.Timedelta(seconds=5)
    return pd.concat([train, split.test], ignore_index=True)


def train_ranker_step(settings: Settings, events_path: Path, out_dir: Path, *, holdout_days: int = 14,
                      incremental: bool = True, shuffle_labels: bool = False) -> dict:
    """Wide&Deep, incremental from production (hard negatives from its scores > 0.8)."""
    # torch is imported only by the task that trains the ranker.
    from naviyam.ranking.train import train_ranker

    events = pd.read_parquet(events_path)
    if shuffle_labels:
        events = shuffle_training_labels(events, holdout_days, settings.ranking.seed)
    init_from = production_dir(settings) if incremental else None
    if init_from is not None and not (init_from / "model.pt").exists():
        init_from = None
    catalog = Catalog.load(settings.data_dir)
    try:
        meta = train_ranker(settings, catalog, events, Path(out_dir), init_from=init_from,
                            holdout_days=holdout_days, evaluate=False)
    except ValueError as exc:
        if init_from is None or "wide-feature layout" not in str(exc):
            raise
        # The production checkpoint predates the current feature layout: start from scratch.
        log.warning("cannot continue from %s (%s); training from scratch", init_from, exc)
        meta = train_ranker(settings, catalog, events, Path(out_dir), init_from=None,
                            holdout_days=holdout_days, evaluate=False)
    meta["shuffled_labels"] = shuffle_labels
    return meta


def lora_trainer():
    """``naviyam.llm.train_lora`` when the LLM package provides it, else None."""
    return getattr(llm, "train_lora", None)


def train_lora_step(settings: Settings, samples: Path, adapter_dir: Path, *, enabled: bool = True) -> dict:
    """LoRA on the good conversations in ``samples`` (``collect``'s LoRA data: the run's lineage
    says what the adapter learned from), incremental from the production adapter. Skipped (with
    the reason) when disabled, when ``naviyam.llm.train_lora`` is missing or there is no base model.

    ``adapter_dir`` (the output artifact) is the model directory of a file registry of the task's
    own: the adapter lands in ``adapter_dir/<version>/`` (``adapter_subdir`` in the result), and
    only ``register_lora``, behind the pipeline's gate, registers it where the LLM serves from.
    """
    adapter_dir = Path(adapter_dir)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    reason = None
    train = lora_trainer()
    base_path = None
    if not enabled:
        reason = "disabled by the pipeline parameter"
    elif train is None:
        reason = "naviyam.llm.train_lora is not available"
    else:
        base_path = llm_settings(settings).resolved_base_path(settings.models_dir)
        if not base_path.exists():
            reason = f"no base model at {base_path} (build it with `naviyam build`)"
    result = {"skipped": True, "reason": reason} if reason else _run_lora(settings, train, Path(samples), base_path,
                                                                          adapter_dir)
    (adapter_dir / "pipeline_result.json").write_text(json.dumps(_clean(result), ensure_ascii=False, indent=2))
    return _clean(result)


def _run_lora(settings: Settings, train, samples: Path, base_path: Path, adapter_dir: Path) -> dict:
    init_from = production_dir(settings, LORA)
    started = time.perf_counter()
    try:
        # The event store only gives the listed turns their logged context (what the answer showed).
        out = dict(train(settings, store_path(settings), base_path, adapter_dir, init_from=init_from,
                         samples=samples, promote=False))
    except Exception as exc:  # noqa: BLE001 - a LoRA failure must not block the ranker's retraining
        log.exception("LoRA training failed")
        return {"skipped": True, "reason": f"LoRA training failed: {type(exc).__name__}: {exc}"[:500]}
    metrics = out.get("metrics") or {}
    return {
        "skipped": False, "val_perplexity": metrics.get("val_perplexity", out.get("val_perplexity")),
        "base_val_perplexity": metrics.get("base_val_perplexity", out.get("base_val_perplexity")),
        "init_val_perplexity": metrics.get("init_val_perplexity"),
        "adapter_version": out.get("name") or out.get("version"), "adapter_subdir": Path(out["path"]).name if out.get("path") else "",
        "data_source": out.get("data_source"), "n_train": out.get("n_train"), "n_val": out.get("n_val"),
        "n_samples": out.get("n_samples"), "n_feedback_good": out.get("n_feedback_good"),
        "init_from": str(init_from) if init_from else None,
        "train_seconds": round(time.perf_counter() - started, 2),
    }


def gate(candidate: dict, production: dict | None, min_improvement: float) -> tuple[bool, str]:
    """The seed's rule: promote when NDCG@5 or precision@5 beats production by ``min_improvement``."""
    if production is None:
        return True, "no production model: the candidate becomes the first one"
    reasons = []
    promote = False
    for key in GATE_METRICS:
        new, old = candidate.get(key), production.get(key)
        if new is None or old is None or (isinstance(new, float) and math.isnan(new)):
            reasons.append(f"{key}: missing")
            continue
        needed = old * (1 + min_improvement)
        ok = new > needed
        promote |= ok
        reasons.append(f"{key} {new:.4f} vs production {old:.4f} (needs > {needed:.4f}): {'pass' if ok else 'fail'}")
    return promote, "; ".join(reasons)


def lora_gate(result: dict, production_metrics: dict | None) -> tuple[bool, str]:
    """A new adapter replaces production only with a lower validation perplexity:
    below the base model's and the production adapter's on the same held-out conversations
    (``init_val_perplexity``, when training started from it), else its recorded perplexity."""
    if result.get("skipped"):
        return False, f"LoRA skipped: {result.get('reason')}"
    ppl, base = result.get("val_perplexity"), result.get("base_val_perplexity")
    if ppl is None:
        return False, "LoRA: no validation perplexity"
    if base is not None and not ppl < base:
        return False, f"LoRA perplexity {ppl:.3f} not below the base model's {base:.3f}"
    prod = result.get("init_val_perplexity")
    if prod is None:
        prod = (production_metrics or {}).get("val_perplexity")
    if prod is not None and not ppl < prod:
        return False, f"LoRA perplexity {ppl:.3f} not below production's {prod:.3f}"
    return True, f"LoRA perplexity {ppl:.3f} below the base's {base} and production's {prod}"


def validate(settings: Settings, events_path: Path, candidate_dir: Path, lora_result: dict, *,
             holdout_days: int = 14, min_improvement: float = 0.02) -> dict:
    """Candidate and production on the same held-out window; the promotion decisions."""
    # onnxruntime is imported only by the task that evaluates the candidates.
    from naviyam.ranking.evaluate import evaluate_ranker

    catalog = Catalog.load(settings.data_dir)
    events = pd.read_parquet(events_path)
    try:
        cand = evaluate_ranker(settings, catalog, events, candidate_dir, holdout_days=holdout_days)
    except ValueError as exc:  # collect checks this first; a decision all the same, never a crash
        return _clean({"candidate": None, "production": None, "production_source": "not evaluated",
                       "improvement": {}, "min_improvement": min_improvement, "promote_ranker": False,
                       "ranker_reason": f"keep production: the candidate cannot be evaluated ({exc})",
                       "lora": lora_result, "promote_lora": False, "lora_reason": "not evaluated",
                       "holdout_days": holdout_days})
    prod_dir = production_dir(settings)
    prod, prod_note = None, "none"
    if prod_dir is not None:
        try:
            prod = evaluate_ranker(settings, catalog, events, prod_dir, holdout_days=holdout_days)
            prod_note = f"re-evaluated on the same window ({registry(settings).current_version(RANKER)})"
        except ValueError as exc:  # trained on part of this window: its recorded metrics
            recorded = registry(settings).metadata(RANKER, registry(settings).current_version(RANKER))
            prod = recorded.get("metrics") or None
            prod_note = f"recorded metrics (cannot re-evaluate: {exc})"
    promote_ranker, ranker_reason = gate(cand, prod, min_improvement)
    lora_prod = None
    lora_version = registry(settings).current_version(LORA)
    if lora_version:
        lora_prod = registry(settings).metadata(LORA, lora_version).get("metrics")
    promote_lora, lora_reason = lora_gate(lora_result, lora_prod)
    improvement = {k: (cand[k] / prod[k] - 1 if prod and prod.get(k) else None) for k in GATE_METRICS}
    return _clean({
        "candidate": {k: cand.get(k) for k in (*GATE_METRICS, "auc", "recall@10", "truth_ndcg@5",
                                               "popularity_ndcg@5", "n_sessions", "model_version")},
        "production": ({k: prod.get(k) for k in (*GATE_METRICS, "auc", "recall@10", "truth_ndcg@5",
                                                 "model_version")} if prod else None),
        "production_source": prod_note, "improvement": improvement, "min_improvement": min_improvement,
        "promote_ranker": promote_ranker, "ranker_reason": ranker_reason,
        "lora": lora_result, "promote_lora": promote_lora, "lora_reason": lora_reason,
        "holdout_days": holdout_days,
    })


def verify_onnx(model_dir: Path, n: int = 64, tol: float = 1e-4) -> dict:
    """Re-exports ONNX from the checkpoint and checks onnxruntime against torch on sample rows."""
    # onnxruntime and torch are imported only by the task that checks the export.
    import onnxruntime as ort
    import torch

    from naviyam.ranking.export import export_onnx
    from naviyam.ranking.train import load_checkpoint

    model_dir = Path(model_dir)
    model, space, _ = load_checkpoint(model_dir)
    path = export_onnx(model, model_dir / "model.onnx")
    rng = np.random.default_rng(0)
    inputs = {
        "wide": rng.normal(size=(n, model.config.wide_dim)).astype(np.float32),
        "user_idx": rng.integers(0, space.n_users, n).astype(np.int64),
        "shop_idx": rng.integers(0, space.n_shops, n).astype(np.int64),
        "category_idx": rng.integers(0, space.n_categories, n).astype(np.int64),
    }
    with torch.no_grad():
        expected = model(*(torch.from_numpy(inputs[k]) for k in INPUT_NAMES)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], inputs)
    diff = float(np.max(np.abs(got - expected)))
    if diff > tol:
        raise RuntimeError(f"ONNX export differs from torch by {diff:.2e} (> {tol:.0e})")
    return {"onnx_max_abs_diff": diff, "onnx_bytes": path.stat().st_size}


def register_ranker(settings: Settings, model_dir: Path, validation: dict, *, canary_percent: int = 10,
                    until: str | None = None) -> dict:
    """Registers the candidate and starts its canary (or promotes it when nothing is in production)."""
    reg = registry(settings)
    meta = json.loads((Path(model_dir) / "meta.json").read_text(encoding="utf-8"))
    version = reg.register(RANKER, model_dir, validation.get("candidate") or {}, model_version=meta.get("version"),
                           validation=validation, train_window=meta.get("train_window"))
    if reg.current_version(RANKER, "production") is None:
        reg.promote(RANKER, version, reason="first model")
        channel = "production"
    else:
        reg.start_canary(RANKER, version, canary_percent, reason=validation.get("ranker_reason", ""))
        channel = "canary"
    if until:
        update_state(settings, last_retrain_until=until)
    update_state(settings, last_retrain={"at": _now(), "ranker": version, "channel": channel})
    return {"model": RANKER, "version": version, "channel": channel, "model_version": meta.get("version"),
            "status": reg.status(RANKER)}


def register_lora(settings: Settings, adapter_dir: Path, validation: dict) -> dict:
    """Registers the adapter as the next ``lora`` version and makes it production: the LLM serves
    the registry's production adapter (``naviyam.llm.wrapper.LLM``), so this is its publication."""
    reg = registry(settings)
    lora = validation.get("lora") or {}
    src = Path(adapter_dir) / lora["adapter_subdir"] if lora.get("adapter_subdir") else Path(adapter_dir)
    version = reg.register(LORA, src, {k: lora.get(k) for k in ("val_perplexity", "base_val_perplexity")},
                           adapter_version=lora.get("adapter_version"),
                           validation={"lora_reason": validation.get("lora_reason")})
    reg.promote(LORA, version, reason=validation.get("lora_reason", ""))
    return {"model": LORA, "version": version, "path": str(reg.version_dir(LORA, version)),
            "status": reg.status(LORA)}


def reject(settings: Settings, validation: dict, until: str | None = None) -> dict:
    if until:
        update_state(settings, last_retrain_until=until)
    update_state(settings, last_retrain={"at": _now(), "ranker": None, "rejected": validation.get("ranker_reason")})
    return {"promoted": False, "reason": validation.get("ranker_reason")}

