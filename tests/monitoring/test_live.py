"""Live metrics and training events from a hand-written serving log (exact numbers)."""
from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest

from naviyam.events import EventStore
from naviyam.monitoring.live import (
    good_conversations, instruction_samples, live_metrics, metrics_by_arm, read_serving_log, serving_events,
)
from naviyam.ranking.samples import label_events
from naviyam.schemas import FeedbackEvent

T0 = datetime(2026, 11, 2, 15, 0, 0)


def turn(request_id, user, shown, *, response_time=0.5, degraded=False, ranking=None, variant=None,
         intent="FOOD_RECOMMENDATION", minute=0):
    ts = T0.replace(minute=minute).isoformat()
    payload = {"request_id": request_id, "user_id": user, "session_id": None, "timestamp": ts,
               "user_input": "치킨 먹고 싶어", "final_response": "이런 가게는 어때요?",
               "extracted_info": {"intent": intent, "entities": {}, "confidence": 0.9},
               "shown_recommendations": [{"shop_id": s, "rank": i + 1, "score": 0.9 - 0.1 * i}
                                         for i, s in enumerate(shown)],
               "response_time": response_time, "degraded": degraded}
    if ranking:
        payload["model_versions"] = {"ranking": ranking}
    if variant:
        payload["variant"] = variant
    return request_id, user, ts, payload


@pytest.fixture()
def serving_log(tmp_path):
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    for args in (turn("r1", "user_1", ["s1", "s2"], ranking="A", minute=0),
                 turn("r2", "user_2", ["s3"], response_time=2.0, degraded=True, ranking="B", variant="canary",
                      minute=5),
                 turn("r3", "user_3", [], response_time=0.1, intent="GREETING", ranking="A", minute=6)):
        request_id, user, ts, payload = args
        store.log_interaction(request_id, user, ts, payload)
    events = [
        FeedbackEvent(event_id="f1", user_id="user_1", shop_id="s1", feedback_type="clicked", request_id="r1",
                      timestamp=T0.replace(minute=1)),
        FeedbackEvent(event_id="f2", user_id="user_1", shop_id="s1", feedback_type="ordered", request_id="r1",
                      order_amount=7000, timestamp=T0.replace(minute=2)),
        FeedbackEvent(event_id="f3", user_id="user_1", shop_id="s1", feedback_type="rated", request_id="r1",
                      satisfaction_score=5.0, timestamp=T0.replace(minute=40)),
        # no request id: matched to user_2's latest impression of s3 within two hours
        FeedbackEvent(event_id="f4", user_id="user_2", shop_id="s3", feedback_type="clicked",
                      timestamp=T0.replace(minute=15)),
        # a shop that was never shown: no impression to credit
        FeedbackEvent(event_id="f5", user_id="user_2", shop_id="s9", feedback_type="clicked",
                      timestamp=T0.replace(minute=16)),
    ]
    for e in events:
        store.add_feedback(e, received_at=e.timestamp)  # received when it happened
    store.close()
    return read_serving_log(db)


def test_frames(serving_log):
    assert list(serving_log.interactions["request_id"]) == ["r1", "r2", "r3"]
    assert len(serving_log.impressions) == 3
    assert len(serving_log.feedback) == 5
    assert serving_log.latest() == pd.Timestamp(T0.replace(minute=6))


def test_live_metrics(serving_log):
    m = live_metrics(serving_log)
    assert (m["requests"], m["search_requests"], m["impressions"]) == (3, 2, 3)
    assert (m["clicks"], m["orders"]) == (2, 1)
    assert m["ctr"] == pytest.approx(2 / 3)
    assert m["request_ctr"] == pytest.approx(1.0)
    assert m["error_rate"] == pytest.approx(1 / 3)
    assert m["latency_p95_s"] == pytest.approx(pd.Series([0.5, 2.0, 0.1]).quantile(0.95))
    assert m["mean_satisfaction"] == pytest.approx(5.0)


def test_metrics_by_arm(serving_log):
    arms = metrics_by_arm(serving_log, {"production": {"A"}, "canary": {"B", "canary"}})
    assert (arms["production"]["impressions"], arms["production"]["clicks"]) == (2, 1)
    assert arms["production"]["error_rate"] == 0.0
    assert (arms["canary"]["impressions"], arms["canary"]["clicks"]) == (1, 1)
    assert arms["canary"]["error_rate"] == 1.0


def test_window(serving_log):
    recent = serving_log.window(since=T0.replace(minute=5))
    assert list(recent.interactions["request_id"]) == ["r2", "r3"]
    # feedback of the window's turns, and feedback that arrived in the window (f3 rates r1 late)
    assert set(recent.feedback["event_id"]) == {"f3", "f4", "f5"}
    assert math.isnan(live_metrics(serving_log.window(since=T0.replace(minute=30)))["ctr"])


def test_serving_events_feed_the_ranker_samples(serving_log):
    events = serving_events(serving_log)
    counts = events["event_type"].value_counts().to_dict()
    assert counts == {"view": 3, "click": 2, "order": 1, "rating": 1}
    r1 = events[events["session_id"] == "srv-r1"]
    assert sorted(r1[r1["event_type"] == "view"]["position"]) == [0, 1]
    assert r1.loc[r1["event_type"] == "rating", "rating"].item() == 5.0
    assert r1.loc[r1["event_type"] == "order", "order_amount"].item() == 7000
    samples = label_events(events)
    pos = samples[samples["label"] == 1.0].set_index("shop_id")
    assert pos.loc["s1", "weight"] == 2.0 and pos.loc["s1", "kind"] == "order"   # ordered outranks the click
    assert pos.loc["s3", "weight"] == 1.0
    assert set(samples.loc[samples["label"] == 0.0, "shop_id"]) == {"s2"}
    assert len(serving_events(serving_log, known_users={"user_1"})) == len(r1)


def test_good_conversations_follow_the_three_rules(serving_log):
    good = good_conversations(serving_log)
    assert list(good["request_id"]) == ["r1"]           # r2: no rating, slow, degraded
    sample = instruction_samples(good)[0]
    assert set(sample) >= {"instruction", "input", "output"}
    assert sample["input"] == "치킨 먹고 싶어"
    assert good_conversations(serving_log, min_satisfaction=5.5).empty


def test_missing_store_is_empty(tmp_path):
    log = read_serving_log(tmp_path / "nothing.sqlite")
    assert log.empty and log.latest() is None
    assert live_metrics(log)["requests"] == 0


def test_the_learning_loop_reads_only_its_traffic_and_no_event_from_the_future(tmp_path):
    from naviyam.monitoring.live import admit

    store = EventStore(tmp_path / "events.sqlite")
    rows = [("live1", "live", T0), ("bench1", "bench", T0), ("future", "live", T0.replace(day=20)),
            ("early", "live", datetime(2020, 1, 1)), ("sim1", "simulated", T0.replace(hour=16))]
    for rid, traffic, ts in rows:
        store.log_interaction(rid, "user_1", ts.isoformat(), {
            "request_id": rid, "user_id": "user_1", "traffic": traffic,
            "shown_recommendations": [{"shop_id": "s1", "rank": 1, "score": 0.5}]})
    for rid in ("live1", "bench1", "future"):
        store.add_feedback(FeedbackEvent(event_id=f"f-{rid}", user_id="user_1", shop_id="s1",
                                         feedback_type="clicked", request_id=rid), received_at=T0.replace(minute=3))
    store.close()
    admitted = admit(read_serving_log(tmp_path / "events.sqlite"), ("live", "simulated"),
                     now=T0.replace(day=10), start=datetime(2026, 8, 1))
    assert set(admitted.log.interactions["request_id"]) == {"live1", "sim1"}
    assert set(admitted.log.impressions["request_id"]) == {"live1", "sim1"}
    assert set(admitted.log.feedback["event_id"]) == {"f-live1"}   # feedback on a left-out turn goes with it
    assert admitted.left_out == {"interactions_other_traffic": 1, "interactions_future": 1,
                                 "interactions_before_start": 1, "feedback_on_left_out_turns": 2}
