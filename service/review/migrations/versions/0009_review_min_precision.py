"""Review items remember the precision their record was coded at.

Re-scoring after a decision may auto-code a pending item; it must do so at the precision the
record was coded at (a request's ``min_precision``, else the service's), never a laxer one.
Items queued before this revision have none and are re-scored at the service's precision.

Revision ID: 0009_review_min_precision
Revises: 0008_memory_pull_indexes
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_review_min_precision"
down_revision = "0008_memory_pull_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``review_items.min_precision``."""
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("min_precision", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop ``review_items.min_precision``."""
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("min_precision")
