"""Retention (issue 16 #7, review M5): offence texts go, counts and audit events stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select, update

from service.config import Settings
from service.db import AuditEntry, MemoryEntry, ReviewDecision, ReviewItem
from service.review.store import ReviewStore


def _age(store: ReviewStore, item_id: int, days: int) -> None:
    then = datetime.now(UTC) - timedelta(days=days)
    with store._sessions() as s, s.begin():
        s.execute(update(ReviewItem).where(ReviewItem.id == item_id).values(decided_at=then))
        key = s.get(ReviewItem, item_id).text_key  # type: ignore[union-attr]
        s.execute(update(MemoryEntry).where(MemoryEntry.text_key == key).values(decided_at=then))


def test_purge_removes_old_texts_and_keeps_counts(store: ReviewStore, make_request) -> None:
    store.memory_min_agreeing = 1
    old, recent, still_open = store.enqueue(
        [make_request("old text"), make_request("recent text"), make_request("open text")]
    )
    store.decide(old, "alice", "correct", code="0501", note="called him a thief")
    store.decide(recent, "alice", "reject", note="a parking ticket")
    _age(store, old, 200)
    stats_before = store.stats()
    with store._sessions() as s:
        audits_before = s.scalar(select(func.count()).select_from(AuditEntry))

    counts = store.purge_texts(datetime.now(UTC) - timedelta(days=90), actor="ops")
    assert (counts.items, counts.memory_entries) == (1, 1)

    gone = store.get(old)
    assert gone.text == "" and gone.note is None and gone.record_id is None
    assert gone.status == "decided" and gone.decided_code == "0501"
    assert [d.note for d in store.decisions(old)] == [None]
    hist = store.history(old)
    assert all(e.note is None for e in hist if e.actor not in ("system", "ops"))
    assert hist[-1].action == "texts_purged" and hist[-1].actor == "ops"
    with store._sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audits_before + 1
        memory = {m.text_key: m.text for m in s.scalars(select(MemoryEntry))}
        notes = list(s.scalars(select(ReviewDecision.note).where(ReviewDecision.item_id == recent)))
    assert memory == {"key-old text": "", "key-recent text": "recent text"}
    assert notes == ["a parking ticket"]
    # Recent and open items are untouched; the code still applies; counts are the same.
    assert store.get(recent).text == "recent text" and store.get(still_open).text == "open text"
    assert store.memory_lookup(["key-old text"]) == {"key-old text": "0501"}
    assert store.stats() == stats_before
    # A purged text is no training row any more; a second purge finds nothing.
    assert [r["item_id"] for r in store.reviewed_rows()] == [recent]
    again = store.purge_texts(datetime.now(UTC) - timedelta(days=90))
    assert (again.items, again.memory_entries) == (0, 0)


def test_iccs_purge_command(tmp_path: Path, make_request) -> None:
    from service.cli import main

    settings = Settings(state_dir=tmp_path / "state", registry_dir=tmp_path / "registry")
    settings.state_dir.mkdir(parents=True)
    store = ReviewStore.from_url(settings.resolved_database_url())
    (item,) = store.enqueue([make_request("old text")])
    store.decide(item, "alice", "accept")
    _age(store, item, 100)
    runner = CliRunner()
    env = {"ICCS_STATE_DIR": str(settings.state_dir), "ICCS_REGISTRY_DIR": str(tmp_path / "r")}
    bad = runner.invoke(main, ["purge", "--older-than", "ninety"], env=env)
    assert bad.exit_code == 2 and "90d" in bad.output
    none = runner.invoke(main, ["purge"], env=env)
    assert none.exit_code == 2 and "ICCS_RETENTION_DAYS" in none.output
    kept = runner.invoke(main, ["purge", "--older-than", "120d"], env=env)
    assert kept.exit_code == 0, kept.output
    assert store.get(item).text == "old text"
    done = runner.invoke(main, ["purge"], env={**env, "ICCS_RETENTION_DAYS": "90"})
    assert done.exit_code == 0, done.output
    assert "1 review item" in done.output and "job folder" in done.output
    assert store.get(item).text == ""
    store.engine.dispose()
