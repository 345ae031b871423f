"""A promotion reaches the CLI's in-process chatbot and the served graph alike: both resolve the
ranker through the registry's production pointer (naviyam.models.ModelBundle.ranker and the
ranker predictor/transformer follow the same pointer), so after `promote` both report the new
version in ``model_versions``."""
from __future__ import annotations

import json
import shutil
import time
import uuid

import httpx
import pytest

from components.local_stack import LocalStack
from naviyam.chatbot import NaviyamChatbot
from naviyam.events import EventStore
from naviyam.memory import ConversationMemory
from naviyam.models import RANKER_CHECK_S, ModelBundle
from naviyam.registry import ModelRegistry
from naviyam.schemas import UserInput

AFTER_SCHOOL = "2026-12-02T16:00:00"
ASK = {"user_id": "user_123", "text": "급식카드 되는 치킨집 추천해줘", "timestamp": AFTER_SCHOOL}


@pytest.fixture(scope="module")
def stack(settings, on_free_ports, private_home, tmp_path_factory):
    served = on_free_ports(settings.model_copy(update={"home": private_home("promotion-home")}))
    with LocalStack(served, log_dir=tmp_path_factory.mktemp("promotion-logs")) as st:
        yield st


def served_version(stack) -> str:
    s = stack.settings.serving
    resp = httpx.post(f"http://{s.host}:{s.router_port}/", json={**ASK, "session_id": uuid.uuid4().hex[:12]},
                      timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["metadata"]["model_versions"]["ranking"]


def test_promote_then_chat_in_process_and_through_the_graph(stack, tmp_path):
    settings = stack.settings
    bot = NaviyamChatbot(ModelBundle(settings), ConversationMemory(tmp_path / "m.sqlite"),
                         EventStore(tmp_path / "e.sqlite"))

    def in_process_version() -> str:
        response = bot.process(UserInput(**ASK, session_id=uuid.uuid4().hex[:12]))
        return response.metadata.model_versions["ranking"]

    built = json.loads((settings.models_dir / "ranker" / "meta.json").read_text())["version"]
    assert served_version(stack) == in_process_version() == built     # nothing promoted: the built model

    candidate = tmp_path / "ranker-next"
    shutil.copytree(settings.models_dir / "ranker", candidate)
    meta = json.loads((candidate / "meta.json").read_text())
    meta["version"] = "wide_deep_promoted_" + uuid.uuid4().hex[:6]
    (candidate / "meta.json").write_text(json.dumps(meta))
    registry = ModelRegistry.from_settings(settings)
    registry.promote("ranker", registry.register("ranker", candidate), reason="test: promote then chat")

    deadline = time.monotonic() + 10 * RANKER_CHECK_S + 20
    seen = set()
    while time.monotonic() < deadline:
        seen = {served_version(stack), in_process_version()}
        if seen == {meta["version"]}:
            break
        time.sleep(RANKER_CHECK_S / 2)
    bot.close()
    assert seen == {meta["version"]}, f"after the promotion the paths report {seen}"
