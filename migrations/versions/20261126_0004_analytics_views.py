"""Analytics views: the schema `analytics` with the views in sql/views/, applied from those files
so that analysts read exactly what runs.

The views run with their owner's rights (the role that migrates, which owns the tables), and
row-level security still applies to them: a session sees what its `deja.tenant_id` /
`deja.system` settings allow (docs/analytics.md). A role named `deja_analyst`, when it
exists, is given read access to the schema (sql/analyst_role.sql creates it).

The view files describe the schema at head: a later migration that changes a table a view
reads re-applies them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

from app.resources import sql_dir

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = sql_dir() / "views"  # the repository's sql/views, or the copy inside an installed wheel


def upgrade() -> None:
    op.execute("CREATE SCHEMA analytics")
    # Numbered: views that others read come first. Only this revision's views: a later view may
    # read a column its own migration adds.
    for path in sorted(VIEWS.glob("0[1-6]_*.sql")):
        op.execute(path.read_text())
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'deja_analyst') THEN
            GRANT USAGE ON SCHEMA analytics TO deja_analyst;
            GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO deja_analyst;
          END IF;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
