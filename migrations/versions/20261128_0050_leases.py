"""Leases held by live replicas: quota reservations as rows (`quota_reservations`) that expire
unless the replica holding them renews them, and in-flight misses (`inflight_misses`) that make
identical misses on any replica wait for one upstream call. Both tenant-isolated, both keyed by
`tenant_id` first (distributable by it).

Revision ID: 0050
Revises: 0030
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0050"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "nullif(current_setting('deja.tenant_id', true), '')::uuid"
SYSTEM = "current_setting('deja.system', true) = 'on'"
TABLES = ("quota_reservations", "inflight_misses")


def upgrade() -> None:
    op.create_table(
        "quota_reservations",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("day_start", sa.Date(), nullable=False),
        sa.Column("month_start", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_quota_reservations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_quota_reservations")),
    )
    op.create_index("ix_quota_reservations_expires_at", "quota_reservations", ["expires_at"])
    op.create_index("ix_quota_reservations_holder", "quota_reservations", ["holder"])
    op.create_table(
        "inflight_misses",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("exact_hash", sa.LargeBinary(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inflight_misses_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "namespace", "exact_hash", name=op.f("pk_inflight_misses")),
    )
    op.create_index("ix_inflight_misses_holder", "inflight_misses", ["holder"])
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (tenant_id = {TENANT} OR {SYSTEM}) "
            f"WITH CHECK (tenant_id = {TENANT} OR {SYSTEM})"
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
