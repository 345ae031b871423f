"""The model-server entry point's flags (no server is started here; tests/e2e start real ones)."""
from __future__ import annotations

import argparse

import pytest

from components.server import COLOCATABLE, MODEL_NAMES, component_list


def test_components_take_a_comma_separated_list_of_colocatable_components():
    assert component_list("naviyam-nlu, naviyam-ranker-transformer") == ["naviyam-nlu", "naviyam-ranker-transformer"]
    assert MODEL_NAMES["naviyam-ranker-transformer"] == "naviyam-ranker"  # answers as its InferenceService


@pytest.mark.parametrize("value", ["", "naviyam-ranker-predictor", "naviyam-nlu,naviyam-llm"])
def test_unknown_or_clashing_components_are_refused_with_the_choices(value):
    # The predictor is a model named naviyam-ranker too: it never shares a process with the transformer.
    assert "naviyam-ranker-predictor" not in COLOCATABLE
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated list of naviyam-nlu"):
        component_list(value)
