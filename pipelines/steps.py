"""What the pipeline components do, as plain functions (the components only move artifacts).

Kept out of ``components.py`` so each step can be called and tested without Kubeflow, and so
the component functions stay the few self-contained lines KFP wants. Everything here calls
``naviyam`` (training, evaluation, registry, monitoring); nothing here knows about KFP.
"""
from __future__ import annotations

import html
import json
import logging
import math
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naviyam.config import Settings
from naviyam.loop_state import LEGACY_REQUESTS_FILE, LEGACY_STATE_FILE, LoopState
from naviyam.registry import ModelRegistry, NoVersionError

log = logging.getLogger(__name__)

RANKER = "ranker"
LORA = "lora"
# Where the loop kept its state before naviyam.loop_state (taken in, once, from an older home).
LOOP_STATE = LEGACY_STATE_FILE
RETRAIN_REQUESTS = LEGACY_REQUESTS_FILE
GATE_METRICS = ("ndcg@5", "precision@5")   # promote at +2 % on either (pipeline parameter)
DEFAULT_CANARY_PERCENT = 10                # 10 % of the traffic to the new model


# ------------------------------------------------------------------------------ plumbing
def load_settings(home: str = "", config: str = "") -> Settings:
    overrides = {"home": home} if home else {}
    settings = Settings.load(config or None, **overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.from_settings(settings)


def store_path(settings: Settings) -> Path | str:
    """The event store: a SQLite file, or the PostgreSQL DSN (naviyam.storage)."""
    from naviyam.storage import events_target

    return events_target(settings)


def loop_state(settings: Settings) -> LoopState:
    """The loop's state and retrain requests: ``state/loop.sqlite``, or the ``state.dsn`` database."""
    return LoopState.from_settings(settings)


def read_state(settings: Settings) -> dict:
    return loop_state(settings).read()


def update_state(settings: Settings, **fields: Any) -> dict:
    """Sets ``fields`` (the other keys stay) atomically; the state after it."""
    return loop_state(settings).update(**fields)


def _clean(value: Any) -> Any:
    """JSON- and KFP-metadata-safe numbers (NaN -> None)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def ensure_bootstrap(settings: Settings) -> str | None:
    """First run: the ranker ``naviyam build`` wrote becomes the registry's first production."""
    reg = registry(settings)
    if reg.current_version(RANKER, "production") is not None:
        return None
    built = settings.models_dir / RANKER
    if not (built / "meta.json").exists():
        return None
    meta = json.loads((built / "meta.json").read_text(encoding="utf-8"))
    version = reg.register(RANKER, built, meta.get("metrics", {}), model_version=meta.get("version"),
                           note="bootstrap: the model `naviyam build` trained")
    reg.promote(RANKER, version, reason="bootstrap")
    return version


def learned_log(settings: Settings, start: Any = None):
    """The serving log as the learning loop may read it (``naviyam.monitoring.live.admit``): the
    ``learning.traffic`` kinds, dated up to the server's clock (and from ``start``)."""
    from naviyam.clock import Clock
    from naviyam.monitoring.live import admit, read_serving_log

    return admit(read_serving_log(store_path(settings)), settings.learning.traffic,
                 now=Clock.from_settings(settings).local_now(), start=start)


def production_dir(settings: Settings, model: str = RANKER) -> Path | None:
    try:
        return registry(settings).resolve(model, "production")
    except NoVersionError:
        return None


# ------------------------------------------------------------------------------ retrain
ENGAGEMENT_EVENTS = ("click", "order", "favorite", "rating")


def collect(settings: Settings, events_out: Path, lora_out: Path, window_days: int = 0, *, holdout_days: int = 14,
            min_new_feedback: int = 50, min_holdout_sessions: int = 20) -> dict:
    """The training log (generated history + the serving turns of the learned traffic, as
    events), the LoRA instruction data, and whether there is enough to retrain on (``ready``,
    with the ``reason``): a run without new feedback, or whose hold-out has no session with a
    positive, keeps production instead of failing (pipelines/README.md, "Minimum data")."""
    from naviyam.clock import Clock
    from naviyam.data.catalog import Catalog
    from naviyam.data.generate import load_events
    from naviyam.monitoring.live import good_conversations, instruction_samples, serving_events
    from naviyam.ranking.samples import time_split

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
    with open(lora_out, "w", encoding="utf-8") as fh:
        for row in lora:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

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
    from naviyam.ranking.samples import time_split

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
    from naviyam.data.catalog import Catalog
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
    try:
        from naviyam import llm
    except ImportError:
        return None
    return getattr(llm, "train_lora", None)


def train_lora_step(settings: Settings, samples: Path, adapter_dir: Path, *, enabled: bool = True) -> dict:
    """LoRA on the good conversations in ``samples`` (``collect``'s LoRA data: the run's lineage
    says what the adapter learned from), incremental from the production adapter. Skipped (with
    the reason) when disabled, when ``naviyam.llm.train_lora`` is missing or there is no base model.

    ``adapter_dir`` (the output artifact) is used as the LLM package's adapter root: the adapter
    lands in ``adapter_dir/<version>/`` (``adapter_subdir`` in the result); promotion is the
    pipeline's gate, not the trainer's.
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
        from naviyam.llm.settings import llm_settings

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
        "adapter_version": out.get("version"), "adapter_subdir": Path(out["path"]).name if out.get("path") else "",
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
    from naviyam.data.catalog import Catalog
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
    import onnxruntime as ort
    import torch

    from naviyam.ranking.export import export_onnx
    from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
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
    """Registers the adapter, makes it production, and publishes it to the LLM package's adapter
    registry (``current`` pointer) so ``naviyam.llm.load_llm`` serves it."""
    reg = registry(settings)
    lora = validation.get("lora") or {}
    src = Path(adapter_dir) / lora["adapter_subdir"] if lora.get("adapter_subdir") else Path(adapter_dir)
    version = reg.register(LORA, src, {k: lora.get(k) for k in ("val_perplexity", "base_val_perplexity")},
                           adapter_version=lora.get("adapter_version"),
                           validation={"lora_reason": validation.get("lora_reason")})
    reg.promote(LORA, version, reason=validation.get("lora_reason", ""))
    published = publish_adapter(settings, reg.resolve(LORA), lora.get("adapter_version") or version)
    return {"model": LORA, "version": version, "published": published, "status": reg.status(LORA)}


def publish_adapter(settings: Settings, src: Path, name: str) -> str | None:
    """Copies an adapter into ``naviyam.llm``'s AdapterRegistry and points ``current`` at it."""
    try:
        from naviyam.llm.lora import AdapterRegistry
        from naviyam.llm.settings import llm_settings
    except ImportError:
        return None
    adapters = AdapterRegistry(llm_settings(settings).resolved_adapter_dir(settings.models_dir))
    if name not in adapters.versions():
        staging = adapters.staging(name)
        shutil.copytree(src, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("registry.json"))
        adapters.publish(staging, name)
    adapters.set_current(name)
    return str(adapters.path(name))


def reject(settings: Settings, validation: dict, until: str | None = None) -> dict:
    if until:
        update_state(settings, last_retrain_until=until)
    update_state(settings, last_retrain={"at": _now(), "ranker": None, "rejected": validation.get("ranker_reason")})
    return {"promoted": False, "reason": validation.get("ranker_reason")}


# ------------------------------------------------------------------------------ reports
def html_report(title: str, sections: dict[str, Any]) -> str:
    def render(value: Any) -> str:
        if isinstance(value, dict):
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{render(v)}</td></tr>" for k, v in value.items())
            return f"<table>{rows}</table>"
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape(str(value))

    body = "".join(f"<h2>{html.escape(k)}</h2>{render(v)}" for k, v in sections.items())
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;" \
            "padding:4px 8px;text-align:left;vertical-align:top}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ canary
def route(settings: Settings, out_dir: Path, *, percent: int | None = None, apply: bool = False,
          namespace: str = "", isvc: str = "naviyam-ranker", storage_prefix: str = "") -> dict:
    """The canary's routing: the canary graph (local router), the services map, and the
    InferenceService patch (applied only with ``apply`` and a reachable cluster)."""
    from inference_graph.canary import canary_services, isvc_canary_patch, write_canary_graph

    reg = registry(settings)
    canary = reg.pointer(RANKER, "canary")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if canary is None:
        return {"has_canary": False}
    percent = int(percent or canary.get("percent") or DEFAULT_CANARY_PERCENT)
    graph = write_canary_graph(out_dir / "naviyam-canary.yaml", percent=percent)
    serving = settings.home / "serving"
    serving.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(graph, serving / "naviyam-canary.yaml")
    services = {name: settings.serving.predict_url(name) for name in
                ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-ranker", "naviyam-nlg")}
    services.update(canary_services(settings))
    (out_dir / "services.yaml").write_text(json.dumps(services, indent=2))
    uri = f"{storage_prefix.rstrip('/')}/{RANKER}/{canary['version']}" if storage_prefix else None
    patch = isvc_canary_patch(percent, version=canary["version"], storage_uri=uri)
    (out_dir / "isvc-patch.json").write_text(json.dumps(patch, indent=2))
    applied = apply_isvc_patch(isvc, namespace, patch) if apply else "not applied (apply=False)"
    return {"has_canary": True, "version": canary["version"], "production": reg.current_version(RANKER),
            "percent": percent, "graph": str(graph), "patch": patch, "applied": applied}


def apply_isvc_patch(name: str, namespace: str, patch: dict) -> str:
    """Merge-patches the InferenceService through the Kubernetes API (in-cluster config or
    kubeconfig); returns what happened, never raises for a missing cluster."""
    try:
        from kubernetes import client, config
    except ImportError:
        return "not applied: kubernetes client not installed"
    try:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
    except Exception as exc:  # noqa: BLE001
        return f"not applied: no cluster configured ({exc})"
    api = client.CustomObjectsApi()
    api.patch_namespaced_custom_object("serving.kserve.io", "v1beta1", namespace or "default",
                                       "inferenceservices", name, patch)
    return f"applied to {namespace or 'default'}/{name}"


def arm_ids(settings: Settings, version: str | None, variant: str) -> set[str]:
    """Identifiers that mark the turns an arm served: registry version, model version, variant."""
    ids = {variant}
    if version:
        ids.add(version)
        try:
            mv = registry(settings).metadata(RANKER, version).get("model_version")
            if mv:
                ids.add(mv)
        except NoVersionError:
            pass
    return ids


def observe(settings: Settings, *, window_s: float = 0.0, min_requests: int = 100, max_error_rate: float = 0.05,
            max_latency_ratio: float = 1.5) -> dict:
    """Canary vs production on live metrics over the turns served while the canary ran."""
    from naviyam.monitoring.live import metrics_by_arm

    if window_s > 0:
        time.sleep(window_s)
    reg = registry(settings)
    canary = reg.current_version(RANKER, "canary")
    production = reg.current_version(RANKER, "production")
    if canary is None:
        return {"decision": "none", "reason": "no canary running"}
    log_all = learned_log(settings).log
    canary_ids = arm_ids(settings, canary, "canary")
    served = log_all.interactions["ranker_version"].astype(str).isin(canary_ids - {"canary"})
    if not served.any():
        return {"decision": "wait", "reason": "the canary has served no turn yet", "canary": canary,
                "production": production}
    since = log_all.interactions.loc[served, "timestamp"].min()
    window = log_all.window(since=since)
    metrics = metrics_by_arm(window, {"canary": canary_ids - {"canary"},
                                      "production": arm_ids(settings, production, "production") - {"production"}})
    decision, reasons = decide(metrics["canary"], metrics["production"], min_requests=min_requests,
                               max_error_rate=max_error_rate, max_latency_ratio=max_latency_ratio)
    return _clean({"decision": decision, "reason": "; ".join(reasons), "canary": canary, "production": production,
                   "since": str(since), "metrics": metrics})


def decide(canary: dict, production: dict, *, min_requests: int, max_error_rate: float,
           max_latency_ratio: float, z_crit: float = 1.645) -> tuple[str, list[str]]:
    """promote | rollback | wait. Rollback on errors above the limit, a p95 latency regression,
    or a CTR significantly below production (one-sided two-proportion z-test, 95 %)."""
    reasons = []
    if canary["requests"] < min_requests:
        return "wait", [f"canary served {canary['requests']} turns, needs {min_requests}"]
    if canary["error_rate"] > max_error_rate:
        reasons.append(f"canary error rate {canary['error_rate']:.3f} > {max_error_rate:.3f}")
    p95_c, p95_p = canary["latency_p95_s"], production["latency_p95_s"]
    if p95_p and p95_c and not math.isnan(p95_c) and not math.isnan(p95_p) and p95_c > p95_p * max_latency_ratio:
        reasons.append(f"canary p95 latency {p95_c:.3f}s > {max_latency_ratio} x production {p95_p:.3f}s")
    n_c, n_p = canary["impressions"], production["impressions"]
    z = None
    if n_c and n_p:
        p_c, p_p = canary["clicks"] / n_c, production["clicks"] / n_p
        pool = (canary["clicks"] + production["clicks"]) / (n_c + n_p)
        se = math.sqrt(max(pool * (1 - pool), 1e-12) * (1 / n_c + 1 / n_p))
        z = (p_c - p_p) / se
        if z < -z_crit:
            reasons.append(f"canary CTR {p_c:.4f} significantly below production {p_p:.4f} (z={z:.2f})")
    if reasons:
        return "rollback", reasons
    ctr = f"CTR {canary['ctr']:.4f} vs {production['ctr']:.4f}" + (f" (z={z:.2f})" if z is not None else "")
    return "promote", [f"canary healthy: {ctr}, error rate {canary['error_rate']:.3f}, "
                       f"p95 {canary['latency_p95_s']:.3f}s vs {production['latency_p95_s']:.3f}s"]


def finish_canary(settings: Settings, decision: str, reason: str, out_dir: Path, *, apply: bool = False,
                  namespace: str = "", isvc: str = "naviyam-ranker") -> dict:
    """promote: the canary becomes production; rollback: the canary stops. Either way the local
    graph goes back to the production-only graph and the InferenceService gets its patch."""
    from inference_graph.canary import isvc_canary_patch

    reg = registry(settings)
    if decision == "promote":
        version = reg.promote_canary(RANKER, reason=reason)
        patch = isvc_canary_patch(None, version=version)
    elif decision == "rollback":
        version = reg.stop_canary(RANKER, reason=reason)
        patch = isvc_canary_patch(0)
    else:
        raise ValueError(f"decision must be promote or rollback, got {decision!r}")
    (settings.home / "serving" / "naviyam-canary.yaml").unlink(missing_ok=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "isvc-patch.json").write_text(json.dumps(patch, indent=2))
    applied = apply_isvc_patch(isvc, namespace, patch) if apply else "not applied (apply=False)"
    update_state(settings, last_canary={"at": _now(), "decision": decision, "version": version, "reason": reason})
    return {"decision": decision, "version": version, "patch": patch, "applied": applied,
            "status": reg.status(RANKER)}


# ------------------------------------------------------------------------------ drift
def check_drift(settings: Settings, report_html: Path, intent_html: Path, *, current_hours: float = 24.0,
                drift_share: float = 0.5, max_error_rate: float = 0.05, min_requests: int = 50,
                max_reference: int = 1500) -> dict:
    """Evidently drift of the production ranker's recent traffic against its training window,
    plus the error rate; decides none | rollback_and_retrain | retrain."""
    from naviyam.data.catalog import Catalog
    from naviyam.data.generate import load_events
    from naviyam.monitoring.drift import (
        detect_drift, detect_intent_drift, monitoring_frame, placeholder_html, reference_impressions,
    )
    from naviyam.monitoring.live import live_metrics

    ensure_bootstrap(settings)
    reg = registry(settings)
    production = reg.current_version(RANKER, "production")
    prod_dir = production_dir(settings) or settings.models_dir / RANKER
    catalog = Catalog.load(settings.data_dir)
    events = load_events(settings.data_dir)
    # Only the traffic the loop learns from, never dated after the server's clock or before the
    # data set: a bench run or a device with a wrong clock is not drift.
    admitted = learned_log(settings, start=events["timestamp"].min())
    log_all = admitted.log
    result: dict[str, Any] = {"production": production, "action": "none", "left_out": admitted.left_out,
                              "traffic": list(settings.learning.traffic)}
    if log_all.empty:
        why = f"no serving traffic of the kinds learned from ({', '.join(settings.learning.traffic)})"
        placeholder_html(report_html, "No serving traffic", why)
        placeholder_html(intent_html, "No serving traffic", why)
        return {**result, "reason": why}
    latest = log_all.latest()
    since = latest - pd.Timedelta(hours=current_hours)
    handled = read_state(settings).get("drift_handled_until")
    if handled is not None and pd.Timestamp(handled) > since:
        since = pd.Timestamp(handled)  # turns already acted on are not judged twice
    current = log_all.window(since=since, until=latest + pd.Timedelta(seconds=1))
    # Only what the production model served (turns tagged with another version are the canary's
    # or the model that was just rolled back); untagged turns count as production's.
    prod_ids = arm_ids(settings, production, "production")
    tagged = current.interactions["ranker_version"].notna()
    mine = ~tagged | current.interactions["ranker_version"].astype(str).isin(prod_ids)
    mine_ids = set(current.interactions.loc[mine, "request_id"])
    imp_mine = current.impressions["request_id"].isin(mine_ids).to_numpy()
    live = live_metrics(current, imp_mine, mine.to_numpy())
    result.update(since=str(since), until=str(latest), live=live)
    if live["requests"] < min_requests:
        placeholder_html(report_html, "Not enough traffic",
                         f"{live['requests']} production turns since {since}; drift needs {min_requests}.")
        placeholder_html(intent_html, "Not enough traffic", "see the drift report")
        return _clean({**result, "reason": f"{live['requests']} production turns < {min_requests}"})

    ref = monitoring_frame(catalog, reference_impressions(catalog, events, prod_dir, max_requests=max_reference,
                                                          seed=settings.ranking.seed))
    cur = monitoring_frame(catalog, current.impressions[imp_mine])
    drift = detect_drift(ref, cur, drift_share=drift_share, html_path=report_html)
    earlier = log_all.window(until=since).interactions.tail(5000)
    intent_drift, intent = detect_intent_drift(earlier["intent"], current.interactions.loc[mine, "intent"],
                                               html_path=intent_html)
    if intent_drift is None:
        placeholder_html(intent_html, "Intent drift: no reference",
                         f"{intent['n_reference']} earlier turns (need 30) to compare intents with.")
    drifted = drift.drifted or bool(intent_drift)
    errors = live["error_rate"] > max_error_rate
    reasons = []
    if drift.dataset_drift:
        reasons.append(f"data drift: {drift.drifted_share:.0%} of columns ({', '.join(drift.drifted_columns)})")
    if drift.prediction_drift:
        reasons.append(f"prediction drift: score distance {drift.columns['score']['score']:.3f}")
    if intent_drift:
        reasons.append(f"intent drift: distance {intent.get('score', float('nan')):.3f}")
    if errors:
        reasons.append(f"error rate {live['error_rate']:.3f} > {max_error_rate:.3f}")
    action = "none"
    if drifted or errors:
        prod = reg.pointer(RANKER, "production") or {}
        action = "rollback_and_retrain" if prod.get("previous") else "retrain"
    result.update(action=action, reason="; ".join(reasons) or "no drift, error rate ok", drifted=drifted,
                  error_rate_exceeded=errors, drift=drift.to_dict(), intent_drift=intent_drift, intent=intent)
    return _clean(result)


def rollback(settings: Settings, reason: str, *, apply: bool = False, namespace: str = "",
             isvc: str = "naviyam-ranker", until: str | None = None) -> dict:
    from inference_graph.canary import isvc_canary_patch

    reg = registry(settings)
    before = reg.current_version(RANKER)
    version = reg.rollback(RANKER, reason=reason)
    # KServe: the previous version goes back in as a new, fully rolled-out revision.
    patch = isvc_canary_patch(None, version=version)
    applied = apply_isvc_patch(isvc, namespace, patch) if apply else "not applied (apply=False)"
    update_state(settings, last_rollback={"at": _now(), "from": before, "to": version, "reason": reason},
                 **({"drift_handled_until": until} if until else {}))
    return {"rolled_back_from": before, "production": version, "patch": patch, "applied": applied,
            "status": reg.status(RANKER)}


def request_retrain(settings: Settings, reason: str, *, host: str = "", until: str | None = None,
                    params: dict | None = None) -> dict:
    """Records a retrain request (``pipelines.run`` starts it locally) and, with a KFP host,
    starts the retrain pipeline there (with ``params``, e.g. the same home and config)."""
    entry = {"at": _now(), "reason": reason, "status": "requested"}
    if host:
        from pipelines.run import submit

        entry.update(status="submitted", run=submit("retrain", host=host, params=params))
    # The request and the turns it handles, recorded together.
    loop_state(settings).add_request(entry, **({"drift_handled_until": until} if until else {}))
    return entry


def pending_retrain_requests(settings: Settings) -> list[dict]:
    return loop_state(settings).requests(status="requested")


def mark_retrain_requests(settings: Settings, status: str, current: str = "requested") -> None:
    """Moves the requests in state ``current`` to ``status`` (requested -> running -> done)."""
    loop_state(settings).mark_requests(status, current=current)
