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
def warnings_of(d) -> list[str]:
    return parse_graph(d).run_time_warnings()


def test_unknown_node_name_is_served_as_go_serves_it():
    """KServe accepts it; reaching the step answers 500 "invalid route type: " (pinned in test_kserve_cases)."""
    (w,) = warnings_of(doc({"root": {"routerType": "Sequence", "steps": [{"name": "s", "nodeName": "nowhere"}]}}))
    assert 'unknown node "nowhere"' in w


def test_cycle():
    d = doc({"root": {"routerType": "Sequence", "steps": [{"name": "a", "nodeName": "b"}]},
             "b": {"routerType": "Sequence", "steps": [{"name": "c", "nodeName": "c"}]},
             "c": {"routerType": "Ensemble", "steps": [{"name": "back", "nodeName": "b"}]}})
    one_error(d, "cycle", "b -> c -> b")


def test_self_reference_is_a_cycle():
    one_error(doc({"root": {"routerType": "Sequence", "steps": [{"name": "a", "nodeName": "root"}]}}),
              "cycle: root -> root")


def test_switch_step_without_condition_is_served():
    (w,) = warnings_of(doc({"root": {"routerType": "Switch", "steps": [step()]}}))
    assert 'the key ""' in w


def test_data_other_than_response_is_served_as_request():
    """KServe serves ``data: $response.predictions``: the step gets the node's input."""
    d = doc({"root": {"routerType": "Sequence",
                      "steps": [step(name="a"), step(name="b", data="$response.predictions")]}})
    (w,) = warnings_of(d)
    assert "$response.predictions" in w and "node's input" in w


def test_condition_on_first_sequence_step_is_served():
    (w,) = warnings_of(doc({"root": {"routerType": "Sequence", "steps": [step(condition="x")]}}))
    assert "invalid response" in w


def test_empty_sequence():
    one_error(doc({"root": {"routerType": "Sequence", "steps": []}}), "has no steps")


def test_empty_ensemble_is_served():
    (w,) = warnings_of(doc({"root": {"routerType": "Ensemble", "steps": []}}))
    assert "200 {}" in w


@pytest.mark.parametrize("condition, fragment", [
    ("a|b", "pipes"),
    ("@reverse.0", "@reverse"),
    ("@this:x", "arguments"),
    ("{a,b}", "multipaths"),
    ("!true", "static literals"),
    ("..a", "JSON Lines"),
    ("[a:b]", "named selectors"),
    ("[a,b", "unbalanced"),
    ("a.#(b==1", "unbalanced query"),
    ("a[0]", "outside a query"),
    ("a.#(b==1)x", "after a query"),
    ("a.@this", "pipes"),
])
def test_conditions_go_would_read_differently_are_refused_at_load(condition, fragment):
    """A condition we cannot evaluate exactly as Go's gjson must fail the load, not route elsewhere."""
    for router_type, steps in (("Switch", [step(condition=condition)]),
                               ("Sequence", [step(name="a"), step(name="b", condition=condition)])):
        one_error(doc({"root": {"routerType": router_type, "steps": steps}}), "[local]", fragment)


@pytest.mark.parametrize("condition", [
    "[@this].#(decision_picker==ERROR)", '[@this].#(needs_search==true)', '@this', 'predictions.#(label=="dog")',
    "instances.#(modelId>1)#.x", "a.#.b", "a\\.b", "a\\[0\\]", "k*y.?", "#", "[a,b].#", "a.#(b%\"x*\")", "",
])
def test_conditions_evaluated_as_go_are_accepted(condition):
    parse_graph(doc({"root": {"routerType": "Switch", "steps": [step(condition=condition)]}}))


def test_all_errors_reported_at_once():
    d = doc({"main": {"routerType": "Splitter", "steps": [step(name="a", weight=10, nodeName="x", condition="a|b")]}})
    errors = errors_of(d)
    assert len(errors) == 4, errors  # no root, two targets, weights, the condition (an unknown node is served)


def test_naviyam_yaml_mutations_are_caught():
    base = yaml.safe_load(NAVIYAM_GRAPH.read_text(encoding="utf-8"))
    d = copy.deepcopy(base)
    d["spec"]["nodes"]["search-switch"]["steps"][0]["nodeName"] = "search-and-rnak"
    assert any("search-and-rnak" in w for w in warnings_of(d))  # KServe serves it; the router logs it
    d = copy.deepcopy(base)
    del d["spec"]["nodes"]["root"]
    assert any("root node not found" in e for e in errors_of(d))
    d = copy.deepcopy(base)
    d["spec"]["nodes"]["search-switch"]["steps"][0]["condition"] = "[@this]|#(needs_search==true)"
    assert any("pipes" in e for e in errors_of(d))


def test_naviyam_graph_has_nothing_to_warn_about():
    assert load_graph(NAVIYAM_GRAPH, crd_dir=None).run_time_warnings() == []
