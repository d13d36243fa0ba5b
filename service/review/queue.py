"""The queue: enqueueing review requests, reading items, listing with filters and orders.

Reads never write. A lease that ran out is shown (and filtered, and counted) as the open status
it returns to; the audit row for the expiry is written by the next write that touches the item
(:meth:`Leases.release_expired`, a claim or a decision).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.coding import ReviewRequest
from service.db import AuditEntry, ReviewDecision, ReviewItem, utcnow
from service.errors import InvalidInput, NotFound, ReviewQuotaExceeded
from service.review.base import StoreBase
from service.review.tables import ReviewContribution
from service.review.values import (
    CLAIMED,
    DISPUTED,
    FINAL_ACTIONS,
    OPEN_STATUSES,
    ORDER_NEWEST,
    ORDER_OCCURRENCES,
    ORDER_VALUE,
    ORDERS,
    PENDING,
    STATUSES,
    SYSTEM_ACTOR,
    ItemFilter,
    day_start,
    section_of,
)

# Seconds a key over its open-item quota is told to wait: reviewers need time to decide some.
REVIEW_QUOTA_RETRY_AFTER = 60


def open_items_created_by(s: Session, key: str) -> int:
    """Open review items (pending, claimed, disputed) that ``key`` queued."""
    return int(
        s.scalar(
            select(func.count())
            .select_from(ReviewItem)
            .where(ReviewItem.created_by == key, ReviewItem.status.in_(OPEN_STATUSES))
        )
        or 0
    )


def check_review_quota(sessions: Any, key: str | None, limit: int) -> None:
    """:class:`ReviewQuotaExceeded` when ``key`` has ``limit`` open items (0: no cap).

    Called before a key's records are coded, so a refused call queues nothing and codes
    nothing: the client sends it again later (issue 16 #9).
    """
    if not limit or key is None:
        return
    with sessions() as s:
        open_items = open_items_created_by(s, key)
    if open_items >= limit:
        raise ReviewQuotaExceeded(
            f"This key has {open_items} review items waiting for reviewers; the limit is "
            f"{limit}. Send more when some have been decided.",
            limit=limit,
            open_items=open_items,
            retry_after=REVIEW_QUOTA_RETRY_AFTER,
        )


@dataclass(frozen=True)
class Page:
    """One page of the queue listing."""

    items: list[ReviewItem]
    total: int
    limit: int
    offset: int


def lease_expired(now: datetime) -> Any:
    """SQL: the item is claimed but its lease ran out."""
    t = ReviewItem
    return and_(t.status == CLAIMED, t.claim_expires_at < now)


def status_is(status: str, now: datetime) -> Any:
    """SQL: the item's status as readers see it (an expired lease counts as open again).

    Written as ORs over the stored status, not as a CASE, so the status index still serves.
    """
    t = ReviewItem
    if status == PENDING:
        return or_(t.status == PENDING, and_(lease_expired(now), t.reviews_required < 3))
    if status == DISPUTED:
        return or_(t.status == DISPUTED, and_(lease_expired(now), t.reviews_required >= 3))
    if status == CLAIMED:
        return and_(t.status == CLAIMED, t.claim_expires_at >= now)
    return t.status == status


def seen_status(now: datetime) -> Any:
    """SQL expression of :func:`status_is`'s status, for grouping."""
    t = ReviewItem
    return case(
        (lease_expired(now), case((t.reviews_required >= 3, DISPUTED), else_=PENDING)),
        else_=t.status,
    )


def strictest(a: float | None, b: float | None) -> float | None:
    """The stricter of two precisions (None: not given)."""
    return b if a is None else a if b is None else max(a, b)


def table_strictest(a: float | None, b: float | None) -> float | None:
    """The table precision of two records merged into one item: None (every code at its
    precision) unless both were entries of a table, else the stricter."""
    return None if a is None or b is None else max(a, b)


def base_value(top_confidence: float | None, occurrences: int) -> float:
    """Expected value of a decision counting the item's own records only."""
    return (1.0 - (top_confidence or 0.0)) * occurrences


def uncertainty_sql() -> Any:
    """SQL: 1 - top confidence (no suggestion: fully uncertain)."""
    return 1.0 - func.coalesce(ReviewItem.top_confidence, 0.0)


_ENQUEUE_ATTEMPTS = 5


class _ItemClosed(Exception):
    """An open item found by enqueue was decided before it could grow; retry the call."""


class Queue(StoreBase):
    """Enqueue and read."""

    # --- coding side ----------------------------------------------------------------------

    def enqueue(self, items: Sequence[ReviewRequest], source: str | None = None) -> list[int]:
        """Persist review requests (committed before return); their ids in input order.

        A text already waiting for review in the same batch (same ``text_key``, item not yet
        decided) is not queued twice: its ``occurrences`` grow and its id is returned, so a
        text that occurs 50,000 times is one item worth 50,000 records. Another instance may
        queue the same text at the same moment: the database's unique index on open items
        rejects the second insert, and the whole call is retried (then it finds the item).

        ``source`` names the run the requests come from (a bulk file, a job). With it the call
        is idempotent per (source, text): a repeat sets that run's occurrences instead of adding
        them, and returns the run's item even when it was decided in the meantime.
        """
        if not items:
            return []
        items = [_fit_columns(r) for r in items]
        for attempt in range(_ENQUEUE_ATTEMPTS):
            try:
                with self._tx() as s:
                    if source is not None:
                        return self._enqueue_from(s, items, source)
                    return self._enqueue(s, items)
            except (IntegrityError, _ItemClosed):
                if attempt == _ENQUEUE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _enqueue_from(self, s: Session, items: Sequence[ReviewRequest], source: str) -> list[int]:
        merged: dict[str, ReviewRequest] = {}
        for r in items:
            m = merged.get(r.text_key)
            merged[r.text_key] = (
                r
                if m is None
                else replace(
                    m,
                    occurrences=m.occurrences + r.occurrences,
                    min_precision=strictest(m.min_precision, r.min_precision),
                    table_precision=table_strictest(m.table_precision, r.table_precision),
                )
            )
        keys = sorted(merged)
        known: dict[str, ReviewContribution] = {}
        for i in range(0, len(keys), 500):
            for c in s.scalars(
                select(ReviewContribution).where(
                    ReviewContribution.source == source,
                    ReviewContribution.text_key.in_(keys[i : i + 500]),
                )
            ):
                known[c.text_key] = c
        fresh = [r for k, r in merged.items() if k not in known]
        ids = dict(zip([r.text_key for r in fresh], self._enqueue(s, fresh), strict=True))
        s.add_all(
            [
                ReviewContribution(
                    source=source,
                    text_key=r.text_key,
                    item_id=ids[r.text_key],
                    occurrences=r.occurrences,
                )
                for r in fresh
            ]
        )
        for key, c in sorted(known.items()):
            delta = merged[key].occurrences - c.occurrences
            if delta:
                c.occurrences = merged[key].occurrences
                # A decided item keeps its count: the records it stood for were answered.
                s.execute(
                    update(ReviewItem)
                    .where(ReviewItem.id == c.item_id, ReviewItem.status.in_(OPEN_STATUSES))
                    .values(
                        occurrences=ReviewItem.occurrences + delta,
                        priority=func.coalesce(ReviewItem.priority, 0.0)
                        + uncertainty_sql() * delta,
                    )
                    .execution_options(synchronize_session=False)
                )
            ids[key] = c.item_id
        s.flush()
        return [ids[r.text_key] for r in items]

    def _enqueue(self, s: Session, items: Sequence[ReviewRequest]) -> list[int]:
        if not items:
            return []
        picked: list[ReviewItem] = []
        keys = sorted({r.text_key for r in items})
        open_items: dict[tuple[str, str | None], ReviewItem] = {}
        for i in range(0, len(keys), 500):
            for it in s.scalars(
                select(ReviewItem)
                .where(
                    ReviewItem.text_key.in_(keys[i : i + 500]),
                    ReviewItem.status.in_(OPEN_STATUSES),
                )
                .order_by(ReviewItem.id)
            ):
                open_items.setdefault((it.text_key, it.batch), it)
        new: list[tuple[ReviewItem, ReviewRequest]] = []
        grow: dict[int, int] = {}
        stricter: dict[int, float] = {}
        # Open items a record joins; None when one asks for every code at its precision.
        tables: dict[int, float | None] = {}
        now = utcnow()
        for req in items:
            found = open_items.get((req.text_key, req.batch))
            if found is not None:
                if found.id is not None:
                    grow[found.id] = grow.get(found.id, 0) + req.occurrences
                    if req.min_precision is not None:
                        stricter[found.id] = max(stricter.get(found.id, 0.0), req.min_precision)
                    tables[found.id] = table_strictest(
                        tables.get(found.id, req.table_precision), req.table_precision
                    )
                else:
                    found.occurrences += req.occurrences
                    found.min_precision = strictest(found.min_precision, req.min_precision)
                    found.table_precision = table_strictest(
                        found.table_precision, req.table_precision
                    )
                picked.append(found)
                continue
            item = ReviewItem(
                text=req.text,
                text_key=req.text_key,
                record_id=req.record_id,
                origin=req.origin,
                batch=req.batch,
                occurrences=req.occurrences,
                created_by=req.created_by,
                status=PENDING,
                suggestions=list(req.suggestions),
                top_code=req.top_code,
                top_confidence=req.top_confidence,
                # What can be known without the model; the similar items of its list are
                # added by service.review.rescoring (refresh_values).
                priority=base_value(req.top_confidence, req.occurrences),
                min_precision=req.min_precision,
                table_precision=req.table_precision,
                non_offence_probability=req.non_offence_probability,
                section=section_of(req.top_code),
                model_version=req.model_version,
                reviews_required=1,
                created_at=now,
            )
            new.append((item, req))
            open_items[(req.text_key, req.batch)] = item
            picked.append(item)
        for item_id, n in sorted(grow.items()):
            # An increment in SQL, not a write-back of what was read: another instance may be
            # adding to the same item. An item decided meanwhile is not grown: start over.
            values: dict[str, Any] = {
                "occurrences": ReviewItem.occurrences + n,
                "priority": func.coalesce(ReviewItem.priority, 0.0) + uncertainty_sql() * n,
            }
            if item_id in stricter:
                p = stricter[item_id]
                current = ReviewItem.min_precision
                values["min_precision"] = case(
                    (or_(current.is_(None), current < p), p), else_=current
                )
            table = tables.get(item_id)
            if table is None:
                values["table_precision"] = None
            else:
                held = ReviewItem.table_precision
                values["table_precision"] = case(
                    (held.is_(None), None), (held < table, table), else_=held
                )
            res = s.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id, ReviewItem.status.in_(OPEN_STATUSES))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                raise _ItemClosed
        # One flush for all new rows (batched INSERTs), then their audit entries.
        s.add_all([item for item, _ in new])
        s.flush()
        s.add_all(
            [
                AuditEntry(
                    item_id=item.id,
                    at=now,
                    actor=SYSTEM_ACTOR,
                    action="enqueued",
                    from_status=None,
                    to_status=PENDING,
                    from_code=None,
                    to_code=req.top_code,
                    model_version=req.model_version,
                    note=f"origin={req.origin}",
                )
                for item, req in new
            ]
        )
        return [item.id for item in picked]

    # --- reading --------------------------------------------------------------------------

    def get(self, item_id: int) -> ReviewItem:
        """One item; :class:`NotFound` when there is none."""
        with self._sessions() as s:
            item = s.get(ReviewItem, item_id)
            if item is None:
                raise NotFound(f"No review item {item_id}.", item_id=item_id)
            return self._expire_view(item)

    def decisions(self, item_id: int) -> list[ReviewDecision]:
        """Every decision recorded on an item (skips included), oldest first."""
        with self._sessions() as s:
            if s.get(ReviewItem, item_id) is None:
                raise NotFound(f"No review item {item_id}.", item_id=item_id)
            return list(
                s.scalars(
                    select(ReviewDecision)
                    .where(ReviewDecision.item_id == item_id)
                    .order_by(ReviewDecision.id)
                )
            )

    def final_counts(self, item_ids: Sequence[int]) -> dict[int, int]:
        """Final decisions (not skips) recorded per item, for listing double-review progress."""
        if not item_ids:
            return {}
        with self._sessions() as s:
            rows = s.execute(
                select(ReviewDecision.item_id, func.count())
                .where(
                    ReviewDecision.item_id.in_(list(item_ids)),
                    ReviewDecision.action.in_(FINAL_ACTIONS),
                )
                .group_by(ReviewDecision.item_id)
            )
            return {int(i): int(n) for i, n in rows}

    def history(self, item_id: int) -> list[AuditEntry]:
        """The item's audit trail, oldest first."""
        with self._sessions() as s:
            if s.get(ReviewItem, item_id) is None:
                raise NotFound(f"No review item {item_id}.", item_id=item_id)
            return list(
                s.scalars(
                    select(AuditEntry).where(AuditEntry.item_id == item_id).order_by(AuditEntry.id)
                )
            )

    def list_items(
        self,
        flt: ItemFilter | None = None,
        order: str = "confidence",
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """A page of the queue, filtered and ordered."""
        flt = flt or ItemFilter()
        if order not in ORDERS:
            raise InvalidInput(f"order must be one of {', '.join(ORDERS)}.", order=order[:30])
        if flt.status is not None and flt.status not in STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(STATUSES)}.", status=flt.status[:30]
            )
        with self._sessions() as s:
            where = self._where(flt, utcnow())
            total = s.scalar(select(func.count()).select_from(ReviewItem).where(*where)) or 0
            rows = list(
                s.scalars(
                    select(ReviewItem)
                    .where(*where)
                    .order_by(*self._order_by(order))
                    .limit(limit)
                    .offset(offset)
                )
            )
        return Page([self._expire_view(r) for r in rows], int(total), limit, offset)

    def _where(self, flt: ItemFilter, now: datetime) -> list[Any]:
        t = ReviewItem
        where: list[Any] = []
        if flt.status is not None:
            where.append(status_is(flt.status, now))
        if flt.section is not None:
            where.append(t.section == flt.section)
        if flt.min_confidence is not None:
            where.append(t.top_confidence >= flt.min_confidence)
        if flt.max_confidence is not None:
            where.append(t.top_confidence <= flt.max_confidence)
        if flt.batch is not None:
            where.append(t.batch == flt.batch)
        if flt.origin is not None:
            where.append(t.origin == flt.origin)
        if flt.created_from is not None:
            where.append(t.created_at >= day_start(flt.created_from))
        if flt.created_to is not None:
            where.append(t.created_at < day_start(flt.created_to, end=True))
        if flt.reviewable_by is not None:
            where.append(self._claimable(flt.reviewable_by, now))
        return where

    @staticmethod
    def _order_by(order: str) -> list[Any]:
        t = ReviewItem
        if order == ORDER_OCCURRENCES:
            return [t.occurrences.desc(), func.coalesce(t.top_confidence, -1.0).asc(), t.id]
        if order == ORDER_NEWEST:
            return [t.created_at.desc(), t.id.desc()]
        if order == ORDER_VALUE:
            # Items from before migration 0007 (no priority) count their own records only.
            value = func.coalesce(t.priority, uncertainty_sql() * t.occurrences)
            return [value.desc(), func.coalesce(t.top_confidence, -1.0).asc(), t.id]
        # No suggestion at all is the least confident of all.
        return [func.coalesce(t.top_confidence, -1.0).asc(), t.occurrences.desc(), t.id]

    @staticmethod
    def _claimable(reviewer: str, now: datetime) -> Any:
        """Items ``reviewer`` may claim: open, not leased to someone else, not yet decided
        (or skipped) by this reviewer."""
        t = ReviewItem
        already = (
            select(ReviewDecision.id)
            .where(ReviewDecision.item_id == t.id, ReviewDecision.reviewer == reviewer)
            .exists()
        )
        return and_(
            or_(t.status.in_((PENDING, DISPUTED)), lease_expired(now)),
            ~already,
        )


def _length(column: Any) -> int:
    return int(column.type.length)


_RECORD_ID_LENGTH = _length(ReviewItem.__table__.c.record_id)
_BATCH_LENGTH = _length(ReviewItem.__table__.c.batch)


def _fit_columns(req: ReviewRequest) -> ReviewRequest:
    """What a file brings made storable: its record id and the batch name clipped to their
    columns, NUL replaced by U+FFFD (PostgreSQL refuses both, which would fail a whole bulk job
    at its end; the API refuses them at the edge). Matching uses the stored batch."""

    def fit(value: str | None, length: int | None = None) -> str | None:
        if value is None:
            return None
        value = value.replace("\x00", "\ufffd")
        return value if length is None else value[:length]

    text, rid, batch = (
        fit(req.text),
        fit(req.record_id, _RECORD_ID_LENGTH),
        fit(req.batch, _BATCH_LENGTH),
    )
    if (text, rid, batch) == (req.text, req.record_id, req.batch):
        return req
    return replace(req, text=text or "", record_id=rid, batch=batch)
