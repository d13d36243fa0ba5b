"""Races between service instances on one database (issue 16 L2).

On PostgreSQL two transactions really run at once: a read-then-insert lets both insert. These
tests start the racing calls together, many rounds over, and check the outcome a single
instance would give. On SQLite the write lock serialises them; the tests run there too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from service.db import ReviewItem
from service.review.store import OPEN_STATUSES, ReviewStore

ROUNDS = 12
THREADS = 4


def _together(calls: list[Callable[[], Any]]) -> list[BaseException]:
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


both = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"], indirect=True
)


@both
def test_final_decisions_on_one_text_in_two_batches(
    store: ReviewStore, make_request, backend: str
) -> None:
    # Two items share a text (two batches); both are decided at the same moment. The memory
    # insert of the second must not fail with a primary-key violation (a 500 over HTTP).
    errors: list[BaseException] = []
    for i in range(ROUNDS):
        a, b = store.enqueue(
            [
                make_request(f"text {i}", key=f"race-{i}", batch="b1"),
                make_request(f"text {i}", key=f"race-{i}", batch="b2"),
            ]
        )
        errors += _together(
            [
                lambda a=a: store.decide(a, "alice", "correct", code="0201"),
                lambda b=b: store.decide(b, "bob", "correct", code="0201"),
            ]
        )
    assert not errors, errors
    keys = [f"race-{i}" for i in range(ROUNDS)]
    assert {e.text_key for e in store.memory_entries(limit=1000)} >= set(keys)
    assert store.stats().decided == 2 * ROUNDS


@both
def test_concurrent_enqueues_of_one_text_make_one_item(
    store: ReviewStore, make_request, backend: str
) -> None:
    # Several instances queue the same text of the same batch at once: one open item, worth
    # every record.
    errors: list[BaseException] = []
    for i in range(ROUNDS):
        req = make_request(f"same {i}", key=f"dup-{i}", batch="b", occurrences=1)
        errors += _together([lambda req=req: store.enqueue([req])] * THREADS)
    assert not errors, errors
    with store._sessions() as s:
        rows = s.execute(
            select(ReviewItem.text_key, ReviewItem.occurrences).where(
                ReviewItem.status.in_(OPEN_STATUSES)
            )
        ).all()
    per_key: dict[str, list[int]] = {}
    for key, occ in rows:
        per_key.setdefault(key, []).append(occ)
    assert per_key == {f"dup-{i}": [THREADS] for i in range(ROUNDS)}


@both
def test_long_record_ids_and_batch_names_from_files_are_stored_clipped(
    store: ReviewStore, make_request, backend: str
) -> None:
    # A bulk file's id column and a long upload name reach the queue unchecked; PostgreSQL
    # refuses values over the columns' VARCHAR(200), which failed the whole job at its end.
    long_batch = "b" * 300
    req = replace(make_request("a long one", batch=long_batch), record_id="r" * 300)
    first = store.enqueue([req])
    again = store.enqueue([req])  # the same text and batch: the same open item
    assert first == again
    with store._tx() as s:
        item = s.get(ReviewItem, first[0])
        assert item is not None
        assert item.record_id == "r" * 200
        assert item.batch == "b" * 200
        assert item.occurrences == 2


@both
def test_a_nul_in_a_file_text_is_queued_not_a_failed_job(
    store: ReviewStore, make_request, backend: str
) -> None:
    # The API refuses NUL at the edge; a bulk file's text reaches the queue as read, and
    # PostgreSQL refuses NUL in text, which failed the whole job at its end.
    req = replace(make_request("bad\x00text", batch="b\x00", key="k-nul"), record_id="r\x001")
    (item_id,) = store.enqueue([req])
    with store._tx() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        assert (item.text, item.record_id, item.batch) == ("bad\ufffdtext", "r\ufffd1", "b\ufffd")
