"""Crash durability of the event log: SIGKILL the writer mid-burst, restart, retry what was not
acknowledged (an at-least-once client, as the app is); every acknowledged event is then stored,
and every event exactly once.

Two writers: the real feedback service (``python -m components.feedback``) under 16 concurrent
HTTP clients, and a process logging chat turns through ``EventStore.log_interaction`` the way the
NLG node does. On SQLite (the embedded default) one process of each; on PostgreSQL (a cluster)
two of each writing one database at once, one of them killed.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from components.local_stack import free_ports
from naviyam.config import Settings
from naviyam.data.generate import build_dataset

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
EVENTS_PER_CLIENT = 48
DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A tiny generated world: the service checks shop ids against its catalogue."""
    home = tmp_path_factory.mktemp("api-home")
    build_dataset(Settings(home=home), n_schools=2, n_shops=30, n_users=20, days=3)
    return home


class FeedbackProcess:
    """The feedback service as a child process on a free loopback port, logging to a file."""

    def __init__(self, home: Path, token: str, log_path: Path, dsn: str | None = None):
        self.home, self.token, self.log_path, self.dsn = home, token, log_path, dsn
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = free_ports(1)[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAVIYAM_")}
        env.update(NAVIYAM_HOME=str(self.home), NAVIYAM_SERVING__HOST="127.0.0.1",
                   NAVIYAM_SERVING__FEEDBACK_TOKEN=self.token, NAVIYAM_LOG_LEVEL="DEBUG")
        if self.dsn:
            env["NAVIYAM_STATE__DSN"] = self.dsn
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-m", "components.feedback", "--port", str(port)],
                                         cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    self.url = f"{base}/v1/feedback"
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"feedback service not up: {self.log_path.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AtLeastOnceClient(threading.Thread):
    """Sends its events in small batches; a batch is resent (same event ids) until a 200 answers it."""

    def __init__(self, server: FeedbackProcess, batches: list[list[dict]], acked: set[str],
                 lock: threading.Lock, progress: threading.Condition):
        super().__init__(daemon=True)
        self.server, self.batches, self.acked, self.lock, self.progress = server, batches, acked, lock, progress
        self.retries = 0
        self.duplicates = 0
        self.error: str | None = None

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.server.token}"}
        deadline = time.monotonic() + DEADLINE_S
        with httpx.Client(timeout=10) as client:
            for batch in self.batches:
                while True:
                    if time.monotonic() > deadline:
                        self.error = "deadline passed with unacknowledged events"
                        return
                    try:
                        resp = client.post(self.server.url, json={"events": batch}, headers=headers)
                    except httpx.TransportError:
                        self.retries += 1
                        time.sleep(0.05)  # the server is down or restarting
                        continue
                    if resp.status_code != 200:
                        self.error = f"{resp.status_code}: {resp.text[:300]}"
                        return
                    self.duplicates += resp.json()["duplicates"]
                    with self.progress:
                        self.acked.update(e["event_id"] for e in batch)
                        self.progress.notify_all()
                    break


def feedback_batches(client: int, shops: list[str], users: list[str]) -> list[list[dict]]:
    events = [{"event_id": f"c{client:02d}-e{i:03d}", "user_id": users[(client + i) % len(users)],
               "shop_id": shops[(client * 7 + i) % len(shops)], "feedback_type": "ordered" if i % 3 == 0 else "clicked",
               "request_id": f"c{client:02d}-r{i // 4:03d}", "order_amount": 9000 if i % 3 == 0 else None,
               "timestamp": f"2026-08-01T12:{i % 60:02d}:00"} for i in range(EVENTS_PER_CLIENT)]
    sizes = [3, 5, 8, 4, 6, 10]  # several commits per request: a kill tends to land inside a batch
    batches, i, k = [], 0, client
    while i < len(events):
        size = sizes[k % len(sizes)]
        batches.append(events[i:i + size])
        i, k = i + size, k + 1
    return batches



def read_after_crash(db, query: str) -> list[tuple]:
    """Rows of a store a killed writer left behind, read-only, after SQLite's own integrity check."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def assert_exactly_once(ids: list[str], acknowledged: set[str], what: str) -> None:
    assert len(ids) == len(set(ids)), f"{what} stored twice"
    assert acknowledged <= set(ids), f"acknowledged {what} lost in the crash"


def test_acknowledged_feedback_survives_a_kill_mid_burst_exactly_once(home, tmp_path):
    shops = pd.read_parquet(home / "data" / "shops.parquet")["shop_id"].tolist()
    users = pd.read_parquet(home / "data" / "users.parquet")["user_id"].tolist()
    server = FeedbackProcess(home, "fb-" + secrets.token_urlsafe(24), tmp_path / "feedback.log")
    lock, progress = threading.Lock(), threading.Condition()
    acked: set[str] = set()
    all_batches = [feedback_batches(c, shops, users) for c in range(CLIENTS)]
    sent = {e["event_id"]: e for batches in all_batches for batch in batches for e in batch}
    total = len(sent)
    try:
        server.start()
        clients = [AtLeastOnceClient(server, b, acked, lock, progress) for b in all_batches]
        for c in clients:
            c.start()
        with progress:
            assert progress.wait_for(lambda: len(acked) >= total // 3, timeout=DEADLINE_S), "burst never got going"
        server.kill()
        with progress:
            acked_before_kill = set(acked)
        assert len(acked_before_kill) < total, "the kill has to land mid-burst"
        server.start()  # same home, same event store
        for c in clients:
            c.join(timeout=DEADLINE_S)
        assert not any(c.is_alive() for c in clients)
        assert [c.error for c in clients if c.error] == []
        assert sum(c.retries for c in clients) > 0  # requests did fail at the kill and were resent
    finally:
        server.stop()

    rows = read_after_crash(home / "state" / "events.sqlite",
                            "SELECT event_id, user_id, shop_id, feedback_type FROM feedback")
    ids = [r[0] for r in rows]
    assert_exactly_once(ids, acked_before_kill, "event")
    assert set(ids) == set(sent) and len(ids) == total
    assert all((sent[i]["user_id"], sent[i]["shop_id"], sent[i]["feedback_type"]) == (u, s, t) for i, u, s, t in rows)
    # The service's own log (DEBUG, both runs) names neither a child nor the token.
    service_log = server.log_path.read_text(errors="replace")
    assert server.token not in service_log
    assert not [u for u in users if u in service_log]


# The NLG node logs each turn with EventStore.log_interaction in its own process; this writer
# does the same from 8 threads and prints each request id once the call has returned.
INTERACTION_WRITER = """
import json, sys, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from naviyam.events import EventStore

store = EventStore(sys.argv[1])  # a SQLite file or a PostgreSQL DSN
out = threading.Lock()  # one whole line per acknowledgement
def write(line):
    turn = json.loads(line)
    store.log_interaction(turn["request_id"], turn["user_id"], turn["timestamp"], turn)
    with out:
        sys.stdout.write(turn["request_id"] + "\\n")
        sys.stdout.flush()
with ThreadPoolExecutor(8) as pool:
    for _ in pool.map(write, [line for line in sys.stdin if line.strip()]):
        pass
"""


def run_writer(db: Path | str, turns: list[dict], kill_after: int | None) -> set[str]:
    """Feeds ``turns`` to a writer process; SIGKILLs it after ``kill_after`` acknowledgements."""
    proc = subprocess.Popen([sys.executable, "-c", INTERACTION_WRITER, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked: set[str] = set()
    try:
        proc.stdin.write("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in turns))
        proc.stdin.close()
        for line in proc.stdout:
            acked.add(line.strip())
            if kill_after is not None and len(acked) >= kill_after:
                # Stop reading, let the writer run on a moment, then kill it: the acknowledgements
                # it wrote meanwhile die unread in the pipe, like answers a crash cut off, so the
                # retry resends turns that are already stored.
                time.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if kill_after is None:
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
    return acked


def test_acknowledged_interactions_survive_a_killed_writer_exactly_once(tmp_path):
    db = tmp_path / "events.sqlite"
    turns = [{"request_id": f"r{i:04d}", "user_id": f"user_{i % 37:04d}", "timestamp": f"2026-08-01T12:00:{i % 60:02d}",
              "user_input": "급식카드 되는 치킨집 추천해줘", "shown_recommendations": [{"shop_id": "shop_0001", "rank": 1}]}
             for i in range(600)]
    acked_before_kill = run_writer(db, turns, kill_after=200)
    assert 200 <= len(acked_before_kill) < len(turns), "the kill has to land mid-burst"
    retried = [t for t in turns if t["request_id"] not in acked_before_kill]
    assert run_writer(db, retried, kill_after=None) == {t["request_id"] for t in retried}

    rows = read_after_crash(db, "SELECT request_id, payload FROM interactions")
    ids = [r[0] for r in rows]
    assert_exactly_once(ids, acked_before_kill, "turn")
    assert sorted(ids) == sorted(t["request_id"] for t in turns)
    by_id = {t["request_id"]: t for t in turns}
    assert all(json.loads(payload) == by_id[rid] for rid, payload in rows)


# -- PostgreSQL: two writer processes on one database ------------------------------------------
def postgres_rows(dsn: str, query: str) -> list[tuple]:
    from sqlalchemy import text

    from naviyam.storage import make_engine

    engine = make_engine(dsn)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def test_two_feedback_services_on_one_postgres_lose_nothing_when_one_is_killed(home, tmp_path, postgres_database):
    """Two replicas of the feedback service write one PostgreSQL database; half the clients talk to
    each; one replica is SIGKILLed mid-burst and restarted. Every acknowledged event is stored,
    none twice."""
    shops = pd.read_parquet(home / "data" / "shops.parquet")["shop_id"].tolist()
    users = pd.read_parquet(home / "data" / "users.parquet")["user_id"].tolist()
    token = "fb-" + secrets.token_urlsafe(24)
    servers = [FeedbackProcess(home, token, tmp_path / f"feedback-{i}.log", dsn=postgres_database) for i in range(2)]
    lock, progress = threading.Lock(), threading.Condition()
    acked: set[str] = set()
    all_batches = [feedback_batches(c, shops, users) for c in range(CLIENTS)]
    sent = {e["event_id"]: e for batches in all_batches for batch in batches for e in batch}
    try:
        for server in servers:
            server.start()
        clients = [AtLeastOnceClient(servers[i % 2], b, acked, lock, progress) for i, b in enumerate(all_batches)]
        for c in clients:
            c.start()
        with progress:
            assert progress.wait_for(lambda: len(acked) >= len(sent) // 3, timeout=DEADLINE_S), "burst never got going"
        servers[0].kill()
        with progress:
            acked_before_kill = set(acked)
        assert len(acked_before_kill) < len(sent), "the kill has to land mid-burst"
        servers[0].start()
        for c in clients:
            c.join(timeout=DEADLINE_S)
        assert [c.error for c in clients if c.error] == [] and not any(c.is_alive() for c in clients)
        assert sum(c.retries for c in clients) > 0
    finally:
        for server in servers:
            server.stop()
    rows = postgres_rows(postgres_database, "SELECT event_id, user_id, shop_id, feedback_type FROM feedback")
    ids = [r[0] for r in rows]
    assert_exactly_once(ids, acked_before_kill, "event")
    assert set(ids) == set(sent)
    assert all((sent[i]["user_id"], sent[i]["shop_id"], sent[i]["feedback_type"]) == (u, s, t) for i, u, s, t in rows)


def test_two_interaction_writers_on_one_postgres_exactly_once(postgres_database):
    """Two NLG-like writer processes log turns into one database at once; one is killed mid-burst
    and its unacknowledged turns are resent (some of them already stored)."""
    turns = [{"request_id": f"r{i:04d}", "user_id": f"user_{i % 37:04d}", "timestamp": f"2026-08-01T12:00:{i % 60:02d}",
              "user_input": "급식카드 되는 치킨집 추천해줘", "shown_recommendations": [{"shop_id": "shop_0001", "rank": 1}]}
             for i in range(600)]
    halves = [turns[0::2], turns[1::2]]
    results: dict[int, set[str]] = {}
    threads = [threading.Thread(target=lambda k: results.__setitem__(k, run_writer(
        postgres_database, halves[k], kill_after=100 if k == 0 else None)), args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    assert 100 <= len(results[0]) < len(halves[0]), "the kill has to land mid-burst"
    assert results[1] == {t["request_id"] for t in halves[1]}
    retried = [t for t in halves[0] if t["request_id"] not in results[0]]
    assert run_writer(postgres_database, retried, kill_after=None) == {t["request_id"] for t in retried}
    rows = postgres_rows(postgres_database, "SELECT request_id, payload FROM interactions")
    ids = [r[0] for r in rows]
    assert_exactly_once(ids, results[0] | results[1], "turn")
    assert sorted(ids) == sorted(t["request_id"] for t in turns)
    by_id = {t["request_id"]: t for t in turns}
    assert all(json.loads(payload) == by_id[rid] for rid, payload in rows)
