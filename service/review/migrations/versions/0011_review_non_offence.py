"""Review items keep the model's probability that their text is not an offence.

Reviewers clear warrants, registrations and "found property" faster when the page says the
model thinks the text may not describe an offence at all. Items queued before this revision,
or never scored by the model, have none.

Revision ID: 0011_review_non_offence
Revises: 0010_review_table_precision
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_review_non_offence"
down_revision = "0010_review_table_precision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``review_items.non_offence_probability``."""
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("non_offence_probability", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop ``review_items.non_offence_probability``."""
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("non_offence_probability")
