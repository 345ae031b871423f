"""Step 6 served and in-process: one rule (NaviyamChatbot.ranking_pool / finish_ranking), the same answer.

The transformer runs on the built models with its predictor hop replaced by the in-process
OnnxRanker on the very tensors it would send, so only the rule is compared, not the transport.
"""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest
from kserve.protocol.infer_type import InferOutput, InferResponse
from pydantic import ValidationError

import components.ranker_transformer as rt
from components.envelope_model import parse_envelope, parse_step_result
from naviyam.chatbot import NaviyamChatbot
from naviyam.config import Settings
from naviyam.events import EventStore
from naviyam.memory import ConversationMemory
from naviyam.metrics import ChatMetrics
from naviyam.models import ModelBundle
from naviyam.ranking.features import OUTPUT_NAME
from naviyam.schemas import STEP5_POOLS, UserInput


@pytest.fixture(scope="module")
def models() -> ModelBundle:
    bundle = ModelBundle(Settings.load())
    bundle.warm_up()
    return bundle


@pytest.fixture()
def bot(models, tmp_path):
    chatbot = NaviyamChatbot(models, ConversationMemory(tmp_path / "m.sqlite"), EventStore(tmp_path / "e.sqlite"))
    yield chatbot
    chatbot.close()


def transformer(bot: NaviyamChatbot, fail: bool = False) -> rt.RankerTransformer:
    ranker = bot.models.ranker
    t = rt.RankerTransformer("naviyam-ranker", bot.settings, channel="production", metrics=ChatMetrics())
    t.bot = bot
    t.hot = SimpleNamespace(check_due=False, get=lambda: SimpleNamespace(value=(ranker.features, ranker.version,
                                                                                 "snapshot")))

    async def predictor(request, headers):
        if fail:
            raise RuntimeError("predictor HTTP 503")
        scores = ranker.predict({i.name: i.as_numpy() for i in request.inputs})
        out = InferOutput(name=OUTPUT_NAME, shape=[len(scores)], datatype="FP32", data=scores)
        return InferResponse(response_id="r", model_name="naviyam-ranker", infer_outputs=[out])

    t.call_predictor = predictor
    t._next_retry = float("inf")  # serving the snapshot on purpose: no Feast reconnect attempts
    return t


def searched(bot: NaviyamChatbot, text: str = "급식카드 되는 치킨집 추천해줘", user_id: str = "user_123"):
    env = bot.start(UserInput(user_id=user_id, text=text, session_id="step6"))
    bot.understand(env)
    assert env.needs_search
    return bot.retrieve_and_generate(env)


@pytest.mark.parametrize("text,user_id", [("급식카드 되는 치킨집 추천해줘", "user_123"), ("떡볶이 먹고 싶어", "user_44")])
def test_served_step6_orders_as_in_process(bot, text, user_id):
    base = searched(bot, text, user_id)
    local, served = base.model_copy(deep=True), base.model_copy(deep=True)
    bot.rank(local)
    t = transformer(bot)
    asyncio.run(t.rank(served, {}))
    assert [r.shop_id for r in served.recommendations] == [r.shop_id for r in local.recommendations]
    np.testing.assert_allclose([r.personalized_score for r in served.recommendations],
                               [r.personalized_score for r in local.recommendations], rtol=1e-5)
    assert served.model_versions["ranking"] == local.model_versions["ranking"] == bot.models.ranker.version
    assert served.recommendation_method == local.recommendation_method
    assert "ranking" in served.timings_ms and not served.errors.get("ranking")
    snap = t.metrics.snapshot()
    assert any(k.startswith("naviyam_ranker_turns_total") and "outcome=scored" in k and v == 1
               for k, v in snap.items())


def test_a_failed_predictor_degrades_as_a_failed_in_process_ranker(bot):
    base = searched(bot)
    served, local = base.model_copy(deep=True), base.model_copy(deep=True)
    t = transformer(bot, fail=True)
    asyncio.run(t.rank(served, {}))
    bot.finish_ranking(local, bot.ranking_pool(local), None, error=RuntimeError("predictor HTTP 503"))
    assert served.degraded and served.errors["ranking"] == "RuntimeError: predictor HTTP 503"
    assert "ranking" not in served.model_versions
    assert [r.shop_id for r in served.recommendations] == [r.shop_id for r in local.recommendations]
    assert any("outcome=failed" in k and v == 1 for k, v in t.metrics.snapshot().items()
               if k.startswith("naviyam_ranker_turns_total"))


def test_a_step_answer_is_read_for_its_own_fields_only(bot):
    env = searched(bot)
    raw = env.model_dump_json().encode()
    part = parse_step_result(raw)
    assert [h.shop_id for h in part.retrieval] == [h.shop_id for h in env.retrieval]
    assert [c.shop_id for c in part.candidates] == [c.shop_id for c in env.candidates]
    assert part.timings_ms == env.timings_ms and part.model_versions == env.model_versions
    body = json.loads(raw)
    body["retrieval"] = [{"shop_id": 7}]
    with pytest.raises(ValidationError):
        parse_step_result(json.dumps(body).encode())


def test_a_colocated_fan_out_calls_the_nodes_of_its_own_process_and_matches_in_process(bot):
    """serving.colocate: the step-5 nodes served by the transformer's own process are called
    directly (no loopback HTTP); the envelope is what the in-process chatbot's step 5 gives."""
    from components.nodes import CandidatesNode, RetrieverNode

    env = bot.start(UserInput(user_id="user_123", text="급식카드 되는 치킨집 추천해줘", session_id="colo"))
    bot.understand(env)
    local = bot.retrieve_and_generate(env.model_copy(deep=True))
    t = transformer(bot)
    nodes = []
    for cls, name in ((RetrieverNode, "naviyam-retriever"), (CandidatesNode, "naviyam-candidates")):
        node = cls(name, bot.settings, models=bot.models)
        node.bot = bot
        nodes.append(node)
    t.local_steps = {n.name: n for n in nodes}
    t.client = None  # any HTTP call would fail the test
    t.fanout_timeout_s = 10.0  # the real one is 0.6 s: a loaded CI core must not make this flaky
    served = env.model_copy(deep=True)
    asyncio.run(t.fan_out(served, {}))
    assert not served.errors and not served.degraded
    assert [h.shop_id for h in served.retrieval] == [h.shop_id for h in local.retrieval]
    assert [c.shop_id for c in served.candidates] == [c.shop_id for c in local.candidates]
    assert {"retrieval", "candidates", "fanout"} <= set(served.timings_ms)


class LocalPredictor:
    """The colocated predictor's surface (RankerPredictor.reload_if_due and score) on the in-process model."""

    def __init__(self, ranker, fail: bool = False):
        self.ranker, self.fail = ranker, fail

    async def reload_if_due(self):
        return None

    def score(self, arrays):
        if self.fail:
            raise RuntimeError("onnxruntime failed")
        return self.ranker.predict(arrays), self.ranker


class SlowStep:
    """A colocated step that may take long (its node does not run inline): a worker thread, with the fan-out timeout."""

    runs_inline = False

    def __init__(self, node, delay_s: float):
        self.node, self.delay_s = node, delay_s

    def run_step(self, env):
        import time

        time.sleep(self.delay_s)
        return self.node.run_step(env)


def colocated(bot, fail: bool = False, slow_retriever_s: float = 0.0) -> rt.RankerTransformer:
    from components.nodes import CandidatesNode, RetrieverNode

    t = transformer(bot)
    steps = {}
    for cls, name in ((RetrieverNode, "naviyam-retriever"), (CandidatesNode, "naviyam-candidates")):
        node = cls(name, bot.settings, models=bot.models)
        node.bot = bot
        steps[name] = node
    if slow_retriever_s:
        steps["naviyam-retriever"] = SlowStep(steps["naviyam-retriever"], slow_retriever_s)
    t.local_steps, t.local_predictor = steps, LocalPredictor(bot.models.ranker, fail=fail)
    t.client = None  # any HTTP call would fail the test
    t.call_predictor = None  # and so would the predictor hop
    t.fanout_timeout_s = 10.0 if not slow_retriever_s else slow_retriever_s / 4
    return t


def understood(bot, session: str):
    env = bot.start(UserInput(user_id="user_123", text="급식카드 되는 치킨집 추천해줘", session_id=session))
    return bot.understand(env)


def test_a_fully_colocated_ranker_serves_the_turn_without_a_hop_per_step_as_in_process(bot):
    """Steps 5-6 all in the transformer's process: no HTTP hop and no thread hand-off per step
    (the step-5 sides run on the loop, the feature read in a thread), and the answer is the
    in-process chatbot's, as bytes KServe sends as they are."""
    env = understood(bot, "one-thread")
    local = bot.rank(bot.retrieve_and_generate(env.model_copy(deep=True)))
    t = colocated(bot)
    headers: dict[str, str] = {}
    raw = asyncio.run(t.predict(env.model_dump(mode="json"), {}, headers))
    assert isinstance(raw, bytes) and headers["content-type"] == "application/json"
    served = json.loads(raw)
    assert [r["shop_id"] for r in served["recommendations"]] == [r.shop_id for r in local.recommendations]
    np.testing.assert_allclose([r["personalized_score"] for r in served["recommendations"]],
                               [r.personalized_score for r in local.recommendations], rtol=1e-5)
    assert served["model_versions"]["ranking"] == bot.models.ranker.version
    assert served["model_versions"]["features"] == "snapshot"
    assert not served["errors"] and not served["degraded"]
    assert {"fanout", "retrieval", "candidates", "ranking"} <= set(served["timings_ms"])
    # The v1 "instances" form is answered as KServe's {"predictions": [...]} dict.
    wrapped = asyncio.run(t.predict({"instances": [env.model_dump(mode="json")]}, {}, {}))
    assert [r["shop_id"] for r in wrapped["predictions"][0]["recommendations"]] == \
        [r["shop_id"] for r in served["recommendations"]]


class ThreadProbe:
    """A fast-path colocated node that records where, and on which envelope, its step ran."""

    def __init__(self, node):
        self.node, self.calls = node, []

    @property
    def runs_inline(self):
        return self.node.runs_inline

    def run_step(self, env):
        import threading

        self.calls.append((threading.get_ident(), env))
        return self.node.run_step(env)


def test_colocated_fast_path_sides_run_on_the_loop_on_the_turns_envelope(bot):
    """As their own predict would run them (EnvelopeModel.runs_inline): no worker thread and no
    copy of the envelope per side; each side writes only its own fields, as in-process."""
    import threading

    env = understood(bot, "inline-sides")
    t = colocated(bot)
    probes = {name: ThreadProbe(node) for name, node in t.local_steps.items()}
    assert all(p.runs_inline for p in probes.values())
    t.local_steps = probes

    async def go():
        served = env.model_copy(deep=True)
        await t.fan_out(served, {})
        return served, threading.get_ident()

    served, loop_thread = asyncio.run(go())
    for probe in probes.values():
        assert [(tid, e is served) for tid, e in probe.calls] == [(loop_thread, True)]
    local = bot.retrieve_and_generate(env.model_copy(deep=True))
    assert [h.shop_id for h in served.retrieval] == [h.shop_id for h in local.retrieval]
    assert [c.shop_id for c in served.candidates] == [c.shop_id for c in local.candidates]
    assert not served.errors and not served.degraded


def test_a_late_colocated_step_degrades_the_turn_as_over_http(bot):
    env = understood(bot, "late-step")
    t = colocated(bot, slow_retriever_s=0.8)
    served = json.loads(asyncio.run(t.predict(env.model_dump(mode="json"), {}, {})))
    assert served["degraded"] and "TimeoutError" in served["errors"]["retrieval"]
    # Ranked from what the other side found.
    assert served["recommendations"] and served["recommendation_method"].endswith("4-funnel")
    assert "rag" not in served["recommendation_method"]


def test_the_ranked_answer_leaves_out_step_5s_pools_and_nlg_answers_from_it_as_in_process(bot):
    """Nothing after step 6 reads retrieval hits or candidates: the ranker's answer (what the graph
    hands nlg) carries neither, and the answer and response built from it are the in-process ones."""
    env = understood(bot, "pools")
    local = bot.rank(bot.retrieve_and_generate(env.model_copy(deep=True)))
    assert local.retrieval and local.candidates  # there were pools to leave out
    t = colocated(bot)
    for wire in (asyncio.run(t.predict(env.model_dump(mode="json"), {}, {})),
                 asyncio.run(t.predict({"instances": [env.model_dump(mode="json")]}, {}, {}))["predictions"][0]):
        served = json.loads(wire) if isinstance(wire, bytes) else wire
        assert not STEP5_POOLS & served.keys()
        answered = bot.answer(parse_envelope(served))
        expected = bot.answer(local.model_copy(deep=True))
        assert answered.answer == expected.answer
        assert answered.recommendations == expected.recommendations
        assert answered.recommendation_method == expected.recommendation_method


def test_a_failed_colocated_predictor_ranks_from_relevance(bot):
    env = understood(bot, "bad-predictor")
    searched_env = bot.retrieve_and_generate(env.model_copy(deep=True))
    local = searched_env.model_copy(deep=True)
    bot.finish_ranking(local, bot.ranking_pool(local), None, error=RuntimeError("onnxruntime failed"))
    t = colocated(bot, fail=True)
    served = json.loads(asyncio.run(t.predict(env.model_dump(mode="json"), {}, {})))
    assert served["degraded"] and served["errors"]["ranking"] == "RuntimeError: onnxruntime failed"
    assert "ranking" not in served["model_versions"]
    assert [r["shop_id"] for r in served["recommendations"]] == [r.shop_id for r in local.recommendations]
    assert any("outcome=failed" in k and v == 1 for k, v in t.metrics.snapshot().items()
               if k.startswith("naviyam_ranker_turns_total"))
