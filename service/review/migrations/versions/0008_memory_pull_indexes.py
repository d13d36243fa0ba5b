"""Indexes for the pull of decided examples: decision memory by decision and retirement time.

Every coding request pulls the decision-memory entries decided or retired since its last pull
(``Memory.decided_examples``); without these indexes that read scans the table.

Revision ID: 0008_memory_pull_indexes
Revises: 0007_review_priority
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008_memory_pull_indexes"
down_revision = "0007_review_priority"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index ``decision_memory.decided_at`` and ``retired_at``."""
    op.create_index("ix_decision_memory_decided_at", "decision_memory", ["decided_at"])
    op.create_index("ix_decision_memory_retired_at", "decision_memory", ["retired_at"])


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_decision_memory_retired_at", "decision_memory")
    op.drop_index("ix_decision_memory_decided_at", "decision_memory")
