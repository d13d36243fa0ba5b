"""Jobs claimed with a lease: lease owner and expiry, an attempt counter, the purge time.

A worker claims a job by writing its id into ``lease_owner`` and renews ``lease_expires_at``
while it runs; a job whose lease has expired (its worker died) is claimed again, and after
``ICCS_JOB_MAX_ATTEMPTS`` starts it is failed. ``purged_at`` records when retention removed
the job's files (the row and its counts stay).

Revision ID: 0002_job_leases
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_job_leases"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the lease, attempt and purge columns to ``jobs``."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", _TS, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("purged_at", _TS, nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("jobs") as batch:
        for name in ("purged_at", "attempts", "lease_expires_at", "lease_owner"):
            batch.drop_column(name)
