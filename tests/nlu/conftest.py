"""Shared NLU fixtures: one model trained on a small generated corpus (the preprocessor is the
suite's, from tests/conftest.py).

Training on 2,500 rows keeps the session fast (a few seconds) while still exercising the real
training code; the held-out split of the same corpus measures generalisation.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from naviyam.data.nlu_corpus import build_nlu_corpus
from naviyam.nlu.fast import FastNLU

HANDWRITTEN = Path(__file__).with_name("handwritten.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nlu_corpus")
    build_nlu_corpus(out, seed=11, n_train=2500, n_test=600)
    return out


@pytest.fixture(scope="session")
def train_rows(small_corpus) -> list[dict]:
    return read_jsonl(small_corpus / "nlu_train.jsonl")


@pytest.fixture(scope="session")
def held_out_rows(small_corpus) -> list[dict]:
    return read_jsonl(small_corpus / "nlu_test.jsonl")


@pytest.fixture(scope="session")
def handwritten_rows() -> list[dict]:
    return read_jsonl(HANDWRITTEN)


@pytest.fixture(scope="session")
def trained_nlu(train_rows, preprocessor) -> FastNLU:
    return FastNLU.train(train_rows, seed=11, preprocess=preprocessor)


@pytest.fixture(scope="session")
def parse(trained_nlu, preprocessor):
    """parse("text", shops=(...)) -> NLUResult"""
    def _parse(text: str, shops=()):
        return trained_nlu.parse(preprocessor(text), shops)
    return _parse
