"""API keys: the store, the `iccs keys` commands and role checks over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.auth import KeyStore, Principal, hash_key
from service.auth_commands import keys
from service.config import Settings
from service.db import ApiKey, session_factory
from service.errors import AuthError, Conflict, Forbidden, InvalidInput, NotFound
from service.review.store import init_db


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(session_factory(init_db(f"sqlite:///{tmp_path / 'keys.sqlite3'}")))


def test_keys_are_stored_hashed_and_verify(store: KeyStore) -> None:
    key = store.create("agency-a", "submitter")
    assert key.startswith("iccs_") and len(key) > 40
    assert store.verify(key) == Principal("agency-a", "submitter")
    with store.sessions() as s:
        row = s.scalars(select(ApiKey)).one()
    assert row.key_hash == hash_key(key) and key not in row.key_hash
    assert store.create("agency-b", "submitter") != key


def test_verify_refuses_missing_unknown_and_revoked(store: KeyStore) -> None:
    key = store.create("bob", "reviewer")
    for bad in (None, "", "iccs_nope", key + "x"):
        with pytest.raises(AuthError):
            store.verify(bad)
    store.revoke("bob")
    with pytest.raises(AuthError):
        store.verify(key)
    with pytest.raises(NotFound):
        store.revoke("bob")  # already revoked
    [info] = store.list()
    assert info.name == "bob" and not info.active


def test_verified_keys_are_cached_for_the_configured_time(tmp_path: Path) -> None:
    sessions = session_factory(init_db(f"sqlite:///{tmp_path / 'keys.sqlite3'}"))
    now = [100.0]
    cached = KeyStore(sessions, cache_seconds=10, clock=lambda: now[0])
    other_process = KeyStore(sessions)
    key = cached.create("agency-a", "submitter")
    assert cached.verify(key).name == "agency-a"
    other_process.revoke("agency-a")
    now[0] += 9  # still inside the window: no database round trip, the key still works
    assert cached.verify(key).name == "agency-a"
    now[0] += 2  # past it: the revocation is seen
    with pytest.raises(AuthError):
        cached.verify(key)
    # A revocation through the same store takes effect at once.
    key2 = cached.create("agency-b", "submitter")
    assert cached.verify(key2).name == "agency-b"
    cached.revoke("agency-b")
    with pytest.raises(AuthError):
        cached.verify(key2)


def test_create_checks_role_name_and_uniqueness(store: KeyStore) -> None:
    with pytest.raises(InvalidInput):
        store.create("x", "superuser")
    with pytest.raises(InvalidInput):
        store.create("has space", "admin")
    store.create("carol", "admin")
    with pytest.raises(Conflict):
        store.create("carol", "submitter")


def test_roles_and_permissions() -> None:
    sub, rev, adm = (Principal("p", r) for r in ("submitter", "reviewer", "admin"))
    assert sub.can("classify") and sub.can("read") and not sub.can("review")
    assert rev.can("review") and rev.can("read") and not rev.can("classify")
    assert all(adm.can(a) for a in ("classify", "review", "read", "manage"))
    assert not sub.can("manage") and not rev.can("manage")
    with pytest.raises(Forbidden):
        rev.require("classify")


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    runner = CliRunner()
    out = runner.invoke(keys, ["create", "--name", "ons", "--role", "submitter"], obj=settings)
    assert out.exit_code == 0, out.output
    key = out.output.strip().splitlines()[-1]
    assert key.startswith("iccs_") and " " not in key
    store = KeyStore(session_factory(init_db(settings.resolved_database_url())))
    assert store.verify(key).role == "submitter"

    listed = runner.invoke(keys, ["list"], obj=settings)
    assert listed.exit_code == 0 and "ons\tsubmitter" in listed.output and key not in listed.output

    assert runner.invoke(keys, ["revoke", "ons"], obj=settings).exit_code == 0
    assert "revoked" in runner.invoke(keys, ["list"], obj=settings).output
    again = runner.invoke(keys, ["revoke", "ons"], obj=settings)
    assert again.exit_code == 1 and "not_found" in again.output
    bad = runner.invoke(keys, ["create", "--name", "x", "--role", "root"], obj=settings)
    assert bad.exit_code == 2  # click rejects the choice


def test_keys_cli_reads_settings_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICCS_STATE_DIR", str(tmp_path / "env-state"))
    out = CliRunner().invoke(keys, ["create", "--name", "env", "--role", "admin"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "env-state" / "iccs.sqlite3").exists()


CLASSIFY = ("POST", "/v1/classify", {"text": "theft"})
READ_ROUTES = [
    "/v1/taxonomy",
    "/v1/taxonomy/0101",
    "/v1/taxonomy/search?q=theft",
    "/v1/models",
    "/v1/models/active",
]


def _call(client: TestClient, method: str, path: str, body: Any, h: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=h)


def test_role_matrix_over_http(
    shared_client: TestClient,
    headers: dict[str, dict[str, str]],
    assert_error: Callable[..., Any],
) -> None:
    for path, body in (
        ("/v1/classify", {"text": "theft"}),
        ("/v1/classify/batch", {"items": [{"text": "theft"}]}),
    ):
        assert shared_client.post(path, json=body, headers=headers["submitter"]).status_code == 200
        assert shared_client.post(path, json=body, headers=headers["admin"]).status_code == 200
        r = shared_client.post(path, json=body, headers=headers["reviewer"])
        err = assert_error(r, 403, "forbidden")
        assert err["context"] == {"role": "reviewer", "action": "classify"}
    for path in READ_ROUTES:
        for role in ("submitter", "reviewer", "admin"):
            assert shared_client.get(path, headers=headers[role]).status_code == 200, path


def test_missing_bad_and_revoked_keys_get_401(
    shared_client: TestClient, assert_error: Callable[..., Any]
) -> None:
    services = shared_client.app.state.services
    key = services.keys.create("soon-revoked", "submitter")
    ok = shared_client.post(
        "/v1/classify", json={"text": "theft"}, headers={"Authorization": f"bearer {key}"}
    )
    assert ok.status_code == 200  # the scheme is case-insensitive
    services.keys.revoke("soon-revoked")
    for h in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer iccs_wrong"},
        {"Authorization": f"Basic {key}"},
        {"Authorization": f"Bearer {key}"},
    ):
        r = shared_client.post("/v1/classify", json={"text": "theft"}, headers=h)
        assert_error(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == "Bearer"
    for path in READ_ROUTES:
        assert_error(shared_client.get(path), 401, "unauthenticated")


def test_auth_is_checked_before_the_body(
    shared_client: TestClient, assert_error: Callable[..., Any]
) -> None:
    assert_error(shared_client.post("/v1/classify", json={"text": 5}), 401, "unauthenticated")


def test_open_read_routes_setting(
    make_client: Callable[..., TestClient],
    assert_error: Callable[..., Any],
    key_headers: Callable[..., dict[str, str]],
) -> None:
    client = make_client(open_read_routes=True)
    for path in READ_ROUTES:
        assert client.get(path).status_code == 200, path
    # Writes stay closed, and a key that is sent is still checked.
    assert_error(client.post("/v1/classify", json={"text": "theft"}), 401)
    assert_error(client.get("/v1/taxonomy", headers={"Authorization": "Bearer bad"}), 401)
    assert client.get("/v1/models", headers=key_headers(client.app, "reviewer")).status_code == 200


def test_probes_need_no_key(shared_client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert shared_client.get(path).status_code == 200, path
