"""A per-key quota on open review items (issue 16 #9, review M7).

A key that already has ``ICCS_MAX_OPEN_REVIEW_ITEMS_PER_KEY`` open items it created is refused
with 429 ``review_quota_exceeded`` before anything is coded, so nothing it sent is half taken:
the client retries when reviewers have worked through its items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.config import Settings
from service.db import Job, ReviewItem

pytestmark = pytest.mark.model

# min_precision 0.999: the tiny model is never that sure, so each distinct text goes to review.
SURE_TO_REVIEW = 0.999


def _review(client: TestClient, h: dict[str, str], text: str) -> Any:
    return client.post(
        "/v1/classify", json={"text": text, "min_precision": SURE_TO_REVIEW}, headers=h
    )


def _items(client: TestClient) -> list[tuple[int, str | None, str]]:
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as s:
        rows = s.execute(
            select(ReviewItem.id, ReviewItem.created_by, ReviewItem.status).order_by(ReviewItem.id)
        ).all()
    return [tuple(r) for r in rows]


def test_default_quota_is_large_and_zero_means_no_cap() -> None:
    assert Settings().max_open_review_items_per_key == 100_000
    assert Settings(max_open_review_items_per_key=0).max_open_review_items_per_key == 0


def test_items_remember_the_key_that_created_them(
    make_client: Callable[..., TestClient], key_headers: Callable[..., dict[str, str]]
) -> None:
    client = make_client()
    h = key_headers(client.app, "submitter", "agency-a")
    body = _review(client, h, "wounding with intent, s.18 OAPA 1861").json()
    assert body["status"] == "review"
    assert _items(client) == [(body["review_id"], "agency-a", "pending")]


def test_a_key_over_its_quota_gets_429_before_anything_is_coded(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
    backend: dict[str, Any],
) -> None:
    client = make_client(max_open_review_items_per_key=2, **backend)
    a = key_headers(client.app, "submitter", "agency-a")
    b = key_headers(client.app, "submitter", "agency-b")
    reviewer = key_headers(client.app, "reviewer", "rev")
    first = _review(client, a, "wounding with intent, s.18 OAPA 1861").json()
    second = _review(client, a, "criminal damage to a shop window").json()
    assert first["status"] == second["status"] == "review"
    assert len(_items(client)) == 2

    over = _review(client, a, "theft of a bicycle from a garden shed")
    body = assert_error(over, 429, "review_quota_exceeded")
    assert over.headers["Retry-After"].isdigit() and int(over.headers["Retry-After"]) >= 1
    assert body["context"]["limit"] == 2 and body["context"]["open_items"] == 2
    batch = client.post(
        "/v1/classify/batch",
        json={"items": [{"text": "arson of a car", "min_precision": SURE_TO_REVIEW}]},
        headers=a,
    )
    assert_error(batch, 429, "review_quota_exceeded")
    assert len(_items(client)) == 2  # nothing queued by the refused calls

    # The quota is per key: another agency is not held back by this one.
    other = _review(client, b, "theft of a bicycle from a garden shed").json()
    assert other["status"] == "review"

    # A decided item no longer counts: the key may send again.
    claimed = client.post(f"/v1/reviews/{first['review_id']}/claim", headers=reviewer)
    assert claimed.status_code == 200, claimed.text
    decided = client.post(
        f"/v1/reviews/{first['review_id']}/decision",
        json={"action": "accept"},
        headers=reviewer,
    )
    assert decided.status_code == 200, decided.text
    again = _review(client, a, "arson of a car")
    assert again.status_code == 200, again.text
    assert [r[1] for r in _items(client)] == ["agency-a", "agency-a", "agency-b", "agency-a"]


def test_no_cap_when_the_quota_is_zero(
    make_client: Callable[..., TestClient], key_headers: Callable[..., dict[str, str]]
) -> None:
    client = make_client(max_open_review_items_per_key=0)
    a = key_headers(client.app, "submitter", "agency-a")
    for text in ("arson of a car", "criminal damage to a shop window", "burglary at night"):
        assert _review(client, a, text).status_code == 200
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReviewItem)) == 3


def test_a_job_submit_over_the_quota_is_refused(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
) -> None:
    client = make_client(max_open_review_items_per_key=1, job_runner="off")
    a = key_headers(client.app, "submitter", "agency-a")
    assert _review(client, a, "arson of a car").json()["status"] == "review"
    over = client.post(
        "/v1/jobs",
        files={"file": ("records.csv", b"text\ntheft of a bicycle\n", "text/csv")},
        data={"text_column": "text"},
        headers=a,
    )
    assert_error(over, 429, "review_quota_exceeded")
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0  # no job was queued


def test_a_jobs_review_items_count_against_its_key(
    make_client: Callable[..., TestClient], key_headers: Callable[..., dict[str, str]]
) -> None:
    client = make_client()
    a = key_headers(client.app, "submitter", "agency-a")
    job = client.post(
        "/v1/jobs",
        files={
            "file": ("records.csv", b"text\nwounding with intent\narson of a car\n", "text/csv")
        },
        data={"text_column": "text", "to_review": "true", "min_precision": str(SURE_TO_REVIEW)},
        headers=a,
    )
    assert job.status_code == 202, job.text
    for _ in range(600):
        status = client.get(f"/v1/jobs/{job.json()['id']}", headers=a).json()["status"]
        if status in ("done", "failed"):
            break
        time.sleep(0.05)
    assert status == "done"
    items = _items(client)
    assert len(items) == 2 and {r[1] for r in items} == {"agency-a"}
