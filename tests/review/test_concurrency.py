"""Four reviewers work one 100-item queue at once: each item is decided exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from service.db import ReviewDecision
from service.review.store import ReviewStore

REVIEWERS = 4
ITEMS = 100


def _work(
    store: ReviewStore,
    name: str,
    got: list[int],
    errors: list[BaseException],
    start: threading.Barrier,
) -> None:
    try:
        start.wait()
        while (item := store.claim_next(name)) is not None:
            store.decide(item.id, name, "accept")
            got.append(item.id)
    except BaseException as exc:  # noqa: BLE001 - surfaced by the test thread
        errors.append(exc)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"], indirect=True
)
def test_four_reviewers_each_item_decided_once(
    store: ReviewStore, make_request, backend: str
) -> None:
    ids = store.enqueue([make_request(f"text {i}", top=(i % 97) / 100) for i in range(ITEMS)])
    assert len(set(ids)) == ITEMS
    start = threading.Barrier(REVIEWERS)
    results: dict[str, list[int]] = {f"reviewer{i}": [] for i in range(REVIEWERS)}
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_work, args=(store, name, got, errors, start))
        for name, got in results.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    decided = [i for got in results.values() for i in got]
    assert sorted(decided) == sorted(ids)  # every item, none twice
    with store._sessions() as s:
        per_item = Counter(
            dict(
                s.execute(
                    select(ReviewDecision.item_id, func.count()).group_by(ReviewDecision.item_id)
                ).all()
            )
        )
    assert set(per_item) == set(ids) and set(per_item.values()) == {1}
    stats = store.stats()
    assert stats.decided == ITEMS and stats.remaining == 0
    if backend == "postgres":
        # Real parallelism: with SKIP LOCKED nobody waits, so every reviewer gets work.
        assert all(results.values()), {k: len(v) for k, v in results.items()}


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"], indirect=True
)
def test_same_item_claimed_by_one_of_four(store: ReviewStore, make_request, backend: str) -> None:
    (item_id,) = store.enqueue([make_request("contested")])
    start = threading.Barrier(REVIEWERS)
    outcomes: dict[str, str] = {}

    def claim(name: str) -> None:
        start.wait()
        try:
            store.claim(item_id, name)
            outcomes[name] = "won"
        except Exception as exc:  # noqa: BLE001
            outcomes[name] = type(exc).__name__

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(REVIEWERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes.values()) == ["Conflict"] * (REVIEWERS - 1) + ["won"]
    winner = next(k for k, v in outcomes.items() if v == "won")
    assert store.get(item_id).claimed_by == winner


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"], indirect=True
)
def test_double_submitted_decision_is_recorded_once(
    store: ReviewStore, make_request, backend: str
) -> None:
    # One reviewer's decision sent four times at once (double clicks, retries).
    (item_id,) = store.enqueue([make_request("clicked twice")])
    store.claim(item_id, "alice")
    start = threading.Barrier(REVIEWERS)
    outcomes: list[str] = []

    def decide() -> None:
        start.wait()
        try:
            store.decide(item_id, "alice", "correct", code="0201")
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=decide) for _ in range(REVIEWERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["Conflict"] * (REVIEWERS - 1) + ["ok"]
    assert [d.action for d in store.decisions(item_id)] == ["correct"]
