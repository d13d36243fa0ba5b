"""The API on PostgreSQL: keys, review routing and a restart, with the same code as SQLite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app


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
