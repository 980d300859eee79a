"""A tenant's name is unique whatever its case: "Acme" beside "acme" (or "STRASSE" beside
"Straße") read as one tenant in the dashboard, the CLI and the audit log, so they are one name.

The unique constraint on `name` becomes a unique index on the name case-folded by Unicode's full
folding (`casefold`, Postgres 18, under the built-in `pg_unicode_fast` collation, which needs a
UTF-8 database; another encoding folds with `lower`). Names that already fold together keep the
oldest tenant's spelling; each later one gets its id appended ("acme
(3bad0a37-651a-44a7-abee-764f9fbae903)", unique as the id), and the migration logs every rename.

Revision ID: 0200
Revises: 0190
Create Date: 2026-12-01
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | None = "0190"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_tenants_name_folded"
MAX_NAME = 200
log = logging.getLogger("alembic.runtime.migration")


def folded_name() -> str:
    bind = op.get_bind()
    utf8 = bind.execute(sa.text("SHOW server_encoding")).scalar_one() == "UTF8"
    return "casefold(name COLLATE pg_unicode_fast)" if utf8 else "lower(name)"


def upgrade() -> None:
    folded = folded_name()
    bind = op.get_bind()
    bind.execute(sa.text("SELECT set_config('deja.system', 'on', true)"))
    # Every tenant but the oldest of each folded name (`folded` is one of two fixed expressions).
    ranked = f"SELECT id, name, row_number() OVER (PARTITION BY {folded} ORDER BY created_at, id) AS nth FROM tenants"  # noqa: S608
    later = bind.execute(sa.text(f"SELECT id, name FROM ({ranked}) ranked WHERE nth > 1")).all()  # noqa: S608
    for tenant_id, name in later:
        suffix = f" ({tenant_id})"
        renamed = name[: MAX_NAME - len(suffix)] + suffix
        bind.execute(
            sa.text("UPDATE tenants SET name = :name WHERE id = :id"), {"name": renamed, "id": tenant_id}
        )
        log.warning(
            "tenant %s renamed %r -> %r: another tenant's name differs from it only in case",
            tenant_id,
            name,
            renamed,
        )
    op.drop_constraint(op.f("uq_tenants_name"), "tenants", type_="unique")
    op.execute(f"CREATE UNIQUE INDEX {INDEX} ON tenants ({folded})")


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
    op.create_unique_constraint(op.f("uq_tenants_name"), "tenants", ["name"])
