"""The review store: a durable queue with leases, decisions, an audit trail and decision memory.

:class:`ReviewStore` over a SQLAlchemy engine is the one object callers use; its parts live in
their own modules:

- :mod:`service.review.values`: statuses, actions, filters, value objects;
- :mod:`service.review.tables`: schema bootstrap (Alembic migrations to head);
- :mod:`service.review.queue`: enqueue, reads and the filtered listing (reads never write);
- :mod:`service.review.leases`: claim, claim-next, release, lease expiry;
- :mod:`service.review.decisions`: decisions, double review and what a reviewer may see;
- :mod:`service.review.memory`: decision memory;
- :mod:`service.review.stats`: progress statistics and Cohen's kappa;
- :mod:`service.review.retention`: removing old offence texts;
- :mod:`service.review.rescoring`: re-scoring a list after a decision, the queue's value order.

SQLite (one instance) and PostgreSQL (several instances sharing one queue) run the same code;
the only difference is that claiming on PostgreSQL locks candidate rows with
``FOR UPDATE SKIP LOCKED``.

Item life cycle::

    pending --claim--> claimed --accept|correct|reject--> decided
       ^                  |  \\--skip / lease expiry--> pending
       |                  \\--(double review, 1st of 2)--> pending
       \\--- disputed <--(two reviewers disagree)       (a third reviewer settles it)

    pending --(a similar item of its list is decided and the model now codes this one
               on its own: service.review.rescoring)--> auto_coded

Audit rows are only ever inserted. Nothing here logs or raises with the offence text.
"""

from __future__ import annotations

from service.db import make_engine
from service.errors import UnknownDecisionCode
from service.review.decisions import Decisions, is_blind, visible_decisions, visible_history
from service.review.queue import Page
from service.review.rescoring import Rescoring
from service.review.retention import PurgeCounts, Retention
from service.review.stats import StatsQueries, cohen_kappa, kappa_from_table
from service.review.tables import alembic_config as _alembic_config
from service.review.tables import init_db
from service.review.values import (
    ACCEPT,
    ACTIONS,
    AUTO_CODED,
    CLAIMED,
    CLOSED_STATUSES,
    CORRECT,
    DECIDED,
    DISPUTED,
    FINAL_ACTIONS,
    OPEN_STATUSES,
    ORDER_CONFIDENCE,
    ORDER_NEWEST,
    ORDER_OCCURRENCES,
    ORDER_VALUE,
    ORDERS,
    PENDING,
    REJECT,
    SKIP,
    STATUSES,
    SYSTEM_ACTOR,
    Agreement,
    AuditView,
    ItemFilter,
    Stats,
    Viewer,
    aware,
    validate_decision_code,
)


class ReviewStore(Decisions, StatsQueries, Retention, Rescoring):
    """Durable review queue (implements :class:`service.coding.ReviewQueue`)."""

    @classmethod
    def from_url(
        cls,
        url: str,
        lease_seconds: int = 600,
        migrate: bool = True,
        memory_min_agreeing: int = 2,
    ) -> ReviewStore:
        """Store over ``url``; migrates the schema to head first unless told not to."""
        engine = init_db(url) if migrate else make_engine(url)
        return cls(engine, lease_seconds=lease_seconds, memory_min_agreeing=memory_min_agreeing)


__all__ = [
    "ACCEPT",
    "ACTIONS",
    "AUTO_CODED",
    "CLAIMED",
    "CLOSED_STATUSES",
    "CORRECT",
    "DECIDED",
    "DISPUTED",
    "FINAL_ACTIONS",
    "OPEN_STATUSES",
    "ORDERS",
    "ORDER_CONFIDENCE",
    "ORDER_NEWEST",
    "ORDER_OCCURRENCES",
    "ORDER_VALUE",
    "PENDING",
    "REJECT",
    "SKIP",
    "STATUSES",
    "SYSTEM_ACTOR",
    "Agreement",
    "AuditView",
    "ItemFilter",
    "Page",
    "PurgeCounts",
    "ReviewStore",
    "Stats",
    "UnknownDecisionCode",
    "Viewer",
    "_alembic_config",
    "aware",
    "cohen_kappa",
    "init_db",
    "is_blind",
    "kappa_from_table",
    "validate_decision_code",
    "visible_decisions",
    "visible_history",
]
