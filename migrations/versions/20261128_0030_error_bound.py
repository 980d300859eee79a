"""Error bound: labelled hit decisions (`cache_labels`, tenant-isolated), the ledger's
`explored` flag, and the analytics view of what learning costs (sql/views/07_learning_daily.sql).

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = Path(__file__).resolve().parents[2] / "sql" / "views" / "07_learning_daily.sql"
TENANT = "nullif(current_setting('deja.tenant_id', true), '')::uuid"
SYSTEM = "current_setting('deja.system', true) = 'on'"


def upgrade() -> None:
    op.create_table(
        "cache_labels",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("entry_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("judge", sa.String(length=20), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("similarity", sa.REAL(), nullable=False),
        sa.Column("scorer", sa.String(length=30), nullable=False),
        sa.Column("score", sa.REAL(), nullable=False),
        sa.CheckConstraint("source IN ('judge', 'feedback')", name=op.f("ck_cache_labels_source")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["cache_entries.id"],
            name=op.f("fk_cache_labels_entry_id_cache_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cache_labels_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_labels")),
        sa.UniqueConstraint("request_id", name=op.f("uq_cache_labels_request_id")),
    )
    op.create_index("ix_cache_labels_entry_id", "cache_labels", ["entry_id"])
    op.create_index(
        "ix_cache_labels_tenant_scorer_created", "cache_labels", ["tenant_id", "scorer", "created_at"]
    )
    op.execute("ALTER TABLE cache_labels ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE cache_labels FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON cache_labels USING (tenant_id = {TENANT} OR {SYSTEM}) "
        f"WITH CHECK (tenant_id = {TENANT} OR {SYSTEM})"
    )
    op.add_column(
        "ledger", sa.Column("explored", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.execute(VIEW.read_text())
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'deja_analyst') THEN
            GRANT SELECT ON analytics.learning_daily TO deja_analyst;
          END IF;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW analytics.learning_daily")
    op.drop_column("ledger", "explored")
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON cache_labels")
    op.drop_index("ix_cache_labels_tenant_scorer_created", table_name="cache_labels")
    op.drop_index("ix_cache_labels_entry_id", table_name="cache_labels")
    op.drop_table("cache_labels")
