"""The dashboard: an hourly rollup of the ledger (with its watermark), the prompt a wrong-hit
report names, and indexes for its pages (entries newest first and by the words of their prompt,
flagged entries, the requests an entry answered), and the ledger's `booked_at` (when a row was
written; a row replayed from the spool keeps an older `created_at`), by which the rollup takes
rows.

The rollup is a tenant table like the ledger: under the same row-level security. It starts
empty; the dashboard fills it the first time it is opened (docs/dashboard.md).

Revision ID: 0040
Revises: 0030
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0040"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_hourly",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("exact_hits", sa.BigInteger(), nullable=False),
        sa.Column("semantic_hits", sa.BigInteger(), nullable=False),
        sa.Column("misses", sa.BigInteger(), nullable=False),
        sa.Column("bypasses", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("avoided_cost_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("hit_latency_ms", sa.Double(), nullable=False),
        sa.Column("miss_latency_ms", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_hourly_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "hour", name=op.f("pk_ledger_hourly")),
    )
    op.execute("ALTER TABLE ledger_hourly ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE ledger_hourly FORCE ROW LEVEL SECURITY")
    op.execute(
        """
        CREATE POLICY tenant_isolation ON ledger_hourly
        USING (
            tenant_id = nullif(current_setting('deja.tenant_id', true), '')::uuid
            OR current_setting('deja.system', true) = 'on'
        )
        WITH CHECK (
            tenant_id = nullif(current_setting('deja.tenant_id', true), '')::uuid
            OR current_setting('deja.system', true) = 'on'
        )
        """
    )
    op.create_table(
        "ledger_rollup_mark",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "rolled_up_until",
            sa.DateTime(timezone=True),
            server_default=sa.text("'1970-01-01 00:00:00+00'::timestamptz"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_rollup_mark")),
    )
    op.execute("INSERT INTO ledger_rollup_mark DEFAULT VALUES")
    op.add_column("cache_entries", sa.Column("wrong_hit_prompt", sa.Text(), nullable=True))
    op.create_index(
        "ix_cache_entries_flagged",
        "cache_entries",
        ["tenant_id", "created_at"],
        postgresql_where=sa.text("flagged"),
    )
    op.create_index("ix_cache_entries_created_at", "cache_entries", ["created_at"])
    op.create_index(
        "ix_cache_entries_prompt_words",
        "cache_entries",
        [sa.text("to_tsvector('simple'::regconfig, prompt)")],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_ledger_entry_id", "ledger", ["entry_id"], postgresql_where=sa.text("entry_id IS NOT NULL")
    )
    # Rows already there count as written now: the first roll-up takes them all.
    op.add_column(
        "ledger",
        sa.Column("booked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_ledger_booked_at", "ledger", ["booked_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_booked_at", table_name="ledger")
    op.drop_column("ledger", "booked_at")
    op.drop_index("ix_ledger_entry_id", table_name="ledger")
    op.drop_index("ix_cache_entries_flagged", table_name="cache_entries")
    op.drop_index("ix_cache_entries_prompt_words", table_name="cache_entries")
    op.drop_index("ix_cache_entries_created_at", table_name="cache_entries")
    op.drop_column("cache_entries", "wrong_hit_prompt")
    op.drop_table("ledger_rollup_mark")
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON ledger_hourly")
    op.drop_table("ledger_hourly")
