"""At most one open review item per text and batch, enforced by the database.

Two service instances on one PostgreSQL database could both find no open item for a text and
both insert one (issue 16 L2). Partial unique indexes over the open statuses, on
``(text_key, batch)`` and on ``text_key`` where there is no batch (NULLs never collide in a
unique index), make the second insert fail, and the store retries it as an update.

Duplicates made before this revision are merged first: the oldest open item keeps the
occurrences of the others, which are closed as ``decided`` with decision ``merged`` and an
audit row saying where they went.

Revision ID: 0003_review_open_unique
Revises: 0002_job_leases
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_review_open_unique"
down_revision = "0002_job_leases"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'claimed', 'disputed')"
INDEXES = {
    # name: (columns, condition); plain columns, no expression, so both backends reflect them.
    "uq_review_items_open_batch": (["text_key", "batch"], f"{OPEN} AND batch IS NOT NULL"),
    "uq_review_items_open_nobatch": (["text_key"], f"{OPEN} AND batch IS NULL"),
}


def _merge_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            f"SELECT id, text_key, coalesce(batch, '') AS b, occurrences FROM review_items "
            f"WHERE {OPEN} ORDER BY id"
        )
    ).all()
    keep: dict[tuple[str, str], int] = {}
    now = datetime.now(UTC)
    for item_id, key, batch, occurrences in rows:
        first = keep.setdefault((key, batch), item_id)
        if first == item_id:
            continue
        conn.execute(
            sa.text("UPDATE review_items SET occurrences = occurrences + :n WHERE id = :id"),
            {"n": occurrences, "id": first},
        )
        conn.execute(
            sa.text(
                "UPDATE review_items SET status = 'decided', decision = 'merged', "
                "decided_by = 'system', decided_at = :now, claimed_by = NULL, "
                "claim_expires_at = NULL WHERE id = :id"
            ),
            {"now": now, "id": item_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO review_audit (item_id, at, actor, action, from_status, to_status, "
                "note) VALUES (:id, :now, 'system', 'merged', NULL, 'decided', :note)"
            ),
            {"id": item_id, "now": now, "note": f"duplicate open item; merged into {first}"},
        )


def upgrade() -> None:
    """Merge duplicate open items, then forbid new ones."""
    _merge_duplicates()
    for name, (columns, where) in INDEXES.items():
        op.create_index(
            name,
            "review_items",
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    """Drop the indexes (merged items stay merged)."""
    for name in INDEXES:
        op.drop_index(name, table_name="review_items")
