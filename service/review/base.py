"""What every part of the review store shares: sessions, row locks, the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service.db import AuditEntry, ReviewItem, session_factory, utcnow
from service.errors import NotFound
from service.review.values import CLAIMED, DISPUTED, PENDING, aware

log = logging.getLogger(__name__)


class StoreBase:
    """Engine, sessions and the helpers the queue, decisions, memory and statistics use."""

    def __init__(
        self, engine: Engine, lease_seconds: int = 600, memory_min_agreeing: int = 2
    ) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)
        # Agreeing reviewers a remembered code needs before it is applied automatically.
        self.memory_min_agreeing = max(1, memory_min_agreeing)
        self._sessions = session_factory(engine)
        self.is_postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def ping(self) -> bool:
        """True when the database answers and the schema exists.

        ``SELECT id ... LIMIT 1``, not ``COUNT(*)``: a readiness probe must cost the same on an
        empty queue and on millions of items.
        """
        try:
            with self.engine.connect() as conn:
                conn.execute(select(ReviewItem.id).limit(1))
            return True
        except Exception:  # noqa: BLE001 - readiness must answer, not raise
            log.warning("review store ping failed", exc_info=True)
            return False

    def _locked(self, s: Session, item_id: int) -> ReviewItem:
        """The item, locked against concurrent changes until the transaction ends."""
        stmt = select(ReviewItem).where(ReviewItem.id == item_id)
        if self.is_postgres:
            stmt = stmt.with_for_update()
        else:
            # SQLite has no row locks: a no-op write takes the database write lock first, so
            # the read below sees the latest committed state and nobody changes it meanwhile
            # (e.g. a double-clicked decision cannot be recorded twice).
            s.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id)
                .values(id=ReviewItem.id)
                .execution_options(synchronize_session=False)
            )
        item = s.scalars(stmt).first()
        if item is None:
            raise NotFound(f"No review item {item_id}.", item_id=item_id)
        return item

    @staticmethod
    def _open_status(item: ReviewItem) -> str:
        return DISPUTED if item.reviews_required >= 3 else PENDING

    @staticmethod
    def _expire_view(item: ReviewItem) -> ReviewItem:
        # Readers see an expired lease as what it is; the next write records the expiry.
        exp = aware(item.claim_expires_at)
        if item.status == CLAIMED and exp is not None and exp < utcnow():
            item.status = PENDING if item.reviews_required < 3 else DISPUTED
            item.claimed_by = None
            item.claim_expires_at = None
        return item

    @staticmethod
    def _audit(
        s: Session,
        item: ReviewItem,
        actor: str,
        action: str,
        from_status: str | None,
        to_status: str | None,
        from_code: str | None = None,
        to_code: str | None = None,
        note: str | None = None,
    ) -> None:
        s.add(
            AuditEntry(
                item_id=item.id,
                at=utcnow(),
                actor=actor,
                action=action,
                from_status=from_status,
                to_status=to_status,
                from_code=from_code,
                to_code=to_code,
                model_version=item.model_version,
                note=note,
            )
        )
