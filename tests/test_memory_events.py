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


def test_a_retried_turn_is_remembered_once(tmp_path):
    # The router retries an NLG call whose first try was only slow; both tries finish.
    mem = ConversationMemory(tmp_path / "m.sqlite")
    args = ("u1/s", "u1", "2026-11-25T12:00:00", "치킨", "추천", "FOOD_RECOMMENDATION", SearchFilters(), [])
    assert mem.add_turn(*args, request_id="req-1") is True
    assert mem.add_turn(*args, request_id="req-1") is False
    assert mem.add_turn(*args, request_id="req-2") is True
    (n,) = mem._conn.execute("SELECT COUNT(*) FROM turns").fetchone()
    assert n == 2


def test_memory_from_before_request_ids_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE turns (conversation TEXT NOT NULL, turn_no INTEGER NOT NULL, user_id TEXT NOT NULL, "
                "created_at TEXT NOT NULL, text TEXT NOT NULL, response TEXT NOT NULL, intent TEXT NOT NULL, "
                "filters TEXT NOT NULL, shown TEXT NOT NULL, PRIMARY KEY (conversation, turn_no))")
    old.execute("INSERT INTO turns VALUES ('u/s', 1, 'u', 't', '떡볶이', 'a', 'FOOD_RECOMMENDATION', ?, '[]')",
                (SearchFilters().model_dump_json(),))
    old.commit()
    old.close()
    mem = ConversationMemory(path)
    assert mem.last_turn("u/s").text == "떡볶이"
    assert mem.add_turn("u/s", "u", "t2", "피자", "b", "FOOD_RECOMMENDATION", SearchFilters(), [], request_id="r")
    assert not mem.add_turn("u/s", "u", "t2", "피자", "b", "FOOD_RECOMMENDATION", SearchFilters(), [], request_id="r")
    assert mem.last_turn("u/s").text == "피자"
