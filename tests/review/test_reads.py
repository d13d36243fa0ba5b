"""Reading the queue never writes: listings and statistics see expired leases as free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, update

from service.db import AuditEntry, ReviewItem
from service.review.store import ItemFilter, ReviewStore


def _expire(store: ReviewStore, item_id: int) -> None:
    with store._sessions() as s, s.begin():
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.id == item_id)
            .values(claim_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _audit_rows(store: ReviewStore) -> int:
    with store._sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_list_and_stats_do_not_write(store: ReviewStore, make_request) -> None:
    ids = store.enqueue([make_request(t) for t in "abc"])
    store.flag_double_review("admin", item_ids=[ids[2]])
    store.decide(ids[2], "alice", "accept")
    store.decide(ids[2], "bob", "correct", code="0501")  # disputed now
    for i in ids:
        store.claim(i, "carol")
    _expire(store, ids[0])
    _expire(store, ids[2])
    audits = _audit_rows(store)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        pending = store.list_items(ItemFilter(status="pending"))
        claimed = store.list_items(ItemFilter(status="claimed"))
        disputed = store.list_items(ItemFilter(status="disputed"))
        everything = store.list_items()
        stats = store.stats("carol")
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert set(statements) <= {"SELECT", "WITH"}, statements
    assert _audit_rows(store) == audits
    # The expired leases read as what they are, in filters, rows and counts alike.
    assert [i.id for i in pending.items] == [ids[0]] and pending.items[0].claimed_by is None
    assert [i.id for i in claimed.items] == [ids[1]]
    assert [i.id for i in disputed.items] == [ids[2]]
    assert {i.id: i.status for i in everything.items} == {
        ids[0]: "pending",
        ids[1]: "claimed",
        ids[2]: "disputed",
    }
    assert stats.by_status == {
        "pending": 1,
        "claimed": 1,
        "decided": 0,
        "disputed": 1,
        "auto_coded": 0,
    }
    # The next write records the expiry in the audit trail.
    assert store.claim(ids[0], "bob").claimed_by == "bob"
    assert ("system", "lease_expired") in [(e.actor, e.action) for e in store.history(ids[0])]


def test_ping_does_not_count_the_queue(store: ReviewStore, make_request) -> None:
    # Issue 16 L5: /readyz pings the store on every probe; COUNT(*) scans the whole table.
    store.enqueue([make_request(t) for t in "ab"])
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lower())

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        assert store.ping()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert statements and not any("count(" in s for s in statements), statements
    assert any("limit" in s for s in statements), statements
