"""The canary pipeline's steps: route a share of the traffic to the canary, observe both arms
on live metrics, decide (promote | rollback | wait), and finish the canary."""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from inference_graph.canary import canary_services, isvc_canary_patch, write_canary_graph
from naviyam.config import Settings
from naviyam.monitoring.live import metrics_by_arm
from naviyam.registry import NoVersionError
from pipelines.steps.plumbing import RANKER, _clean, learned_log, registry, update_state
from pipelines.steps.reports import _now

DEFAULT_CANARY_PERCENT = 10                # 10 % of the traffic to the new model


def route(settings: Settings, out_dir: Path, *, percent: int | None = None, apply: bool = False,
          namespace: str = "", isvc: str = "naviyam-ranker", storage_prefix: str = "") -> dict:
    """The canary's routing: the canary graph (local router), the services map, and the
    InferenceService patch (applied only with ``apply`` and a reachable cluster)."""
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
        # The Kubernetes client is needed only to patch a live cluster (and optional elsewhere).
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
