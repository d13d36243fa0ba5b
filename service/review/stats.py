"""Progress statistics: reviewed today, what remains, agreement with the model and between
reviewers (Cohen's kappa). Every figure is an SQL aggregate; no rows are pulled into Python.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from service.db import ReviewDecision, ReviewItem, utcnow
from service.labels import NOT_AN_OFFENCE
from service.review.base import StoreBase
from service.review.queue import seen_status
from service.review.values import (
    AUTO_CODED,
    CLAIMED,
    DECIDED,
    DISPUTED,
    FINAL_ACTIONS,
    OPEN_STATUSES,
    PENDING,
    STATUSES,
    Agreement,
    Stats,
)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over nominal codes; None when undefined."""
    return kappa_from_table(Counter(pairs))


def kappa_from_table(table: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa from counts of (first rater's code, second rater's code)."""
    n = sum(table.values())
    if n == 0:
        return None
    observed = sum(k for (a, b), k in table.items() if a == b) / n
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    for (a, b), k in table.items():
        first[a] += k
        second[b] += k
    expected = sum(first[c] * second.get(c, 0) for c in first) / (n * n)
    if math.isclose(expected, 1.0):
        # Both raters used one single code throughout: kappa is 0/0; report perfect only if
        # they also agreed everywhere (which they must have).
        return 1.0 if math.isclose(observed, 1.0) else None
    return (observed - expected) / (1.0 - expected)


class StatsQueries(StoreBase):
    """The progress summary."""

    def stats(self, reviewer: str | None = None, now: datetime | None = None) -> Stats:
        """Reviewed today, remaining, agreement with the model and between reviewers."""
        now = now or utcnow()
        today = datetime.combine(now.date(), time.min, tzinfo=UTC)
        t = ReviewItem
        with self._sessions() as s:
            by_status = dict.fromkeys(STATUSES, 0)
            seen = seen_status(now)
            for st, n in s.execute(select(seen, func.count()).group_by(seen)):
                by_status[st] = int(n)
            remaining_occ = s.scalar(
                select(func.coalesce(func.sum(t.occurrences), 0)).where(t.status.in_(OPEN_STATUSES))
            )
            sections = {
                sec or "none": int(n)
                for sec, n in s.execute(
                    select(t.section, func.count())
                    .where(t.status.in_(OPEN_STATUSES))
                    .group_by(t.section)
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
            agrees = and_(t.top_code.is_not(None), t.top_code == t.decided_code)
            decided_n, agree_model = s.execute(
                select(func.count(), func.coalesce(func.sum(case((agrees, 1), else_=0)), 0)).where(
                    t.status == DECIDED
                )
            ).one()
            table = self._first_two_codes(s)
        pairs = sum(table.values())
        agreeing = sum(k for (a, b), k in table.items() if a == b)
        decided_n, agree_model = int(decided_n), int(agree_model)
        return Stats(
            reviewed_today=reviewed_today,
            reviewed_today_by_you=mine,
            remaining=by_status[PENDING] + by_status[CLAIMED] + by_status[DISPUTED],
            remaining_occurrences=int(remaining_occ or 0),
            decided=by_status[DECIDED],
            auto_coded=by_status[AUTO_CODED],
            by_status=by_status,
            pending_by_section=dict(sorted(sections.items())),
            model_agreement=agree_model / decided_n if decided_n else None,
            model_agreement_n=decided_n,
            inter_reviewer=Agreement(
                pairs=pairs,
                agreeing=agreeing,
                rate=agreeing / pairs if pairs else None,
                kappa=kappa_from_table(table),
            ),
        )

    @staticmethod
    def _first_two_codes(s: Session) -> dict[tuple[str, str], int]:
        """Counts of (first reviewer's code, second reviewer's code) over all items."""
        d = ReviewDecision
        code = func.coalesce(d.code, NOT_AN_OFFENCE)
        # A reviewer's first final decision per item, then the first two reviewers per item.
        per_reviewer = (
            select(
                d.id,
                d.item_id,
                code.label("code"),
                func.row_number()
                .over(partition_by=(d.item_id, d.reviewer), order_by=d.id)
                .label("k"),
            )
            .where(d.action.in_(FINAL_ACTIONS))
            .subquery()
        )
        ranked = (
            select(
                per_reviewer.c.item_id,
                per_reviewer.c.code,
                func.row_number()
                .over(partition_by=per_reviewer.c.item_id, order_by=per_reviewer.c.id)
                .label("r"),
            )
            .where(per_reviewer.c.k == 1)
            .subquery()
        )
        a, b = ranked.alias("a"), ranked.alias("b")
        rows = s.execute(
            select(a.c.code, b.c.code, func.count())
            .select_from(a.join(b, and_(a.c.item_id == b.c.item_id)))
            .where(a.c.r == 1, b.c.r == 2)
            .group_by(a.c.code, b.c.code)
        )
        return {(str(x), str(y)): int(n) for x, y, n in rows}
