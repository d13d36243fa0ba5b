"""Schema bootstrap of the review store: Alembic migrations to head, one instance at a time.

The queue's main ORM classes live in :mod:`service.db` with the other tables; the review-only
ones added since (contributions, memory votes) and the queue's unique indexes live here. The
migrations that build all of them live in ``service/review/migrations``.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, false, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, ReviewItem, make_engine

_PG_MIGRATION_LOCK = 74_201_561  # arbitrary constant: serialises init_db across instances


def alembic_config(connection: Any) -> Any:
    """Alembic configuration that migrates on ``connection``."""
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
        command.upgrade(alembic_config(conn), "head")
    return engine


# The unique indexes of migration 0003, declared on the model too so that the schema the
# migrations build and the one SQLAlchemy knows stay equal (tests/review/test_migrations.py).
_OPEN = "status IN ('pending', 'claimed', 'disputed')"
OPEN_TEXT_INDEXES = (
    Index(
        "uq_review_items_open_batch",
        ReviewItem.text_key,
        ReviewItem.batch,
        unique=True,
        sqlite_where=text(f"{_OPEN} AND batch IS NOT NULL"),
        postgresql_where=text(f"{_OPEN} AND batch IS NOT NULL"),
    ),
    Index(
        "uq_review_items_open_nobatch",
        ReviewItem.text_key,
        unique=True,
        sqlite_where=text(f"{_OPEN} AND batch IS NULL"),
        postgresql_where=text(f"{_OPEN} AND batch IS NULL"),
    ),
)


class ReviewContribution(Base):
    """How many records one run (a bulk file, a job) put on a review item.

    Keyed by (source, text key), so a run that is repeated after a crash finds its own
    contribution and sets it again instead of adding it twice, and does not queue anew a text
    that was decided in the meantime (issue 16 L3).
    """

    __tablename__ = "review_contributions"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    occurrences: Mapped[int] = mapped_column(Integer)


class MemoryVote(Base):
    """A reviewer's latest final code for a text: what decision memory counts as agreement.

    A remembered code is applied automatically only when enough reviewers' votes agree with
    it (``ICCS_MEMORY_MIN_AGREEING``) or an admin's does (issue 16 #10).
    """

    __tablename__ = "memory_votes"
    text_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(100), primary_key=True)
    code: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
