"""End-to-end fixtures: the real built data set and models under var/ (what `make build` makes).

If something is missing the session builds it first (slow once, then reused).
"""
from __future__ import annotations

import logging

import pytest

from naviyam.build import build_all
from naviyam.chatbot import NaviyamChatbot
from naviyam.config import Settings
from naviyam.events import EventStore
from naviyam.memory import ConversationMemory
from naviyam.models import ModelBundle


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = Settings.load()
    logging.getLogger(__name__).info("e2e artefacts in %s", s.home.resolve())
    build_all(s)
    return s


@pytest.fixture(scope="session")
def models(settings) -> ModelBundle:
    bundle = ModelBundle(settings)
    bundle.warm_up()
    return bundle


@pytest.fixture()
def bot(models, tmp_path):
    chatbot = NaviyamChatbot(models, ConversationMemory(tmp_path / "memory.sqlite"), EventStore(tmp_path / "events.sqlite"))
    chatbot.warm_up()
    yield chatbot
    chatbot.close()
