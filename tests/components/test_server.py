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
