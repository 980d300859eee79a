"""Tenant tombstones: a deleted tenant keeps its row (status 'deleted') so that its anonymised
ledger rows keep a real tenant_id: analytics stay per tenant and row-level security still
applies to them. The ledger's ON DELETE CASCADE stays: deleting the row itself (admin delete
with include_ledger) removes the ledger too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_tenants_status"), "tenants", type_="check")
    op.create_check_constraint(
        op.f("ck_tenants_status"), "tenants", "status IN ('active', 'suspended', 'deleted')"
    )


def downgrade() -> None:
    # Tombstones cannot satisfy the old constraint; with them go their anonymised ledger rows.
    op.execute("SELECT set_config('deja.system', 'on', true)")
    op.execute("DELETE FROM tenants WHERE status = 'deleted'")
    op.drop_constraint(op.f("ck_tenants_status"), "tenants", type_="check")
    op.create_check_constraint(op.f("ck_tenants_status"), "tenants", "status IN ('active', 'suspended')")
