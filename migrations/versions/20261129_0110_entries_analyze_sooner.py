"""Statistics on the cache entries kept fresh enough for the nearest-neighbour search to be planned
right: analyse after 500 changed rows plus 2% of the table, instead of Postgres's 50 plus 10%.

The semantic probe's query is planned for its tenant and scope each time, and the planner chooses
between an exact scan of the scope (right for a small one) and the HNSW index (for a large one) by
its estimate of the scope's size. That estimate is only as recent as the table's last ANALYZE: a
table that was never analysed, or a scope that grew since (a new tenant loading its first thousands
of prompts), is taken for a few rows and scanned whole on every lookup: 1.6 ms of Postgres CPU per
search against 0.4 ms through the index at 2,000 entries, 23 ms against 0.4 ms at 20,000
(scripts/stale_statistics.py); the exact probe, too, reads the tenant's rows instead of its
index. At Postgres's default of 10% of the table, a 10-million-row table waits for a million
changes before a new large tenant is seen.

ANALYZE samples a fixed number of rows (30,000 at the default statistics target), so running it
more often costs little. The autovacuum launcher still wakes only every `autovacuum_naptime`
(1 minute by default; the embedded server sets 10 s, docs/operations.md).

Revision ID: 0110
Revises: 0100
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0110"
down_revision: str | None = "0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE cache_entries SET (autovacuum_analyze_threshold = 500, "
        "autovacuum_analyze_scale_factor = 0.02)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE cache_entries RESET (autovacuum_analyze_threshold, autovacuum_analyze_scale_factor)"
    )
