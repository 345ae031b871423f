"""Kubeflow Pipelines v2 shell of the learning loop.

- ``retrain``        feedback -> LoRA data + Wide&Deep samples -> train LoRA || Wide&Deep ->
                     validate -> +2 % gate (dsl.If) -> ONNX export -> registry -> canary
- ``canary``         10 % to the candidate -> compare CTR / errors / p95 latency -> promote | rollback
- ``drift_monitor``  Evidently drift + error rate -> rollback to the previous production + retrain

``python -m pipelines.compile`` writes the IR YAML; ``python -m pipelines.run`` runs them locally
(kfp.local) or submits them to a Kubeflow Pipelines host.
"""

PIPELINES = ("retrain", "canary", "drift")
