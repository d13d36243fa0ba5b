"""Review-store fixtures: the same tests run on SQLite and on PostgreSQL.

PostgreSQL (127.0.0.1:5432, trust auth, database ``test``; override with ICCS_TEST_PG_URL) gets
one fresh schema per test session, migrated once and emptied before each test, then dropped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from service.auth import KeyStore
from service.coding import ReviewRequest
from service.review.store import ReviewStore, init_db
from service.taxonomy import load_taxonomy

PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = (
    "memory_votes",
    "review_contributions",
    "review_audit",
    "review_decisions",
    "decision_memory",
    "review_items",
    "api_keys",
    "jobs",
)


def pg_schema_engine(schema: str) -> Engine:
    """Engine whose connections see only ``schema`` (created here)."""
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return create_engine(
        PG_URL,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=10,
        pool_pre_ping=True,
    )


def drop_pg_schema(schema: str) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    schema = f"review_test_{uuid.uuid4().hex[:10]}"
    engine = pg_schema_engine(schema)
    init_db(engine)
    yield engine
    engine.dispose()
    drop_pg_schema(schema)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrating once and copying the file keeps per-test setup to a file copy.
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = init_db(f"sqlite:///{path}")
    engine.dispose()
    return path


def fresh_sqlite_url(template: Path, tmp_path: Path) -> str:
    target = tmp_path / "review.sqlite3"
    target.write_bytes(template.read_bytes())
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        eng = init_db(fresh_sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path))
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        with eng.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        yield eng


@pytest.fixture
def store(engine: Engine) -> ReviewStore:
    return ReviewStore(engine, lease_seconds=60)


def suggestion(code: str, confidence: float) -> dict[str, Any]:
    tax = load_taxonomy()
    return {
        "code": code,
        "label": tax.title(code),
        "level": tax.level(code),
        "path": tax.path(code),
        "confidence": confidence,
    }


def request_for(
    text_: str,
    codes: tuple[str, ...] = ("020111", "0201", "0501"),
    top: float = 0.5,
    batch: str | None = None,
    origin: str = "api",
    occurrences: int = 1,
    key: str | None = None,
) -> ReviewRequest:
    sugg = [suggestion(c, round(top / (i + 1), 4)) for i, c in enumerate(codes)]
    return ReviewRequest(
        text=text_,
        text_key=key or f"key-{text_}",
        suggestions=sugg,
        top_code=codes[0],
        top_confidence=top,
        model_version="test-model-1",
        origin=origin,
        batch=batch,
        occurrences=occurrences,
    )


@pytest.fixture
def make_request() -> Any:
    """``request_for`` as a fixture, so test modules need not import this conftest."""
    return request_for


@pytest.fixture
def make_suggestion() -> Any:
    return suggestion


@dataclass
class Api:
    """A TestClient over the review routes plus a key per role."""

    client: Any
    store: ReviewStore
    keys: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def review_app(store: ReviewStore, tmp_path: Path, **settings: Any) -> tuple[Any, KeyStore]:
    """The review and taxonomy routers over ``store``, without a model (none is needed)."""
    from fastapi import FastAPI

    from service.api.deps import Services
    from service.api.errors import install_error_handlers
    from service.api.limits import RateLimiter
    from service.api.observability import Metrics
    from service.api.ui import router as ui_router
    from service.api.v1.reviews import router as reviews_router
    from service.api.v1.taxonomy import router as taxonomy_router
    from service.config import Settings
    from service.db import session_factory
    from service.models.registry import Registry

    cfg = Settings(
        state_dir=tmp_path / "state",
        registry_dir=tmp_path / "registry",
        rate_limit_per_minute=0,
        **settings,
    )
    keys = KeyStore(session_factory(store.engine))
    app = FastAPI()
    install_error_handlers(app)
    app.state.services = Services(
        settings=cfg,
        metrics=Metrics(),
        limiter=RateLimiter(0),
        registry=Registry(cfg.registry_dir),
        engine=store.engine,
        sessions=session_factory(store.engine),
        keys=keys,
        store=store,
    )
    app.include_router(reviews_router, prefix="/v1")
    app.include_router(taxonomy_router, prefix="/v1")
    app.include_router(ui_router)
    return app, keys


@pytest.fixture
def api(store: ReviewStore, tmp_path: Path) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    app, keys = review_app(store, tmp_path)
    made = {
        name: keys.create(name, role)
        for name, role in [
            ("alice", "reviewer"),
            ("bob", "reviewer"),
            ("carol", "reviewer"),
            ("boss", "admin"),
            ("feeder", "submitter"),
        ]
    }
    with TestClient(app) as client:
        yield Api(client, store, made)


@pytest.fixture(name="assert_error")
def assert_error_fixture() -> Any:
    def check(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert set(body) == {"error", "detail", "status", "context"}, body
        assert body["status"] == status and body["detail"]
        if code is not None:
            assert body["error"] == code, body
        return body

    return check
