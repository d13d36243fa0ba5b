"""Decision memory: the newest human code for a normalised text, reused for identical texts.

An admin can list the entries (who decided, when) and retire one; a retired entry stays, so
the audit trail still explains past answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.db import MemoryEntry, ReviewItem, utcnow
from service.errors import InvalidInput, NotFound
from service.review.base import StoreBase
from service.review.values import aware


class Memory(StoreBase):
    """Remember, look up, list, retire; and the reviewed rows to train on."""

    def memory_lookup(self, text_keys: Sequence[str]) -> dict[str, str]:
        """Active decision-memory codes by text key."""
        if not text_keys:
            return {}
        out: dict[str, str] = {}
        with self._sessions() as s:
            # Chunked: IN lists have backend limits and bulk files send many keys.
            keys = list(text_keys)
            for i in range(0, len(keys), 500):
                rows = s.execute(
                    select(MemoryEntry.text_key, MemoryEntry.code).where(
                        MemoryEntry.text_key.in_(keys[i : i + 500]),
                        MemoryEntry.retired_at.is_(None),
                    )
                )
                out.update({k: c for k, c in rows})
        return out

    def _remember(
        self, s: Session, item: ReviewItem, reviewer: str, code: str, now: datetime
    ) -> None:
        # One statement, INSERT ... ON CONFLICT DO UPDATE: a get-then-add races with another
        # instance settling an item of the same text (a primary-key violation, a 500).
        # The newest human decision on a text wins, and revives a retired entry.
        values = {
            "text": item.text,
            "code": code,
            "item_id": item.id,
            "decided_by": reviewer,
            "decided_at": now,
            "retired_at": None,
            "retired_by": None,
        }
        insert = pg_insert if self.is_postgres else sqlite_insert
        stmt = insert(MemoryEntry).values(text_key=item.text_key, **values)
        s.execute(stmt.on_conflict_do_update(index_elements=["text_key"], set_=values))

    def memory_entries(self, include_retired: bool = False, limit: int = 100) -> list[MemoryEntry]:
        """Decision-memory entries, newest first."""
        with self._sessions() as s:
            stmt = select(MemoryEntry).order_by(MemoryEntry.decided_at.desc()).limit(limit)
            if not include_retired:
                stmt = stmt.where(MemoryEntry.retired_at.is_(None))
            return list(s.scalars(stmt))

    def memory_retire(
        self, actor: str, text_key: str | None = None, item_id: int | None = None
    ) -> MemoryEntry:
        """Stop reusing a reviewer's code for a text (by text key, or by the item it came from).

        The entry stays (retired) so the audit trail still explains past answers.
        """
        with self._tx() as s:
            entry: MemoryEntry | None = None
            if text_key is not None:
                entry = s.get(MemoryEntry, text_key)
            elif item_id is not None:
                item = s.get(ReviewItem, item_id)
                entry = s.get(MemoryEntry, item.text_key) if item is not None else None
            else:
                raise InvalidInput("Give a text key or an item id.")
            if entry is None or entry.retired_at is not None:
                raise NotFound(
                    "No active decision-memory entry for that text.",
                    text_key=text_key,
                    item_id=item_id,
                )
            entry.retired_at, entry.retired_by = utcnow(), actor
            if entry.item_id is not None:
                item = s.get(ReviewItem, entry.item_id)
                if item is not None:
                    self._audit(
                        s,
                        item,
                        actor,
                        "memory_retired",
                        item.status,
                        item.status,
                        entry.code,
                        None,
                    )
            return entry

    def reviewed_rows(self) -> list[dict[str, Any]]:
        """Active decision memory joined to its item: the reviewed texts to train on.

        Memory, not every decided item, because it holds the newest decision per text and
        drops what an admin retired as wrong.
        """
        with self._sessions() as s:
            rows = s.execute(
                select(MemoryEntry, ReviewItem)
                .join(ReviewItem, ReviewItem.id == MemoryEntry.item_id)
                .where(MemoryEntry.retired_at.is_(None))
                .order_by(MemoryEntry.item_id)
            ).all()
            return [
                {
                    "item_id": item.id,
                    "text": mem.text,
                    "code": mem.code,
                    "reviewer": mem.decided_by,
                    "decided_at": aware(mem.decided_at),
                    "reviews_required": item.reviews_required,
                }
                for mem, item in rows
            ]
