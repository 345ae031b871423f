"""What a local pipeline run decided, read back from its run directory, for the engineer.

kfp.local leaves one folder per task (``<run_dir>/<task>/executor_output.json`` plus the output
artifacts). ``summarise`` turns those into a short record (what was trained, the gate's metrics
next to production's, the decision, the HTML reports and artifacts); ``render`` prints it. The
KFP log is still there; this is what to read first.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GATE_KEYS = ("ndcg@5", "precision@5", "auc", "recall@10")
REPORT_NAMES = ("report", "intent_report")


def _outputs(run_dir: Path) -> dict[str, dict]:
    out = {}
    for task in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        path = task / "executor_output.json"
        if path.exists():
            out[task.name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _param(task: dict | None, name: str = "Output") -> Any:
    return ((task or {}).get("parameterValues") or {}).get(name)


def _artifact(task: dict | None, name: str) -> dict:
    arts = (((task or {}).get("artifacts") or {}).get(name) or {}).get("artifacts") or [{}]
    return arts[0]


def _reports(run_dir: Path) -> list[str]:
    return sorted(str(p) for p in run_dir.rglob("*") if p.is_file() and p.name in REPORT_NAMES)


def summarise(name: str, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    tasks = _outputs(run_dir)
    summary: dict[str, Any] = {"pipeline": name, "run_dir": str(run_dir), "reports": _reports(run_dir)}
    summary.update({"retrain": _retrain, "canary": _canary, "drift": _drift}[name](run_dir, tasks))
    return summary


def _retrain(run_dir: Path, tasks: dict[str, dict]) -> dict:
    collected = json.loads(_param(tasks.get("collect-feedback"), "summary") or "{}")
    out: dict[str, Any] = {"data": {k: collected.get(k) for k in (
        "events", "serving_events", "new_feedback", "min_new_feedback", "holdout_sessions", "min_holdout_sessions",
        "since", "until", "left_out")}}
    out["artifacts"] = {"events": _artifact(tasks.get("collect-feedback"), "events").get("uri")}
    if "keep-production" in tasks:
        out["decision"] = "keep production"
        out["why"] = collected.get("reason")
        return out
    cand = _artifact(tasks.get("train-wide-deep"), "candidate")
    lora = _artifact(tasks.get("train-lora-adapter"), "adapter")
    out["trained"] = {"ranker": cand.get("metadata", {}).get("model_version"),
                      "init_from": cand.get("metadata", {}).get("init_from") or None,
                      "lora": "skipped: " + str(lora.get("metadata", {}).get("reason"))
                      if lora.get("metadata", {}).get("skipped") else "trained"}
    out["artifacts"].update(candidate=cand.get("uri"), adapter=lora.get("uri"))
    validation_path = run_dir / "validate-candidates" / "validation.json"
    validation = json.loads(validation_path.read_text(encoding="utf-8")) if validation_path.exists() else {}
    cand_m, prod_m = validation.get("candidate") or {}, validation.get("production") or {}
    out["gate"] = {k: {"candidate": cand_m.get(k), "production": prod_m.get(k)} for k in GATE_KEYS}
    out["gate_rule"] = f"+{validation.get('min_improvement', 0.02):.0%} on ndcg@5 or precision@5"
    if "register-ranker" in tasks:
        record = _artifact(tasks["register-ranker"], "record").get("metadata", {})
        out["decision"] = f"new ranker {record.get('version')} -> {record.get('channel')}"
        out["artifacts"]["registered"] = _artifact(tasks["register-ranker"], "record").get("uri")
    else:
        out["decision"] = "keep production"
    out["why"] = validation.get("ranker_reason")
    out["lora_decision"] = ("new adapter " + str(_param(tasks["register-adapter"])) if "register-adapter" in tasks
                            else "keep the production adapter") + f" ({validation.get('lora_reason')})"
    return out


def _canary(run_dir: Path, tasks: dict[str, dict]) -> dict:
    route = _param(tasks.get("route-canary"), "has_canary")
    if not route:
        return {"decision": "nothing to do", "why": "no canary running"}
    observed = _artifact(tasks.get("observe-canary"), "comparison").get("metadata", {})
    arms = {}
    for key, value in observed.items():
        arm, _, metric = key.partition("_")
        if arm in ("canary", "production") and metric in ("requests", "ctr", "error_rate", "latency_p95_s"):
            arms.setdefault(metric, {})[arm] = value
    decision = _param(tasks.get("observe-canary"), "decision")
    out = {"version": _param(tasks.get("route-canary"), "version"), "live": arms,
           "why": _param(tasks.get("observe-canary"), "reason")}
    if "conclude-canary" in tasks:
        out["decision"] = _param(tasks["conclude-canary"])
        out["artifacts"] = {"result": _artifact(tasks["conclude-canary"], "result").get("uri")}
    else:
        out["decision"] = f"{decision}: keep observing"
    return out


def _drift(run_dir: Path, tasks: dict[str, dict]) -> dict:
    path = run_dir / "check-drift" / "drift.json"
    drift = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    d = drift.get("drift") or {}
    out: dict[str, Any] = {
        "window": {"since": drift.get("since"), "until": drift.get("until"),
                   "requests": (drift.get("live") or {}).get("requests"), "left_out": drift.get("left_out")},
        "drift": {"drifted_share": d.get("drifted_share"), "drifted_columns": d.get("drifted_columns"),
                  "error_rate": (drift.get("live") or {}).get("error_rate")},
        "why": drift.get("reason"),
    }
    action = drift.get("action", "none")
    steps = []
    if "rollback-production" in tasks:
        steps.append(f"rolled back to {_param(tasks['rollback-production'])}")
    if "trigger-retrain" in tasks:
        steps.append("retrain requested")
    out["decision"] = ", ".join(steps) if steps else ("no action" if action == "none" else action)
    return out


def render(summary: dict, followed: dict | None = None) -> str:
    """A few lines per run; ``followed`` is the retrain a drift run started (already summarised)."""
    lines = [f"== {summary['pipeline']}: {summary.get('decision')}"]
    if summary.get("why"):
        lines.append(f"   why: {summary['why']}")
    for key in ("data", "trained", "window", "drift", "live"):
        shown = {k: v for k, v in (summary.get(key) or {}).items() if v not in (None, {}, [])}
        if shown:
            lines.append(f"   {key}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))
    if summary.get("gate"):
        lines.append(f"   gate ({summary.get('gate_rule')}):")
        for metric, pair in summary["gate"].items():
            lines.append(f"     {metric:<12} candidate {_fmt(pair['candidate'])}  production {_fmt(pair['production'])}")
    if summary.get("lora_decision"):
        lines.append(f"   LoRA: {summary['lora_decision']}")
    for path in summary.get("reports") or []:
        lines.append(f"   report: {path}")
    for name, path in (summary.get("artifacts") or {}).items():
        if path:
            lines.append(f"   {name}: {path}")
    if followed:
        lines.append(render(followed))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)
