"""The retraining pipeline.

collect_feedback ─ dsl.If(enough new feedback and a hold-out with positives)
  ├─ yes: train_wide_deep || train_lora_adapter ─ validate_candidates ─ dsl.If(+2 % on NDCG@5 or precision@5)
  │         ├─ yes: export_onnx_model ─ register_ranker (new version, canary 10 %)
  │         └─ no:  reject_candidate (HTML report, production unchanged)
  │       dsl.If(LoRA perplexity improved): register_adapter | Else: keep the adapter
  └─ no:  keep_production (HTML report: what there was, what a retrain needs)
"""
from kfp import dsl

from pipelines import cluster
from pipelines.components import (
    collect_feedback, export_onnx_model, keep_production, note, register_adapter, register_ranker, reject_candidate,
    train_lora_adapter, train_wide_deep, validate_candidates,
)

NAME = "naviyam-retrain"


@dsl.pipeline(name=NAME, description="Feedback -> enough? -> LoRA || Wide&Deep -> validate -> +2% gate -> ONNX -> "
                                    "registry -> canary")
def retrain_pipeline(home: str = cluster.HOME, config: str = cluster.CONFIG, window_days: int = 0,
                     holdout_days: int = 14, incremental: bool = True, train_lora: bool = True,
                     min_improvement: float = 0.02, canary_percent: int = 10, shuffle_labels: bool = False,
                     min_new_feedback: int = 50, min_holdout_sessions: int = 20):
    collect = collect_feedback(home=home, config=config, window_days=window_days, holdout_days=holdout_days,
                               min_new_feedback=min_new_feedback, min_holdout_sessions=min_holdout_sessions)
    collect.set_display_name("collect interactions + feedback")

    with dsl.If(collect.outputs["ready"] == True, name="enough-new-data"):  # noqa: E712 - KFP condition
        ranker = train_wide_deep(home=home, config=config, events=collect.outputs["events"],
                                 holdout_days=holdout_days, incremental=incremental, shuffle_labels=shuffle_labels)
        ranker.set_display_name("train Wide&Deep (incremental)")
        lora = train_lora_adapter(home=home, config=config, lora_data=collect.outputs["lora_data"], enabled=train_lora)
        lora.set_display_name("train LoRA (good conversations)")

        check = validate_candidates(home=home, config=config, events=collect.outputs["events"],
                                    candidate=ranker.outputs["candidate"], adapter=lora.outputs["adapter"],
                                    holdout_days=holdout_days, min_improvement=min_improvement)
        check.set_display_name("validate: P@5, NDCG@5, AUC, perplexity")

        with dsl.If(check.outputs["promote_ranker"] == True, name="ranker-improved"):  # noqa: E712
            onnx = export_onnx_model(candidate=ranker.outputs["candidate"])
            onnx.set_display_name("export ONNX + parity check")
            register = register_ranker(home=home, config=config, model=onnx.outputs["onnx_model"],
                                       summary=check.outputs["summary"], canary_percent=canary_percent,
                                       until=collect.outputs["until"])
            register.set_display_name("register + start canary")
        with dsl.Else(name="ranker-not-improved"):
            reject = reject_candidate(home=home, config=config, summary=check.outputs["summary"],
                                      until=collect.outputs["until"])
            reject.set_display_name("stop: keep production")

        with dsl.If(check.outputs["promote_lora"] == True, name="lora-improved"):  # noqa: E712
            adapter = register_adapter(home=home, config=config, adapter=lora.outputs["adapter"],
                                       summary=check.outputs["summary"])
            adapter.set_display_name("register LoRA adapter")
        with dsl.Else(name="lora-not-improved"):
            keep = note(message="LoRA: production adapter kept (see the validation report)")
            keep.set_display_name("keep production adapter")
    with dsl.Else(name="not-enough-new-data"):
        skip = keep_production(home=home, config=config, summary=collect.outputs["summary"])
        skip.set_display_name("too little new data: keep production")
    cluster.configure()
