"""The drift monitor's steps: drift of production's recent traffic, rollback, and the retrain
requests (recorded in the loop state; submitted to a KFP host when one is given)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from inference_graph.canary import isvc_canary_patch
from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import load_events
from naviyam.monitoring.drift import (
    detect_drift, detect_intent_drift, monitoring_frame, placeholder_html, reference_impressions,
)
from naviyam.monitoring.live import live_metrics
from pipelines.steps.canary import apply_isvc_patch, arm_ids
from pipelines.steps.plumbing import (
    RANKER, _clean, ensure_bootstrap, learned_log, loop_state, production_dir, read_state, registry, update_state,
)
from pipelines.steps.reports import _now


def check_drift(settings: Settings, report_html: Path, intent_html: Path, *, current_hours: float = 24.0,
                drift_share: float = 0.5, max_error_rate: float = 0.05, min_requests: int = 50,
                max_reference: int = 1500) -> dict:
    """Evidently drift of the production ranker's recent traffic against its training window,
    plus the error rate; decides none | rollback_and_retrain | retrain."""
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
        # kfp (its client and the compiled pipelines) is imported only when a run is submitted to
        # a host: every KFP task imports pipelines.steps, and none of them needs it.
        from pipelines.submit import submit

        entry.update(status="submitted", run=submit("retrain", host=host, params=params))
    # The request and the turns it handles, recorded together.
    loop_state(settings).add_request(entry, **({"drift_handled_until": until} if until else {}))
    return entry


def pending_retrain_requests(settings: Settings) -> list[dict]:
    return loop_state(settings).requests(status="requested")


def mark_retrain_requests(settings: Settings, status: str, current: str = "requested") -> None:
    """Moves the requests in state ``current`` to ``status`` (requested -> running -> done)."""
    loop_state(settings).mark_requests(status, current=current)
