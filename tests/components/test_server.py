"""The model-server entry point's flags (no server is started here; tests/e2e start real ones)."""
from __future__ import annotations

import argparse

import pytest

from components.server import COMPONENTS, MODEL_NAMES, component_list
from naviyam.config import Settings


def test_components_take_a_comma_separated_list_of_colocatable_components():
    assert component_list("naviyam-nlu, naviyam-ranker-transformer") == ["naviyam-nlu", "naviyam-ranker-transformer"]
    assert MODEL_NAMES["naviyam-ranker-transformer"] == "naviyam-ranker"  # answers as its InferenceService


@pytest.mark.parametrize("value", ["", "naviyam-ranker", "naviyam-nlu,naviyam-llm"])
def test_unknown_components_are_refused_with_the_choices(value):
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated list of naviyam-nlu"):
        component_list(value)


def test_a_predictor_beside_its_transformer_is_not_served_but_scores_in_process():
    from components.ranker_predictor import RankerPredictor
    from components.ranker_transformer import RankerTransformer
    from components.server import attach_local_steps

    settings = Settings()
    transformer = RankerTransformer("naviyam-ranker", settings)
    predictor = RankerPredictor("naviyam-ranker", settings)
    served = attach_local_steps([transformer, predictor])
    assert served == [transformer] and transformer.local_predictor is predictor
    assert "naviyam-ranker-predictor" in COMPONENTS
    alone = RankerPredictor("naviyam-ranker", settings)
    assert attach_local_steps([alone]) == [alone]  # a predictor process of its own serves it


def test_a_predictor_without_its_transformer_in_one_process_is_refused(capsys):
    from components.server import main

    with pytest.raises(SystemExit):
        main(["--model_name", "x", "--components", "naviyam-nlu,naviyam-ranker-predictor"])
    assert "only colocated with naviyam-ranker-transformer" in capsys.readouterr().err


def test_the_event_loop_flag_holds_for_the_model_server():
    """kserve's single-worker ModelServer runs its own asyncio.run(): the policy set here is the
    loop it gets ("auto" and "uvloop": uvloop; "asyncio": the standard one)."""
    import asyncio

    import uvloop

    from components.server import install_event_loop

    before = asyncio.get_event_loop_policy()
    try:
        assert install_event_loop("asyncio") == "asyncio"
        assert asyncio.get_event_loop_policy() is before
        for choice in ("auto", "uvloop"):
            assert install_event_loop(choice) == "uvloop"
            assert isinstance(asyncio.get_event_loop(), uvloop.Loop)  # what kserve's setup_event_loop asks for

            async def running():
                return asyncio.get_running_loop()

            assert isinstance(asyncio.run(running()), uvloop.Loop)  # what kserve's asyncio.run() serves on
    finally:
        asyncio.set_event_loop_policy(before)


def test_fast_path_nodes_answer_on_the_loop_and_llm_ones_in_a_worker_thread():
    from components.nodes import NLGNode, NLUNode, RetrieverNode

    fast = Settings()
    assert NLUNode("naviyam-nlu", fast).runs_inline and NLGNode("naviyam-nlg", fast).runs_inline
    assert RetrieverNode("naviyam-retriever", fast).runs_inline
    llm_nlu = fast.model_copy(update={"nlu": fast.nlu.model_copy(update={"backend": "combined"})})
    assert not NLUNode("naviyam-nlu", llm_nlu).runs_inline
    llm_nlg = fast.model_copy(update={"llm": fast.llm.model_copy(update={"nlg_enabled": True})})
    assert not NLGNode("naviyam-nlg", llm_nlg).runs_inline


@pytest.mark.parametrize("inline", [True, False])
def test_a_node_runs_its_work_where_runs_inline_says(inline):
    import asyncio
    import threading

    from pydantic import BaseModel

    from components.envelope_model import EnvelopeModel

    class Answer(BaseModel):
        thread: int

    class Probe(EnvelopeModel):
        runs_inline = inline  # a class attribute stands in for the property

        def handle(self, body):
            return Answer(thread=threading.get_ident())

    async def call():
        raw = await Probe("probe", Settings()).predict({"x": 1}, {}, {})
        return Answer.model_validate_json(raw).thread, threading.get_ident()

    worker, loop = asyncio.run(call())
    assert (worker == loop) is inline
