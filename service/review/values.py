"""Names and value objects of the review workflow: statuses, actions, filters, statistics.

Everything here is plain data (no database access), shared by the queue, the decisions, the
statistics and the API that wraps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from service.errors import UnknownDecisionCode
from service.taxonomy import check_code_syntax, load_taxonomy

PENDING = "pending"
CLAIMED = "claimed"
DECIDED = "decided"
DISPUTED = "disputed"
# Closed without a human decision on it: after a reviewer decided a similar item of the same
# list, the model re-scored this one and its policy codes it automatically (issue 14).
AUTO_CODED = "auto_coded"
STATUSES = (PENDING, CLAIMED, DECIDED, DISPUTED, AUTO_CODED)
OPEN_STATUSES = (PENDING, CLAIMED, DISPUTED)
CLOSED_STATUSES = (DECIDED, AUTO_CODED)

ACCEPT = "accept"
CORRECT = "correct"
REJECT = "reject"
SKIP = "skip"
ACTIONS = (ACCEPT, CORRECT, REJECT, SKIP)
FINAL_ACTIONS = (ACCEPT, CORRECT, REJECT)

ORDER_CONFIDENCE = "confidence"
ORDER_OCCURRENCES = "occurrences"
ORDER_NEWEST = "newest"
# Expected value of a decision: uncertainty times the records it would settle (the item's own
# and those of the similar pending items of its list); see service.review.rescoring.
ORDER_VALUE = "value"
ORDERS = (ORDER_CONFIDENCE, ORDER_OCCURRENCES, ORDER_NEWEST, ORDER_VALUE)

SYSTEM_ACTOR = "system"


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
class Viewer:
    """Who looks at an item: blind double review hides other reviewers' codes from them."""

    name: str | None
    # Admins (and auditors) see every decision at any time.
    sees_all: bool = False


@dataclass(frozen=True)
class AuditView:
    """An audit entry as one viewer may see it (codes and note masked while blind)."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    from_code: str | None
    to_code: str | None
    model_version: str | None
    note: str | None
    masked: bool = False


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
    auto_coded: int
    by_status: dict[str, int]
    pending_by_section: dict[str, int]
    model_agreement: float | None
    model_agreement_n: int
    inter_reviewer: Agreement


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def day_start(d: datetime | date, end: bool = False) -> datetime:
    """Start of ``d``'s UTC day (of the next day with ``end``); datetimes pass through."""
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    start = datetime.combine(d, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def section_of(code: str | None) -> str | None:
    """The ICCS section (first two digits) of a code, if it has one."""
    return code[:2] if code and len(code) >= 2 and code[:2].isdigit() else None


def validate_decision_code(code: object) -> str:
    """A code a reviewer may assign: any ICCS v1.0 code at any level."""
    checked = check_code_syntax(code)
    if checked not in load_taxonomy():
        raise UnknownDecisionCode(f"'{checked}' is not an ICCS v1.0 code.", code=checked)
    return checked


def join_note(prefix: str, note: str | None) -> str:
    """An audit note: the system's prefix, then the reviewer's note if any."""
    return f"{prefix}; {note}" if note else prefix
