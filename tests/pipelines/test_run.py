"""pipelines.run: parameters, submission to a KFP host (a fake client), the gate and canary rules."""
from __future__ import annotations

import types

import pytest

from pipelines import run, steps


def test_parse_params():
    assert run._parse_params(["train_lora=false", "min_improvement=0.05", "home=/x"]) == {
        "train_lora": False, "min_improvement": 0.05, "home": "/x"}
    with pytest.raises(SystemExit):
        run._parse_params(["oops"])


class FakeClient:
    calls: list = []

    def __init__(self, host=None, namespace="kubeflow", **_):
        self.host = host

    def create_run_from_pipeline_func(self, func, arguments=None, experiment_name=None, run_name=None, **_):
        FakeClient.calls.append(("run", func.name, arguments, experiment_name))
        return types.SimpleNamespace(run_id="run-1")

    def create_experiment(self, name, **_):
        FakeClient.calls.append(("experiment", name))
        return types.SimpleNamespace(experiment_id="exp-1")

    def create_recurring_run(self, experiment_id, job_name, cron_expression=None, pipeline_package_path=None,
                             params=None, **_):
        with open(pipeline_package_path, encoding="utf-8") as fh:
            assert "naviyam-drift-monitor" in fh.read()
        FakeClient.calls.append(("recurring", experiment_id, job_name, cron_expression, params))
        return types.SimpleNamespace(recurring_run_id="rr-1")


def test_submit_and_schedule(monkeypatch):
    import kfp

    monkeypatch.setattr(kfp, "Client", FakeClient)
    FakeClient.calls = []
    assert run.submit("retrain", host="http://kfp", params={"home": "/mnt/naviyam"}) == {
        "run_id": "run-1", "host": "http://kfp"}
    out = run.submit("drift", host="http://kfp", schedule="0 0 * * * *", params={"home": "/mnt/naviyam"})
    assert out["recurring_run_id"] == "rr-1"
    assert FakeClient.calls == [
        ("run", "naviyam-retrain", {"home": "/mnt/naviyam"}, "naviyam"),
        ("experiment", "naviyam"),
        ("recurring", "exp-1", "naviyam-drift-scheduled", "0 0 * * * *", {"home": "/mnt/naviyam"}),
    ]
    assert run.main(["submit", "retrain", "--host", "http://kfp", "-p", "window_days=30"]) == 0
    assert FakeClient.calls[-1] == ("run", "naviyam-retrain", {"window_days": 30}, "naviyam")
    with pytest.raises(ValueError):
        run.submit("nope", host="http://kfp")


def test_gate_is_the_seeds_two_percent_rule():
    prod = {"ndcg@5": 0.50, "precision@5": 0.20}
    assert steps.gate({"ndcg@5": 0.511, "precision@5": 0.20}, prod, 0.02)[0] is True    # +2.2 % NDCG
    assert steps.gate({"ndcg@5": 0.50, "precision@5": 0.205}, prod, 0.02)[0] is True     # +2.5 % P@5
    assert steps.gate({"ndcg@5": 0.509, "precision@5": 0.203}, prod, 0.02)[0] is False   # +1.8 %, +1.5 %
    assert steps.gate({"ndcg@5": 0.1, "precision@5": 0.1}, None, 0.02)[0] is True        # nothing to beat


def test_lora_gate():
    assert steps.lora_gate({"skipped": True, "reason": "x"}, None)[0] is False
    assert steps.lora_gate({"val_perplexity": 8.0, "base_val_perplexity": 12.0}, None)[0] is True
    assert steps.lora_gate({"val_perplexity": 8.0, "base_val_perplexity": 12.0}, {"val_perplexity": 7.5})[0] is False
    assert steps.lora_gate({"val_perplexity": 13.0, "base_val_perplexity": 12.0}, None)[0] is False
    # measured on the same validation set, the starting (production) adapter wins over its record
    assert steps.lora_gate({"val_perplexity": 8.0, "base_val_perplexity": 12.0, "init_val_perplexity": 8.5},
                           {"val_perplexity": 7.5})[0] is True


def arm(requests=200, impressions=800, clicks=160, error_rate=0.01, p95=0.6):
    return {"requests": requests, "impressions": impressions, "clicks": clicks, "ctr": clicks / impressions,
            "error_rate": error_rate, "latency_p95_s": p95}


@pytest.mark.parametrize("canary, decision", [
    (arm(), "promote"),
    (arm(requests=50), "wait"),
    (arm(error_rate=0.08), "rollback"),
    (arm(p95=1.2), "rollback"),
    (arm(clicks=100), "rollback"),             # CTR 12.5 % vs 20 %: significantly worse
    (arm(clicks=150), "promote"),              # 18.8 % vs 20 %: within noise
])
def test_canary_decision(canary, decision):
    production = arm(requests=1800, impressions=7200, clicks=1440)
    got, reasons = steps.decide(canary, production, min_requests=100, max_error_rate=0.05, max_latency_ratio=1.5)
    assert got == decision, reasons


def test_kfp_local_imports_from_the_repository_root():
    """`python -m pipelines.run` runs with the repository root on sys.path: nothing there may pass
    for the docker SDK that kfp.local probes for (the Dockerfiles live in dockerfiles/)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.path.insert(0, ''); import importlib.util; "
            "spec = importlib.util.find_spec('docker'); assert spec is None or spec.origin not in (None, 'namespace'); "
            "import pipelines.run; from kfp.local import task_dispatcher; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_retrain_requests_move_through_their_states(tmp_path):
    settings = steps.load_settings(str(tmp_path), "")
    steps.request_retrain(settings, "drift", until="2026-11-03 00:00:00")
    assert [r["reason"] for r in steps.pending_retrain_requests(settings)] == ["drift"]
    assert steps.read_state(settings)["drift_handled_until"] == "2026-11-03 00:00:00"
    steps.mark_retrain_requests(settings, "running")
    assert steps.pending_retrain_requests(settings) == []
    steps.mark_retrain_requests(settings, "done", current="running")
    assert [r["status"] for r in steps.loop_state(settings).requests()] == ["done"]
