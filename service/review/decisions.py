"""Decisions: accept, correct, reject or skip; double review and who may see what meanwhile.

Blind double review: while an item that needs two (or, once disputed, three) reviews is open,
a reviewer sees only their own decisions, so each decides independently. The rule lives here,
not in the API, so every reader of the store (API, page, CLI, export) inherits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import AuditEntry, ReviewDecision, ReviewItem, utcnow
from service.errors import InvalidInput
from service.labels import NOT_AN_OFFENCE
from service.review.leases import Leases
from service.review.memory import Memory
from service.review.values import (
    ACCEPT,
    ACTIONS,
    CLAIMED,
    CLOSED_STATUSES,
    DECIDED,
    DISPUTED,
    FINAL_ACTIONS,
    PENDING,
    REJECT,
    SKIP,
    SYSTEM_ACTOR,
    AuditView,
    Viewer,
    aware,
    join_note,
    validate_decision_code,
)


def is_blind(item: ReviewItem, viewer: Viewer | None) -> bool:
    """True when ``viewer`` must not see other reviewers' codes on ``item`` yet."""
    open_double = item.reviews_required > 1 and item.status not in CLOSED_STATUSES
    return open_double and not (viewer is not None and viewer.sees_all)


def visible_decisions(
    item: ReviewItem, decisions: Sequence[ReviewDecision], viewer: Viewer | None
) -> list[ReviewDecision]:
    """The decisions ``viewer`` may see: all, or only their own while the item is blind."""
    if not is_blind(item, viewer):
        return list(decisions)
    name = viewer.name if viewer is not None else None
    return [d for d in decisions if name is not None and d.reviewer == name]


def visible_history(
    item: ReviewItem, entries: Sequence[AuditEntry], viewer: Viewer | None
) -> list[AuditView]:
    """The audit trail as ``viewer`` may see it.

    While the item is blind, other reviewers' decisions lose their codes and notes. Both
    codes: when two reviewers disagree, the "disputed" row's ``from_code`` is the first
    reviewer's code, which a third reviewer must not see before deciding.
    """
    hide = is_blind(item, viewer)
    own = {SYSTEM_ACTOR, viewer.name if viewer is not None and viewer.name else ""}
    out = []
    for e in entries:
        masked = hide and e.actor not in own and e.action in FINAL_ACTIONS
        out.append(
            AuditView(
                at=aware(e.at) or e.at,
                actor=e.actor,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                from_code=None if masked else e.from_code,
                to_code=None if masked else e.to_code,
                model_version=e.model_version,
                note=None if masked else e.note,
                masked=masked,
            )
        )
    return out


class Decisions(Leases, Memory):
    """Record decisions, settle items, flag double review."""

    def decide(
        self,
        item_id: int,
        reviewer: str,
        action: str,
        code: str | None = None,
        note: str | None = None,
        by_admin: bool = False,
    ) -> ReviewItem:
        """Record a reviewer's decision.

        ``accept`` takes one of the item's suggestions (the top one when ``code`` is omitted);
        ``correct`` takes any ICCS code at any level; ``reject`` marks the text as not an
        offence; ``skip`` hands the item back. The reviewer must hold the lease or the item
        must be free (then the decision claims it in the same transaction). ``by_admin``: the
        reviewer is an admin, whose code decision memory applies without a second opinion.
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
            self._vote(s, item, reviewer, final_code or NOT_AN_OFFENCE, now, by_admin)
            self._settle(s, item, reviewer, action, final_code, note, now)
            return item

    @staticmethod
    def _decision_code(item: ReviewItem, action: str, code: str | None) -> str | None:
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
                note=join_note(f"review {n} of {item.reviews_required}", note),
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
                note=join_note("reviewers disagree; a third review settles it", note),
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
