"""End-to-end fixtures: the real built data set and models (what `make build` makes under var/),
seen through the suite's private home (tests/conftest.py), so nothing here writes into var/.

If something is missing the session builds it first (slow once, then reused).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from components.local_stack import free_ports
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
def on_free_ports() -> Callable[..., Settings]:
    """``on_free_ports(settings, **serving_overrides)``: the same settings with every server of the
    local stack on a free loopback port, so a developer's own `make serve` can keep running."""
    def make(base: Settings, **serving) -> Settings:
        # Distinct: two servers on one port would leave the second unstarted and the first
        # answering for both.
        *picked, router_port = free_ports(len(base.serving.ports) + 1)
        ports = dict(zip(base.serving.ports, picked))
        updated = base.serving.model_copy(update={"ports": ports, "router_port": router_port, **serving})
        return base.model_copy(update={"serving": updated})
    return make


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
