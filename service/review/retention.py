"""Retention: remove offence texts older than a cut-off, keep the counts and the audit events.

What goes, for items decided (or auto-coded) before the cut-off: the item's text, record id
and note, the notes of its decisions, and the notes reviewers wrote into its audit rows; and
the text of decision-memory entries decided before the cut-off. What stays: every row, status, code,
count and audit event (plus one ``texts_purged`` event per item), so statistics and the audit
trail still add up, and a remembered code still applies to identical texts (it is keyed by a
hash of the normalised text). Open items keep their text until they are decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from service.db import AuditEntry, MemoryEntry, ReviewDecision, ReviewItem, utcnow
from service.review.base import StoreBase
from service.review.values import CLOSED_STATUSES, SYSTEM_ACTOR

# What a purged text reads as (the column is NOT NULL).
PURGED_TEXT = ""


@dataclass(frozen=True)
class PurgeCounts:
    """What a purge removed texts from."""

    items: int
    memory_entries: int


class Retention(StoreBase):
    """The purge."""

    def purge_texts(self, cutoff: datetime, actor: str = SYSTEM_ACTOR) -> PurgeCounts:
        """Remove the texts and notes of items, and memory entries, decided before ``cutoff``."""
        now = utcnow()
        with self._tx() as s:
            closed = {
                int(item_id): str(status)
                for item_id, status in s.execute(
                    select(ReviewItem.id, ReviewItem.status).where(
                        ReviewItem.status.in_(CLOSED_STATUSES),
                        ReviewItem.decided_at < cutoff,
                        ReviewItem.text != PURGED_TEXT,
                    )
                )
            }
            ids = sorted(closed)
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                s.execute(
                    update(ReviewItem)
                    .where(ReviewItem.id.in_(chunk))
                    .values(text=PURGED_TEXT, record_id=None, note=None)
                    .execution_options(synchronize_session=False)
                )
                s.execute(
                    update(ReviewDecision)
                    .where(ReviewDecision.item_id.in_(chunk))
                    .values(note=None)
                    .execution_options(synchronize_session=False)
                )
                # Audit rows stay; only what reviewers wrote into them goes (system notes such
                # as "origin=job" hold no text).
                s.execute(
                    update(AuditEntry)
                    .where(AuditEntry.item_id.in_(chunk), AuditEntry.actor != SYSTEM_ACTOR)
                    .values(note=None)
                    .execution_options(synchronize_session=False)
                )
                s.add_all(
                    [
                        AuditEntry(
                            item_id=item_id,
                            at=now,
                            actor=actor,
                            action="texts_purged",
                            from_status=closed[item_id],
                            to_status=closed[item_id],
                            note=f"decided before {cutoff.date().isoformat()}",
                        )
                        for item_id in chunk
                    ]
                )
            res = s.execute(
                update(MemoryEntry)
                .where(MemoryEntry.decided_at < cutoff, MemoryEntry.text != PURGED_TEXT)
                .values(text=PURGED_TEXT)
                .execution_options(synchronize_session=False)
            )
            memory = int(res.rowcount)  # type: ignore[attr-defined]
        return PurgeCounts(items=len(ids), memory_entries=memory)
