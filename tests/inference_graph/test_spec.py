"""Graph spec: loading, the KServe webhook's rules, ours, and the CRD schema."""
from __future__ import annotations

import copy

import pytest
import yaml

from inference_graph.spec import (
    CRD_FILE,
    DEFAULT_CRD_DIR,
    NAVIYAM_GRAPH,
    GraphValidationError,
    crd_validation_errors,
    load_graph,
    parse_graph,
)

needs_crds = pytest.mark.skipif(not (DEFAULT_CRD_DIR / CRD_FILE).is_file(),
                                reason=f"KServe CRDs not found at {DEFAULT_CRD_DIR} (the shared checkout ../shared "
                                       "is absent); CRD schema checks skipped")


def doc(nodes, name="g", **spec):
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph", "metadata": {"name": name},
            "spec": {"nodes": nodes, **spec}}


def step(**kw):
    return {"name": "s", "serviceName": "svc", **kw}


def errors_of(d) -> list[str]:
    with pytest.raises(GraphValidationError) as exc:
        parse_graph(d)
    return exc.value.errors


def one_error(d, *fragments: str) -> str:
    errors = errors_of(d)
    assert len(errors) == 1, errors
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


def test_naviyam_graph_loads():
    g = load_graph(NAVIYAM_GRAPH, crd_dir=None)
    assert g.name == "naviyam" and "root" in g.nodes
    # retriever and candidates are called by the ranker's transformer, not by the graph (see the YAML).
    assert g.service_names() == {"naviyam-nlu", "naviyam-ranker", "naviyam-nlg"}
    assert g.spec.timeout == 10
    assert g.nodes["search-switch"].router_type.value == "Switch"


@needs_crds
def test_naviyam_graph_matches_the_crd():
    d = yaml.safe_load(NAVIYAM_GRAPH.read_text(encoding="utf-8"))
    assert crd_validation_errors(d) == []
    load_graph(NAVIYAM_GRAPH, require_crd=True)


@needs_crds
def test_crd_check_reports_bad_enum_wrong_type_and_unknown_fields(tmp_path):
    d = yaml.safe_load(NAVIYAM_GRAPH.read_text(encoding="utf-8"))
    d["spec"]["nodes"]["search-switch"]["routerType"] = "Parallel"
    d["spec"]["timeout"] = "ten"
    d["spec"]["nodes"]["root"]["steps"][0]["servicename"] = "typo"
    errors = crd_validation_errors(d)
    assert any("spec.nodes.search-switch.routerType" in e and "Parallel" in e for e in errors)
    assert any(e.startswith("spec.timeout") for e in errors)
    assert "spec.nodes.root.steps[0].servicename: unknown field (not in the CRD schema)" in errors
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(GraphValidationError, match="Parallel"):
        load_graph(path)


def test_missing_crds_are_skipped_unless_required(tmp_path):
    load_graph(NAVIYAM_GRAPH, crd_dir=tmp_path)  # no CRD there: structural checks only
    with pytest.raises(FileNotFoundError):
        load_graph(NAVIYAM_GRAPH, crd_dir=tmp_path, require_crd=True)


def test_manifest_round_trip():
    d = yaml.safe_load(NAVIYAM_GRAPH.read_text(encoding="utf-8"))
    assert parse_graph(d).to_manifest() == d


# -- KServe webhook rules ------------------------------------------------------------------------
def test_missing_root():
    one_error(doc({"main": {"routerType": "Sequence", "steps": [step()]}}), "root node not found")


def test_two_targets():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [step(serviceUrl="http://x")]}}),
              "more than one of nodeName, serviceName, serviceUrl", "serviceName, serviceUrl")


def test_no_target():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [{"name": "s"}]}}), "does not specify an inference target")


def test_splitter_weights_must_sum_to_100():
    one_error(doc({"root": {"routerType": "Splitter", "steps": [step(name="a", weight=30), step(name="b", weight=60)]}}),
              "sum to 90", "must sum to 100")


def test_splitter_weights_must_be_present():
    one_error(doc({"root": {"routerType": "Splitter", "steps": [step(name="a", weight=100), step(name="b")]}}),
              "missing the weight")


def test_duplicate_step_names():
    one_error(doc({"root": {"routerType": "Ensemble", "steps": [step(), step()]}}), 'more than one step named "s"')


def test_graph_name_format():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [step()]}}, name="Naviyam_Graph"), "lower case")


def test_bad_router_type_and_dependency_are_rejected_by_the_model():
    errors = errors_of(doc({"root": {"routerType": "Parallel", "steps": [step(dependency="Maybe")]}}))
    assert any("routerType" in e for e in errors) and any("dependency" in e for e in errors)


def test_unknown_field_is_rejected_by_the_model():
    errors = errors_of(doc({"root": {"routerType": "Sequence", "steps": [step(servicename="x")]}}))
    assert any("servicename" in e for e in errors)


# -- our rules -------------------------------------------------------------------------------------
def test_unknown_node_name():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [{"name": "s", "nodeName": "nowhere"}]}}),
              'unknown node "nowhere"')


def test_cycle():
    d = doc({"root": {"routerType": "Sequence", "steps": [{"name": "a", "nodeName": "b"}]},
             "b": {"routerType": "Sequence", "steps": [{"name": "c", "nodeName": "c"}]},
             "c": {"routerType": "Ensemble", "steps": [{"name": "back", "nodeName": "b"}]}})
    one_error(d, "cycle", "b -> c -> b")


def test_self_reference_is_a_cycle():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [{"name": "a", "nodeName": "root"}]}}),
              "cycle: root -> root")


def test_switch_step_needs_condition():
    one_error(doc({"root": {"routerType": "Switch", "steps": [step()]}}), "needs a condition")


def test_data_must_be_request_or_response():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [step(data="$response.predictions")]}}),
              "$request", "$response")


def test_condition_on_first_sequence_step():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [step(condition="x")]}}), "step 0 of Sequence")


def test_empty_node():
    one_error(doc({"root": {"routerType": "Sequence", "steps": []}}), "has no steps")


def test_all_errors_reported_at_once():
    d = doc({"main": {"routerType": "Splitter", "steps": [step(name="a", weight=10, nodeName="x")]}})
    errors = errors_of(d)
    assert len(errors) == 4, errors  # no root, two targets, weights, unknown node


def test_naviyam_yaml_mutations_are_caught():
    base = yaml.safe_load(NAVIYAM_GRAPH.read_text(encoding="utf-8"))
    d = copy.deepcopy(base)
    d["spec"]["nodes"]["search-switch"]["steps"][0]["nodeName"] = "search-and-rnak"
    one_error(d, "search-and-rnak")
    d = copy.deepcopy(base)
    del d["spec"]["nodes"]["root"]
    assert any("root node not found" in e for e in errors_of(d))
