"""The hourly rollup's money sums get room for any hour's rows.

`ledger_hourly.cost_usd` and `avoided_cost_usd` were NUMERIC(20,10) like a ledger row's, but they
hold the sum of a tenant's rows in an hour: rows that each fit could overflow the sum, and the one
roll-up for every tenant would then fail on that hour, again and again (and with it
`GET /admin/stats` and the dashboard's overview). NUMERIC(38,10) holds the sum of 10^18 rows at the
row's most. The table is small (a row per tenant and hour), and no view reads it.

Revision ID: 0190
Revises: 0180
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0190"
down_revision: str | None = "0180"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("cost_usd", "avoided_cost_usd")


def upgrade() -> None:
    for column in COLUMNS:
        op.execute(f"ALTER TABLE ledger_hourly ALTER COLUMN {column} TYPE NUMERIC(38, 10)")


def downgrade() -> None:
    # A sum past the narrower column cannot go back into it: the rollup is rebuilt from the ledger.
    op.execute("DELETE FROM ledger_hourly")
    op.execute("UPDATE ledger_rollup_mark SET rolled_up_until = DEFAULT")
    for column in COLUMNS:
        op.execute(f"ALTER TABLE ledger_hourly ALTER COLUMN {column} TYPE NUMERIC(20, 10)")
