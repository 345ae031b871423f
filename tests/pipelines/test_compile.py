"""`python -m pipelines.compile` writes valid IR YAML for the three pipelines."""
from __future__ import annotations

import yaml

from pipelines.compile import check_ir, compile_all, main
from pipelines.components import BASE_IMAGE


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
    doc = yaml.safe_load(path.read_text())
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
    drift = yaml.safe_load(paths["drift"].read_text())
    html = drift["components"]["comp-check-drift"]["outputDefinitions"]["artifacts"]["report"]
    assert html["artifactType"]["schemaTitle"] == "system.HTML"
    assert drift["root"]["inputDefinitions"]["parameters"]["max_error_rate"]["defaultValue"] == 0.05
    canary = yaml.safe_load(paths["canary"].read_text())
    assert canary["root"]["inputDefinitions"]["parameters"]["percent"]["defaultValue"] == 10
