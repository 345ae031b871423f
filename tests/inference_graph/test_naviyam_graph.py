"""inference_graph/naviyam.yaml routing fake InferenceServices that pass an Envelope along."""
from __future__ import annotations

import pytest

from inference_graph.spec import NAVIYAM_GRAPH, load_graph

SERVICES = ("naviyam-nlu", "naviyam-ranker", "naviyam-nlg")


def add(env: dict, step: str, **fields) -> dict:
    return {**env, **fields, "trail": [*env.get("trail", []), step]}


@pytest.fixture()
def envelope_services(fake, kit):
    """Fakes that behave like the real nodes: each returns the Envelope it got, enriched."""
    def nlu(body):
        env = {"schema_version": "1", "request_id": "r-1", "input": body, "trail": ["nlu"]}
        if "needs_search" in body:
            env["needs_search"] = body["needs_search"]
        return kit.Reply(env)

    fake.set("naviyam-nlu", nlu)
    fake.set("naviyam-ranker", lambda env: kit.Reply(add(env, "ranker", recommendations=["shop-1", "shop-2"])))
    fake.set("naviyam-nlg", lambda env: kit.Reply(add(env, "nlg", answer="치킨집 두 곳을 찾았어요")))
    return fake


@pytest.fixture(scope="module")
def graph():
    return load_graph(NAVIYAM_GRAPH)


def test_search_path_calls_nlu_ranker_nlg_in_order(envelope_services, kit, graph):
    fake = envelope_services
    request = {"message": "급식카드 되는 치킨집 추천해줘", "user_id": "user_123", "needs_search": True}
    resp = kit.route(graph, request, fake.urls(*SERVICES))
    assert resp.status == 200, resp.body
    assert fake.called() == ["naviyam-nlu", "naviyam-ranker", "naviyam-nlg"]
    nlu_env = {"schema_version": "1", "request_id": "r-1", "input": request, "needs_search": True, "trail": ["nlu"]}
    assert fake.body_of("naviyam-nlu") == request
    assert fake.body_of("naviyam-ranker") == nlu_env  # $request of search-then-answer = the nlu Envelope
    ranked = add(nlu_env, "ranker", recommendations=["shop-1", "shop-2"])
    assert fake.body_of("naviyam-nlg") == ranked
    assert resp.json() == add(ranked, "nlg", answer="치킨집 두 곳을 찾았어요")


@pytest.mark.parametrize("needs_search", [False, None])
def test_no_search_path_skips_ranking(envelope_services, kit, graph, needs_search):
    fake = envelope_services
    request = {"message": "안녕!", "user_id": "user_123"}
    if needs_search is not None:
        request["needs_search"] = needs_search
    resp = kit.route(graph, request, fake.urls(*SERVICES))
    assert resp.status == 200
    assert fake.called() == ["naviyam-nlu", "naviyam-nlg"]
    assert fake.body_of("naviyam-nlg") == {"schema_version": "1", "request_id": "r-1", "input": request,
                                           "trail": ["nlu"], **({} if needs_search is None else
                                                                {"needs_search": needs_search})}
    assert resp.json()["trail"] == ["nlu", "nlg"]


def test_nlu_rejecting_the_request_is_the_answer(envelope_services, kit, graph):
    fake = envelope_services
    fake.set("naviyam-nlu", kit.Reply({"error": "invalid chat request: message: Field required"}, status=400))
    resp = kit.route(graph, {"hello": 1}, fake.urls(*SERVICES))
    assert resp.status == 400
    assert resp.json() == {"error": "invalid chat request: message: Field required"} and resp.failed_step == "root/nlu"
    assert fake.called() == ["naviyam-nlu"]


def test_ranker_failure_stops_before_nlg(envelope_services, kit, graph):
    fake = envelope_services
    fake.set("naviyam-ranker", kit.Reply({"error": "feature store down"}, status=500))
    resp = kit.route(graph, {"message": "피자", "needs_search": True}, fake.urls(*SERVICES))
    assert resp.status == 500 and resp.failed_step == "search-then-answer/rank"
    assert resp.json() == {"error": "feature store down"}
    assert "naviyam-nlg" not in fake.called()
