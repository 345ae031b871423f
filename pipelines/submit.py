"""Submit a pipeline to a Kubeflow Pipelines host: one run, or a recurring one on a cron schedule.

Its own module so that what submits runs (``python -m pipelines.run submit``, and the drift
monitor's retrain request in ``pipelines.steps.drift``) needs neither the other.
"""
import tempfile
import time
from pathlib import Path
from typing import Any

import kfp
from kfp import compiler

from pipelines import PIPELINES
from pipelines.compile import pipeline_funcs

EXPERIMENT = "naviyam"


def submit(name: str, *, host: str, params: dict[str, Any] | None = None, experiment: str = EXPERIMENT,
           schedule: str | None = None, namespace: str | None = None) -> dict:
    """Starts a run (or, with a cron ``schedule``, a recurring run) on a KFP host."""
    if name not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}")
    client = kfp.Client(host=host, namespace=namespace or "kubeflow")
    func = pipeline_funcs()[name]
    params = dict(params or {})
    if schedule is None:
        run = client.create_run_from_pipeline_func(func, arguments=params, experiment_name=experiment,
                                                   run_name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        return {"run_id": run.run_id, "host": host}
    exp = client.create_experiment(experiment)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / f"{name}.yaml"
        compiler.Compiler().compile(func, str(package))
        job = client.create_recurring_run(
            experiment_id=exp.experiment_id, job_name=f"naviyam-{name}-scheduled", cron_expression=schedule,
            pipeline_package_path=str(package), params=params, max_concurrency=1, no_catchup=True)
    return {"recurring_run_id": job.recurring_run_id, "cron": schedule, "host": host}
