"""Review items remember whether their list is coded as a correspondence table.

An entry of a national list coded as a table (``iccs classify-file --table-precision``) is
re-scored after a decision as such an entry: auto-coded when its top code clears the table
threshold of the precision the finished table must reach. Items queued before this revision,
or with any record coded otherwise, have none: every code must reach ``min_precision``.

Revision ID: 0010_review_table_precision
Revises: 0009_review_min_precision
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_review_table_precision"
down_revision = "0009_review_min_precision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``review_items.table_precision``."""
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("table_precision", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop ``review_items.table_precision``."""
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("table_precision")
