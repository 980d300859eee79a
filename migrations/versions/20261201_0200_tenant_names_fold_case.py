"""A tenant's name is unique whatever its case: "Acme" beside "acme" (or "STRASSE" beside
"Straße") read as one tenant in the dashboard, the CLI and the audit log, so they are one name.

The unique constraint on `name` becomes a unique index on the name case-folded by Unicode's full
folding (`casefold`, Postgres 18, under the built-in `pg_unicode_fast` collation). That collation
needs a UTF-8 database, as Déjà does anyway (prompts and names hold any Unicode): on another
encoding the migration stops, saying so. Names that already fold together keep the oldest
tenant's spelling; each later one gets its id appended ("acme
(3bad0a37-651a-44a7-abee-764f9fbae903)", unique as the id), and the migration logs every rename
and writes it to the audit log. The table is locked meanwhile, so that no new look-alike slips in
between the renames and the index.

Revision ID: 0200
Revises: 0190
Create Date: 2026-12-01
"""

import json
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | None = "0190"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_tenants_name_folded"
FOLDED = "casefold(name COLLATE pg_unicode_fast)"  # spelt out in the query below too
MAX_NAME = 200
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    encoding = bind.execute(sa.text("SHOW server_encoding")).scalar_one()
    if encoding != "UTF8":
        raise RuntimeError(
            f"Déjà needs a UTF-8 database (prompts and names hold any Unicode); this one is {encoding}. "
            "Create it with ENCODING 'UTF8' and migrate again."
        )
    bind.execute(sa.text("SELECT set_config('deja.system', 'on', true)"))
    bind.execute(sa.text("LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE"))
    # Every tenant but the oldest of each folded name.
    later = bind.execute(
        sa.text(
            "SELECT id, name FROM (SELECT id, name, row_number() OVER ("
            "PARTITION BY casefold(name COLLATE pg_unicode_fast) ORDER BY created_at, id) AS nth "
            "FROM tenants) ranked WHERE nth > 1"
        )
    ).all()
    for tenant_id, name in later:
        suffix = f" ({tenant_id})"
        renamed = name[: MAX_NAME - len(suffix)] + suffix
        bind.execute(
            sa.text("UPDATE tenants SET name = :name, updated_at = now() WHERE id = :id"),
            {"name": renamed, "id": tenant_id},
        )
        bind.execute(
            sa.text(
                "INSERT INTO audit_log (actor, action, tenant_id, filters, rows_affected) "
                "VALUES ('migration 0200', 'tenant.update', :id, CAST(:filters AS jsonb), 1)"
            ),
            {"id": tenant_id, "filters": json.dumps({"name": renamed, "was": name})},
        )
        log.warning(
            "tenant %s renamed %r -> %r: another tenant's name differs from it only in case",
            tenant_id,
            name,
            renamed,
        )
    op.drop_constraint(op.f("uq_tenants_name"), "tenants", type_="unique")
    op.execute(f"CREATE UNIQUE INDEX {INDEX} ON tenants ({FOLDED})")


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
    op.create_unique_constraint(op.f("uq_tenants_name"), "tenants", ["name"])
