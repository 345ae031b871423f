"""The versioned model registry: versions, pointers, rollback, keep-last-N, atomicity.

Most tests run on each place the pointers can live (``dsn``): files beside the versions (the
default), a SQLite database, and a real PostgreSQL server (as ``state_backend`` in
tests/conftest.py). Tests of the file layout itself stay file-only."""
from __future__ import annotations

import json
import multiprocessing as mp
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from naviyam.registry import HotModel, ModelRegistry, NoVersionError, RegistryError, model_dir
from naviyam.config import Settings


def _pointer_store(request, tmp_path, kind: str):
    if kind == "files":
        return None
    if kind == "sqlite":
        return tmp_path / "registry-state.sqlite"
    return request.getfixturevalue("postgres_database")


@pytest.fixture(params=["files", "sqlite", "postgresql"])
def dsn(request, tmp_path):
    """Where the registry's pointers live: None (files), a SQLite file, a fresh PostgreSQL database."""
    return _pointer_store(request, tmp_path, request.param)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A database for the registry's pointers (the cases that only exist with one)."""
    return _pointer_store(request, tmp_path, request.param)


def make_model(tmp_path: Path, name: str, payload: str | None = None) -> Path:
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / "weights.txt").write_text(payload or name)
    (src / "meta.json").write_text(json.dumps({"version": f"model-{name}"}))
    return src


@contextmanager
def polling_readers(open_registry: Callable[[], ModelRegistry], read: Callable[[ModelRegistry], str],
                    threads: int) -> Iterator[tuple[list[BaseException], set[str]]]:
    """Reader threads, each with its own registry (its own pointer cache, like a server), call
    ``read`` in a loop while the block runs; yields the errors they hit and the versions they saw.
    A reader stops at its first error."""
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        mine = open_registry()
        while not stop.is_set():
            try:
                seen.add(read(mine))
            except BaseException as exc:  # noqa: BLE001 - an assertion too: reported by the test
                errors.append(exc)
                return

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield errors, seen
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def test_register_promote_canary_rollback(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", keep_last=5, dsn=dsn)
    assert reg.current_version("ranker") is None
    with pytest.raises(NoVersionError):
        reg.resolve("ranker")

    v1 = reg.register("ranker", make_model(tmp_path, "a"), {"ndcg@5": 0.3}, note="first")
    v2 = reg.register("ranker", make_model(tmp_path, "b"), {"ndcg@5": 0.4})
    assert (v1, v2) == ("v0001", "v0002")
    assert reg.metadata("ranker", v1)["metrics"] == {"ndcg@5": 0.3}
    assert reg.metadata("ranker", v1)["note"] == "first"
    assert (reg.version_dir("ranker", v2) / "weights.txt").read_text() == "b"

    reg.promote("ranker", v1)
    assert reg.resolve("ranker", "production").name == v1
    reg.start_canary("ranker", v2, percent=10)
    assert reg.current_version("ranker", "canary") == v2
    assert reg.pointer("ranker", "canary")["percent"] == 10
    with pytest.raises(RegistryError):
        reg.start_canary("ranker", v1)  # already production

    assert reg.promote_canary("ranker") == v2
    assert reg.current_version("ranker") == v2
    assert reg.current_version("ranker", "canary") is None  # promoted: the canary is over
    assert reg.status("ranker")["previous"] == v1

    assert reg.rollback("ranker", reason="drift") == v1
    assert reg.current_version("ranker") == v1
    assert reg.pointer("ranker")["rolled_back_from"] == v2
    with pytest.raises(NoVersionError):
        reg.rollback("ranker")  # nothing older than v1

    audit = reg.audit("ranker")
    assert [e["action"] for e in audit] == ["register", "register", "promote", "start_canary", "promote", "rollback"]
    assert audit[-1]["version"] == v1 and audit[-1]["rolled_back_from"] == v2 and audit[-1]["reason"] == "drift"
    assert all(e["at"] for e in audit)
    assert reg.request_reload("ranker", reason="retrained in place") == 1 and reg.reload_generation("ranker") == 1
    assert reg.serving_state("ranker") == (v1, 1)
    assert reg.audit("ranker")[-1]["action"] == "request_reload"
    assert reg.audit("lora") == []
    files = {p.name for p in reg.model_root("ranker").iterdir() if not p.is_dir()}
    if dsn is None:  # the file layout, as before
        assert files >= {"production.json", "counter.json", "reload.json", "events.jsonl"}
        lines = (reg.model_root("ranker") / "events.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == reg.audit("ranker")
    else:  # the database holds every pointer; only the versions are files
        assert files == set() and reg.backend in ("sqlite", "postgresql")


def test_stop_canary_keeps_production(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)
    reg.start_canary("ranker", v2, 10)
    assert reg.stop_canary("ranker", reason="worse CTR") == v2
    assert reg.current_version("ranker") == v1
    assert reg.current_version("ranker", "canary") is None
    with pytest.raises(NoVersionError):
        reg.resolve("ranker", "canary")


def test_keep_last_n_never_prunes_pointed_versions(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", keep_last=3, dsn=dsn)
    versions = [reg.register("ranker", make_model(tmp_path, f"m{i}")) for i in range(3)]
    reg.promote("ranker", versions[0])       # production = v0001
    reg.promote("ranker", versions[1])       # previous = v0001 (rollback target)
    for i in range(3, 8):
        versions.append(reg.register("ranker", make_model(tmp_path, f"m{i}")))
    kept = reg.versions("ranker")
    # the last 3 plus production and its rollback target
    assert kept == ["v0001", "v0002", "v0006", "v0007", "v0008"]
    assert not any(p.name.startswith((".staging", ".deleted")) for p in reg.model_root("ranker").iterdir())
    assert reg.rollback("ranker") == "v0001"
    # numbering never reuses a pruned number
    assert reg.register("ranker", make_model(tmp_path, "m8")) == "v0009"
    assert [e["versions"] for e in reg.audit("ranker") if e["action"] == "prune"] == [
        ["v0003"], ["v0004"], ["v0005"], ["v0002", "v0006"]]  # after the rollback v0002 is no one's


def test_register_rejects_bad_input(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    with pytest.raises(RegistryError):
        reg.register("ranker", tmp_path / "missing")
    with pytest.raises(ValueError):
        reg.register("../etc", make_model(tmp_path, "a"))
    with pytest.raises(NoVersionError):
        reg.promote("ranker", "v0042")
    with pytest.raises(ValueError):
        reg.current_version("ranker", "staging")
    assert reg.current_version("ranker") is None and reg.audit("ranker") == []


def test_model_dir_falls_back_to_the_built_model(tmp_path, dsn):
    settings = Settings(home=tmp_path, state={"dsn": str(dsn) if dsn is not None else None})
    assert model_dir(settings, "ranker") == settings.models_dir / "ranker"
    with pytest.raises(NoVersionError):
        model_dir(settings, "ranker", "canary")
    reg = ModelRegistry.from_settings(settings)
    assert reg.backend == ("files" if dsn is None else ("sqlite" if isinstance(dsn, Path) else "postgresql"))
    reg.promote("ranker", reg.register("ranker", make_model(tmp_path, "a")))
    assert model_dir(settings, "ranker") == reg.root / "ranker" / "v0001"


def test_readers_always_see_a_complete_version_while_pointers_flip(tmp_path, dsn):
    """A reader hammering resolve()/current_version() while a writer promotes and rolls back
    never fails and never sees a half-written pointer or a missing directory."""
    reg = ModelRegistry(tmp_path / "registry", keep_last=2, dsn=dsn)
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)

    def read(mine: ModelRegistry) -> str:
        path = mine.resolve("ranker")
        assert (path / "weights.txt").read_text() in ("a", "b")
        return mine.current_version("ranker")

    with polling_readers(lambda: ModelRegistry(reg.root, keep_last=2, dsn=dsn), read, threads=3) as (errors, seen):
        for _ in range(150 if dsn is None else 40):
            reg.promote("ranker", v2)
            reg.rollback("ranker")
    assert errors == []
    assert seen == {v1, v2}


def _register_many(root: str, n: int, queue, dsn=None) -> None:
    reg = ModelRegistry(Path(root), keep_last=100, dsn=dsn)
    src = Path(root).parent / f"src-{mp.current_process().pid}"
    src.mkdir()
    (src / "weights.txt").write_text("x")
    queue.put([reg.register("ranker", src) for _ in range(n)])


def test_concurrent_registers_from_processes_get_distinct_versions(tmp_path, dsn):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    root = tmp_path / "registry"
    procs = [ctx.Process(target=_register_many, args=(str(root), 4, queue, dsn)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [v for _ in procs for v in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(got) == [f"v{i:04d}" for i in range(1, 13)]
    reg = ModelRegistry(root, dsn=dsn)
    assert reg.versions("ranker") == sorted(got)
    assert sorted(e["version"] for e in reg.audit("ranker") if e["action"] == "register") == sorted(got)


def test_hot_model_reloads_on_pointer_switch_and_survives_a_bad_version(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    bad = make_model(tmp_path, "bad")
    (bad / "weights.txt").unlink()
    v3 = reg.register("ranker", bad)
    reg.promote("ranker", v1)
    hot = HotModel(reg, "ranker", lambda p: (p / "weights.txt").read_text())
    assert (hot.version, hot.get().value) == (v1, "a")
    assert hot.maybe_reload() is False
    reg.promote("ranker", v2)
    assert hot.maybe_reload() is True
    assert (hot.version, hot.get().value) == (v2, "b")
    reg.promote("ranker", v3)           # unloadable: keep serving v2
    assert hot.maybe_reload() is False
    assert (hot.version, hot.failures) == (v2, 1)


def test_hot_model_uses_the_fallback_until_something_is_promoted(tmp_path, dsn):
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    fallback = make_model(tmp_path, "built")
    hot = HotModel(reg, "ranker", lambda p: (p / "weights.txt").read_text(), fallback_dir=fallback,
                   min_check_interval_s=0.0)
    assert (hot.version, hot.get().value) == (None, "built")
    reg.promote("ranker", reg.register("ranker", make_model(tmp_path, "a")))
    assert hot.maybe_reload() and hot.get().value == "a"
    canary = HotModel(reg, "ranker", lambda p: p, channel="canary")
    with pytest.raises(NoVersionError):
        canary.get()


def test_a_slow_reload_in_a_thread_leaves_requests_on_the_old_model(tmp_path, dsn):
    """What the ranker servers do: a due check runs off the event loop; while it loads, get()
    keeps answering with the old version and a second check does not queue behind the load."""
    import threading

    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)
    loading, release = threading.Event(), threading.Event()

    def loader(path):
        if (path / "weights.txt").read_text() == "b":
            loading.set()
            release.wait(10)
        return (path / "weights.txt").read_text()

    hot = HotModel(reg, "ranker", loader, min_check_interval_s=60.0)
    assert not hot.check_due  # just checked at start-up
    hot._next_check = 0.0
    assert hot.check_due
    reg.promote("ranker", v2)
    worker = threading.Thread(target=hot.maybe_reload)
    worker.start()
    assert loading.wait(10)
    assert hot.get().value == "a"          # requests meanwhile: the old model
    assert hot.maybe_reload(force=False) is False  # not due again, and never waits on the load
    release.set()
    worker.join(10)
    assert (hot.version, hot.get().value) == (v2, "b")


def test_current_version_reads_the_pointer_only_after_it_changed(tmp_path, monkeypatch):
    # Polled per request: one stat, and the file is parsed again only after a pointer switch.
    import naviyam.registry_state as registry_module  # where the file backend reads its pointers

    reg = ModelRegistry(tmp_path / "registry")
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)
    reads = []
    real = registry_module._read_json
    monkeypatch.setattr(registry_module, "_read_json", lambda path: reads.append(path) or real(path))
    assert [reg.current_version("ranker") for _ in range(500)] == [v1] * 500
    assert len(reads) <= 1
    reg.promote("ranker", v2)
    reads.clear()  # promote itself reads the pointer (for the history)
    assert reg.current_version("ranker") == v2 and reg.current_version("ranker") == v2
    assert len(reads) == 1


def _switch_many(root: str, dsn, n: int, seed: int, queue) -> None:
    import random

    reg = ModelRegistry(Path(root), dsn=dsn)
    rng = random.Random(seed)
    done = 0
    for i in range(n):
        if i % 5 == 4:
            try:
                reg.rollback("ranker", reason=f"{seed}-{i}")
            except NoVersionError:
                continue
        else:
            reg.promote("ranker", rng.choice(["v0001", "v0002", "v0003"]), reason=f"{seed}-{i}")
        done += 1
    queue.put(done)


def test_pointer_switches_from_two_processes_are_atomic_with_their_audit_rows(tmp_path, dsn):
    """Two processes promote and roll back the same model at once while readers poll it: every
    switch is serialised with its audit row (each row's "from" is the version the row before it
    switched to: no switch lost or interleaved), and readers only ever see complete versions."""
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    versions = [reg.register("ranker", make_model(tmp_path, name)) for name in ("a", "b", "c")]
    reg.promote("ranker", versions[0])
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_switch_many, args=(str(reg.root), dsn, 30, seed, queue)) for seed in (1, 2)]
    for proc in procs:  # before any reader thread: a fork copies only the forking thread
        proc.start()

    def read(mine: ModelRegistry) -> str:
        pointer = mine.pointer("ranker")
        assert pointer["version"] in versions and pointer["version"] not in pointer["previous"]
        path = mine.resolve("ranker")
        assert (path / "weights.txt").read_text() in ("a", "b", "c")
        version, generation = mine.serving_state("ranker")
        assert version in versions and generation == 0
        return version

    with polling_readers(lambda: ModelRegistry(reg.root, dsn=dsn), read, threads=2) as (errors, seen):
        switched = [queue.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
    assert errors == [] and seen
    assert all(proc.exitcode == 0 for proc in procs)

    moves = [e for e in reg.audit("ranker") if e["action"] in ("promote", "rollback")]
    assert len(moves) == 1 + sum(switched)
    for before, after in zip(moves, moves[1:]):
        came_from = after["replaced"] if after["action"] == "promote" else after["rolled_back_from"]
        assert came_from == before["version"], (before, after)
    assert reg.current_version("ranker") == moves[-1]["version"]
    assert reg.pointer("ranker")["reason"] == (moves[-1]["reason"] or "rollback")


def test_a_database_registry_takes_over_a_file_registry(tmp_path, database):
    """Setting ``state.dsn`` over a home whose registry kept its pointers as files: production,
    canary, the rollback history, the reload generation, the counter and the audit log carry over."""
    dsn = database
    files = ModelRegistry(tmp_path / "registry")
    v1, v2, v3 = (files.register("ranker", make_model(tmp_path, name)) for name in ("a", "b", "c"))
    files.promote("ranker", v1)
    files.promote("ranker", v2)
    files.start_canary("ranker", v3, percent=20)
    files.request_reload("ranker")
    files.promote("lora", files.register("lora", make_model(tmp_path, "adapter")))

    db = ModelRegistry(tmp_path / "registry", dsn=dsn)
    assert db.status("ranker") == files.status("ranker")
    assert db.pointer("ranker", "canary") == files.pointer("ranker", "canary")
    assert db.serving_state("ranker", "canary") == (v3, 1)
    assert db.current_version("lora") == "v0001"
    assert db.audit("ranker")[:-1] == files.audit("ranker")
    assert db.audit("ranker")[-1]["action"] == "import_files"
    assert db.rollback("ranker") == v1
    assert files.current_version("ranker") == v2     # the files stay as they were
    assert db.register("ranker", make_model(tmp_path, "d")) == "v0004"
    again = ModelRegistry(tmp_path / "registry", dsn=dsn)   # imported once, not over newer pointers
    assert again.current_version("ranker") == v1 and again.current_version("ranker", "canary") is None


def test_a_registry_that_cannot_be_read_keeps_the_loaded_model(tmp_path, dsn, monkeypatch):
    reg = ModelRegistry(tmp_path / "registry", dsn=dsn)
    reg.promote("ranker", reg.register("ranker", make_model(tmp_path, "a")))
    hot = HotModel(reg, "ranker", lambda p: (p / "weights.txt").read_text())

    def down(*args, **kwargs):
        raise OSError("database restarting")

    monkeypatch.setattr(reg, "serving_state", down)
    assert hot.maybe_reload() is False and hot.get().value == "a"
