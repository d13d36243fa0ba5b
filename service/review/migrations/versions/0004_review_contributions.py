"""Review contributions: the records each run put on a review item, keyed by (run, text).

Makes the end-of-run enqueue of a bulk job idempotent (issue 16 L3).

Revision ID: 0004_review_contributions
Revises: 0003_review_open_unique
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_review_contributions"
down_revision = "0003_review_open_unique"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``review_contributions``."""
    op.create_table(
        "review_contributions",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("text_key", sa.String(40), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
    )
    op.create_index("ix_review_contributions_item_id", "review_contributions", ["item_id"])


def downgrade() -> None:
    """Drop ``review_contributions``."""
    op.drop_table("review_contributions")
