"""The state stores (conversation memory, the interaction and feedback log) on both backends:
a SQLite file and a real PostgreSQL server (``state_backend``, tests/conftest.py)."""
import threading
from datetime import datetime

from sqlalchemy import func, select

from naviyam.events import EventStore
from naviyam.memory import ConversationMemory, ShownShop
from naviyam.schemas import FeedbackEvent, SearchFilters
from naviyam.storage import SCHEMA_VERSIONS, TURNS, MIGRATIONS, make_engine


def count(target, table) -> int:
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def test_memory_keeps_last_turn_per_conversation(state_backend):
    mem = ConversationMemory(state_backend("m"), max_turns=3)
    key = mem.conversation_key("user_1", "s1")
    assert mem.last_turn(key) is None
    for i in range(5):
        mem.add_turn(key, "user_1", "2026-11-25T15:00:00", f"q{i}", f"a{i}", "FOOD_RECOMMENDATION",
                     SearchFilters(category="치킨"), [ShownShop(f"shop_{i:04d}", 8000, 300)])
    last = mem.last_turn(key)
    assert last.text == "q4" and last.category == "치킨" and last.shown[0].shop_id == "shop_0004"
    assert mem.last_turn(mem.conversation_key("user_1", "other")) is None
    assert count(state_backend("m"), TURNS) == 3  # bounded


def test_feedback_is_idempotent_under_concurrent_writes(state_backend):
    store = EventStore(state_backend("e"))
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
    assert len(EventStore(state_backend("e")).feedback()) == 50


def test_interaction_log_stores_once_per_request(state_backend):
    store = EventStore(state_backend("e"))
    assert store.log_interaction("r1", "user_1", "2026-11-25T15:00:00", {"user_input": "치킨"})
    assert not store.log_interaction("r1", "user_1", "2026-11-25T15:00:00", {"user_input": "치킨"})
    assert store.interactions() == [{"user_input": "치킨"}]


def test_a_retried_turn_is_remembered_once(state_backend):
    # The router retries an NLG call whose first try was only slow; both tries finish.
    mem = ConversationMemory(state_backend("m"))
    args = ("u1/s", "u1", "2026-11-25T12:00:00", "치킨", "추천", "FOOD_RECOMMENDATION", SearchFilters(), [])
    assert mem.add_turn(*args, request_id="req-1") is True
    assert mem.add_turn(*args, request_id="req-1") is False
    assert mem.add_turn(*args, request_id="req-2") is True
    assert count(state_backend("m"), TURNS) == 2


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



def test_replicas_writing_one_conversation_lose_no_turn(state_backend):
    """Two replicas (here: two stores, four threads) answer turns of the same conversation at
    once: every turn is stored once, numbered without gaps or overwrites."""
    stores = [ConversationMemory(state_backend("m"), max_turns=1000) for _ in range(2)]

    def write(i):
        for j in range(15):
            stores[i % 2].add_turn("u/s", "u", "t", f"q{i}-{j}", "a", "FOOD_RECOMMENDATION", SearchFilters(), [],
                                   request_id=f"r{i}-{j}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine = make_engine(state_backend("m"))
    with engine.connect() as conn:
        numbers = sorted(conn.execute(select(TURNS.c.turn_no)).scalars())
    engine.dispose()
    assert numbers == list(range(1, 61))


def test_migrations_are_numbered_and_applied_once(state_backend):
    for _ in range(2):
        ConversationMemory(state_backend("m")).close()
        EventStore(state_backend("e")).close()
    engine = make_engine(state_backend("m"))
    with engine.connect() as conn:
        rows = conn.execute(select(SCHEMA_VERSIONS.c.store, SCHEMA_VERSIONS.c.version)).all()
    engine.dispose()
    versions = [v for v, _, _ in MIGRATIONS]
    if state_backend("m") == state_backend("e"):   # one server database holds both stores
        assert sorted(rows) == sorted([("events", v) for v in versions] + [("memory", v) for v in versions])
    else:
        assert sorted(rows) == [("memory", v) for v in versions]


def test_feedback_keeps_the_receipt_time_device_clock_and_traffic(state_backend):
    store = EventStore(state_backend("e"))
    event = FeedbackEvent(event_id="e1", user_id="user_1", shop_id="shop_0001", feedback_type="rated",
                          satisfaction_score=4.5, request_id="r1", timestamp=datetime(1991, 2, 2, 12))
    assert store.add_feedback(event, received_at=datetime(2026, 12, 2, 19, 40), traffic="eval")
    assert not store.add_feedback(event)
    assert store.feedback_rows() == [("e1", "user_1", "shop_0001", "rated", 4.5, "r1", None, "2026-12-02T19:40:00",
                                      "1991-02-02T12:00:00", "eval")]
    store.add_many([("r2", "user_2", "2026-12-02T19:41:00", {"request_id": "r2"})],
                   [("e2", "user_2", "shop_0002", "clicked", None, "r2", None, "2026-12-02T19:41:05", None, "live")])
    assert [p["request_id"] for p in store.interactions()] == ["r2"] and len(store.feedback()) == 2
