"""The review store: a durable queue with leases, decisions, an audit trail and decision memory.

One class, :class:`ReviewStore`, over a SQLAlchemy engine. SQLite (one instance) and PostgreSQL
(several instances sharing one queue) run the same code; the only difference is that claiming
on PostgreSQL locks candidate rows with ``FOR UPDATE SKIP LOCKED`` so concurrent reviewers
never wait on, or get, the same item. Every claim is also a conditional ``UPDATE`` whose row
count is checked, which is what makes it atomic on SQLite too.

Item life cycle::

    pending --claim--> claimed --accept|correct|reject--> decided
       ^                  |  \\--skip / lease expiry--> pending
       |                  \\--(double review, 1st of 2)--> pending
       \\--- disputed <--(two reviewers disagree)       (a third reviewer settles it)

Audit rows are only ever inserted. Nothing here logs or raises with the offence text.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service.coding import ReviewRequest
from service.db import (
    AuditEntry,
    MemoryEntry,
    ReviewDecision,
    ReviewItem,
    make_engine,
    session_factory,
    utcnow,
)
from service.errors import Conflict, InvalidInput, NotFound
from service.labels import NOT_AN_OFFENCE
from service.taxonomy import check_code_syntax, load_taxonomy

log = logging.getLogger(__name__)

PENDING = "pending"
CLAIMED = "claimed"
DECIDED = "decided"
DISPUTED = "disputed"
STATUSES = (PENDING, CLAIMED, DECIDED, DISPUTED)
OPEN_STATUSES = (PENDING, CLAIMED, DISPUTED)

ACCEPT = "accept"
CORRECT = "correct"
REJECT = "reject"
SKIP = "skip"
ACTIONS = (ACCEPT, CORRECT, REJECT, SKIP)
FINAL_ACTIONS = (ACCEPT, CORRECT, REJECT)

ORDER_CONFIDENCE = "confidence"
ORDER_OCCURRENCES = "occurrences"
ORDER_NEWEST = "newest"
ORDERS = (ORDER_CONFIDENCE, ORDER_OCCURRENCES, ORDER_NEWEST)

SYSTEM_ACTOR = "system"
_PG_MIGRATION_LOCK = 74_201_561  # arbitrary constant: serialises init_db across instances


class UnknownDecisionCode(InvalidInput):
    """A decision names a code that is well-formed but not in ICCS v1.0 (422, not 404)."""

    code = "unknown_code"


# --- schema -------------------------------------------------------------------------------


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(str(resources.files("service.review") / "migrations")))
    )
    cfg.attributes["connection"] = connection
    return cfg


def init_db(url_or_engine: str | Engine) -> Engine:
    """Create or upgrade the schema to the newest Alembic revision; returns the engine.

    Safe to call from several service instances at once on PostgreSQL (an advisory lock
    serialises the migrations) and on every start (a database at head is left alone).
    """
    from alembic import command

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        command.upgrade(_alembic_config(conn), "head")
    return engine


# --- value objects ------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFilter:
    """Filters of the queue listing; ``None`` means no filter."""

    status: str | None = None
    section: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    batch: str | None = None
    origin: str | None = None
    created_from: datetime | date | None = None
    created_to: datetime | date | None = None
    # Only items this reviewer may still act on (used by claim-next and the reviewer page).
    reviewable_by: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of the queue listing."""

    items: list[ReviewItem]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Agreement:
    """Agreement between the first two reviewers on double-reviewed items."""

    pairs: int
    agreeing: int
    rate: float | None
    kappa: float | None


@dataclass(frozen=True)
class Stats:
    """Progress summary of the queue."""

    reviewed_today: int
    reviewed_today_by_you: int | None
    remaining: int
    remaining_occurrences: int
    decided: int
    by_status: dict[str, int]
    pending_by_section: dict[str, int]
    model_agreement: float | None
    model_agreement_n: int
    inter_reviewer: Agreement


# --- helpers ------------------------------------------------------------------------------


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _day_start(d: datetime | date, end: bool = False) -> datetime:
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    start = datetime.combine(d, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def _section_of(code: str | None) -> str | None:
    return code[:2] if code and len(code) >= 2 and code[:2].isdigit() else None


def validate_decision_code(code: object) -> str:
    """A code a reviewer may assign: any ICCS v1.0 code at any level."""
    checked = check_code_syntax(code)
    if checked not in load_taxonomy():
        raise UnknownDecisionCode(f"'{checked}' is not an ICCS v1.0 code.", code=checked)
    return checked


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over nominal codes; None when undefined."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[c] * second.get(c, 0) for c in first) / (n * n)
    if math.isclose(expected, 1.0):
        # Both raters used one single code throughout: kappa is 0/0; report perfect only if
        # they also agreed everywhere (which they must have).
        return 1.0 if math.isclose(observed, 1.0) else None
    return (observed - expected) / (1.0 - expected)


# --- the store ----------------------------------------------------------------------------


class ReviewStore:
    """Durable review queue (implements :class:`service.coding.ReviewQueue`)."""

    def __init__(self, engine: Engine, lease_seconds: int = 600) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)
        self._sessions = session_factory(engine)
        self.is_postgres = engine.dialect.name == "postgresql"

    @classmethod
    def from_url(cls, url: str, lease_seconds: int = 600, migrate: bool = True) -> ReviewStore:
        """Store over ``url``; migrates the schema to head first unless told not to."""
        engine = init_db(url) if migrate else make_engine(url)
        return cls(engine, lease_seconds=lease_seconds)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def ping(self) -> bool:
        """True when the database answers and the schema exists."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(func.count()).select_from(ReviewItem.__table__))
            return True
        except Exception:  # noqa: BLE001 - readiness must answer, not raise
            log.warning("review store ping failed", exc_info=True)
            return False

    # --- coding side ----------------------------------------------------------------------

    def enqueue(self, items: Sequence[ReviewRequest]) -> list[int]:
        """Persist review requests (committed before return); their ids in input order.

        A text already waiting for review in the same batch (same ``text_key``, item not yet
        decided) is not queued twice: its ``occurrences`` grow and its id is returned, so a
        text that occurs 50,000 times is one item worth 50,000 records.
        """
        if not items:
            return []
        picked: list[ReviewItem] = []
        with self._tx() as s:
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
            now = utcnow()
            for req in items:
                found = open_items.get((req.text_key, req.batch))
                if found is not None:
                    found.occurrences += req.occurrences
                    picked.append(found)
                    continue
                item = ReviewItem(
                    text=req.text,
                    text_key=req.text_key,
                    record_id=req.record_id,
                    origin=req.origin,
                    batch=req.batch,
                    occurrences=req.occurrences,
                    status=PENDING,
                    suggestions=list(req.suggestions),
                    top_code=req.top_code,
                    top_confidence=req.top_confidence,
                    section=_section_of(req.top_code),
                    model_version=req.model_version,
                    reviews_required=1,
                    created_at=now,
                )
                new.append((item, req))
                open_items[(req.text_key, req.batch)] = item
                picked.append(item)
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
        order: str = ORDER_CONFIDENCE,
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
        self.release_expired()
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
        return Page(rows, int(total), limit, offset)

    def _where(self, flt: ItemFilter, now: datetime) -> list[Any]:
        t = ReviewItem
        where: list[Any] = []
        if flt.status is not None:
            where.append(t.status == flt.status)
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
            where.append(t.created_at >= _day_start(flt.created_from))
        if flt.created_to is not None:
            where.append(t.created_at < _day_start(flt.created_to, end=True))
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
            or_(
                t.status.in_((PENDING, DISPUTED)),
                and_(t.status == CLAIMED, t.claim_expires_at < now),
            ),
            ~already,
        )

    def _expire_view(self, item: ReviewItem) -> ReviewItem:
        # Readers see an expired lease as what it is, even before release_expired runs.
        exp = aware(item.claim_expires_at)
        if item.status == CLAIMED and exp is not None and exp < utcnow():
            item.status = PENDING if item.reviews_required < 3 else DISPUTED
            item.claimed_by = None
            item.claim_expires_at = None
        return item

    # --- leases ---------------------------------------------------------------------------

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

    # --- decisions ------------------------------------------------------------------------

    def decide(
        self,
        item_id: int,
        reviewer: str,
        action: str,
        code: str | None = None,
        note: str | None = None,
    ) -> ReviewItem:
        """Record a reviewer's decision.

        ``accept`` takes one of the item's suggestions (the top one when ``code`` is omitted);
        ``correct`` takes any ICCS code at any level; ``reject`` marks the text as not an
        offence; ``skip`` hands the item back. The reviewer must hold the lease or the item
        must be free (then the decision claims it in the same transaction).
        """
        if action not in ACTIONS:
            raise InvalidInput(
                f"action must be one of {', '.join(ACTIONS)}.", action=str(action)[:20]
            )
        now = utcnow()
        with self._tx() as s:
            item = self._locked(s, item_id)
            self._check_can_act(s, item, reviewer, now)
            final_code = self._decision_code(item, action, code)
            before = item.status
            if before != CLAIMED or item.claimed_by != reviewer:
                self._lease(s, item, reviewer, now)
            s.add(
                ReviewDecision(
                    item_id=item.id,
                    reviewer=reviewer,
                    action=action,
                    code=final_code,
                    at=now,
                    note=note,
                )
            )
            if action == SKIP:
                to = self._open_status(item)
                item.status, item.claimed_by, item.claim_expires_at = to, None, None
                self._audit(s, item, reviewer, "skipped", CLAIMED, to, note=note)
                return item
            s.flush()
            self._settle(s, item, reviewer, action, final_code, note, now)
            return item

    def _decision_code(self, item: ReviewItem, action: str, code: str | None) -> str | None:
        if action == SKIP:
            return None
        if action == REJECT:
            return NOT_AN_OFFENCE
        if action == ACCEPT:
            offered = [str(sg.get("code")) for sg in item.suggestions or []]
            if code is None:
                if not offered:
                    raise InvalidInput(
                        "This item has no suggestion to accept; use 'correct' with a code.",
                        item_id=item.id,
                    )
                return offered[0]
            checked = validate_decision_code(code)
            if checked not in offered:
                raise InvalidInput(
                    "accept takes one of the item's suggestions; use 'correct' for another code.",
                    item_id=item.id,
                    code=checked,
                )
            return checked
        if code is None:
            raise InvalidInput("correct needs a code.", item_id=item.id)
        return validate_decision_code(code)

    def _settle(
        self,
        s: Session,
        item: ReviewItem,
        reviewer: str,
        action: str,
        code: str | None,
        note: str | None,
        now: datetime,
    ) -> None:
        finals = [
            d
            for d in s.scalars(
                select(ReviewDecision)
                .where(ReviewDecision.item_id == item.id, ReviewDecision.action.in_(FINAL_ACTIONS))
                .order_by(ReviewDecision.id)
            )
        ]
        n = len(finals)
        if n < item.reviews_required:
            to = self._open_status(item)
            item.status, item.claimed_by, item.claim_expires_at = to, None, None
            self._audit(
                s,
                item,
                reviewer,
                action,
                CLAIMED,
                to,
                item.top_code,
                code,
                note=_join_note(f"review {n} of {item.reviews_required}", note),
            )
            return
        if n == 2 and item.reviews_required == 2 and finals[0].code != finals[1].code:
            # Two reviewers disagree: neither code is trusted; a third reviewer settles it.
            item.reviews_required = 3
            item.status, item.claimed_by, item.claim_expires_at = DISPUTED, None, None
            self._audit(
                s,
                item,
                reviewer,
                action,
                CLAIMED,
                DISPUTED,
                finals[0].code,
                code,
                note=_join_note("reviewers disagree; a third review settles it", note),
            )
            return
        item.status = DECIDED
        item.claimed_by = None
        item.claim_expires_at = None
        item.decision = action
        item.decided_code = code
        item.decided_by = reviewer
        item.decided_at = now
        item.note = note
        self._audit(s, item, reviewer, action, CLAIMED, DECIDED, item.top_code, code, note=note)
        self._remember(s, item, reviewer, code or NOT_AN_OFFENCE, now)

    def _remember(
        self, s: Session, item: ReviewItem, reviewer: str, code: str, now: datetime
    ) -> None:
        entry = s.get(MemoryEntry, item.text_key)
        if entry is None:
            s.add(
                MemoryEntry(
                    text_key=item.text_key,
                    text=item.text,
                    code=code,
                    item_id=item.id,
                    decided_by=reviewer,
                    decided_at=now,
                )
            )
            return
        # The newest human decision on a text wins, and revives a retired entry.
        entry.text, entry.code, entry.item_id = item.text, code, item.id
        entry.decided_by, entry.decided_at = reviewer, now
        entry.retired_at, entry.retired_by = None, None

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

    def _check_can_act(self, s: Session, item: ReviewItem, reviewer: str, now: datetime) -> None:
        if item.status == DECIDED:
            raise Conflict("The item is already decided.", item_id=item.id)
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

    def _open_status(self, item: ReviewItem) -> str:
        return DISPUTED if item.reviews_required >= 3 else PENDING

    def _audit(
        self,
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

    # --- double review --------------------------------------------------------------------

    def flag_double_review(
        self,
        actor: str,
        item_ids: Sequence[int] | None = None,
        batch: str | None = None,
        share: float = 1.0,
    ) -> int:
        """Ask for two independent reviews on open items (by id, or a share of a batch).

        ``share`` picks every n-th item of the batch (deterministic, by id), so an agency can
        double-review e.g. 10% of a legacy file to measure inter-reviewer agreement.
        """
        if item_ids is None and batch is None:
            raise InvalidInput("Give item ids or a batch to flag for double review.")
        if not 0.0 < share <= 1.0:
            raise InvalidInput("share must be in (0, 1].", share=share)
        with self._tx() as s:
            stmt = select(ReviewItem).where(
                ReviewItem.status.in_((PENDING, CLAIMED)), ReviewItem.reviews_required < 2
            )
            if item_ids is not None:
                stmt = stmt.where(ReviewItem.id.in_(list(item_ids)))
            if batch is not None:
                stmt = stmt.where(ReviewItem.batch == batch)
            items = list(s.scalars(stmt.order_by(ReviewItem.id)))
            step = max(1, round(1 / share))
            chosen = items[::step]
            for item in chosen:
                item.reviews_required = 2
                self._audit(s, item, actor, "double_review", item.status, item.status)
            return len(chosen)

    # --- memory ---------------------------------------------------------------------------

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

    # --- export ---------------------------------------------------------------------------

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

    # --- progress -------------------------------------------------------------------------

    def stats(self, reviewer: str | None = None, now: datetime | None = None) -> Stats:
        """Reviewed today, remaining, agreement with the model and between reviewers."""
        self.release_expired()
        now = now or utcnow()
        today = datetime.combine(now.date(), time.min, tzinfo=UTC)
        with self._sessions() as s:
            by_status = {st: 0 for st in STATUSES}
            for st, n in s.execute(
                select(ReviewItem.status, func.count()).group_by(ReviewItem.status)
            ):
                by_status[st] = int(n)
            remaining_occ = s.scalar(
                select(func.coalesce(func.sum(ReviewItem.occurrences), 0)).where(
                    ReviewItem.status.in_(OPEN_STATUSES)
                )
            )
            sections = {
                sec or "none": int(n)
                for sec, n in s.execute(
                    select(ReviewItem.section, func.count())
                    .where(ReviewItem.status.in_(OPEN_STATUSES))
                    .group_by(ReviewItem.section)
                )
            }
            today_q = (
                select(func.count())
                .select_from(ReviewDecision)
                .where(ReviewDecision.at >= today, ReviewDecision.action.in_(FINAL_ACTIONS))
            )
            reviewed_today = int(s.scalar(today_q) or 0)
            mine = (
                int(s.scalar(today_q.where(ReviewDecision.reviewer == reviewer)) or 0)
                if reviewer
                else None
            )
            decided = list(
                s.execute(
                    select(ReviewItem.top_code, ReviewItem.decided_code).where(
                        ReviewItem.status == DECIDED
                    )
                )
            )
            finals = list(
                s.execute(
                    select(ReviewDecision.item_id, ReviewDecision.reviewer, ReviewDecision.code)
                    .where(ReviewDecision.action.in_(FINAL_ACTIONS))
                    .order_by(ReviewDecision.item_id, ReviewDecision.id)
                )
            )
        agree_model = sum(1 for top, code in decided if top is not None and top == code)
        first_two: dict[int, list[tuple[str, str]]] = {}
        for item_id, who, code in finals:
            got = first_two.setdefault(item_id, [])
            if len(got) < 2 and all(w != who for w, _ in got):
                got.append((who, code or NOT_AN_OFFENCE))
        pairs = [(a[1], b[1]) for a, b in (v for v in first_two.values() if len(v) == 2)]
        agreeing = sum(a == b for a, b in pairs)
        return Stats(
            reviewed_today=reviewed_today,
            reviewed_today_by_you=mine,
            remaining=by_status[PENDING] + by_status[CLAIMED] + by_status[DISPUTED],
            remaining_occurrences=int(remaining_occ or 0),
            decided=by_status[DECIDED],
            by_status=by_status,
            pending_by_section=dict(sorted(sections.items())),
            model_agreement=agree_model / len(decided) if decided else None,
            model_agreement_n=len(decided),
            inter_reviewer=Agreement(
                pairs=len(pairs),
                agreeing=agreeing,
                rate=agreeing / len(pairs) if pairs else None,
                kappa=cohen_kappa(pairs),
            ),
        )


def _join_note(prefix: str, note: str | None) -> str:
    return f"{prefix}; {note}" if note else prefix
