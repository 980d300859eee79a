"""Statistics on the cache entries kept fresh enough for the nearest-neighbour search to be planned
right: analyse after 50 changed rows plus 2% of the table, instead of Postgres's 50 plus 10%.

The semantic probe's query is planned for its tenant and scope each time, and the planner chooses
between an exact scan of the scope (right for a small one) and the HNSW index (for a large one) by
its estimate of the scope's size. That estimate is only as recent as the table's last ANALYZE: a
table that was never analysed, or that grew a lot since, takes a scope for a few rows and scans it
whole on every lookup: 1.6 ms of Postgres CPU per search against 0.4 ms through the index at
2,000 entries, 23 ms against 0.3 ms at 20,000 (scripts/stale_statistics.py); the exact probe,
too, reads the tenant's rows instead of its index. At 10%, a table of 100,000 entries waits for
10,000 more before it is analysed again; at 2%, for 2,000.

ANALYZE samples a fixed number of rows (30,000 at the default statistics target), so running it
more often costs little. It does not help a new tenant in a table of millions of rows, whose few
thousand rows hardly reach the sample: that tenant is estimated as an average one
(docs/operations.md#statistics). The autovacuum launcher wakes every `autovacuum_naptime` (1 minute
by default; the embedded server and the compose file set 10 s).

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
    op.execute("ALTER TABLE cache_entries SET (autovacuum_analyze_scale_factor = 0.02)")


def downgrade() -> None:
    op.execute("ALTER TABLE cache_entries RESET (autovacuum_analyze_scale_factor)")
