"""The learning loop on real traffic: the crash of issue L reproduced and answered with a decision.

Serving turns whose devices have clocks set wrong both ways (1991, the next morning, the next
year) and no feedback at all arrive after the data set ends, as after `make demo`, a bench run and
a few conversations. Event times must be the server's, the labelled bench/eval turns must stay
out, and each local pipeline must end with a decision: keep production (no positive in the
hold-out), no canary, not enough traffic for drift.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest

from naviyam.chatbot import NaviyamChatbot
from naviyam.clock import Clock
from naviyam.events import EventStore
from naviyam.memory import ConversationMemory
from naviyam.schemas import UserInput
from pipelines.run import run_local

SKEWED = [datetime(1991, 2, 2, 12, 0), datetime(2026, 12, 3, 7, 20), datetime(2027, 6, 1, 12, 0), None,
          datetime(2026, 12, 2, 16, 0)]


@pytest.fixture(scope="module")
def traffic_home(settings, models, private_home):
    home = private_home("traffic-home")
    served = settings.model_copy(update={"home": home})
    state = served.state_dir
    bot = NaviyamChatbot(models, ConversationMemory(state / "memory.sqlite"), EventStore(state / "events.sqlite"))
    for i, ts in enumerate(SKEWED * 3):
        bot.process(UserInput(user_id=f"user_{40 + i}", text="급식카드 되는 치킨집 추천해줘", session_id=f"s{i}",
                              timestamp=ts))
    bot.process(UserInput(user_id="user_7", text="떡볶이 먹고 싶어"), traffic="bench")
    bot.process(UserInput(user_id="user_8", text="피자 먹을래"), traffic="eval")
    skewed = bot.metrics.client_clock_skewed._value.get()
    bot.close()
    return served, skewed


def test_turns_are_logged_at_the_server_time_with_the_device_clock_beside_it(traffic_home):
    served, skewed = traffic_home
    server = Clock.from_settings(served).now().isoformat()
    with sqlite3.connect(served.state_dir / "events.sqlite") as conn:
        rows = [(c, json.loads(p)) for c, p in conn.execute("SELECT created_at, payload FROM interactions")]
    assert len(rows) == len(SKEWED) * 3 + 2
    assert {c for c, _ in rows} == {server}                        # never the device's clock
    clocks = sorted({(p["client_time"], p["client_clock"]) for _, p in rows if p["traffic"] == "live"},
                    key=str)
    assert ("1991-02-02T12:00:00", "skewed") in clocks and ("2027-06-01T12:00:00", "skewed") in clocks
    assert ("2026-12-03T07:20:00", "ok") in clocks and (None, "missing") in clocks
    assert skewed == 6                                             # 1991 and 2027, three times each
    assert sorted(p["traffic"] for _, p in rows if p["traffic"] != "live") == ["bench", "eval"]


def test_every_local_pipeline_ends_in_a_decision(traffic_home):
    served, _ = traffic_home
    retrain = run_local("retrain", home=served.home, train_lora=False)
    assert retrain["decision"] == "keep production"
    data = retrain["summary"]["data"]
    assert data["holdout_sessions"] == 0 and "held-out sessions with a positive" in retrain["summary"]["why"]
    assert data["left_out"] == {"interactions_other_traffic": 2}    # bench and eval
    assert any(p.endswith("keep-production/report") for p in retrain["summary"]["reports"])

    canary = run_local("canary", home=served.home)
    assert canary["decision"] == "nothing to do"
    drift = run_local("drift", home=served.home)
    assert drift["decision"] == "no action" and "production turns" in drift["summary"]["why"]
    assert "followed" not in drift
