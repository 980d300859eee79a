"""Many replicas on one database, and keys that let Citus distribute the tenant tables.

Leases held by live replicas: quota reservations as rows (`quota_reservations`) that expire
unless the replica holding them renews them, and in-flight misses (`inflight_misses`) that make
identical misses on any replica wait for one upstream call. Both tenant-isolated.

Every unique key of a tenant table includes `tenant_id` (Citus requires it of a table
distributed by that column): the primary keys of `cache_entries`, `ledger` and `cache_labels`
become (id, tenant_id), the request-id keys (request_id, tenant_id), and a label's entry is
referenced by (entry_id, tenant_id). Each key still leads with the column the queries name.

Revision ID: 0050
Revises: 0040
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0050"
down_revision: str | None = "0040"
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

    _rekey(with_tenant=True)


# (table, kind, columns without the tenant, name without and with it).
KEYS = (
    ("cache_entries", "PRIMARY KEY", "id", "pk_cache_entries", "pk_cache_entries"),
    ("ledger", "PRIMARY KEY", "id", "pk_ledger", "pk_ledger"),
    ("ledger", "UNIQUE", "request_id", "uq_ledger_request_id", "uq_ledger_request_id_tenant_id"),
    ("cache_labels", "PRIMARY KEY", "id", "pk_cache_labels", "pk_cache_labels"),
    (
        "cache_labels",
        "UNIQUE",
        "request_id",
        "uq_cache_labels_request_id",
        "uq_cache_labels_request_id_tenant_id",
    ),
)
LABEL_ENTRY_FK = "fk_cache_labels_entry_id_cache_entries"


def _rekey(*, with_tenant: bool) -> None:
    op.execute(f"ALTER TABLE cache_labels DROP CONSTRAINT {LABEL_ENTRY_FK}")
    for table, kind, columns, alone, with_it in KEYS:
        old, new, key = (
            (alone, with_it, f"{columns}, tenant_id") if with_tenant else (with_it, alone, columns)
        )
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {old}, ADD CONSTRAINT {new} {kind} ({key})")
    entry, referred = ("entry_id, tenant_id", "id, tenant_id") if with_tenant else ("entry_id", "id")
    op.execute(
        f"ALTER TABLE cache_labels ADD CONSTRAINT {LABEL_ENTRY_FK} FOREIGN KEY ({entry}) "
        f"REFERENCES cache_entries ({referred}) ON DELETE CASCADE"
    )


def downgrade() -> None:
    _rekey(with_tenant=False)
    for table in TABLES:
        op.drop_table(table)
