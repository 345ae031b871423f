"""Kubeflow Pipelines v2 lightweight components of the learning loop.

Each component is a small typed function that reads its input artifacts, calls one function of
``pipelines.steps`` (which calls ``naviyam``), and writes its output artifacts with metadata.
Their imports are inside the function bodies on purpose: KFP serialises each function's source
into the pipeline spec and runs it alone, so module-level imports would not exist there.
On a cluster they run in our component image (``NAVIYAM_COMPONENT_IMAGE``: ``naviyam``
installed, ``pipelines`` under ``/app`` on ``PYTHONPATH``); locally
``kfp.local.SubprocessRunner(use_venv=False)`` runs them in this virtual environment.

Every component takes ``home`` and ``config``: the Settings home (data, models, registry, event
store; on a cluster the volumes ``pipelines.cluster`` mounts) and an optional Settings YAML; empty
means the defaults (``NAVIYAM_*`` environment variables still apply).
"""
import os
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

BASE_IMAGE = os.environ.get("NAVIYAM_COMPONENT_IMAGE", "registry.example.com/naviyam/naviyam-jobs:0.1.0")

component = dsl.component(base_image=BASE_IMAGE)


@component
def note(message: str) -> str:
    """Records a branch that does nothing (the Else of a gate), so every dsl.If has an Else:
    kfp.local resolves a task output in a condition only inside If/Elif/Else branch groups."""
    print(message)
    return message


# ------------------------------------------------------------------------------------ retrain
@component
def collect_feedback(home: str, config: str, window_days: int, holdout_days: int, min_new_feedback: int,
                     min_holdout_sessions: int, events: Output[Dataset], lora_data: Output[Dataset]
                     ) -> NamedTuple("CollectOutputs", [("ready", bool), ("reason", str), ("until", str),
                                                        ("new_interactions", int), ("summary", str)]):
    """Interactions + feedback of the learned traffic -> training events and LoRA instruction
    data, and whether there is enough new feedback (and a hold-out with positives) to retrain."""
    import json
    from collections import namedtuple

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    summary = steps.collect(settings, events.path, lora_data.path, window_days=window_days,
                            holdout_days=holdout_days, min_new_feedback=min_new_feedback,
                            min_holdout_sessions=min_holdout_sessions)
    for key in ("events", "base_events", "serving_events", "window_start", "window_end", "since", "until",
                "new_feedback", "holdout_sessions", "ready", "reason"):
        events.metadata[key] = summary[key] if summary[key] is not None else ""
    events.metadata["left_out"] = json.dumps(summary["left_out"])
    events.metadata["format"] = "parquet (events.parquet schema)"
    for key in ("new_interactions", "new_feedback", "good_conversations"):
        lora_data.metadata[key] = summary[key]
    lora_data.metadata["format"] = "jsonl {instruction, input, output, request_id}"
    return namedtuple("CollectOutputs", ["ready", "reason", "until", "new_interactions", "summary"])(
        summary["ready"], summary["reason"], summary["until"], summary["new_interactions"],
        json.dumps(summary, ensure_ascii=False, default=str))


@component
def keep_production(home: str, config: str, summary: str, report: Output[HTML]) -> str:
    """Too little to retrain on: production stays; the report says what was there and what is needed."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    collected = json.loads(summary)
    out = steps.keep_production(settings, collected)
    Path(report.path).write_text(steps.html_report("Retrain skipped: keep production", {
        "decision": {"decision": out["decision"], "why": out["reason"], "production": out["production"]},
        "data": {k: collected.get(k) for k in ("new_feedback", "min_new_feedback", "holdout_sessions",
                                               "min_holdout_sessions", "holdout_from", "since", "until", "now",
                                               "serving_events", "traffic")},
        "left out of the window": collected.get("left_out") or "nothing",
    }), encoding="utf-8")
    report.metadata["reason"] = out["reason"] or ""
    return "keep production: " + (out["reason"] or "")


@component
def train_wide_deep(home: str, config: str, events: Input[Dataset], holdout_days: int, incremental: bool,
                    shuffle_labels: bool, candidate: Output[Model], metrics: Output[Metrics]):
    """Wide&Deep (incremental from production): weighted positives, hard negatives, 1:2 balance."""
    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    meta = steps.train_ranker_step(settings, events.path, candidate.path, holdout_days=holdout_days,
                                   incremental=incremental, shuffle_labels=shuffle_labels)
    candidate.metadata.update({"framework": "pytorch+onnx", "model_version": meta["version"],
                               "init_from": meta.get("init_from") or "", "train_window_end": meta["train_window"]["end"]})
    for key in ("n_train", "n_positive", "n_negative", "n_hard_negative", "train_weighted_bce", "train_seconds"):
        metrics.log_metric(key, float(meta[key]))


@component
def train_lora_adapter(home: str, config: str, lora_data: Input[Dataset], enabled: bool,
                       adapter: Output[Model], metrics: Output[Metrics]):
    """LoRA on the good conversations collect_feedback selected (``lora_data``), incremental from
    the production adapter."""
    import math

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    result = steps.train_lora_step(settings, lora_data.path, adapter.path, enabled=enabled)
    adapter.metadata.update({"skipped": bool(result.get("skipped")), "reason": result.get("reason") or "",
                             "good_conversations": lora_data.metadata.get("good_conversations", 0),
                             "data_source": result.get("data_source") or ""})
    for key, value in result.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            metrics.log_metric(key, float(value))


@component
def validate_candidates(home: str, config: str, events: Input[Dataset], candidate: Input[Model],
                        adapter: Input[Model], holdout_days: int, min_improvement: float,
                        validation: Output[Metrics], report: Output[HTML]
                        ) -> NamedTuple("ValidateOutputs", [("promote_ranker", bool), ("promote_lora", bool),
                                                            ("summary", str)]):
    """precision@5 / NDCG@5 / AUC of candidate and production on the held-out window; perplexity."""
    import json
    import math
    from collections import namedtuple
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    lora = json.loads((Path(adapter.path) / "pipeline_result.json").read_text())
    result = steps.validate(settings, events.path, candidate.path, lora, holdout_days=holdout_days,
                            min_improvement=min_improvement)
    for side in ("candidate", "production"):
        for key, value in (result.get(side) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                validation.log_metric(f"{side}_{key}", float(value))
    validation.metadata.update({"promote_ranker": result["promote_ranker"], "promote_lora": result["promote_lora"],
                                "ranker_reason": result["ranker_reason"], "lora_reason": result["lora_reason"]})
    Path(report.path).write_text(steps.html_report("Retrain validation", {
        "decision": {"promote ranker": result["promote_ranker"], "why": result["ranker_reason"],
                     "promote LoRA": result["promote_lora"], "LoRA": result["lora_reason"]},
        "candidate": result["candidate"], "production": result["production"] or "none",
        "production metrics": result["production_source"], "improvement": result["improvement"],
    }), encoding="utf-8")
    Path(report.path).with_name("validation.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    summary = json.dumps(result, ensure_ascii=False)
    return namedtuple("ValidateOutputs", ["promote_ranker", "promote_lora", "summary"])(
        result["promote_ranker"], result["promote_lora"], summary)


@component
def export_onnx_model(candidate: Input[Model], onnx_model: Output[Model]):
    """Re-exports the checkpoint to ONNX and checks onnxruntime against torch."""
    import shutil

    from pipelines import steps

    shutil.copytree(candidate.path, onnx_model.path)
    check = steps.verify_onnx(onnx_model.path)
    onnx_model.metadata.update({**candidate.metadata, **check, "format": "onnx", "file": "model.onnx"})


@component
def register_ranker(home: str, config: str, model: Input[Model], summary: str, canary_percent: int, until: str,
                    record: Output[Artifact]) -> str:
    """Registers the new ranker version and starts its canary at ``canary_percent`` %."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.register_ranker(settings, model.path, json.loads(summary), canary_percent=canary_percent,
                                until=until)
    Path(record.path).write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    record.metadata.update({"version": out["version"], "channel": out["channel"],
                            "model_version": out.get("model_version") or ""})
    return out["version"]


@component
def register_adapter(home: str, config: str, adapter: Input[Model], summary: str, record: Output[Artifact]) -> str:
    """Registers the LoRA adapter and makes it production."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.register_lora(settings, adapter.path, json.loads(summary))
    Path(record.path).write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    record.metadata["version"] = out["version"]
    return out["version"]


@component
def reject_candidate(home: str, config: str, summary: str, until: str, report: Output[HTML]) -> str:
    """The gate said no: production stays; the report says why."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    result = json.loads(summary)
    out = steps.reject(settings, result, until=until)
    Path(report.path).write_text(steps.html_report("Candidate not promoted", {
        "why": result["ranker_reason"], "candidate": result["candidate"],
        "production": result["production"] or "none", "improvement": result["improvement"],
    }), encoding="utf-8")
    report.metadata["reason"] = out["reason"]
    return "rejected: " + out["reason"]


# ------------------------------------------------------------------------------------ canary
@component
def route_canary(home: str, config: str, percent: int, apply: bool, namespace: str, isvc: str,
                 storage_prefix: str, routing: Output[Artifact]) -> NamedTuple("RouteOutputs", [("has_canary", bool),
                                                                                                 ("version", str)]):
    """Sends ``percent`` % to the canary: the Splitter graph locally, the ISVC patch on a cluster."""
    import json
    from collections import namedtuple
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    Path(routing.path).mkdir(parents=True, exist_ok=True)
    out = steps.route(settings, routing.path, percent=percent, apply=apply, namespace=namespace, isvc=isvc,
                      storage_prefix=storage_prefix)
    (Path(routing.path) / "route.json").write_text(json.dumps(out, indent=2, default=str))
    routing.metadata.update({k: v for k, v in out.items() if isinstance(v, (str, int, bool))})
    return namedtuple("RouteOutputs", ["has_canary", "version"])(out["has_canary"], out.get("version", ""))


@component
def simulate_canary_traffic(home: str, config: str, n_requests: int, seed: int) -> str:
    """Local stand-in for real users: turns through the deployed production/canary split."""
    import json

    from naviyam.simulate import simulate_traffic
    from pipelines import steps

    if n_requests <= 0:
        return "no simulated traffic"
    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    return json.dumps(simulate_traffic(settings, n_requests, "none", seed=seed), default=str)


@component
def observe_canary(home: str, config: str, window_s: float, min_requests: int, max_error_rate: float,
                   max_latency_ratio: float, comparison: Output[Metrics], report: Output[HTML]
                   ) -> NamedTuple("ObserveOutputs", [("decision", str), ("reason", str)]):
    """Canary vs production on CTR (feedback), error rate and p95 latency over the window."""
    import math
    from collections import namedtuple
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.observe(settings, window_s=window_s, min_requests=min_requests, max_error_rate=max_error_rate,
                        max_latency_ratio=max_latency_ratio)
    for arm, values in (out.get("metrics") or {}).items():
        for key, value in values.items():
            if value is not None and math.isfinite(value):
                comparison.log_metric(f"{arm}_{key}", float(value))
    comparison.metadata.update({"decision": out["decision"], "reason": out["reason"]})
    metrics = out.get("metrics") or {}
    Path(report.path).write_text(steps.html_report(f"Canary: {out['decision']}", {
        "decision": out["decision"], "why": out["reason"],
        "versions": {"canary": out.get("canary"), "production": out.get("production"), "since": out.get("since")},
        **{f"{arm} (live)": values for arm, values in metrics.items()}}), encoding="utf-8")
    return namedtuple("ObserveOutputs", ["decision", "reason"])(out["decision"], out["reason"])


@component
def conclude_canary(home: str, config: str, decision: str, reason: str, apply: bool, namespace: str, isvc: str,
                    result: Output[Artifact]) -> str:
    """promote: canary -> production; rollback: the canary stops, production keeps serving."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    Path(result.path).mkdir(parents=True, exist_ok=True)
    out = steps.finish_canary(settings, decision, reason, result.path, apply=apply, namespace=namespace, isvc=isvc)
    (Path(result.path) / "result.json").write_text(json.dumps(out, indent=2, default=str))
    result.metadata.update({"decision": decision, "version": out["version"] or ""})
    return f"{decision}: {out['version']}"


# ------------------------------------------------------------------------------------ drift
@component
def check_drift(home: str, config: str, current_hours: float, drift_share: float, max_error_rate: float,
                min_requests: int, report: Output[HTML], intent_report: Output[HTML], drift: Output[Metrics]
                ) -> NamedTuple("DriftOutputs", [("action", str), ("reason", str), ("until", str)]):
    """Evidently DataDriftPreset (features + score) and intent drift vs the training window; errors."""
    import json
    import math
    from collections import namedtuple
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.check_drift(settings, report.path, intent_report.path, current_hours=current_hours,
                            drift_share=drift_share, max_error_rate=max_error_rate, min_requests=min_requests)
    d = out.get("drift") or {}
    for key in ("drifted_share", "n_reference", "n_current"):
        if d.get(key) is not None and math.isfinite(d[key]):
            drift.log_metric(key, float(d[key]))
    for col, values in (d.get("columns") or {}).items():
        if values.get("score") is not None and math.isfinite(values["score"]):
            drift.log_metric(f"drift_{col}", float(values["score"]))
    for key, value in (out.get("live") or {}).items():
        if value is not None and math.isfinite(value):
            drift.log_metric(f"live_{key}", float(value))
    drift.metadata.update({"action": out["action"], "reason": out.get("reason", ""),
                           "drifted_columns": ",".join(d.get("drifted_columns") or [])})
    report.metadata["drifted"] = bool(out.get("drifted", False))
    Path(report.path).with_name("drift.json").write_text(json.dumps(out, indent=2, default=str))
    return namedtuple("DriftOutputs", ["action", "reason", "until"])(out["action"], out.get("reason", ""),
                                                                    out.get("until") or "")


@component
def rollback_production(home: str, config: str, reason: str, until: str, apply: bool, namespace: str, isvc: str,
                        result: Output[Artifact]) -> str:
    """Production goes back to the previous version (serving reloads it from the registry)."""
    import json
    from pathlib import Path

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.rollback(settings, reason, apply=apply, namespace=namespace, isvc=isvc, until=until)
    Path(result.path).write_text(json.dumps(out, indent=2, default=str))
    result.metadata.update({"from": out["rolled_back_from"], "to": out["production"]})
    return out["production"]


@component
def trigger_retrain(home: str, config: str, reason: str, until: str, host: str) -> str:
    """Asks for a retrain run: submitted to KFP when ``host`` is set, else recorded for ``pipelines.run``."""
    import json

    from pipelines import steps

    settings = steps.load_settings(home, config)
    steps.configure_logging(settings)
    out = steps.request_retrain(settings, reason, host=host, until=until, params={"home": home, "config": config})
    return json.dumps(out, default=str)
