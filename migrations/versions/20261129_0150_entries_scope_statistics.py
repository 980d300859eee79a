"""Statistics on tenant, namespace and scope together, so that a tenant's part of a scope other
tenants share is not taken for a handful of rows.

The semantic probe is planned for its tenant and scope, and the planner chooses between reading the
scope whole (right for a small one) and the HNSW index (for a large one) by its estimate of the
scope's rows. With statistics per column only, it multiplies the tenant's share of the table by the
scope's, as if the two were unrelated: when many tenants send the same scope (the same model with
no system prompt), a tenant's part of it is estimated far below its size. Extended statistics over
the three columns (the most common combinations, their distinct count and dependencies) count each
frequent combination as it is. `python scripts/stale_statistics.py --neighbours 76 --lookups 100`
(2,000 entries in the scope, 76 other tenants with 20 entries each in it): with them the scope is
estimated at 307 rows and every search goes through the HNSW index, 0.30 ms of Postgres CPU;
without them, at 81 rows, none does, 1.20 ms.
ANALYZE gathers them with the rest; autoanalyze keeps them fresh (migration 0110).

Revision ID: 0150
Revises: 0140
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0150"
down_revision: str | None = "0140"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE STATISTICS IF NOT EXISTS st_cache_entries_scope (ndistinct, dependencies, mcv) "
        "ON tenant_id, namespace, scope_hash FROM cache_entries"
    )
    op.execute("ANALYZE cache_entries")


def downgrade() -> None:
    op.execute("DROP STATISTICS IF EXISTS st_cache_entries_scope")
