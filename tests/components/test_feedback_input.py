"""The feedback service refuses absurd bodies with a 4xx before they cost memory or a crash."""
from __future__ import annotations

from fastapi.testclient import TestClient

from components.feedback import MAX_BODY_BYTES, create_app
from naviyam.config import Settings
from naviyam.events import EventStore


def client(tmp_path) -> TestClient:
    settings = Settings(home=tmp_path)
    return TestClient(create_app(settings, EventStore(tmp_path / "events.sqlite"), shop_ids={"shop_0001"}))


def test_oversized_bodies_are_413_declared_or_chunked(tmp_path):
    c = client(tmp_path)
    big = b'{"events": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}'

    def chunks():
        for i in range(0, len(big), 16 * 1024):
            yield big[i:i + 16 * 1024]

    for content in (big, chunks()):
        resp = c.post("/v1/feedback", content=content, headers={"content-type": "application/json"})
        assert resp.status_code == 413 and f"over {MAX_BODY_BYTES} bytes" in resp.json()["detail"]


def test_json_nested_absurdly_deep_is_400_not_500(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    resp = client(tmp_path).post("/v1/feedback", content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["detail"]


def test_the_event_time_is_the_receipt_time_and_the_traffic_label_is_kept(tmp_path):
    import sqlite3
    from datetime import datetime

    from naviyam.clock import Clock

    settings = Settings(home=tmp_path, clock={"pinned_at": "2026-12-02T19:40:00+09:00"})
    store = EventStore(tmp_path / "events.sqlite")
    c = TestClient(create_app(settings, store, shop_ids={"shop_0001"}))
    # A device clock set to 1991 and one set to 2031: stored at the server's receipt time.
    for event_id, ts in (("e1", "1991-02-02T12:00:00"), ("e2", "2031-01-01T00:00:00")):
        body = {"event_id": event_id, "user_id": "user_1", "shop_id": "shop_0001", "feedback_type": "clicked",
                "timestamp": ts}
        assert c.post("/v1/feedback", json=body).status_code == 200
    bench = {"event_id": "e3", "user_id": "user_1", "shop_id": "shop_0001", "feedback_type": "clicked"}
    assert c.post("/v1/feedback", json=bench, headers={"X-Naviyam-Traffic": "bench"}).status_code == 200
    bad = c.post("/v1/feedback", json={**bench, "event_id": "e4"}, headers={"X-Naviyam-Traffic": "bogus"})
    assert bad.status_code == 400 and "X-Naviyam-Traffic" in bad.json()["detail"]
    store.close()
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:
        rows = conn.execute("SELECT event_id, created_at, client_time, traffic FROM feedback ORDER BY event_id").fetchall()
    received = Clock.from_settings(settings).now().isoformat()
    assert rows == [("e1", received, datetime(1991, 2, 2, 12).isoformat(), "live"),
                    ("e2", received, datetime(2031, 1, 1).isoformat(), "live"),
                    ("e3", received, None, "bench")]
