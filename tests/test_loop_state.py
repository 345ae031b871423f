"""The learning loop's state and retrain requests (naviyam.loop_state) on both backends: a SQLite
file and a real PostgreSQL server (``state_backend``, tests/conftest.py)."""
import json
import multiprocessing as mp
import threading

from sqlalchemy import select

from naviyam.config import Settings
from naviyam.loop_state import LEGACY_REQUESTS_FILE, LEGACY_STATE_FILE, LoopState
from naviyam.storage import MIGRATIONS, SCHEMA_VERSIONS, make_engine


def test_state_keys_merge_and_survive_reopening(state_backend):
    store = LoopState(state_backend("loop"))
    assert store.read() == {}
    assert store.update(last_retrain_until="2026-11-03 00:00:00") == {"last_retrain_until": "2026-11-03 00:00:00"}
    after = store.update(last_retrain={"at": "t", "ranker": None, "kept": "3 new feedback events"},
                         drift_handled_until=None)
    assert after == {"last_retrain_until": "2026-11-03 00:00:00", "drift_handled_until": None,
                     "last_retrain": {"at": "t", "ranker": None, "kept": "3 new feedback events"}}
    store.update(last_retrain_until="2026-11-04 00:00:00")
    assert LoopState(state_backend("loop")).read()["last_retrain_until"] == "2026-11-04 00:00:00"


def test_concurrent_updates_lose_no_key(state_backend):
    """update() is one transaction per call: writers of other keys at the same moment never drop
    each other's (a read-modify-write of a whole file would)."""
    stores = [LoopState(state_backend("loop")) for _ in range(2)]

    def write(i):
        for j in range(15):
            stores[i % 2].update(**{f"k{i}_{j}": j, "shared": i})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = LoopState(state_backend("loop")).read()
    assert {k for k in state if k != "shared"} == {f"k{i}_{j}" for i in range(4) for j in range(15)}
    assert state["shared"] in range(4)


def _update_many(target, i, queue):
    store = LoopState(target)
    for j in range(10):
        store.update(**{f"p{i}_{j}": j})
    store.add_request({"reason": f"drift {i}"})
    queue.put(i)


def test_processes_update_the_same_state(state_backend):
    target = state_backend("loop")
    LoopState(target).update(before=True)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_update_many, args=(target, i, queue)) for i in range(2)]
    for p in procs:
        p.start()
    assert sorted(queue.get(timeout=60) for _ in procs) == [0, 1]
    for p in procs:
        p.join(timeout=60)
    store = LoopState(target)
    assert set(store.read()) == {"before"} | {f"p{i}_{j}" for i in range(2) for j in range(10)}
    assert sorted(r["reason"] for r in store.requests()) == ["drift 0", "drift 1"]


def test_retrain_requests_move_through_their_states(state_backend):
    store = LoopState(state_backend("loop"))
    assert store.requests() == []
    first = store.add_request({"at": "2026-12-02T10:00:00+00:00", "reason": "data drift"})
    assert first == {"at": "2026-12-02T10:00:00+00:00", "reason": "data drift", "status": "requested"}
    store.add_request({"reason": "error rate", "status": "submitted", "run": {"run_id": "r-1", "host": "h"}})
    assert [r["reason"] for r in store.requests(status="requested")] == ["data drift"]
    assert store.mark_requests("running") == 1
    assert store.requests(status="requested") == []
    assert store.mark_requests("done", current="running") == 1
    assert store.mark_requests("done", current="running") == 0
    rows = store.requests()
    assert [(r["reason"], r["status"]) for r in rows] == [("data drift", "done"), ("error rate", "submitted")]
    assert rows[1]["run"] == {"run_id": "r-1", "host": "h"} and rows[1]["at"]


def test_an_older_home_is_taken_in_once(state_backend, tmp_path):
    state_dir = tmp_path / "old-state"
    state_dir.mkdir()
    (state_dir / LEGACY_STATE_FILE).write_text(json.dumps({"last_retrain_until": "2026-11-01 00:00:00",
                                                           "drift_handled_until": "2026-11-02 00:00:00"}))
    rows = [{"at": "2026-11-02T10:00:00+00:00", "reason": "data drift", "status": "done"},
            {"at": "2026-11-02T11:00:00+00:00", "reason": "error rate", "status": "requested"}]
    (state_dir / LEGACY_REQUESTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"half a line')
    target = state_backend("loop")
    LoopState(target).update(drift_handled_until="2026-11-05 00:00:00")   # newer than the file's: kept
    store = LoopState(target, legacy_dir=state_dir)
    assert store.read() == {"last_retrain_until": "2026-11-01 00:00:00", "drift_handled_until": "2026-11-05 00:00:00"}
    assert store.requests() == rows
    assert not (state_dir / LEGACY_STATE_FILE).exists() and (state_dir / f"{LEGACY_STATE_FILE}.imported").exists()
    assert not (state_dir / LEGACY_REQUESTS_FILE).exists()
    assert LoopState(target, legacy_dir=state_dir).requests() == rows   # not twice


def test_the_home_store_is_a_sqlite_file_without_a_dsn_and_the_database_with_one(tmp_path, state_backend):
    home = Settings(home=tmp_path / "home")
    assert LoopState.from_settings(home, create=False) is None       # a reader makes no empty store
    assert not home.state_dir.exists() or not any(home.state_dir.iterdir())
    LoopState.from_settings(home).update(x=1)
    assert (home.state_dir / "loop.sqlite").exists()
    assert LoopState.from_settings(home, create=False).read() == {"x": 1}

    target = state_backend("loop")
    if isinstance(target, str):   # PostgreSQL: nothing under state/
        served = Settings(home=tmp_path / "served", state={"dsn": target})
        LoopState.from_settings(served).update(y=2)
        assert LoopState.from_settings(served, create=False).read() == {"y": 2}
        assert not (served.state_dir / "loop.sqlite").exists()


def test_the_loop_store_is_migrated_once(state_backend):
    target = state_backend("loop")
    for _ in range(2):
        LoopState(target)
    engine = make_engine(target)
    with engine.connect() as conn:
        rows = conn.execute(select(SCHEMA_VERSIONS.c.version).where(SCHEMA_VERSIONS.c.store == "loop")).scalars().all()
    engine.dispose()
    assert sorted(rows) == [v for v, _, _ in MIGRATIONS]


def test_the_pipeline_steps_keep_their_state_in_the_store(state_backend, tmp_path):
    from pipelines import steps

    settings = Settings(home=tmp_path / "home", state={"dsn": str(state_backend("loop"))})
    steps.request_retrain(settings, "drift", until="2026-11-03 00:00:00")
    assert [r["reason"] for r in steps.pending_retrain_requests(settings)] == ["drift"]
    steps.update_state(settings, last_retrain_until="2026-11-02 00:00:00")
    assert steps.read_state(settings) == {"drift_handled_until": "2026-11-03 00:00:00",
                                          "last_retrain_until": "2026-11-02 00:00:00"}
    steps.mark_retrain_requests(settings, "running")
    assert steps.pending_retrain_requests(settings) == []
    assert [r["status"] for r in LoopState(state_backend("loop")).requests()] == ["running"]
    assert not (settings.state_dir / "loop.sqlite").exists()   # the configured store, not the home's file
