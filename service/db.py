"""Database schema and engine (SQLAlchemy 2). SQLite by default, PostgreSQL for several instances.

The schema is created and upgraded by the Alembic migrations in ``service/review/migrations``;
``init_db`` runs them. Audit rows are only ever inserted.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


def utcnow() -> datetime:
    """Timezone-aware now (stored as UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class ApiKey(Base):
    """An API key; only its hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReviewItem(Base):
    """A record the model was not sure of, waiting for (or given) a human decision."""

    __tablename__ = "review_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    text_key: Mapped[str] = mapped_column(String(40), index=True)  # normalize.dedupe_key
    record_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    origin: Mapped[str] = mapped_column(String(20), default="api")  # api | bulk | job
    # The API key whose call or job queued the item (None: the CLI, or before migration 0006).
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    batch: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    top_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    top_confidence: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    section: Mapped[str | None] = mapped_column(String(2), nullable=True, index=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decided_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    # 1 normally; 2 when the item is flagged for double review (agreement measurement);
    # raised to 3 when two reviewers disagree, so a third reviewer settles it.
    reviews_required: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Expected value of deciding this item (queue order "value", migration 0007): uncertainty
    # times the records the decision would settle, its own and those of the similar pending
    # items of its list. Kept by service.review.rescoring; NULL for items queued before.
    priority: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    # The strictest precision any of its records was coded at (migration 0009): re-scoring
    # auto-codes the item only at this precision or the service's, whichever is stricter.
    min_precision: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The precision of the finished table when every record of the item came from a list
    # coded as a correspondence table (migration 0010): re-scoring codes it as such an entry.
    # NULL as soon as one record asked for every code at min_precision.
    table_precision: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The model's P(not an offence) for the text (migration 0011), shown to reviewers so they
    # can reject quickly; NULL when the model did not score it, or for items queued before.
    non_offence_probability: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditEntry(Base):
    """One state change of a review item. Append-only: nothing updates or deletes these."""

    __tablename__ = "review_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    from_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewDecision(Base):
    """A reviewer's decision on an item; two per item when double review measures agreement."""

    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class MemoryEntry(Base):
    """A reviewer's code for a normalised text, reused for identical later texts."""

    __tablename__ = "decision_memory"
    text_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(100))
    # Indexed (migration 0008): every request's pull of new decided examples reads both.
    decided_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    retired_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    retired_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Job(Base):
    """A bulk classification job submitted over HTTP; its files live in the jobs folder."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    filename: Mapped[str] = mapped_column(String(300))
    input_path: Mapped[str] = mapped_column(Text)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The worker that holds the job while it runs, until when (renewed by its heartbeat), and
    # how many times the job was started: a job whose workers keep dying is failed, not retried.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When retention removed the job's files; the row and its counts stay.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    """Engine with the settings each backend needs (SQLite: WAL, foreign keys, threads).

    ``hide_parameters``: SQLAlchemy otherwise puts the bound values of a failed statement
    (offence texts, record ids, notes) into the exception message, and from there into logs.
    ``busy_timeout``: seconds a SQLite connection waits for another writer's lock before
    "database is locked" (the API answers 503 then).
    """
    if url.startswith("sqlite"):
        _create_owner_only(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _create_owner_only(url: str) -> None:
    """Create a SQLite database file that is missing as 0600 (SQLite would use the umask).

    SQLite gives its -wal and -shm files the database file's permissions (issue 16 L10).
    """
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass  # there already, or its folder is missing: SQLite reports that when it connects


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """Sessions that keep loaded attributes after commit (handy for returning results)."""
    return sessionmaker(engine, expire_on_commit=False)
