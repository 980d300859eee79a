"""What learning costs counts the llm answer judge's calls: `analytics.learning_daily` gets
`judge_calls` and `judge_cost_usd` (sql/views/07_learning_daily.sql). Each judge call is now a
ledger row of its own (a bypass whose metadata names the request judged), booked and counted
against the tenant's quotas like any of its requests.

Revision ID: 0210
Revises: 0200
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0210"
down_revision: str | None = "0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = Path(__file__).resolve().parents[2] / "sql" / "views" / "07_learning_daily.sql"
GRANT = """
    DO $$ BEGIN
      IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'deja_analyst') THEN
        GRANT SELECT ON analytics.learning_daily TO deja_analyst;
      END IF;
    END $$
"""
# The view before this revision (columns can be added in place, not taken away).
BEFORE = """
CREATE VIEW analytics.learning_daily AS
WITH explored AS (
    SELECT
        tenant_id,
        (created_at AT TIME ZONE 'UTC')::date AS day,
        count(*) AS requests,
        count(*) FILTER (WHERE explored) AS explored_requests,
        coalesce(sum(cost_usd) FILTER (WHERE explored), 0) AS explored_cost_usd
    FROM public.ledger
    GROUP BY 1, 2
), labels AS (
    SELECT
        tenant_id,
        (created_at AT TIME ZONE 'UTC')::date AS day,
        count(*) AS labels,
        count(*) FILTER (WHERE NOT correct) AS wrong_labels
    FROM public.cache_labels
    GROUP BY 1, 2
)
SELECT
    t.id AS tenant_id,
    t.name AS tenant_name,
    day,
    coalesce(e.requests, 0) AS requests,
    coalesce(e.explored_requests, 0) AS explored_requests,
    coalesce(e.explored_cost_usd, 0) AS explored_cost_usd,
    coalesce(l.labels, 0) AS labels,
    coalesce(l.wrong_labels, 0) AS wrong_labels
FROM explored AS e
FULL JOIN labels AS l USING (tenant_id, day)
JOIN public.tenants AS t ON t.id = tenant_id
"""


def upgrade() -> None:
    op.execute(VIEW.read_text())
    op.execute(GRANT)


def downgrade() -> None:
    op.execute("DROP VIEW analytics.learning_daily")
    op.execute(BEFORE)
    op.execute(GRANT)
