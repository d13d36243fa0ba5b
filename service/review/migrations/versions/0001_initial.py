"""Initial schema: API keys, review queue, audit trail, decisions, decision memory, jobs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of ``service.db``."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)

    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_key", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=True),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("batch", sa.String(200), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("suggestions", sa.JSON(), nullable=False),
        sa.Column("top_code", sa.String(6), nullable=True),
        sa.Column("top_confidence", sa.Float(), nullable=True),
        sa.Column("section", sa.String(2), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claim_expires_at", _TS, nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("decided_code", sa.String(20), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("reviews_required", sa.Integer(), nullable=False, server_default="1"),
    )
    for col in ("text_key", "batch", "status", "top_confidence", "section", "created_at"):
        op.create_index(f"ix_review_items_{col}", "review_items", [col])

    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("from_code", sa.String(20), nullable=True),
        sa.Column("to_code", sa.String(20), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_review_audit_item_id", "review_audit", ["item_id"])

    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("code", sa.String(20), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_review_decisions_item_id", "review_decisions", ["item_id"])

    op.create_table(
        "decision_memory",
        sa.Column("text_key", sa.String(40), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
        sa.Column("retired_by", sa.String(100), nullable=True),
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("input_path", sa.Text(), nullable=False),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])


def downgrade() -> None:
    """Drop every table (children first)."""
    op.drop_table("jobs")
    op.drop_table("decision_memory")
    op.drop_table("review_decisions")
    op.drop_table("review_audit")
    op.drop_table("review_items")
    op.drop_table("api_keys")
