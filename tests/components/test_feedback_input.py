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
