"""naviyam-api admin endpoints (rollback, reload) and feedback auth: tokens, refusals, effects, logs.

The token check is ``hmac.compare_digest`` over SHA-256 digests (``components.feedback.bearer_matches``).
A timing test cannot tell it from ``==`` reliably on a shared CI machine, so these tests pin the
behaviour (right token in, every wrong one out, nothing open by default) and the reason for the
constant-time compare lives in ``bearer_matches``'s docstring.
"""
from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from components.feedback import bearer_matches, create_app
from naviyam.config import Settings
from naviyam.events import EventStore
from naviyam.registry import HotModel, ModelRegistry

ADMIN = "adm-Zq8vN2pX4rT6yU1w"
FEEDBACK = "fb-Lk3jH5gF7dS9aQ0e"
USER = "user_7391"


def settings_with(tmp_path, admin: str | None = ADMIN, feedback: str | None = FEEDBACK) -> Settings:
    s = Settings(home=tmp_path)
    return s.model_copy(update={"serving": s.serving.model_copy(update={"admin_token": admin,
                                                                        "feedback_token": feedback})})


@pytest.fixture()
def registry(tmp_path) -> ModelRegistry:
    reg = ModelRegistry.from_settings(Settings(home=tmp_path))
    src = tmp_path / "ranker-src"
    src.mkdir()
    for i in (1, 2):
        (src / "weights.txt").write_text(f"model {i}")
        reg.promote("ranker", reg.register("ranker", src))
    return reg


def client(tmp_path, registry=None, **tokens) -> TestClient:
    settings = settings_with(tmp_path, **tokens)
    app = create_app(settings, EventStore(tmp_path / "events.sqlite"), shop_ids={"shop_0001"},
                     registry=registry or ModelRegistry.from_settings(settings))
    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


WRONG = [None, "", "Bearer", f"Bearer {ADMIN[:-1]}", f"Bearer {ADMIN}x", f"bearer{ADMIN}", ADMIN,
         f"Bearer {FEEDBACK}", f"Basic {ADMIN}"]


@pytest.mark.parametrize("header", WRONG)
@pytest.mark.parametrize("method, path", [("post", "/v1/admin/rollback"), ("post", "/v1/admin/reload"),
                                          ("get", "/v1/admin/models/ranker")])
def test_admin_endpoints_refuse_a_missing_or_wrong_token(tmp_path, registry, header, method, path):
    api = client(tmp_path, registry)
    headers = {"authorization": header} if header is not None else {}
    resp = getattr(api, method)(path, headers=headers, **({"json": {}} if method == "post" else {}))
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert registry.current_version("ranker") == "v0002" and registry.reload_generation("ranker") == 0


@pytest.mark.parametrize("admin", [None, ""])
def test_admin_endpoints_are_off_without_an_admin_token(tmp_path, registry, admin):
    api = client(tmp_path, registry, admin=admin)
    for headers in ({}, bearer(""), bearer("None"), bearer(FEEDBACK)):
        resp = api.post("/v1/admin/rollback", headers=headers, json={})
        assert resp.status_code == 503 and "admin_token" in resp.json()["detail"]
    assert registry.current_version("ranker") == "v0002"


def test_rollback_with_the_admin_token_moves_production_back(tmp_path, registry):
    api = client(tmp_path, registry)
    resp = api.post("/v1/admin/rollback", headers=bearer(ADMIN), json={"model": "ranker", "reason": "bad ctr"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == "v0001" and resp.json()["rolled_back_from"] == "v0002"
    assert registry.current_version("ranker") == "v0001"
    # Nothing older to go back to: a conflict, not a 500.
    resp = api.post("/v1/admin/rollback", headers=bearer(ADMIN), json={"model": "ranker"})
    assert resp.status_code == 409 and "no previous production" in resp.json()["detail"]


def test_canary_rollback_stops_the_canary(tmp_path, registry):
    api = client(tmp_path, registry)
    src = tmp_path / "ranker-src"
    registry.start_canary("ranker", registry.register("ranker", src), percent=10)
    resp = api.post("/v1/admin/rollback", headers=bearer(ADMIN), json={"model": "ranker", "channel": "canary"})
    assert resp.status_code == 200 and resp.json()["stopped"] == "v0003"
    assert registry.current_version("ranker", "canary") is None
    assert registry.current_version("ranker") == "v0002"
    assert api.post("/v1/admin/rollback", headers=bearer(ADMIN),
                    json={"model": "ranker", "channel": "canary"}).status_code == 409


@pytest.mark.parametrize("body, status", [
    ({"model": "../etc"}, 422), ({"model": "ranker", "channel": "staging"}, 422), ({"extra": 1}, 422),
    ({"model": "nosuchmodel"}, 404), ("not json", 400), ([], 422),
])
def test_bad_admin_bodies_get_a_4xx(tmp_path, registry, body, status):
    api = client(tmp_path, registry)
    resp = api.post("/v1/admin/rollback", headers={**bearer(ADMIN), "content-type": "application/json"},
                    content=body if isinstance(body, str) else None, json=None if isinstance(body, str) else body)
    assert resp.status_code == status, resp.text
    assert registry.current_version("ranker") == "v0002"


def test_reload_makes_every_follower_load_the_model_again(tmp_path, registry):
    """A server's HotModel loads the same version again after /v1/admin/reload (e.g. the files of
    an unregistered build dir were retrained in place); without a request it keeps its model."""
    loads: list[str] = []

    def loader(path):
        loads.append((path / "weights.txt").read_text())
        return loads[-1]

    follower = HotModel(registry, "ranker", loader)
    assert follower.get().value == "model 2" and not follower.maybe_reload()
    api = client(tmp_path, registry)
    resp = api.post("/v1/admin/reload", headers=bearer(ADMIN), json={"model": "ranker"})
    assert resp.status_code == 200 and resp.json()["reload_generation"] == 1
    assert follower.maybe_reload() and len(loads) == 2 and follower.version == "v0002"
    assert not follower.maybe_reload()  # once per request, not on every check
    status = api.get("/v1/admin/models/ranker", headers=bearer(ADMIN)).json()
    assert status["production"] == "v0002" and status["reload_generation"] == 1


def test_feedback_token_guards_feedback_only(tmp_path, registry):
    api = client(tmp_path, registry)
    event = {"event_id": "e1", "user_id": USER, "shop_id": "shop_0001", "feedback_type": "clicked"}
    assert api.post("/v1/feedback", json=event).status_code == 401
    assert api.post("/v1/feedback", json=event, headers=bearer(ADMIN)).status_code == 401
    assert api.post("/v1/feedback", json=event, headers=bearer(FEEDBACK)).json() == {"stored": 1, "duplicates": 0}
    assert api.post("/v1/admin/reload", json={}, headers=bearer(FEEDBACK)).status_code == 401


def test_bearer_matches_only_the_exact_header():
    assert bearer_matches(f"Bearer {ADMIN}", ADMIN)
    assert not any(bearer_matches(h, ADMIN) for h in WRONG)


def test_logs_carry_no_token_and_no_user_id(tmp_path, registry, caplog):
    caplog.set_level(logging.DEBUG)
    api = client(tmp_path, registry)
    event = {"event_id": "e9", "user_id": USER, "shop_id": "shop_0001", "feedback_type": "ordered",
             "order_amount": 9000}
    api.post("/v1/feedback", json=event, headers=bearer(FEEDBACK))
    api.post("/v1/feedback", json=event, headers=bearer(FEEDBACK + "x"))
    api.post("/v1/feedback", json={**event, "shop_id": "shop_9999"}, headers=bearer(FEEDBACK))
    api.post("/v1/admin/rollback", json={}, headers=bearer(ADMIN + "x"))
    api.post("/v1/admin/reload", json={"model": "ranker"}, headers=bearer(ADMIN))
    api.post("/v1/admin/rollback", json={"model": "ranker"}, headers=bearer(ADMIN))
    text = caplog.text
    assert "rolled back v0002 -> v0001" in text and "refused" in text  # the service does log what happened
    for secret in (ADMIN, FEEDBACK, USER):
        assert secret not in text
