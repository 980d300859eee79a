"""Namespaces stored before names were normalised take the name requests now use.

Since 0.1's namespace change, a namespace is read in one Unicode form (NFC) and without the
white space around it, in requests, the cache API, purges and the dashboard. Rows written
before kept the name as their client sent it ("team-a " or a decomposed "café"): lookups and
purges under the normalised name did not find them, and analysts saw two namespaces for one.

- cache entries and ledger rows are renamed to the normalised name;
- aliases under an old name are dropped (an alias is remembered again at the next hit: renamed,
  one could collide with an alias already filed under the normalised name);
- claims on misses in flight expire by themselves within their lease and are left.

The downgrade changes nothing: the old spellings are not kept.

Revision ID: 0220
Revises: 0210
Create Date: 2026-12-02
"""

import json
import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0220"
down_revision: str | None = "0210"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


MAX_NAMESPACE = 200


def normalised(name: str) -> str:
    """The namespace as `app.cache.scope.namespace_name` reads it (frozen here as of this revision)."""
    return unicodedata.normalize("NFC", name).strip()


def _renames(bind: sa.Connection, table: str) -> dict[str, str]:
    """The names in `table` that read otherwise now, with their new name. One NFC would make
    longer than a column holds (a few scripts compose into more characters) keeps its old name."""
    names = bind.execute(sa.text(f"SELECT DISTINCT namespace FROM {table}")).scalars()  # noqa: S608
    renames = {}
    for name in names:
        new = normalised(name)
        if new != name and len(new) <= MAX_NAMESPACE:
            renames[name] = new
        elif new != name:
            log.warning(
                "%s: namespace %r kept: normalised it would pass %d characters", table, name, MAX_NAMESPACE
            )
    return renames


def upgrade() -> None:
    bind = op.get_bind()
    # Every tenant's rows (row-level security), in this migration's transaction only.
    bind.execute(sa.text("SELECT set_config('deja.system', 'on', true)"))
    for table in ("cache_entries", "ledger"):
        renames = _renames(bind, table)
        if not renames:
            continue
        # One pass over the table, whatever the number of names.
        renamed = bind.execute(
            sa.text(
                f"UPDATE {table} AS t SET namespace = r.new "  # noqa: S608
                "FROM jsonb_each_text(CAST(:renames AS jsonb)) AS r(old, new) WHERE t.namespace = r.old"
            ),
            {"renames": json.dumps(renames)},
        ).rowcount
        log.info("%s: %d namespaces normalised (%d rows)", table, len(renames), renamed)
    renames = _renames(bind, "cache_aliases")
    if renames:
        bind.execute(sa.text("DELETE FROM cache_aliases WHERE namespace = ANY(:old)"), {"old": list(renames)})


def downgrade() -> None:
    pass
