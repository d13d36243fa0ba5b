"""Review items remember the API key that queued them, for the per-key open-item quota.

Items queued before this revision have no key (NULL) and count against nobody.

Revision ID: 0006_review_created_by
Revises: 0005_memory_votes
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_review_created_by"
down_revision = "0005_memory_votes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``review_items.created_by`` and its index."""
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("created_by", sa.String(100), nullable=True))
    op.create_index("ix_review_items_created_by", "review_items", ["created_by"])


def downgrade() -> None:
    """Drop ``review_items.created_by``."""
    op.drop_index("ix_review_items_created_by", "review_items")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("created_by")
