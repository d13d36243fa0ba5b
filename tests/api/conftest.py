"""API fixtures: an app over the tiny real model with its own SQLite database, and keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.config import Settings
from service.main import create_app

ERROR_KEYS = {"error", "detail", "status", "context"}
PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the one shape, with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["context"], dict)
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture(name="assert_error", scope="session")
def assert_error_fixture() -> Callable[..., dict[str, Any]]:
    """:func:`assert_error` for tests (fixtures avoid importing from conftest)."""
    return assert_error


@pytest.fixture(name="key_headers", scope="session")
def key_headers_fixture() -> Callable[..., dict[str, str]]:
    """:func:`key_headers` for tests."""
    return key_headers


@pytest.fixture(scope="session")
def api_registry(tiny_registry: Path) -> Path:
    """The registry the API tests serve (the session's tiny real model)."""
    return tiny_registry


@pytest.fixture
def make_settings(api_registry: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings over the tiny model and a fresh SQLite file; keyword overrides allowed."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "registry_dir": api_registry,
            "state_dir": tmp_path / "state",
            "rate_limit_per_minute": 0,
        }
        return Settings(**{**base, **overrides})

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Factory of started TestClients (lifespan run); all closed at teardown."""
    clients: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
        client = TestClient(
            create_app(make_settings(**overrides)),
            raise_server_exceptions=raise_server_exceptions,
        )
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def key_headers(app: FastAPI, role: str, name: str | None = None) -> dict[str, str]:
    """Authorization header of a new key with ``role``."""
    key = app.state.services.keys.create(name or f"test-{role}", role)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def shared_client(
    api_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One started app per test module, for tests that do not change settings."""
    state = tmp_path_factory.mktemp("api-state")
    settings = Settings(registry_dir=api_registry, state_dir=state, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def headers(shared_client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers per role on the module's shared app."""
    app: FastAPI = shared_client.app  # type: ignore[assignment]
    return {role: key_headers(app, role) for role in ("submitter", "reviewer", "admin")}


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (dropped afterwards); libpq's options set the path."""
    schema = f"api_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Setting overrides for each database backend (a fresh PostgreSQL schema for postgres)."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("pg_url")}
    return {}
