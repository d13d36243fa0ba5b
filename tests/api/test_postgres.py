"""The API on PostgreSQL: keys, review routing and a restart, with the same code as SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.main import create_app

PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh schema (dropped afterwards); libpq's options pick it as search path."""
    schema = f"api_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.mark.postgres
def test_review_routing_and_restart_on_postgres(
    pg_url: str, make_settings: Callable[..., Any], key_headers: Callable[..., dict[str, str]]
) -> None:
    settings = make_settings(database_url=pg_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
        sub = key_headers(client.app, "submitter")
        rev = key_headers(client.app, "reviewer")
        r = client.post(
            "/v1/classify",
            json={"text": "aggravated burglary", "id": "PG-1", "min_precision": 0.999},
            headers=sub,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "review" and body["review_id"]
    # A new app on the same database: the key and the queued item are both still there.
    with TestClient(create_app(settings)) as client:
        item = client.get(f"/v1/reviews/{body['review_id']}", headers=rev)
        assert item.status_code == 200, item.text
        assert item.json()["record_id"] == "PG-1" and item.json()["status"] == "pending"
