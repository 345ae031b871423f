"""KServe's own router cases, replayed against ours with KServe's expected statuses and bodies.

Sources (kserve/kserve, main.go identical at v0.20.0 and at head):
- ``cmd/router/main_test.go``: each ``Test...`` function (its subtests for TestServerTimeout);
- ``test/e2e/graph/test_inference_graph.py`` with the graphs of ``test/e2e/graph/test-resources``
  (``ig_test_*_scenario_N.yaml``) and its two images: ``success-200-isvc`` answers
  ``{"predictions": [{"message": "SUCCESS"}]}``, ``error-404-isvc`` raises FastAPI's
  ``HTTPException(404, "Intentional 404 code")``, i.e. 404 ``{"detail": "Intentional 404 code"}``.
  The two ``*_raw_mode*`` tests there check Kubernetes objects only (their predict call is
  commented out), so they have no routing case to port.
- ``cmd/router/main.go`` itself, for behaviours no KServe test pins (the last section); each names
  the function of main.go it follows.

Every test names its source in its docstring. The graphs are rebuilt here as dicts; the fake
model servers are the loopback ones of conftest.py.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from pathlib import Path

import httpx
import pytest
import yaml

from inference_graph import conditions, gjson_path
from inference_graph.graph_router import GraphRouter, new_client
from inference_graph.headers import patterns_from_env
from inference_graph.router import create_app

SUCCESS = {"predictions": [{"message": "SUCCESS"}]}
INTENTIONAL_404 = {"detail": "Intentional 404 code"}
NO_MATCH = {"error": "Failed to process request", "cause": "None of the routes matched with the switch condition"}
# test/e2e/graph/test-resources inputs
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
PICK_ERROR = {"decision_picker": "ERROR", "key1": {"name": "abc"}}
PICK_SUCCESS = {"decision_picker": "SUCCESS", "key1": {"name": "abc"}}
PICK_NO_MATCH = {"decision_picker": "NO_MATCH", "key1": {"name": "abc"}}


def seq(*steps):
    return {"routerType": "Sequence", "steps": list(steps)}


def step(name, target, **kw):
    kind = "nodeName" if not target.startswith(("http", "svc:")) else (
        "serviceName" if target.startswith("svc:") else "serviceUrl")
    return {"name": name, kind: target.removeprefix("svc:"), **kw}


@pytest.fixture()
def isvcs(fake, kit):
    """The e2e images: success-200-isvc and error-404-isvc."""
    fake.set("success", kit.Reply(SUCCESS))
    fake.set("error", kit.Reply(INTENTIONAL_404, status=404))
    return fake


def route_isvcs(kit, fake, nodes, payload):
    return kit.route(kit.graph_of(nodes), payload, fake.urls("success", "error"))


# -- cmd/router/main_test.go ----------------------------------------------------------------------
def test_simple_model_chainer(fake, kit):
    """main_test.go TestSimpleModelChainer: mapPredictionsToInstances on the first step turns the
    request's predictions into instances; the second step gets the first's response."""
    fake.set("model1", kit.Reply({"predictions": "1"}))
    fake.set("model2", kit.Reply({"predictions": "2"}))
    g = kit.graph_of({"root": seq(step("model1", fake.url("model1"), mapPredictionsToInstances=True),
                                  step("model2", fake.url("model2"), data="$response"))})
    resp = kit.route(g, {"predictions": ["test", "test2"]}, headers={"Authorization": "Bearer Token"})
    assert fake.body_of("model1") == {"instances": ["test", "test2"]}
    assert "predictions" in fake.body_of("model2")
    assert resp.status == 200 and resp.json() == {"predictions": "2"}


def test_simple_model_ensemble(fake, kit):
    """main_test.go TestSimpleModelEnsemble."""
    fake.set("model1", kit.Reply({"predictions": "1"}))
    fake.set("model2", kit.Reply({"predictions": "2"}))
    g = kit.graph_of({"root": {"routerType": "Ensemble", "steps": [step("model1", fake.url("model1")),
                                                                   step("model2", fake.url("model2"))]}})
    resp = kit.route(g, {"instances": ["test", "test2"]}, headers={"Authorization": "Bearer Token"})
    assert resp.status == 200
    assert resp.json() == {"model1": {"predictions": "1"}, "model2": {"predictions": "2"}}


def animals(kit, fake):
    def pred(label, score):
        return kit.Reply({"predictions": [{"label": label, "score": score}]})

    fake.set("model1", pred("cat", [0.1, 0.9]))
    fake.set("model2", pred("dog", [0.8, 0.2]))
    fake.set("model3", pred("beagle", [0.1, 0.9]))
    fake.set("model4", pred("poodle", [0.8, 0.2]))


def test_inference_graph_with_condition(fake, kit):
    """main_test.go TestInferenceGraphWithCondition: a Switch picks model2 (modelId "2"), whose
    "dog" meets step2's condition, so the Ensemble of model3 and model4 answers."""
    animals(kit, fake)
    g = kit.graph_of({
        "root": seq(step("step1", "animal-categorize"),
                    step("step2", "breed-categorize", condition='predictions.#(label=="dog")')),
        "animal-categorize": {"routerType": "Switch", "steps": [
            step("model1", fake.url("model1"), condition='instances.#(modelId=="1")'),
            step("model2", fake.url("model2"), condition='instances.#(modelId=="2")')]},
        "breed-categorize": {"routerType": "Ensemble", "steps": [step("model3", fake.url("model3")),
                                                                 step("model4", fake.url("model4"))]}})
    resp = kit.route(g, {"instances": [{"modelId": "2"}]}, headers={"Authorization": "Bearer Token"})
    assert resp.status == 200
    assert resp.json()["model3"] == {"predictions": [{"label": "beagle", "score": [0.1, 0.9]}]}
    assert resp.json()["model4"] == {"predictions": [{"label": "poodle", "score": [0.8, 0.2]}]}
    assert sorted(fake.called()) == ["model2", "model3", "model4"]


def test_inference_graph_sequence_with_unmet_condition(fake, kit):
    """main_test.go TestInferenceGraphSequenceWithUnmetCondition: 200 with step1's response; step2
    (http://dummy) is never called."""
    fake.set("model1", kit.Reply({"predictions": [{"label": "cat", "score": [0.8, 0.2]}]}))
    g = kit.graph_of({"root": seq(step("step1", fake.url("model1")),
                                  step("step2", "http://dummy", condition='predictions.#(label=="dog")'))})
    resp = kit.route(g, {"instances": [{"modelId": "1"}]})
    assert resp.status == 200
    assert resp.json() == {"predictions": [{"label": "cat", "score": [0.8, 0.2]}]}


HEADERS = {"Authorization": "Bearer Token", "Test-Header-Key": "Test-Header-Value"}
NUMBERED = {"Authorization": "Bearer Token", "Test-Header-1": "Test-Header-1", "Test-Header-2": "Test-Header-2",
            "Test-Header-3": "Test-Header-3"}


@pytest.mark.parametrize("patterns, sent, expected", [
    pytest.param([], HEADERS, {}, id="TestCallServiceWhenNoneHeadersToPropagateIsEmpty"),
    pytest.param(["Test-Header-Key"], HEADERS, {"Test-Header-Key": "Test-Header-Value"},
                 id="TestCallServiceWhen1HeaderToPropagate"),
    pytest.param(["Test-Header-Key", "Authorization"], HEADERS, HEADERS,
                 id="TestCallServiceWhenMultipleHeadersToPropagate"),
    pytest.param(["Test-Header-*", "Auth*"], NUMBERED, NUMBERED,
                 id="TestCallServiceWhenMultipleHeadersToPropagateUsingPatterns"),
    pytest.param(["Test-Header-[0-9", "Auth*"], NUMBERED, {"Authorization": "Bearer Token"},
                 id="TestCallServiceWhenMultipleHeadersToPropagateUsingInvalidPattern"),
])
def test_call_service_header_propagation(fake, kit, patterns, sent, expected):
    """main_test.go TestCallServiceWhen*: the headers a service receives are exactly those whose
    name matches a pattern; an invalid pattern is skipped, the others still apply."""
    fake.set("model1", kit.Reply({"predictions": "1"}))
    g = kit.graph_of({"root": seq(step("model1", fake.url("model1")))})
    resp = kit.route(g, {"instances": ["test", "test2"]}, headers=sent, propagate_headers=patterns)
    assert resp.status == 200 and resp.json() == {"predictions": "1"}
    seen = fake.calls[0].headers
    assert {k: seen[k.lower()] for k in sent if k.lower() in seen} == expected


def test_malformed_url(kit):
    """main_test.go TestMalformedURL: callService answers 500 with an error, no call made."""
    url = "http://single-1.default.{$your-domain}/switch"
    resp = kit.route(kit.graph_of({"root": seq(step("s", url))}), b"")
    assert resp.status == 500
    assert resp.json() == {"error": "Failed to process request",
                           "cause": f'parse "{url}": invalid character "{{" in host name'}


def chain_app(kit, fake, tmp_path, timeout=None, delay=0.0) -> Path:
    fake.set("model1", kit.Reply({"predictions": "1"}, delay=delay))
    fake.set("model2", kit.Reply({"predictions": "2"}, delay=delay))
    spec = {"nodes": {"root": seq(step("model1", fake.url("model1")),
                                  step("model2", fake.url("model2"), data="$response"))}}
    if timeout is not None:
        spec["routerTimeouts"] = {"serverRead": timeout, "serverWrite": timeout, "serverIdle": timeout}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                                    "metadata": {"name": "timeouts"}, "spec": spec}))
    return path


@pytest.mark.parametrize("timeout, delay, answers", [
    pytest.param(None, 0.001, True, id="TestServerTimeout/default"),
    pytest.param(1, 0.6, False, id="TestServerTimeout/timeout"),
    pytest.param(2, 0.5, True, id="TestServerTimeout/success"),
])
def test_server_timeout(fake, kit, tmp_path, timeout, delay, answers):
    """main_test.go TestServerTimeout: routerTimeouts serverWrite shorter than the two sequential
    steps -> the client sees the connection close without a response (Go's "EOF"); otherwise 200.
    Served over loopback, an empty POST body as in the Go test. (The Go test's 1 s steps are 0.6 s
    here: still past the 1 s timeout together.)"""
    app = create_app(chain_app(kit, fake, tmp_path, timeout, delay), {})
    with kit.ThreadedServer(app) as server:
        url = f"http://127.0.0.1:{server.port}/"
        if answers:
            resp = httpx.post(url, content=b"", timeout=10)
            assert resp.status_code == 200 and resp.json() == {"predictions": "2"}
        else:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                httpx.post(url, content=b"", timeout=10)


class _Points:
    """An rng whose randrange hands out given points (and records the bound it was asked for)."""

    def __init__(self, points):
        self.points = iter(points)
        self.bounds: list[int] = []

    def randrange(self, bound):
        self.bounds.append(bound)
        return next(self.points)


def splitter(weights):
    return {"root": {"routerType": "Splitter", "steps": [
        {"name": f"model{i + 1}", "serviceUrl": f"http://example.com/model{i + 1}", "weight": w}
        for i, w in enumerate(weights)]}}


@pytest.mark.parametrize("weights", [pytest.param((20, 80), id="TestPickupRouteNeverReturnsNil"),
                                     pytest.param((30, 70), id="TestPickupRouteAlwaysReturnsRouteForAllRandValues")])
def test_pickup_route_always_returns_a_route(kit, weights):
    """main_test.go TestPickupRouteNeverReturnsNil / ...AlwaysReturnsRouteForAllRandValues: every
    draw picks a route - here for each of the 100 points the draw can give, and for 10,000 random ones."""
    rng = _Points(range(100))
    router = GraphRouter(kit.graph_of(splitter(weights)), {}, rng=rng)
    picked = [router._pick_by_weight(router._nodes["root"]).label for _ in range(100)]
    assert picked == ["model1"] * weights[0] + ["model2"] * weights[1]
    router = GraphRouter(kit.graph_of(splitter(weights)), {}, rng=random.Random(5))
    assert all(router._pick_by_weight(router._nodes["root"]) is not None for _ in range(10_000))


def test_crypto_rand_int_upper_bound_with_fix(kit):
    """main_test.go TestCryptoRandIntUpperBoundWithFix (KServe #5489, v0.19): the draw is in [0, 100),
    so it can never fall past the last weight."""
    rng = _Points([99])
    router = GraphRouter(kit.graph_of(splitter((20, 80))), {}, rng=rng)
    assert router._pick_by_weight(router._nodes["root"]).label == "model2" and rng.bounds == [100]
    draws = random.Random(11)
    assert all(0 <= GraphRouter(kit.graph_of(splitter((50, 50))), {}, rng=draws)._rng.randrange(100) < 100
               for _ in range(1000))


# -- test/e2e/graph/test_inference_graph.py ------------------------------------------------------------
def test_e2e_inference_graph_model_chainer(fake, kit):
    """test_inference_graph.py test_inference_graph: three Hard steps, the later two on $request;
    the answer is the last step's (sklearn iris: predictions [1, 1])."""
    fake.set("sklearn-1", kit.echo(step=1))
    fake.set("xgboost", kit.echo(step=2))
    fake.set("sklearn-2", kit.Reply({"predictions": [1, 1]}))
    g = kit.graph_of({"root": seq({"serviceName": "sklearn-1", "dependency": "Hard"},
                                  {"serviceName": "xgboost", "data": "$request", "dependency": "Hard"},
                                  {"serviceName": "sklearn-2", "data": "$request", "dependency": "Hard"})})
    resp = kit.route(g, IRIS, fake.urls("sklearn-1", "xgboost", "sklearn-2"))
    assert resp.status == 200 and resp.json()["predictions"] == [1, 1]
    assert fake.body_of("xgboost") == fake.body_of("sklearn-2") == IRIS


def test_e2e_scenario1_soft_then_soft_error(isvcs, kit):
    """test_inference_graph.py test_ig_scenario1: success (soft) -> error (soft, $request): the
    error's 404 and body are the answer."""
    resp = route_isvcs(kit, isvcs, {"root": seq({"serviceName": "success"},
                                                {"serviceName": "error", "data": "$request"})}, IRIS)
    assert resp.status == 404 and resp.json() == INTENTIONAL_404


def test_e2e_scenario2_soft_error_then_success(isvcs, kit):
    """test_inference_graph.py test_ig_scenario2: error (soft) -> success ($request): 200 SUCCESS."""
    resp = route_isvcs(kit, isvcs, {"root": seq({"serviceName": "error"},
                                                {"serviceName": "success", "data": "$request"})}, IRIS)
    assert resp.status == 200 and resp.json() == SUCCESS


def test_e2e_scenario3_hard_error_stops_the_sequence(isvcs, kit):
    """test_inference_graph.py test_ig_scenario3 (ig_test_seq_scenario_3.yaml): a Hard step's 404
    stops the Sequence before the Soft success step."""
    resp = route_isvcs(kit, isvcs, {"root": seq(step("rootStep1", "svc:error", dependency="Hard"),
                                                step("rootStep2", "svc:success", dependency="Soft"))}, IRIS)
    assert resp.status == 404 and resp.json() == INTENTIONAL_404
    assert isvcs.called() == ["error"]


SCENARIO_4 = {"root": {"routerType": "Switch", "steps": [
    step("rootStep1", "svc:error", condition="[@this].#(decision_picker==ERROR)", dependency="Soft"),
    step("rootStep2", "svc:success", condition="[@this].#(decision_picker==SUCCESS)", dependency="Soft")]}}


@pytest.mark.parametrize("payload, status, body", [
    pytest.param(PICK_ERROR, 404, INTENTIONAL_404, id="case1-error-picker"),
    pytest.param(PICK_SUCCESS, 200, SUCCESS, id="case2-success-picker"),
    pytest.param(PICK_NO_MATCH, 404, NO_MATCH, id="case3-no-match"),
])
def test_e2e_scenario4_switch(isvcs, kit, payload, status, body):
    """test_inference_graph.py test_ig_scenario4 (ig_test_switch_scenario_4.yaml): unquoted GJSON
    values compare as strings; no match at the root is 404 with KServe's error body, exactly."""
    resp = route_isvcs(kit, isvcs, SCENARIO_4, payload)
    assert resp.status == status and resp.json() == body


def switch_then_success(root_dependency, router_type="Switch", **extra):
    node_step = step("node1Step1", "svc:error", condition="[@this].#(decision_picker==ERROR)", **extra)
    return {"root": seq(step("rootStep1", "node1", dependency=root_dependency), step("rootStep2", "svc:success")),
            "node1": {"routerType": router_type, "steps": [node_step]}}


def test_e2e_scenario5_soft_switch_flows_on(isvcs, kit):
    """test_inference_graph.py test_ig_scenario5 (ig_test_switch_scenario_5.yaml): the Switch routes
    to the error service; the Soft step lets the Sequence go on to success."""
    resp = route_isvcs(kit, isvcs, switch_then_success("Soft"), PICK_ERROR)
    assert resp.status == 200 and resp.json() == SUCCESS
    assert isvcs.called() == ["error", "success"]


def test_e2e_scenario6_hard_switch_stops(isvcs, kit):
    """test_inference_graph.py test_ig_scenario6 (ig_test_switch_scenario_6.yaml): Hard inside and
    out: the error's 404 is the answer."""
    resp = route_isvcs(kit, isvcs, switch_then_success("Hard", dependency="Hard"), PICK_ERROR)
    assert resp.status == 404 and resp.json() == INTENTIONAL_404
    assert isvcs.called() == ["error"]


def test_e2e_scenario7_soft_ensemble_merges_the_error_body(isvcs, kit):
    """test_inference_graph.py test_ig_scenario7 (ig_test_ensemble_scenario_7.yaml)."""
    g = {"root": {"routerType": "Ensemble", "steps": [step("rootStep1", "svc:success"),
                                                      step("rootStep2", "svc:error")]}}
    resp = route_isvcs(kit, isvcs, g, PICK_SUCCESS)
    assert resp.status == 200 and resp.json() == {"rootStep1": SUCCESS, "rootStep2": INTENTIONAL_404}


def test_e2e_scenario8_hard_ensemble_member_is_the_answer(isvcs, kit):
    """test_inference_graph.py test_ig_scenario8 (ig_test_ensemble_scenario_8.yaml)."""
    g = {"root": {"routerType": "Ensemble", "steps": [step("rootStep1", "svc:error", dependency="Hard"),
                                                      step("rootStep2", "svc:success"),
                                                      step("rootStep3", "svc:success")]}}
    resp = route_isvcs(kit, isvcs, g, PICK_SUCCESS)
    assert resp.status == 404 and resp.json() == INTENTIONAL_404


def test_e2e_scenario9_soft_splitter_flows_on(isvcs, kit):
    """test_inference_graph.py test_ig_scenario9 (ig_test_switch_scenario_9.yaml): a Splitter
    ignores the condition; weight 100 goes to error, Soft, then success answers."""
    resp = route_isvcs(kit, isvcs, switch_then_success("Soft", "Splitter", weight=100), IRIS)
    assert resp.status == 200 and resp.json() == SUCCESS


def test_e2e_scenario10_hard_splitter_stops(isvcs, kit):
    """test_inference_graph.py test_ig_scenario10 (ig_test_switch_scenario_10.yaml)."""
    resp = route_isvcs(kit, isvcs, switch_then_success("Hard", "Splitter", weight=100, dependency="Hard"), IRIS)
    assert resp.status == 404 and resp.json() == INTENTIONAL_404
    assert isvcs.called() == ["error"]


# -- cmd/router/main.go behaviours no KServe test pins --------------------------------------------------
GO_CASES = json.loads((Path(__file__).parent / "data" / "gjson_go_v1.18.json").read_text(encoding="utf-8"))


def test_conditions_match_go_gjson_on_a_recorded_corpus():
    """main.go pickupRouteByCondition / routeStep: ``gjson.ValidBytes`` and
    ``gjson.GetBytes(...).Exists()``. data/gjson_go_v1.18.json holds what tidwall/gjson v1.18.0
    answered for 32 documents x 95 paths (unquoted values, numbers against strings, ~true/~null,
    wildcards, escapes, #, #.key, #(...)#, [@this] selectors, duplicate keys)."""
    diffs = []
    for doc, expected in GO_CASES["exists"].items():
        valid, parsed = conditions.parse(doc.encode())
        assert valid == GO_CASES["valid"][doc], doc
        for path, bit in zip(GO_CASES["paths"], expected):
            gjson_path.check(path)
            if conditions.exists(parsed, path) != (bit == "1"):
                diffs.append((doc, path, bit))
    assert diffs == []


def test_data_other_than_response_sends_the_input(fake, kit):
    """main.go routeStep (Sequence): only ``data == "$response"`` sends the previous response;
    ``$response.predictions`` is served and sends the node's input."""
    fake.set("a", kit.Reply({"predictions": [1]}))
    fake.set("b", kit.echo(b=1))
    g = kit.graph_of({"root": seq(step("a", "svc:a"), step("b", "svc:b", data="$response.predictions"))})
    resp = kit.route(g, {"q": 1}, fake.urls("a", "b"))
    assert resp.status == 200 and fake.body_of("b") == {"q": 1} and resp.json() == {"q": 1, "b": 1}


def test_condition_on_the_first_sequence_step_is_500_invalid_response(fake, kit):
    """main.go routeStep (Sequence): the first step's condition meets no response: 500."""
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": seq(step("a", "svc:a", condition="@this"))})
    resp = kit.route(g, {"q": 1}, fake.urls("a"))
    assert resp.status == 500 and resp.json() == {"error": "Failed to process request", "cause": "invalid response"}
    assert fake.calls == []


def test_unknown_node_is_500_invalid_route_type(kit):
    """main.go routeStep: a node missing from the graph is the zero InferenceRouter."""
    g = kit.graph_of({"root": seq(step("s", "nowhere"))})
    resp = kit.route(g, {})
    assert resp.status == 500 and resp.json() == {"error": "Failed to process request", "cause": "invalid route type: "}


def test_switch_step_without_condition_matches_only_the_empty_key(fake, kit):
    """main.go pickupRouteByCondition: ``gjson.GetBytes(input, "")`` finds the key ""."""
    fake.set("a", kit.Reply({"ok": 1}))
    g = kit.graph_of({"root": {"routerType": "Switch", "steps": [{"name": "a", "serviceName": "a"}]}})
    assert kit.route(g, {"x": 1}, fake.urls("a")).status == 404
    assert kit.route(g, {"": 1}, fake.urls("a")).json() == {"ok": 1}


def test_switch_on_a_non_json_body_matches_nothing(fake, kit):
    """main.go pickupRouteByCondition: an invalid body matches no route, even ``@this``."""
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": {"routerType": "Switch", "steps": [step("a", "svc:a", condition="@this")]}})
    assert kit.route(g, b"not json", fake.urls("a")).json() == NO_MATCH


@pytest.mark.parametrize("request_body, sent", [
    pytest.param({"predictions": [1, 2.0, {"b": 1, "a": {}}], "model": "m1"}, b'{"instances":[1,2,{"a":{},"b":1}]}',
                 id="only-instances-re-encoded"),
    pytest.param({"Predictions": ["p"]}, b'{"instances":["p"]}', id="keys-case-insensitive"),
    pytest.param({"predictions": "x"}, None, id="not-a-list"),
    pytest.param({"predictions": [1], "instances": "x"}, None, id="instances-not-a-list"),
    pytest.param({"predictions": []}, None, id="empty-list"),
    pytest.param([1], None, id="not-an-object"),
])
def test_map_predictions_to_instances_as_go_decodes(fake, kit, request_body, sent):
    """main.go routeStep (Sequence): ``json.Unmarshal`` into ``{predictions, instances []interface{}}``;
    only a decoded, non-empty predictions list moves, and only ``{"instances": ...}`` is sent."""
    fake.set("m", kit.Reply({}))
    g = kit.graph_of({"root": seq(step("m", "svc:m", mapPredictionsToInstances=True))})
    raw = json.dumps(request_body).encode()
    kit.route(g, raw, fake.urls("m"))
    assert fake.calls[0].raw == (sent if sent is not None else raw)


@pytest.mark.parametrize("router_type", ["Ensemble", "Switch", "Splitter"])
def test_map_predictions_to_instances_is_a_sequence_thing(fake, kit, router_type):
    """main.go: only the Sequence branch of routeStep reads mapPredictionsToInstances."""
    fake.set("m", kit.Reply({}))
    extra = {"condition": "@this"} if router_type == "Switch" else {"weight": 100} if router_type == "Splitter" else {}
    g = kit.graph_of({"root": {"routerType": router_type,
                               "steps": [step("m", "svc:m", mapPredictionsToInstances=True, **extra)]}})
    raw = b'{"predictions":[1]}'
    kit.route(g, raw, fake.urls("m"))
    assert fake.calls[0].raw == raw


def test_ensemble_answer_is_go_encoded(fake, kit):
    """main.go routeStep (Ensemble): the merged map goes through json.Marshal: keys sorted, numbers
    as float64, <, >, & escaped (bytes checked against Go 1.19's encoding/json)."""
    fake.set("m", kit.Reply(b'{"b":1,"a":2.50,"big":12345678901234567890,"html":"<&>","e":1e-7,"f":1e21,"z":-0.0}'))
    g = kit.graph_of({"root": {"routerType": "Ensemble", "steps": [step("m", "svc:m")]}})
    resp = kit.route(g, {}, fake.urls("m"))
    assert resp.body == (b'{"m":{"a":2.5,"b":1,"big":12345678901234567000,"e":1e-7,"f":1e+21,'
                         b'"html":"\\u003c\\u0026\\u003e","z":-0}}')


def test_non_json_answers_get_a_sniffed_content_type(fake, kit, tmp_path):
    """main.go graphHandler sets application/json only for valid JSON; Go's ResponseWriter then
    sniffs the rest (http.DetectContentType)."""
    fake.set("a", kit.Reply(b"upstream connect error", status=502))
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
                                    "metadata": {"name": "sniff"}, "spec": {"nodes": {"root": seq(
                                        step("a", "svc:a", dependency="Hard"))}}}))

    async def go():
        async with new_client() as client:
            app = create_app(path, fake.urls("a"), client=client)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
                return await c.post("/", json={})

    resp = kit.run(go())
    assert resp.status_code == 502 and resp.content == b"upstream connect error"
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"


def test_server_read_timeout_routes_what_arrived(fake, kit, tmp_path, caplog):
    """main.go graphHandler: ``inputBytes, _ := io.ReadAll(req.Body)`` ignores the ReadTimeout's
    error, so a body still arriving at serverRead is routed as far as it got."""
    fake.set("model1", kit.Reply({"predictions": "1"}))
    fake.set("model2", kit.Reply({"predictions": "2"}))
    path = chain_app(kit, fake, tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["routerTimeouts"] = {"serverRead": 1, "serverWrite": 5}
    path.write_text(yaml.safe_dump(doc))

    async def slow_body():
        yield b'{"part": '
        await asyncio.sleep(1.3)
        yield b'"late"}'

    async def go():
        async with new_client() as client:
            app = create_app(path, {}, client=client)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
                return await c.post("/", content=slow_body())

    with caplog.at_level(logging.WARNING, logger="inference_graph.server_timeouts"):
        resp = kit.run(go())
    assert resp.status_code == 200 and fake.calls[0].raw == b'{"part": '
    assert "serverRead" in caplog.text


def test_propagate_headers_env_is_read_as_kserve_does():
    """main.go main: PROPAGATE_HEADERS split on commas (what the controller sets from the
    inferenceservice-config ConfigMap's router.headers.propagate)."""
    assert patterns_from_env({}) == []
    assert patterns_from_env({"PROPAGATE_HEADERS": "^X-Request-Id$,Test-Header-*"}) == ["^X-Request-Id$",
                                                                                       "Test-Header-*"]
