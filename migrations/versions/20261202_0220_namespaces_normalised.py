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


def normalised(name: str) -> str:
    """The namespace as `app.cache.scope.namespace_name` reads it (frozen here as of this revision)."""
    return unicodedata.normalize("NFC", name).strip()


def _renames(bind: sa.Connection, table: str) -> list[tuple[str, str]]:
    names = bind.execute(sa.text(f"SELECT DISTINCT namespace FROM {table}")).scalars()  # noqa: S608
    return [(name, normalised(name)) for name in names if normalised(name) != name]


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("SELECT set_config('deja.system', 'on', true)"))
    for table in ("cache_entries", "ledger"):
        for old, new in _renames(bind, table):
            renamed = bind.execute(
                sa.text(f"UPDATE {table} SET namespace = :new WHERE namespace = :old"),  # noqa: S608
                {"new": new, "old": old},
            ).rowcount
            log.info("%s: namespace %r -> %r (%d rows)", table, old, new, renamed)
    for old, _ in _renames(bind, "cache_aliases"):
        bind.execute(sa.text("DELETE FROM cache_aliases WHERE namespace = :old"), {"old": old})


def downgrade() -> None:
    pass
