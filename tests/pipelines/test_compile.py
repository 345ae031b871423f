"""`python -m pipelines.compile` writes valid IR YAML for the three pipelines, with the cluster
wiring of pipelines.cluster (volumes, the LoRA task's GPU node, no cache on live state)."""
from __future__ import annotations

import pytest

from pipelines import cluster
from pipelines.compile import check_ir, compile_all, kubernetes_executors, main, read_ir
from pipelines.components import BASE_IMAGE

HOME_CLAIMS = {"naviyam-data": "/var/lib/naviyam/data", "naviyam-models": "/var/lib/naviyam/models",
               "naviyam-state": "/var/lib/naviyam/state"}


def test_compile_all_pipelines(tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    written = {p.stem for p in tmp_path.glob("*.yaml")}
    assert written == {"retrain", "canary", "drift"}
    docs = {name: check_ir(tmp_path / f"{name}.yaml") for name in written}
    assert docs["retrain"]["pipelineInfo"]["name"] == "naviyam-retrain"
    assert docs["canary"]["pipelineInfo"]["name"] == "naviyam-canary"
    assert docs["drift"]["pipelineInfo"]["name"] == "naviyam-drift-monitor"
    for doc in docs.values():
        images = {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()}
        assert images == {BASE_IMAGE}
        # lightweight components: no pip installs beyond kfp itself
        for executor in doc["deploymentSpec"]["executors"].values():
            assert "packages_to_install" not in " ".join(executor["container"].get("command", []))


def test_retrain_ir_has_the_gate_and_typed_artifacts(tmp_path):
    path = compile_all(tmp_path)["retrain"]
    doc, _ = read_ir(path)
    conditions = set()

    def walk(node):
        if isinstance(node, dict):
            if "condition" in node:
                conditions.add(" ".join(str(node["condition"]).split()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    gate = "inputs.parameter_values['pipelinechannel--validate-candidates-promote_ranker'] == true"
    assert gate in conditions                            # the dsl.If gate
    assert f"!({gate})" in conditions                    # and its Else
    comps = doc["components"]
    out = comps["comp-validate-candidates"]["outputDefinitions"]["artifacts"]
    assert out["validation"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert out["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    assert comps["comp-train-wide-deep"]["outputDefinitions"]["artifacts"]["candidate"]["artifactType"][
        "schemaTitle"] == "system.Model"
    params = doc["root"]["inputDefinitions"]["parameters"]
    assert params["min_improvement"]["defaultValue"] == 0.02
    assert params["canary_percent"]["defaultValue"] == 10


def test_drift_and_canary_ir(tmp_path):
    paths = compile_all(tmp_path)
    drift, _ = read_ir(paths["drift"])
    html = drift["components"]["comp-check-drift"]["outputDefinitions"]["artifacts"]["report"]
    assert html["artifactType"]["schemaTitle"] == "system.HTML"
    assert drift["root"]["inputDefinitions"]["parameters"]["max_error_rate"]["defaultValue"] == 0.05
    canary, _ = read_ir(paths["canary"])
    assert canary["root"]["inputDefinitions"]["parameters"]["percent"]["defaultValue"] == 10


def _tasks(doc: dict) -> dict:
    """task name -> task spec of every component task, in the root DAG and the branches' DAGs."""
    out = dict(doc["root"]["dag"]["tasks"])
    for comp in doc["components"].values():
        out.update((comp.get("dag") or {}).get("tasks") or {})
    return {name: task for name, task in out.items()
            if "executorLabel" in doc["components"][task["componentRef"]["name"]]}


def _executor_of(doc: dict, task: dict) -> str:
    return doc["components"][task["componentRef"]["name"]]["executorLabel"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return {name: read_ir(path) for name, path in compile_all(tmp_path_factory.mktemp("ir")).items()}


@pytest.mark.parametrize("name", ["retrain", "canary", "drift"])
def test_every_task_on_live_state_mounts_the_home_and_is_never_cached(compiled, name):
    doc, platform = compiled[name]
    k8s = kubernetes_executors(platform)
    params = doc["root"]["inputDefinitions"]["parameters"]
    assert params["home"]["defaultValue"] == "/var/lib/naviyam" == cluster.HOME    # = the claims' parent
    assert params["config"]["defaultValue"] == "/etc/naviyam/config.yaml"
    live = 0
    for task_name, task in _tasks(doc).items():
        executor = _executor_of(doc, task)
        if "home" not in doc["components"][task["componentRef"]["name"]]["inputDefinitions"].get("parameters", {}):
            assert executor not in k8s, task_name                              # pure: no volume, cacheable
            assert task["cachingOptions"].get("enableCache") is True, task_name
            continue
        live += 1
        assert not task["cachingOptions"].get("enableCache"), task_name
        config = k8s[executor]
        assert {m["constant"]: m["mountPath"] for m in config["pvcMount"]} == HOME_CLAIMS, task_name
        assert [(c["configMapName"], c["mountPath"]) for c in config["configMapAsVolume"]] == [
            ("naviyam-config", "/etc/naviyam")]
        assert config["securityContext"] == {"runAsUser": "10001", "runAsGroup": "10001", "runAsNonRoot": True}
        # The state database's DSN from the Secret (manifests/base/postgres.yaml), never optional.
        assert [(e["secretName"], e["optional"], e["keyToEnv"]) for e in config["secretAsEnv"]] == [
            ("naviyam-postgres", False, [{"envVar": "NAVIYAM_STATE__DSN", "secretKey": "dsn"}])], task_name
    assert live >= 3


def test_collect_is_not_cached(compiled):
    doc, platform = compiled["retrain"]
    collect = doc["root"]["dag"]["tasks"]["collect-feedback"]
    assert collect["cachingOptions"] == {}                                      # enableCache absent = false
    assert "exec-collect-feedback" in kubernetes_executors(platform)


def test_lora_asks_for_a_gpu_node_and_trains_on_the_collected_data(compiled):
    doc, platform = compiled["retrain"]
    resources = doc["deploymentSpec"]["executors"]["exec-train-lora-adapter"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert resources["resourceMemoryLimit"] == "24Gi"
    k8s = kubernetes_executors(platform)
    lora = k8s["exec-train-lora-adapter"]
    assert lora["nodeSelector"] == {"labels": {"nvidia.com/gpu.present": "true"}}
    assert lora["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for executor, config in k8s.items():                                        # the only GPU task
        if executor != "exec-train-lora-adapter":
            assert "nodeSelector" not in config and "tolerations" not in config, executor
            assert "accelerator" not in doc["deploymentSpec"]["executors"][executor]["container"].get("resources", {})
    task = _tasks(doc)["train-lora-adapter"]                                   # inside dsl.If: via the branch
    assert task["inputs"]["artifacts"]["lora_data"] == {
        "componentInputArtifact": "pipelinechannel--collect-feedback-lora_data"}
    handed = [t["inputs"]["artifacts"]["pipelinechannel--collect-feedback-lora_data"]
              for t in doc["root"]["dag"]["tasks"].values()
              if "pipelinechannel--collect-feedback-lora_data" in (t.get("inputs") or {}).get("artifacts", {})]
    assert handed == [{"taskOutputArtifact": {"outputArtifactKey": "lora_data", "producerTask": "collect-feedback"}}]


def test_lora_node_is_a_compile_time_choice(tmp_path, monkeypatch):
    """NAVIYAM_LORA_GPUS=0: a cluster without GPU nodes; NAVIYAM_LLM_WEIGHTS_PVC: the base weights."""
    from kfp import compiler, dsl

    from pipelines.components import train_lora_adapter

    monkeypatch.setenv("NAVIYAM_LORA_GPUS", "0")
    monkeypatch.setenv("NAVIYAM_LLM_WEIGHTS_PVC", "naviyam-llm-weights")

    @dsl.pipeline(name="lora-only")
    def lora_only():
        data = dsl.importer(artifact_uri="minio://x/lora.jsonl", artifact_class=dsl.Dataset)
        train_lora_adapter(home=cluster.HOME, config=cluster.CONFIG, lora_data=data.output, enabled=True)
        cluster.configure()

    compiler.Compiler().compile(lora_only, str(tmp_path / "lora.yaml"))
    doc, platform = read_ir(tmp_path / "lora.yaml")
    config = kubernetes_executors(platform)["exec-train-lora-adapter"]
    assert "nodeSelector" not in config and "tolerations" not in config
    assert "resources" not in doc["deploymentSpec"]["executors"]["exec-train-lora-adapter"]["container"]
    mounts = {m["constant"]: m["mountPath"] for m in config["pvcMount"]}
    assert mounts == {**HOME_CLAIMS, "naviyam-llm-weights": "/var/lib/naviyam/llm"}
