"""Each routing rule pinned to what KServe's Go router (cmd/router/main.go) does, on fake services."""
from __future__ import annotations

import json
import random
import time
from collections import Counter

import httpx
import pytest

from inference_graph.client import RetryPolicy, Upstream
from inference_graph.conditions import gjson_exists
from inference_graph.graph_router import GraphRouter, new_client

NO_MATCH = {"error": "Failed to process request", "cause": "None of the routes matched with the switch condition"}


def seq(*steps):
    return {"routerType": "Sequence", "steps": list(steps)}


def svc(name, **kw):
    return {"name": name, "serviceName": name, **kw}


# -- Sequence ----------------------------------------------------------------------------------
def test_sequence_request_vs_response(fake, kit):
    fake.set("a", kit.echo(a=1))
    fake.set("b", kit.echo(b=2))
    fake.set("c", kit.echo(c=3))
    g = kit.graph_of({"root": seq(svc("a", data="$response"),  # first step: $response still means the request
                                  svc("b", data="$request"),
                                  svc("c", data="$response"))})
    resp = kit.route(g, {"q": "x"}, fake.urls("a", "b", "c"))
    assert fake.called() == ["a", "b", "c"]
    assert fake.body_of("a") == {"q": "x"}
    assert fake.body_of("b") == {"q": "x"}  # the node's input, not a's response
    assert fake.body_of("c") == {"q": "x", "b": 2}  # b's response
    assert resp.status == 200 and resp.json() == {"q": "x", "b": 2, "c": 3}  # the last step's response


def test_sequence_default_data_is_request(fake, kit):
    fake.set("a", kit.echo(a=1))
    fake.set("b", kit.echo(b=2))
    g = kit.graph_of({"root": seq(svc("a"), svc("b"))})
    assert kit.route(g, {"q": 1}, fake.urls("a", "b")).json() == {"q": 1, "b": 2}
    assert fake.body_of("b") == {"q": 1}


def test_sequence_unmet_condition_stops_with_previous_response_and_200(fake, kit):
    fake.set("animal", kit.Reply({"predictions": [{"label": "cat"}]}))
    fake.set("breed", kit.Reply({"breed": "beagle"}))
    g = kit.graph_of({"root": seq(svc("animal"), svc("breed", condition='predictions.#(label=="dog")'))})
    resp = kit.route(g, {"instances": [1]}, fake.urls("animal", "breed"))
    assert fake.called() == ["animal"]
    assert resp.status == 200 and resp.json() == {"predictions": [{"label": "cat"}]}


def test_sequence_condition_is_checked_on_previous_response_not_step_input(fake, kit):
    fake.set("animal", kit.Reply({"predictions": [{"label": "dog"}]}))
    fake.set("breed", kit.echo(breed="beagle"))
    # breed gets the original request ($request) although the condition reads animal's response
    g = kit.graph_of({"root": seq(svc("animal"), svc("breed", data="$request", condition='predictions.#(label=="dog")'))})
    resp = kit.route(g, {"instances": [1]}, fake.urls("animal", "breed"))
    assert fake.called() == ["animal", "breed"]
    assert fake.body_of("breed") == {"instances": [1]}
    assert resp.json() == {"instances": [1], "breed": "beagle"}


def test_sequence_condition_on_non_json_previous_response_is_500(fake, kit):
    fake.set("a", kit.Reply(b"not json"))
    fake.set("b", kit.Reply({}))
    g = kit.graph_of({"root": seq(svc("a"), svc("b", condition="x"))})
    resp = kit.route(g, {}, fake.urls("a", "b"))
    assert resp.status == 500 and resp.json() == {"error": "Failed to process request", "cause": "invalid response"}
    assert fake.called() == ["a"] and resp.failed_step == "root/b"


def test_sequence_soft_failure_flows_on_and_last_status_wins(fake, kit):
    fake.set("a", kit.Reply({"error": "boom"}, status=503))
    fake.set("b", kit.echo(b=1))
    g = kit.graph_of({"root": seq(svc("a", dependency="Soft"), svc("b", data="$response"))})
    resp = kit.route(g, {"q": 1}, fake.urls("a", "b"))
    assert fake.body_of("b") == {"error": "boom"}  # the error body is b's input
    assert resp.status == 200 and resp.json() == {"error": "boom", "b": 1}


def test_sequence_soft_failure_of_last_step_is_the_answer(fake, kit):
    fake.set("a", kit.Reply({"ok": True}))
    fake.set("b", kit.Reply({"error": "bad"}, status=422))
    g = kit.graph_of({"root": seq(svc("a"), svc("b"))})  # no dependency = Soft
    resp = kit.route(g, {}, fake.urls("a", "b"))
    assert resp.status == 422 and resp.json() == {"error": "bad"} and resp.failed_step == "root/b"


def test_sequence_hard_failure_stops_and_propagates_status(fake, kit):
    fake.set("a", kit.Reply({"error": "model exploded"}, status=503))
    fake.set("b", kit.Reply({}))
    g = kit.graph_of({"root": seq(svc("a", dependency="Hard"), svc("b", data="$response"))})
    resp = kit.route(g, {}, fake.urls("a", "b"))
    assert fake.called() == ["a"]
    assert resp.status == 503
    assert resp.json() == {"error": "model exploded"}  # verbatim: the step is in the header, not the body
    assert resp.failed_step == "root/a"


def test_hard_failure_keeps_non_json_body(fake, kit):
    fake.set("a", kit.Reply(b"upstream connect error", status=502))
    g = kit.graph_of({"root": seq(svc("a", dependency="Hard"))})
    resp = kit.route(g, {}, fake.urls("a"))
    assert resp.status == 502 and resp.body == b"upstream connect error" and resp.failed_step == "root/a"


def test_unreachable_service_is_500_whatever_the_dependency(kit):
    url = kit.closed_port_url()
    for dep in ("Hard", "Soft"):
        g = kit.graph_of({"root": seq({"name": "a", "serviceUrl": url, "dependency": dep})})
        resp = kit.route(g, {})
        assert resp.status == 500 and resp.failed_step == "root/a"
        port = url.split(":")[2].split("/")[0]
        assert resp.json() == {"error": "Failed to process request",  # Go's url.Error wording
                               "cause": f'Post "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'}


def test_service_url_steps_are_used_as_given(fake, kit):
    fake.set("x", kit.echo(x=1))
    g = kit.graph_of({"root": seq({"name": "s", "serviceUrl": fake.url("x")})})
    assert kit.route(g, {}).json() == {"x": 1}


# -- Switch ------------------------------------------------------------------------------------
def switch(*steps):
    return {"routerType": "Switch", "steps": list(steps)}


def test_switch_runs_first_matching_step_with_its_input(fake, kit):
    fake.set("cricket", kit.echo(sport="cricket"))
    fake.set("any", kit.echo(sport="any"))
    fake.set("football", kit.echo(sport="football"))
    g = kit.graph_of({"root": switch(
        svc("football", condition='[@this].#(decision_picker=="FOOTBALL")'),
        svc("cricket", condition='[@this].#(decision_picker=="CRICKET")'),
        svc("any", condition="decision_picker"))})  # also matches, but comes later
    resp = kit.route(g, {"decision_picker": "CRICKET"}, fake.urls("cricket", "any", "football"))
    assert fake.called() == ["cricket"]
    assert fake.body_of("cricket") == {"decision_picker": "CRICKET"}
    assert resp.status == 200 and resp.json() == {"decision_picker": "CRICKET", "sport": "cricket"}


def test_switch_no_match_at_root_is_404(fake, kit):
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": switch(svc("a", condition='[@this].#(x=="never")'))})
    resp = kit.route(g, {"x": "y"}, fake.urls("a"))
    body = resp.json()
    assert resp.status == 404
    assert body["error"] == "Failed to process request"
    assert body == NO_MATCH
    assert fake.called() == [] and resp.failed_step == "root"


def test_switch_no_match_below_root_is_500(fake, kit):
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": seq({"name": "s", "nodeName": "pick"}),
                      "pick": switch(svc("a", condition='[@this].#(x=="never")'))})
    resp = kit.route(g, {"x": "y"}, fake.urls("a"))
    assert resp.status == 500
    assert resp.json() == NO_MATCH


def test_switch_in_sequence_routes_on_previous_response(fake, kit):
    fake.set("classify", kit.Reply({"predictions": [{"label": "dog"}]}))
    fake.set("dog", kit.echo(breed="poodle"))
    fake.set("cat", kit.echo(breed="siamese"))
    g = kit.graph_of({
        "root": seq(svc("classify"), {"name": "breed", "nodeName": "breeds", "data": "$response"}),
        "breeds": switch(svc("cat", condition='predictions.#(label=="cat")'),
                         svc("dog", condition='predictions.#(label=="dog")'))})
    resp = kit.route(g, {"instances": []}, fake.urls("classify", "dog", "cat"))
    assert fake.called() == ["classify", "dog"]
    assert resp.json()["breed"] == "poodle"


def test_gjson_condition_semantics():
    doc = {"needs_search": True, "predictions": [{"label": "dog"}], "n": None}
    assert gjson_exists(doc, "[@this].#(needs_search==true)")
    assert not gjson_exists({"needs_search": False}, "[@this].#(needs_search==true)")
    assert not gjson_exists({}, "[@this].#(needs_search==true)")
    assert gjson_exists({"needs_search": False}, "needs_search")  # a plain path exists even when false
    assert gjson_exists(doc, 'predictions.#(label=="dog")')
    assert gjson_exists(doc, "n")  # null exists
    assert gjson_exists({}, "@this")
    assert not gjson_exists(doc, "")
    assert gjson_exists({"": 1}, "")  # Go: the empty path is the key ""
    assert not gjson_exists(doc, "missing.path")
    assert gjson_exists({"decision_picker": "ERROR"}, "[@this].#(decision_picker==ERROR)")  # bare value: a string
    assert not gjson_exists({"decision_picker": "OTHER"}, "[@this].#(decision_picker==ERROR)")


# -- Ensemble ----------------------------------------------------------------------------------
def ens(*steps):
    return {"routerType": "Ensemble", "steps": list(steps)}


def test_ensemble_merges_by_step_name_or_index(fake, kit):
    fake.set("m1", kit.Reply({"predictions": "1"}))
    fake.set("m2", kit.Reply({"predictions": "2"}))
    g = kit.graph_of({"root": ens(svc("m1"), {"serviceName": "m2"})})
    resp = kit.route(g, {"instances": ["x"]}, fake.urls("m1", "m2"))
    assert resp.status == 200
    assert resp.json() == {"m1": {"predictions": "1"}, "1": {"predictions": "2"}}
    assert fake.body_of("m1") == fake.body_of("m2") == {"instances": ["x"]}


def test_ensemble_runs_steps_concurrently(fake, kit):
    fake.set("slow1", kit.Reply({"a": 1}, delay=0.2))
    fake.set("slow2", kit.Reply({"b": 2}, delay=0.2))
    g = kit.graph_of({"root": ens(svc("slow1"), svc("slow2"))})
    kit.route(g, {}, fake.urls("slow1", "slow2"))  # warm the connection pool path
    fake.calls.clear()
    t0 = time.perf_counter()
    resp = kit.route(g, {}, fake.urls("slow1", "slow2"))
    elapsed = time.perf_counter() - t0
    assert resp.json() == {"slow1": {"a": 1}, "slow2": {"b": 2}}
    assert 0.2 <= elapsed < 0.35, elapsed
    c1, c2 = fake.calls
    assert abs(c1.start - c2.start) < 0.05  # both started before either finished


def test_ensemble_soft_failure_is_merged_as_its_error_body(fake, kit):
    fake.set("ok", kit.Reply({"v": 1}))
    fake.set("bad", kit.Reply({"error": "down"}, status=503))
    g = kit.graph_of({"root": ens(svc("ok", dependency="Soft"), svc("bad", dependency="Soft"))})
    resp = kit.route(g, {}, fake.urls("ok", "bad"))
    assert resp.status == 200 and resp.json() == {"ok": {"v": 1}, "bad": {"error": "down"}}


def test_ensemble_hard_failure_returns_that_step(fake, kit):
    fake.set("ok", kit.Reply({"v": 1}))
    fake.set("bad", kit.Reply({"error": "down"}, status=503))
    g = kit.graph_of({"root": ens(svc("ok"), svc("bad", dependency="Hard"))})
    resp = kit.route(g, {}, fake.urls("ok", "bad"))
    assert resp.status == 503 and resp.json() == {"error": "down"} and resp.failed_step == "root/bad"


def test_ensemble_unreachable_soft_member_fails_the_node(fake, kit):
    fake.set("ok", kit.Reply({"v": 1}, delay=0.3))
    g = kit.graph_of({"root": ens(svc("ok", dependency="Soft"),
                                  {"name": "down", "serviceUrl": kit.closed_port_url(), "dependency": "Soft"})})
    t0 = time.perf_counter()
    resp = kit.route(g, {}, fake.urls("ok"))
    assert resp.status == 500 and resp.failed_step == "root/down" and set(resp.json()) == {"error", "cause"}
    assert time.perf_counter() - t0 < 0.25  # fails fast, like the Go router's errChan, not after "ok"


def test_ensemble_member_answering_non_object_fails_the_node(fake, kit):
    fake.set("ok", kit.Reply({"v": 1}))
    fake.set("list", kit.Reply([1, 2, 3]))
    g = kit.graph_of({"root": ens(svc("ok"), svc("list", dependency="Soft"))})
    resp = kit.route(g, {}, fake.urls("ok", "list"))
    assert resp.status == 500 and resp.json()["cause"] == ("json: cannot unmarshal array into Go value of type "
                                                           "map[string]interface {}")


# -- Splitter ----------------------------------------------------------------------------------
def test_splitter_draws_by_weight(kit):
    hits: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        hits[request.url.host] += 1
        return httpx.Response(200, json={"model": request.url.host})

    g = kit.graph_of({"root": {"routerType": "Splitter", "steps": [
        {"name": "a", "serviceUrl": "http://model-a/v1/models/a:predict", "weight": 20},
        {"name": "b", "serviceUrl": "http://model-b/v1/models/b:predict", "weight": 80}]}})

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            router = GraphRouter(g, {}, None, client, rng=random.Random(1234))
            answers = [await router.route({"i": i}) for i in range(4_000)]
            return answers

    answers = kit.run(go())
    assert all(status == 200 for status, _ in answers)
    assert hits["model-a"] + hits["model-b"] == 4_000
    assert 700 <= hits["model-a"] <= 900, hits  # 20 % +- 2.5 points (about 4 sigma at n = 4,000)
    # the same seed draws the same routes
    first = hits.copy()
    hits.clear()
    kit.run(go())
    assert hits == first


def test_splitter_passes_the_input_through(fake, kit):
    fake.set("only", kit.echo(seen=True))
    g = kit.graph_of({"root": {"routerType": "Splitter", "steps": [svc("only", weight=100)]}})
    assert kit.route(g, {"q": 1}, fake.urls("only")).json() == {"q": 1, "seen": True}


# -- timeouts ----------------------------------------------------------------------------------
def test_graph_timeout_answers_504(fake, kit):
    fake.set("slow", kit.Reply({}, delay=2.0))
    g = kit.graph_of({"root": seq(svc("slow"))}, timeout=30)
    t0 = time.perf_counter()
    resp = kit.route(g, {}, fake.urls("slow"), graph_timeout_s=0.3)
    assert resp.status == 504 and "timeout" in resp.json()["cause"]
    assert 0.3 <= time.perf_counter() - t0 < 1.0


def test_graph_timeout_defaults_to_spec_timeout(fake, kit):
    fake.set("slow", kit.Reply({}, delay=3.0))
    g = kit.graph_of({"root": seq(svc("slow"))}, timeout=1)
    t0 = time.perf_counter()
    resp = kit.route(g, {}, fake.urls("slow"))
    assert resp.status == 504 and 1.0 <= time.perf_counter() - t0 < 2.0


def test_step_timeout_is_a_failed_call(fake, kit):
    fake.set("slow", kit.Reply({}, delay=1.0))
    fake.set("fast", kit.Reply({"ok": 1}))
    g = kit.graph_of({"root": ens(svc("fast"), svc("slow", dependency="Soft"))})
    t0 = time.perf_counter()
    resp = kit.route(g, {}, fake.urls("slow", "fast"), step_timeout_s=0.2)
    assert resp.status == 500 and resp.failed_step == "root/slow"
    assert resp.json()["cause"] == (f'Post "{fake.url("slow")}": context deadline exceeded '
                                    "(Client.Timeout exceeded while awaiting headers)")
    assert time.perf_counter() - t0 < 0.6


def test_step_timeout_defaults_to_router_timeouts_service_client(kit):
    g = kit.graph_of({"root": seq({"name": "a", "serviceUrl": "http://x/"})}, routerTimeouts={"serviceClient": 7})
    assert GraphRouter(g, {}).step_timeout_s == 7.0
    assert GraphRouter(g, {}, 0.5).step_timeout_s == 0.5


def test_step_within_both_timeouts_succeeds(fake, kit):
    fake.set("a", kit.Reply({"ok": 1}, delay=0.1))
    g = kit.graph_of({"root": seq(svc("a"))}, timeout=5)
    assert kit.route(g, {}, fake.urls("a"), step_timeout_s=1.0).json() == {"ok": 1}


# -- headers, mapPredictionsToInstances, service resolution -------------------------------------
def test_only_matching_headers_are_propagated(fake, kit):
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": seq(svc("a"))})
    # However the client spells it, Go's http.Header holds X-Request-Id: patterns see that name.
    kit.route(g, {}, fake.urls("a"), headers={"x-request-id": "r1", "Authorization": "Bearer t", "Host": "evil"},
              propagate_headers=["^X-Request-"])
    seen = fake.calls[0].headers
    assert seen["x-request-id"] == "r1" and "authorization" not in seen
    assert seen["content-type"] == "application/json" and seen["host"].startswith("127.0.0.1")


def test_header_patterns_are_case_sensitive_on_canonical_names(fake, kit):
    """A lower-case pattern matches nothing on a cluster; it must match nothing here either."""
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": seq(svc("a"))})
    kit.route(g, {}, fake.urls("a"), headers={"X-Request-Id": "r1"}, propagate_headers=["^x-request-id$"])
    assert "x-request-id" not in fake.calls[0].headers


def test_an_invalid_header_pattern_is_skipped_not_fatal(fake, kit, caplog):
    fake.set("a", kit.Reply({}))
    g = kit.graph_of({"root": seq(svc("a"))})
    kit.route(g, {}, fake.urls("a"), headers={"X-Request-Id": "r1", "Authorization": "t"},
              propagate_headers=["X-Request-[0-9", "(?=Auth)", "^X-Request-Id$"])
    seen = fake.calls[0].headers
    assert seen["x-request-id"] == "r1" and "authorization" not in seen  # lookahead: not RE2, skipped as Go does
    assert "failed to compile header pattern 'X-Request-[0-9'" in caplog.text


def test_map_predictions_to_instances(fake, kit):
    fake.set("m1", kit.Reply({"predictions": ["p"], "model": "m1"}))
    fake.set("m2", kit.echo())
    g = kit.graph_of({"root": seq(svc("m1"), svc("m2", data="$response", mapPredictionsToInstances=True))})
    kit.route(g, {}, fake.urls("m1", "m2"))
    assert fake.body_of("m2") == {"instances": ["p"]}  # Go re-encodes only {predictions, instances}


def test_unknown_service_name_fails_at_construction(kit):
    g = kit.graph_of({"root": seq(svc("naviyam-nlu"))})
    with pytest.raises(ValueError, match="no URL for service"):
        GraphRouter(g, {})


def test_route_api_returns_status_and_body(fake, kit):
    fake.set("a", kit.echo(a=1))
    g = kit.graph_of({"root": seq(svc("a"))})

    async def go():
        async with new_client() as client:
            return await GraphRouter(g, fake.urls("a"), None, client).route({"q": "안녕"})

    status, body = kit.run(go())
    assert status == 200 and json.loads(body) == {"q": "안녕", "a": 1}


# -- replicas and retries (the mesh's part, not KServe's router) --------------------------------
def test_a_refused_call_is_retried_on_another_endpoint(fake, kit):
    fake.set("a", kit.echo(ok=True))
    g = kit.graph_of({"root": seq(svc("a"))})
    urls = {"a": [kit.closed_port_url("a"), fake.url("a")]}
    assert kit.route(g, {}, urls).status == 500  # KServe's router alone: a failed call is a 500
    for _ in range(3):  # whichever endpoint round-robin picks first
        resp = kit.route(g, {}, urls, retry=RetryPolicy(attempts=1))
        assert resp.status == 200 and resp.json() == {"ok": True}


def test_a_try_past_its_per_try_timeout_is_retried(fake, kit):
    calls = []

    def slow_first(body):
        calls.append(1)
        return kit.Reply({"n": len(calls)}, delay=1.0 if len(calls) == 1 else 0.0)

    fake.set("a", slow_first)
    g = kit.graph_of({"root": seq(svc("a"))})
    resp = kit.route(g, {}, {"a": [fake.url("a")]}, step_timeout_s=3.0,
                     retry=RetryPolicy(attempts=1, per_try_timeout_s=0.3))
    assert resp.status == 200 and resp.json() == {"n": 2}


def test_answers_are_never_retried_whatever_their_status(fake, kit):
    fake.set("a", kit.Reply({"error": "busy"}, status=503))
    g = kit.graph_of({"root": seq(svc("a"))})
    resp = kit.route(g, {}, {"a": [fake.url("a"), fake.url("a") + "?2"]}, retry=RetryPolicy(attempts=2))
    assert resp.status == 503 and len(fake.calls) == 1  # Hard/Soft decide about statuses, not the mesh


def test_all_tries_failing_is_a_failed_call(kit):
    g = kit.graph_of({"root": seq(svc("a"))})
    resp = kit.route(g, {}, {"a": [kit.closed_port_url("a"), kit.closed_port_url("a")]},
                     retry=RetryPolicy(attempts=1))
    assert resp.status == 500 and resp.failed_step == "root/a" and set(resp.json()) == {"error", "cause"}
    assert "connection refused" in resp.json()["cause"]  # the last try's error, as Go words a failed call


def test_a_failed_endpoint_sits_out_its_ejection_time():
    up = Upstream("a", ["http://x/1", "http://x/2"], RetryPolicy(attempts=1, ejection_s=60))
    up.eject("http://x/1")
    assert {up.pick() for _ in range(4)} == {"http://x/2"}
    assert up.pick(tried=["http://x/2"]) == "http://x/1"  # nothing else left: the ejected one still serves
