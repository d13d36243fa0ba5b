"""Decision memory: the newest human code for a normalised text, reused for identical texts.

One reviewer's decision is not applied automatically to every later identical text: an entry
is active once ``memory_min_agreeing`` reviewers' latest codes for the text agree with it, or
an admin's does (issue 16 #10). Entries with no votes at all were written outside the review
workflow (an admin's curated import) and count as confirmed. An admin can list the entries
(who decided, when, how many agree) and retire one; a retired entry stays, so the audit trail
still explains past answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.db import MemoryEntry, ReviewItem, utcnow
from service.errors import InvalidInput, NotFound
from service.models.decided import DecidedRow
from service.review.base import StoreBase
from service.review.tables import MemoryVote
from service.review.values import aware


class Memory(StoreBase):
    """Remember, look up, list, retire; and the reviewed rows to train on."""

    def memory_lookup(self, text_keys: Sequence[str]) -> dict[str, str]:
        """Active decision-memory codes by text key."""
        return {k: code for k, (code, _) in self.memory_lookup_items(text_keys).items()}

    def memory_lookup_items(self, text_keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Active decision-memory (code, review item id) by text key: the item id is the
        decision an answer from memory relies on (None for an admin's curated import)."""
        if not text_keys:
            return {}
        out: dict[str, tuple[str, int | None]] = {}
        with self._sessions() as s:
            # Chunked: IN lists have backend limits and bulk files send many keys.
            keys = list(text_keys)
            for i in range(0, len(keys), 500):
                rows = s.execute(
                    select(MemoryEntry.text_key, MemoryEntry.code, MemoryEntry.item_id).where(
                        MemoryEntry.text_key.in_(keys[i : i + 500]),
                        MemoryEntry.retired_at.is_(None),
                        self._confirmed(),
                    )
                )
                out.update({k: (c, item) for k, c, item in rows})
        return out

    def decided_examples(self, since: datetime | None = None) -> list[DecidedRow]:
        """Decision-memory entries as labelled examples for the nearest-example component.

        With ``since``: every entry (retired ones flagged) decided or retired at or after it,
        for an incremental pull (so a retirement reaches every instance at its next request);
        without: the active entries with a text. Unlike
        :meth:`memory_lookup`, agreement does not matter here: it governs reusing a code for
        an identical text, while a decided example only adds evidence for similar ones.
        """
        m = MemoryEntry
        stmt = select(m.text_key, m.text, m.code, m.item_id, m.decided_at, m.retired_at)
        if since is None:
            stmt = stmt.where(m.retired_at.is_(None), m.text != "")
        else:
            stmt = stmt.where(or_(m.decided_at >= since, m.retired_at >= since))
        with self._sessions() as s:
            rows = s.execute(stmt.order_by(m.decided_at, m.text_key)).all()
        return [
            DecidedRow(
                text_key=key,
                text=text,
                code=code,
                item_id=item_id,
                decided_at=aware(at) or at,
                retired=retired_at is not None,
            )
            for key, text, code, item_id, at, retired_at in rows
        ]

    def _confirmed(self) -> Any:
        """SQL: the memory entry has the agreement it needs to be applied automatically."""
        v, m = MemoryVote, MemoryEntry
        same = and_(v.text_key == m.text_key, v.code == m.code)
        agreeing = select(func.count()).where(same).correlate(m).scalar_subquery()
        return or_(
            ~exists().where(v.text_key == m.text_key).correlate(m),
            exists().where(same, v.by_admin.is_(True)).correlate(m),
            agreeing >= self.memory_min_agreeing,
        )

    def _vote(
        self,
        s: Session,
        item: ReviewItem,
        reviewer: str,
        code: str,
        now: datetime,
        by_admin: bool,
    ) -> None:
        """Record a reviewer's final code for the item's text (their latest one counts)."""
        values = {"code": code, "item_id": item.id, "decided_at": now, "by_admin": by_admin}
        insert = pg_insert if self.is_postgres else sqlite_insert
        stmt = insert(MemoryVote).values(text_key=item.text_key, reviewer=reviewer, **values)
        s.execute(stmt.on_conflict_do_update(index_elements=["text_key", "reviewer"], set_=values))

    def memory_agreement(self, text_keys: Sequence[str]) -> dict[str, tuple[int, bool]]:
        """Per text key: reviewers agreeing with the entry's code, and whether it is active."""
        out: dict[str, tuple[int, bool]] = {}
        keys = list(text_keys)
        v, m = MemoryVote, MemoryEntry
        agreeing = (
            select(func.count())
            .where(v.text_key == m.text_key, v.code == m.code)
            .correlate(m)
            .scalar_subquery()
        )
        with self._sessions() as s:
            for i in range(0, len(keys), 500):
                rows = s.execute(
                    select(
                        m.text_key, agreeing, and_(m.retired_at.is_(None), self._confirmed())
                    ).where(m.text_key.in_(keys[i : i + 500]))
                )
                out.update({k: (int(n), bool(active)) for k, n, active in rows})
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
            # The votes for the retired code go too: reviving it needs fresh agreement.
            s.execute(
                delete(MemoryVote).where(
                    MemoryVote.text_key == entry.text_key, MemoryVote.code == entry.code
                )
            )
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
                # A text removed by retention is no training row any more.
                .where(MemoryEntry.retired_at.is_(None), MemoryEntry.text != "")
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
