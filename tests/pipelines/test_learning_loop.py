"""The learning loop end to end with kfp.local, on a small world, in the order it happens:

1. retrain: a weak production (1 epoch on three weeks) is beaten by the incremental candidate:
   the gate promotes it (registered, ONNX checked, canary at 10 %);
2. canary: simulated users through the 90/10 split; the canary is healthier -> promoted;
3. retrain with shuffled labels: worse than the (now strong) production -> stopped, with a report;
   retrain again with nothing new since: production kept without training (a dsl.Else branch);
4. drift: a broken feature shows up in serving; the drift monitor produces the Evidently report,
   rolls production back to the previous version and asks for a retrain, while a thread keeps
   scoring through a hot-reloading ranker: no request fails during the switch.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from inference_graph.canary import SPLIT_NODE, splitter_weights
from inference_graph.spec import load_graph
from naviyam.data.catalog import Catalog
from naviyam.registry import HotModel, ModelRegistry
from pipelines import steps
from pipelines.run import run_local


def task_dir(run: dict, task: str) -> Path:
    return Path(run["run_dir"]) / task


@pytest.fixture(scope="module")
def promoted(loop_home):
    settings, config = loop_home
    run = run_local("retrain", home=settings.home, config=config, train_lora=True)
    return settings, run


@pytest.fixture(scope="module")
def canaried(promoted, loop_home):
    settings, config = loop_home
    return settings, run_local("canary", home=settings.home, config=config, simulate_requests=1500, seed=1,
                               min_requests=100)


@pytest.fixture(scope="module")
def rejected(canaried, loop_home):
    settings, config = loop_home
    return settings, run_local("retrain", home=settings.home, config=config, train_lora=False,
                               shuffle_labels=True)


def test_retrain_promotes_a_better_candidate_into_canary(promoted):
    settings, run = promoted
    reg = ModelRegistry.from_settings(settings)
    assert reg.status("ranker") == {"model": "ranker", "production": "v0001", "previous": None,
                                    "canary": "v0002", "versions": ["v0001", "v0002"]}
    assert reg.metadata("ranker", "v0001")["note"].startswith("bootstrap")
    assert reg.pointer("ranker", "canary")["percent"] == 10

    validation = json.loads((task_dir(run, "validate-candidates") / "validation.json").read_text())
    assert validation["promote_ranker"] is True
    assert validation["production_source"].startswith("re-evaluated")
    cand, prod = validation["candidate"], validation["production"]
    assert cand["ndcg@5"] > prod["ndcg@5"] * 1.02 or cand["precision@5"] > prod["precision@5"] * 1.02
    assert 0.0 <= cand["auc"] <= 1.0
    assert (task_dir(run, "validate-candidates") / "report").read_text().startswith("<!doctype html>")

    version_dir = reg.resolve("ranker", "canary")
    for name in ("model.onnx", "model.pt", "meta.json", "registry.json", "features"):
        assert (version_dir / name).exists(), name
    meta = reg.metadata("ranker", "v0002")
    assert meta["metrics"]["ndcg@5"] == pytest.approx(cand["ndcg@5"])
    assert meta["validation"]["ranker_reason"] == validation["ranker_reason"]
    assert json.loads((version_dir / "meta.json").read_text())["init_from"]  # incremental from production

    executor = json.loads((task_dir(run, "export-onnx-model") / "executor_output.json").read_text())
    onnx_meta = executor["artifacts"]["onnx_model"]["artifacts"][0]["metadata"]
    assert onnx_meta["onnx_max_abs_diff"] < 1e-4

    assert steps.read_state(settings)["last_retrain_until"]


def test_retrain_trains_and_gates_the_lora_adapter(promoted):
    settings, run = promoted
    validation = json.loads((task_dir(run, "validate-candidates") / "validation.json").read_text())
    lora = validation["lora"]
    reg = ModelRegistry.from_settings(settings)
    if steps.lora_trainer() is None:
        assert lora["skipped"] is True and validation["promote_lora"] is False
        pytest.skip("naviyam.llm.train_lora not available: the branch reports the skip")
    assert lora["skipped"] is False
    assert lora["val_perplexity"] > 0 and lora["base_val_perplexity"] > 0
    if validation["promote_lora"]:
        assert lora["val_perplexity"] < lora["base_val_perplexity"]
        assert reg.current_version("lora") == "v0001"
        adapter = reg.resolve("lora")
        assert (adapter / "adapter_config.json").exists()
        # The registry's production adapter is the one the LLM serves: nothing else to publish to.
        from naviyam.registry import adapter_registry

        served, model = adapter_registry(steps.load_settings(str(settings.home), ""))
        assert served.current_version(model) == "v0001"
        assert served.metadata(model, "v0001")["adapter_version"] == lora["adapter_version"]
    else:
        assert reg.current_version("lora") is None
        assert task_dir(run, "note").exists()


def test_canary_is_compared_on_live_metrics_and_promoted(canaried):
    settings, run = canaried
    reg = ModelRegistry.from_settings(settings)
    status = reg.status("ranker")
    assert (status["production"], status["previous"], status["canary"]) == ("v0002", "v0001", None)

    routing = task_dir(run, "route-canary") / "routing"
    graph = load_graph(routing / "naviyam-canary.yaml")
    assert splitter_weights(graph, SPLIT_NODE) == {"naviyam-ranker": 90, "naviyam-ranker-canary": 10}
    patch = json.loads((routing / "isvc-patch.json").read_text())
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patch["spec"]["transformer"]["annotations"]["naviyam.io/ranker-version"] == "v0002"

    executor = json.loads((task_dir(run, "observe-canary") / "executor_output.json").read_text())
    comparison = executor["artifacts"]["comparison"]["artifacts"][0]["metadata"]
    assert comparison["decision"] == "promote"
    assert comparison["canary_requests"] >= 100
    assert comparison["production_requests"] > 5 * comparison["canary_requests"]   # ~90/10
    assert comparison["canary_error_rate"] <= 0.05
    result = json.loads((task_dir(run, "conclude-canary") / "result" / "result.json").read_text())
    assert result["decision"] == "promote" and result["patch"]["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert not (settings.home / "serving" / "naviyam-canary.yaml").exists()  # back to the production graph


def test_retrain_with_a_worse_candidate_stops_with_a_report(rejected):
    settings, run = rejected
    reg = ModelRegistry.from_settings(settings)
    assert reg.status("ranker")["versions"] == ["v0001", "v0002"]      # nothing registered
    assert reg.current_version("ranker") == "v0002"
    validation = json.loads((task_dir(run, "validate-candidates") / "validation.json").read_text())
    assert validation["promote_ranker"] is False
    assert "fail" in validation["ranker_reason"]
    report = (task_dir(run, "reject-candidate") / "report").read_text()
    assert "Candidate not promoted" in report
    assert not task_dir(run, "register-ranker").exists()
    assert steps.read_state(settings)["last_retrain"]["ranker"] is None


@pytest.fixture(scope="module")
def kept(rejected, loop_home):
    settings, config = loop_home
    return settings, run_local("retrain", home=settings.home, config=config, train_lora=False)


def test_retrain_without_new_feedback_keeps_production_with_a_report(kept):
    settings, run = kept
    reg = ModelRegistry.from_settings(settings)
    assert reg.status("ranker")["versions"] == ["v0001", "v0002"] and reg.current_version("ranker") == "v0002"
    assert run["decision"] == "keep production"
    assert run["summary"]["data"]["new_feedback"] == 0 and "a retrain needs 50" in run["summary"]["why"]
    assert not task_dir(run, "train-wide-deep").exists()              # the dsl.Else branch, not a failure
    report = (task_dir(run, "keep-production") / "report").read_text(encoding="utf-8")
    assert "keep production" in report and "new_feedback" in report
    assert steps.read_state(settings)["last_retrain"]["kept"]


def test_drift_rolls_back_without_failing_a_request(kept, loop_home):
    from naviyam.ranking.scorer import OnnxRanker
    from naviyam.simulate import simulate_drift, simulate_traffic

    settings, config = loop_home
    simulate_traffic(settings, 500, "none", seed=11)
    simulate_drift(settings, "broken_feature", 400, seed=12)

    reg = ModelRegistry.from_settings(settings)
    catalog = Catalog.load(settings.data_dir)
    user = catalog.users.iloc[[0]]
    shops = catalog.shops["shop_id"].iloc[:20].tolist()
    school = catalog.schools.loc[user["school_id"].iloc[0]]
    context = pd.DataFrame({"now": [pd.Timestamp("2026-11-03 15:30")], "time_slot": ["after_school"],
                            "origin_lat": [school["lat"]], "origin_lon": [school["lon"]]})
    hot = HotModel(ModelRegistry.from_settings(settings), "ranker", OnnxRanker.load)
    assert hot.version == "v0002"
    errors: list[BaseException] = []
    served: list[str] = []
    stop = threading.Event()

    def serve() -> None:  # what a ranker server does per request: poll the pointer, score
        while not stop.is_set():
            try:
                hot.maybe_reload()
                loaded = hot.get()
                scores = loaded.value.predict(loaded.value.features.build_inputs(user, shops, context))
                assert len(scores) == len(shops)
                assert (reg.resolve("ranker") / "model.onnx").is_file()
                served.append(loaded.version)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            time.sleep(0.005)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        run = run_local("drift", home=settings.home, config=config, follow=False)
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join()

    assert errors == []
    assert served and served[0] == "v0002" and served[-1] == "v0001"
    status = reg.status("ranker")
    assert status["production"] == "v0001"
    assert reg.pointer("ranker")["rolled_back_from"] == "v0002"

    drift = json.loads((task_dir(run, "check-drift") / "drift.json").read_text())
    assert drift["action"] == "rollback_and_retrain"
    assert drift["error_rate_exceeded"] is True and drift["drifted"] is True
    assert "score" in drift["drift"]["drifted_columns"]
    report = (task_dir(run, "check-drift") / "report").read_text(encoding="utf-8")
    assert report.lstrip().lower().startswith("<!doctype html>") and len(report) > 10_000   # Evidently's
    assert (task_dir(run, "check-drift") / "intent_report").stat().st_size > 0

    requests = steps.pending_retrain_requests(settings)
    assert len(requests) == 1 and "error rate" in requests[0]["reason"]

    # the monitor does not act twice on the same turns
    again = run_local("drift", home=settings.home, config=config, follow=False)
    assert json.loads((task_dir(again, "check-drift") / "drift.json").read_text())["action"] == "none"
    assert reg.current_version("ranker") == "v0001"
