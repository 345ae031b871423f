import threading
from datetime import datetime

from naviyam.events import EventStore
from naviyam.memory import ConversationMemory, ShownShop
from naviyam.schemas import FeedbackEvent, SearchFilters


def test_memory_keeps_last_turn_per_conversation(tmp_path):
    mem = ConversationMemory(tmp_path / "m.sqlite", max_turns=3)
    key = mem.conversation_key("user_1", "s1")
    assert mem.last_turn(key) is None
    for i in range(5):
        mem.add_turn(key, "user_1", "2026-11-25T15:00:00", f"q{i}", f"a{i}", "FOOD_RECOMMENDATION",
                     SearchFilters(category="치킨"), [ShownShop(f"shop_{i:04d}", 8000, 300)])
    last = mem.last_turn(key)
    assert last.text == "q4" and last.category == "치킨" and last.shown[0].shop_id == "shop_0004"
    assert mem.last_turn(mem.conversation_key("user_1", "other")) is None
    (n,) = mem._conn.execute("SELECT COUNT(*) FROM turns").fetchone()
    assert n == 3  # bounded


def test_feedback_is_idempotent_under_concurrent_writes(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    events = [FeedbackEvent(event_id=f"e{i % 50}", user_id="user_1", shop_id="shop_0001", feedback_type="clicked",
                            timestamp=datetime(2026, 11, 25, 15, 0)) for i in range(200)]

    def write(chunk):
        for ev in chunk:
            store.add_feedback(ev)

    threads = [threading.Thread(target=write, args=(events[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = store.feedback()
    assert sorted(e.event_id for e in stored) == sorted(f"e{i}" for i in range(50))
    # Survives reopening (durable), no duplicates.
    store.close()
    assert len(EventStore(tmp_path / "e.sqlite").feedback()) == 50


def test_interaction_log_stores_once_per_request(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    assert store.log_interaction("r1", "user_1", "2026-11-25T15:00:00", {"user_input": "치킨"})
    assert not store.log_interaction("r1", "user_1", "2026-11-25T15:00:00", {"user_input": "치킨"})
    assert store.interactions() == [{"user_input": "치킨"}]
