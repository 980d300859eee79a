"""Cache aliases: served paraphrases of an entry, found by their exact hash (tenant-isolated).

Revision ID: 0060
Revises: 0050
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0060"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "nullif(current_setting('deja.tenant_id', true), '')::uuid"
SYSTEM = "current_setting('deja.system', true) = 'on'"


def upgrade() -> None:
    op.create_table(
        "cache_aliases",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("exact_hash", sa.LargeBinary(), nullable=False),
        sa.Column("entry_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("similarity", sa.REAL(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id", "tenant_id"],
            ["cache_entries.id", "cache_entries.tenant_id"],
            name=op.f("fk_cache_aliases_entry_id_cache_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cache_aliases_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "namespace", "exact_hash", name=op.f("pk_cache_aliases")),
    )
    op.create_index("ix_cache_aliases_entry_id", "cache_aliases", ["entry_id"])
    op.execute("ALTER TABLE cache_aliases ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE cache_aliases FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON cache_aliases USING (tenant_id = {TENANT} OR {SYSTEM}) "
        f"WITH CHECK (tenant_id = {TENANT} OR {SYSTEM})"
    )


def downgrade() -> None:
    op.drop_table("cache_aliases")
