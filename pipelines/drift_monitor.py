"""The drift monitor (scheduled): Evidently drift + error rate.

check_drift (features, score = prediction drift, intents; error rate > 5 %)
  -> dsl.If rollback_and_retrain: rollback_production -> trigger_retrain
  -> dsl.Elif retrain (nothing to roll back to): trigger_retrain
  -> dsl.Else: nothing to do
"""
from kfp import dsl

from pipelines import cluster
from pipelines.components import check_drift, note, rollback_production, trigger_retrain

NAME = "naviyam-drift-monitor"


@dsl.pipeline(name=NAME, description="Evidently drift + error rate -> rollback to the previous production + retrain")
def drift_monitor_pipeline(home: str = cluster.HOME, config: str = cluster.CONFIG, current_hours: float = 24.0,
                           drift_share: float = 0.5, max_error_rate: float = 0.05, min_requests: int = 50,
                           host: str = "", apply: bool = False, namespace: str = "", isvc: str = "naviyam-ranker"):
    check = check_drift(home=home, config=config, current_hours=current_hours, drift_share=drift_share,
                        max_error_rate=max_error_rate, min_requests=min_requests)
    check.set_display_name("Evidently drift + error rate")
    with dsl.If(check.outputs["action"] == "rollback_and_retrain", name="drift-rollback"):
        rollback = rollback_production(home=home, config=config, reason=check.outputs["reason"],
                                       until=check.outputs["until"], apply=apply, namespace=namespace, isvc=isvc)
        rollback.set_display_name("roll back production")
        retrain = trigger_retrain(home=home, config=config, reason=check.outputs["reason"],
                                  until=check.outputs["until"], host=host)
        retrain.set_display_name("trigger retrain")
        retrain.after(rollback)
    with dsl.Elif(check.outputs["action"] == "retrain", name="drift-retrain"):
        only = trigger_retrain(home=home, config=config, reason=check.outputs["reason"],
                               until=check.outputs["until"], host=host)
        only.set_display_name("trigger retrain")
    with dsl.Else(name="healthy"):
        ok = note(message=check.outputs["reason"])
        ok.set_display_name("no action")
    cluster.configure()
