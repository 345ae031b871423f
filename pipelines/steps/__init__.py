"""What the pipeline components do, as plain functions (the components only move artifacts).

Kept out of ``components.py`` so each step can be called and tested without Kubeflow, and so
the component functions stay the few self-contained lines KFP wants. Everything here calls
``naviyam`` (training, evaluation, registry, monitoring); nothing here knows about KFP.

One module per concern, all re-exported here (``from pipelines import steps``; ``steps.collect``):

- ``plumbing``: settings and the task's logging, registry, event store, loop state, bootstrap
- ``retrain``: collect, train (ranker, LoRA), gate + validate, ONNX check, register or reject
- ``canary``: route, observe, decide, finish
- ``drift``: drift check, rollback, retrain requests
- ``reports``: the HTML reports
"""
from pipelines.steps.canary import (
    DEFAULT_CANARY_PERCENT, apply_isvc_patch, arm_ids, decide, finish_canary, observe, route,
)
from pipelines.steps.drift import (
    check_drift, mark_retrain_requests, pending_retrain_requests, request_retrain, rollback,
)
from pipelines.steps.plumbing import (
    LOG_FORMAT, LOOP_STATE, LORA, RANKER, RETRAIN_REQUESTS, configure_logging, ensure_bootstrap, learned_log,
    load_settings, loop_state, production_dir, read_state, registry, store_path, update_state,
)
from pipelines.steps.reports import html_report
from pipelines.steps.retrain import (
    ENGAGEMENT_EVENTS, GATE_METRICS, collect, gate, keep_production, lora_gate, lora_trainer, new_since,
    register_lora, register_ranker, reject, shuffle_training_labels, train_lora_step,
    train_ranker_step, validate, verify_onnx,
)

__all__ = [
    # plumbing
    "LOG_FORMAT", "LOOP_STATE", "LORA", "RANKER", "RETRAIN_REQUESTS", "configure_logging", "ensure_bootstrap",
    "learned_log", "load_settings", "loop_state", "production_dir", "read_state", "registry", "store_path",
    "update_state",
    # retrain
    "ENGAGEMENT_EVENTS", "GATE_METRICS", "collect", "gate", "keep_production", "lora_gate", "lora_trainer",
    "new_since", "register_lora", "register_ranker", "reject", "shuffle_training_labels",
    "train_lora_step", "train_ranker_step", "validate", "verify_onnx",
    # canary
    "DEFAULT_CANARY_PERCENT", "apply_isvc_patch", "arm_ids", "decide", "finish_canary", "observe", "route",
    # drift
    "check_drift", "mark_retrain_requests", "pending_retrain_requests", "request_retrain", "rollback",
    # reports
    "html_report",
]
