"""Review items carry the expected value of deciding them, for the queue order "value".

``priority`` is uncertainty (1 - top confidence) times the records a decision would settle:
the item's own occurrences plus those of the similar pending items of its list. Items queued
before this revision get the part that needs no model, (1 - top confidence) x occurrences;
the re-scoring after the next decision in their list fills in the rest.

Revision ID: 0007_review_priority
Revises: 0006_review_created_by
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_review_priority"
down_revision = "0006_review_created_by"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``review_items.priority`` and its index; fill it for open items."""
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("priority", sa.Float(), nullable=True))
    op.create_index("ix_review_items_priority", "review_items", ["priority"])
    op.execute(
        "UPDATE review_items SET priority = (1.0 - COALESCE(top_confidence, 0.0)) * occurrences "
        "WHERE status IN ('pending', 'claimed', 'disputed')"
    )


def downgrade() -> None:
    """Drop ``review_items.priority``."""
    op.drop_index("ix_review_items_priority", "review_items")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("priority")
