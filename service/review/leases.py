"""Leases: claiming an item (or the next one), giving it back, and expiring what ran out.

Every claim is a conditional ``UPDATE`` whose row count is checked, which makes it atomic on
SQLite too; on PostgreSQL candidate rows are also locked with ``FOR UPDATE SKIP LOCKED`` so
concurrent reviewers never wait on, or get, the same item.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.db import ReviewDecision, ReviewItem, utcnow
from service.errors import Conflict, InvalidInput
from service.review.queue import Queue
from service.review.values import (
    CLAIMED,
    CLOSED_STATUSES,
    DISPUTED,
    FINAL_ACTIONS,
    ORDER_CONFIDENCE,
    ORDERS,
    PENDING,
    SYSTEM_ACTOR,
    ItemFilter,
    aware,
)


class Leases(Queue):
    """Claim, claim-next, release and lease expiry."""

    def claim(self, item_id: int, reviewer: str) -> ReviewItem:
        """Lease one item to ``reviewer`` for the lease time (renews the reviewer's own lease).

        :class:`Conflict` when someone else holds a live lease, when the item is decided,
        or when this reviewer already decided it (double review needs a second person).
        """
        now = utcnow()
        with self._tx() as s:
            item = self._locked(s, item_id)
            self._check_can_act(s, item, reviewer, now)
            return self._lease(s, item, reviewer, now)

    def claim_next(
        self, reviewer: str, flt: ItemFilter | None = None, order: str = ORDER_CONFIDENCE
    ) -> ReviewItem | None:
        """Atomically lease the next item ``reviewer`` may work on; None when none is left."""
        if order not in ORDERS:
            raise InvalidInput(f"order must be one of {', '.join(ORDERS)}.", order=order[:30])
        base = flt or ItemFilter()
        flt = ItemFilter(**{**base.__dict__, "status": None, "reviewable_by": reviewer})
        # A few rounds: on SQLite another writer may win the conditional UPDATE in between.
        for _ in range(20):
            now = utcnow()
            with self._tx() as s:
                stmt = (
                    select(ReviewItem)
                    .where(*self._where(flt, now))
                    .order_by(*self._order_by(order))
                    .limit(1)
                )
                if self.is_postgres:
                    stmt = stmt.with_for_update(skip_locked=True)
                item = s.scalars(stmt).first()
                if item is None:
                    return None
                try:
                    return self._lease(s, item, reviewer, now)
                except Conflict:
                    continue
        return None

    def _check_can_act(self, s: Session, item: ReviewItem, reviewer: str, now: datetime) -> None:
        if item.status in CLOSED_STATUSES:
            raise Conflict(f"The item is already {item.status.replace('_', '-')}.", item_id=item.id)
        exp = aware(item.claim_expires_at)
        if (
            item.status == CLAIMED
            and item.claimed_by != reviewer
            and exp is not None
            and exp >= now
        ):
            raise Conflict(
                "The item is claimed by another reviewer.",
                item_id=item.id,
                claim_expires_at=exp.isoformat(),
            )
        decided_before = s.scalar(
            select(func.count())
            .select_from(ReviewDecision)
            .where(
                ReviewDecision.item_id == item.id,
                ReviewDecision.reviewer == reviewer,
                ReviewDecision.action.in_(FINAL_ACTIONS),
            )
        )
        if decided_before:
            raise Conflict(
                "You already reviewed this item; double review needs another reviewer.",
                item_id=item.id,
            )

    def _lease(self, s: Session, item: ReviewItem, reviewer: str, now: datetime) -> ReviewItem:
        before = item.status
        exp = aware(item.claim_expires_at)
        expired = before == CLAIMED and exp is not None and exp < now
        # The conditional UPDATE is the atomic step on every backend: it succeeds only if the
        # row still is what we read.
        res = s.execute(
            update(ReviewItem)
            .where(
                ReviewItem.id == item.id,
                or_(
                    ReviewItem.status.in_((PENDING, DISPUTED)),
                    and_(
                        ReviewItem.status == CLAIMED,
                        or_(
                            ReviewItem.claimed_by == reviewer,
                            ReviewItem.claim_expires_at < now,
                        ),
                    ),
                ),
            )
            .values(status=CLAIMED, claimed_by=reviewer, claim_expires_at=now + self.lease)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("The item was claimed by another reviewer.", item_id=item.id)
        s.refresh(item)
        if expired and before == CLAIMED:
            self._audit(s, item, SYSTEM_ACTOR, "lease_expired", CLAIMED, self._open_status(item))
        renewed = before == CLAIMED and not expired
        self._audit(
            s,
            item,
            reviewer,
            "lease_renewed" if renewed else "claimed",
            CLAIMED if renewed else (self._open_status(item) if expired else before),
            CLAIMED,
        )
        return item

    def release(self, item_id: int, reviewer: str) -> ReviewItem:
        """Give a claimed item back to the queue without deciding it."""
        now = utcnow()
        with self._tx() as s:
            item = self._locked(s, item_id)
            exp = aware(item.claim_expires_at)
            if item.status != CLAIMED or item.claimed_by != reviewer or (exp and exp < now):
                raise Conflict("You do not hold a claim on this item.", item_id=item_id)
            to = self._open_status(item)
            item.status, item.claimed_by, item.claim_expires_at = to, None, None
            self._audit(s, item, reviewer, "released", CLAIMED, to)
            return item

    def release_expired(self) -> int:
        """Return items whose lease ran out to the queue (with an audit entry); how many."""
        now = utcnow()
        n = 0
        with self._tx() as s:
            stmt = select(ReviewItem).where(
                ReviewItem.status == CLAIMED, ReviewItem.claim_expires_at < now
            )
            if self.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            for item in s.scalars(stmt):
                to = self._open_status(item)
                res = s.execute(
                    update(ReviewItem)
                    .where(
                        ReviewItem.id == item.id,
                        ReviewItem.status == CLAIMED,
                        ReviewItem.claim_expires_at < now,
                    )
                    .values(status=to, claimed_by=None, claim_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
                if res.rowcount == 1:  # type: ignore[attr-defined]
                    s.refresh(item)
                    self._audit(s, item, SYSTEM_ACTOR, "lease_expired", CLAIMED, to)
                    n += 1
        return n
