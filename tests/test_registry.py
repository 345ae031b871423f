"""The versioned model registry: versions, pointers, rollback, keep-last-N, atomicity."""
from __future__ import annotations

import json
import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from naviyam.registry import HotModel, ModelRegistry, NoVersionError, RegistryError, model_dir
from naviyam.config import Settings


def make_model(tmp_path: Path, name: str, payload: str | None = None) -> Path:
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / "weights.txt").write_text(payload or name)
    (src / "meta.json").write_text(json.dumps({"version": f"model-{name}"}))
    return src


def test_register_promote_canary_rollback(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", keep_last=5)
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

    actions = [json.loads(line)["action"] for line in
               (reg.model_root("ranker") / "events.jsonl").read_text().splitlines()]
    assert actions == ["register", "register", "promote", "start_canary", "promote", "rollback"]


def test_stop_canary_keeps_production(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)
    reg.start_canary("ranker", v2, 10)
    assert reg.stop_canary("ranker", reason="worse CTR") == v2
    assert reg.current_version("ranker") == v1
    assert reg.current_version("ranker", "canary") is None
    with pytest.raises(NoVersionError):
        reg.resolve("ranker", "canary")


def test_keep_last_n_never_prunes_pointed_versions(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", keep_last=3)
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


def test_register_rejects_bad_input(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError):
        reg.register("ranker", tmp_path / "missing")
    with pytest.raises(ValueError):
        reg.register("../etc", make_model(tmp_path, "a"))
    with pytest.raises(NoVersionError):
        reg.promote("ranker", "v0042")


def test_model_dir_falls_back_to_the_built_model(tmp_path):
    settings = Settings(home=tmp_path)
    assert model_dir(settings, "ranker") == settings.models_dir / "ranker"
    with pytest.raises(NoVersionError):
        model_dir(settings, "ranker", "canary")
    reg = ModelRegistry.from_settings(settings)
    reg.promote("ranker", reg.register("ranker", make_model(tmp_path, "a")))
    assert model_dir(settings, "ranker") == reg.root / "ranker" / "v0001"


def test_readers_always_see_a_complete_version_while_pointers_flip(tmp_path):
    """A reader hammering resolve()/current_version() while a writer promotes and rolls back
    never fails and never sees a half-written pointer or a missing directory."""
    reg = ModelRegistry(tmp_path / "registry", keep_last=2)
    v1 = reg.register("ranker", make_model(tmp_path, "a"))
    v2 = reg.register("ranker", make_model(tmp_path, "b"))
    reg.promote("ranker", v1)
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        reader_reg = ModelRegistry(reg.root, keep_last=2)  # its own pointer cache, like a server
        while not stop.is_set():
            try:
                path = reader_reg.resolve("ranker")
                assert (path / "weights.txt").read_text() in ("a", "b")
                seen.add(reader_reg.current_version("ranker"))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(150):
        reg.promote("ranker", v2)
        reg.rollback("ranker")
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == {v1, v2}


def _register_many(root: str, n: int, queue) -> None:
    reg = ModelRegistry(Path(root), keep_last=100)
    src = Path(root).parent / f"src-{mp.current_process().pid}"
    src.mkdir()
    (src / "weights.txt").write_text("x")
    queue.put([reg.register("ranker", src) for _ in range(n)])


def test_concurrent_registers_from_processes_get_distinct_versions(tmp_path):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    root = tmp_path / "registry"
    procs = [ctx.Process(target=_register_many, args=(str(root), 4, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [v for _ in procs for v in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(got) == [f"v{i:04d}" for i in range(1, 13)]
    assert ModelRegistry(root).versions("ranker") == sorted(got)


def test_hot_model_reloads_on_pointer_switch_and_survives_a_bad_version(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
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


def test_hot_model_uses_the_fallback_until_something_is_promoted(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    fallback = make_model(tmp_path, "built")
    hot = HotModel(reg, "ranker", lambda p: (p / "weights.txt").read_text(), fallback_dir=fallback,
                   min_check_interval_s=0.0)
    assert (hot.version, hot.get().value) == (None, "built")
    reg.promote("ranker", reg.register("ranker", make_model(tmp_path, "a")))
    assert hot.maybe_reload() and hot.get().value == "a"
    canary = HotModel(reg, "ranker", lambda p: p, channel="canary")
    with pytest.raises(NoVersionError):
        canary.get()


def test_a_slow_reload_in_a_thread_leaves_requests_on_the_old_model(tmp_path):
    """What the ranker servers do: a due check runs off the event loop; while it loads, get()
    keeps answering with the old version and a second check does not queue behind the load."""
    import threading

    reg = ModelRegistry(tmp_path / "registry")
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
    import naviyam.registry as registry_module

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
