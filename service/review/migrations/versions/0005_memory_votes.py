"""Memory votes: each reviewer's latest final code per text, so memory can require agreement.

Backfilled from the recorded final decisions, so entries that one reviewer made before this
revision wait for a second agreeing decision (or an admin's) like new ones
(``ICCS_MEMORY_MIN_AGREEING=1`` keeps the old behaviour).

Revision ID: 0005_memory_votes
Revises: 0004_review_contributions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_memory_votes"
down_revision = "0004_review_contributions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``memory_votes`` and fill it from ``review_decisions``."""
    votes = op.create_table(
        "memory_votes",
        sa.Column("text_key", sa.String(40), primary_key=True),
        sa.Column("reviewer", sa.String(100), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT i.text_key, d.reviewer, coalesce(d.code, 'not_an_offence'), d.item_id, "
                "d.at FROM review_decisions d JOIN review_items i ON i.id = d.item_id "
                "WHERE d.action IN ('accept', 'correct', 'reject') ORDER BY d.id"
            )
        )
        .all()
    )
    latest = {(key, who): (code, item, at) for key, who, code, item, at in rows}
    if latest:
        op.bulk_insert(
            votes,
            [
                {
                    "text_key": key,
                    "reviewer": who,
                    "code": code,
                    "item_id": item,
                    "decided_at": at,
                    "by_admin": False,
                }
                for (key, who), (code, item, at) in latest.items()
            ],
        )


def downgrade() -> None:
    """Drop ``memory_votes``."""
    op.drop_table("memory_votes")
