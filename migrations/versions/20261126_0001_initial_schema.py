"""Initial schema: tenants, keys, cache entries (HNSW), ledger, prices, quotas, usage, audit log;
row-level security on every tenant-owned table.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:56:08.544780+00:00
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column(
            "filters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("rows_affected", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_table(
        "prices",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_per_mtok", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("output_per_mtok", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("cached_input_per_mtok", sa.Numeric(precision=12, scale=6), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("model", "effective_from", name=op.f("uq_prices_model_effective_from")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_tenants_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("role", sa.String(length=10), server_default="tenant", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(role = 'admin') = (tenant_id IS NULL)", name=op.f("ck_api_keys_owner")),
        sa.CheckConstraint("role IN ('tenant', 'admin')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"], unique=False)
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("namespace", sa.String(length=200), server_default="", nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("scope_hash", sa.LargeBinary(), nullable=False),
        sa.Column("exact_hash", sa.LargeBinary(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("embedder", sa.String(length=100), nullable=True),
        sa.Column("embedding", pgvector.sqlalchemy.HALFVEC(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hit_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_hit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flagged", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("feedback_correct", sa.Integer(), server_default="0", nullable=False),
        sa.Column("feedback_wrong", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cache_entries_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_entries")),
    )
    op.create_index(
        "ix_cache_entries_exact", "cache_entries", ["tenant_id", "namespace", "exact_hash"], unique=False
    )
    op.create_index("ix_cache_entries_expires_at", "cache_entries", ["expires_at"], unique=False)
    op.create_index(
        "ix_cache_entries_hnsw_minilm_l6_v2_int8",
        "cache_entries",
        [sa.literal_column("(embedding::halfvec(384)) halfvec_cosine_ops")],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_where=sa.text("embedder = 'minilm-l6-v2-int8'"),
    )
    op.create_index(
        "ix_cache_entries_scope", "cache_entries", ["tenant_id", "namespace", "scope_hash"], unique=False
    )
    op.create_index(
        "ix_cache_entries_tenant_created", "cache_entries", ["tenant_id", "created_at"], unique=False
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("requested_model", sa.String(length=200), nullable=False),
        sa.Column("used_model", sa.String(length=200), nullable=True),
        sa.Column("namespace", sa.String(length=200), server_default="", nullable=False),
        sa.Column("cache_status", sa.String(length=10), nullable=False),
        sa.Column("similarity", sa.REAL(), nullable=True),
        sa.Column("entry_id", sa.UUID(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False),
        sa.Column("avoided_cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False),
        sa.Column("latency_ms", sa.REAL(), nullable=False),
        sa.Column("upstream_latency_ms", sa.REAL(), nullable=True),
        sa.Column("http_status", sa.SmallInteger(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cache_status IN ('hit', 'miss', 'bypass', 'error')", name=op.f("ck_ledger_cache_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.UniqueConstraint("request_id", name=op.f("uq_ledger_request_id")),
    )
    op.create_index("ix_ledger_tenant_created", "ledger", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "quotas",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("max_requests", sa.BigInteger(), nullable=True),
        sa.Column("max_tokens", sa.BigInteger(), nullable=True),
        sa.Column("max_cost_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.CheckConstraint("period IN ('day', 'month')", name=op.f("ck_quotas_period")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_quotas_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "period", name=op.f("pk_quotas")),
    )
    op.create_table(
        "usage_counters",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False),
        sa.Column("reserved_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "reserved_cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False
        ),
        sa.CheckConstraint("period IN ('day', 'month')", name=op.f("ck_usage_counters_period")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_counters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "period", "period_start", name=op.f("pk_usage_counters")),
    )
    for table, column in RLS_TABLES.items():
        enable_tenant_isolation(table, column)


# Tenant-owned tables and the column naming the owner. FORCE makes the policy apply to the
# table owner too, so only a superuser (which Déjà never connects as) could read across tenants.
RLS_TABLES = {
    "tenants": "id",
    "api_keys": "tenant_id",
    "cache_entries": "tenant_id",
    "ledger": "tenant_id",
    "quotas": "tenant_id",
    "usage_counters": "tenant_id",
}


def enable_tenant_isolation(table: str, column: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    # A row is visible when it belongs to the transaction's tenant, or in system context
    # (authentication, admin). Both settings are transaction-local (set_config(..., true)).
    op.execute(
        f"""
        CREATE POLICY tenant_isolation ON {table}
        USING (
            {column} = nullif(current_setting('deja.tenant_id', true), '')::uuid
            OR current_setting('deja.system', true) = 'on'
        )
        WITH CHECK (
            {column} = nullif(current_setting('deja.tenant_id', true), '')::uuid
            OR current_setting('deja.system', true) = 'on'
        )
        """
    )


def downgrade() -> None:
    for table in RLS_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_table("usage_counters")
    op.drop_table("quotas")
    op.drop_index("ix_ledger_tenant_created", table_name="ledger")
    op.drop_table("ledger")
    op.drop_index("ix_cache_entries_tenant_created", table_name="cache_entries")
    op.drop_index("ix_cache_entries_scope", table_name="cache_entries")
    op.drop_index(
        "ix_cache_entries_hnsw_minilm_l6_v2_int8",
        table_name="cache_entries",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_where=sa.text("embedder = 'minilm-l6-v2-int8'"),
    )
    op.drop_index("ix_cache_entries_expires_at", table_name="cache_entries")
    op.drop_index("ix_cache_entries_exact", table_name="cache_entries")
    op.drop_table("cache_entries")
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("prices")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    # The vector extension stays: other schemas in the database may use it.
