"""Cache entries partitioned by tenant: 16 HASH partitions on `tenant_id`, each with its own
indexes (the HNSW index included), so that a tenant's lookup searches one partition's index.

Every lookup names its tenant (`tenant_id = $1`), so the planner prunes to one partition. The
indexes are declared on the parent, so an index made later (an embedder's HNSW index at start-up)
is made on every partition. Row-level security is enabled and forced on the parent and on every
partition (a partition read directly is filtered as the parent is).

The table is rebuilt, not altered (Postgres cannot partition a table in place): the old one is
renamed, the new one created like it, the rows copied, then its keys, indexes, policies, grants
and triggers made again as the old table had them, the foreign keys of the tables that reference
it (labels, aliases) pointed at it and the views reading it re-planned. What the old table had is
read from the catalogue, so objects added by later revisions or at start-up come along. The
downgrade rebuilds the plain table the same way. Both hold an exclusive lock on the entries for
the copy: at 1,000 entries a second and more, plan the pause (docs/scaling.md).

Revision ID: 0080
Revises: 0060
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0080"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "cache_entries"
OLD = "cache_entries_rebuilt_from"
PARTITIONS = 16


def partition_name(remainder: int) -> str:
    return f"{TABLE}_p{remainder:02d}"


def upgrade() -> None:
    _rebuild(partitions=PARTITIONS)


def downgrade() -> None:
    _rebuild(partitions=0)


def _rows(sql: str, **params: Any) -> list[Any]:
    return list(op.get_bind().execute(sa.text(sql), params).all())


def _rebuild(*, partitions: int) -> None:
    """Make `cache_entries` again, HASH-partitioned in `partitions` parts or plain (0)."""
    # The copy reads every tenant's rows: under forced row-level security only the system
    # context sees them all (transaction-local).
    op.execute("SELECT set_config('deja.system', 'on', true)")
    table = f"public.{TABLE}"
    referencing = _rows(
        "SELECT conname, conrelid::regclass::text AS rel, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = CAST(:t AS regclass) AND conparentid = 0 "
        "AND conrelid <> confrelid",
        t=table,
    )
    own_constraints = _rows(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
        "AND conparentid = 0 AND contype IN ('p', 'u', 'f', 'x') ORDER BY contype = 'f', conname",
        t=table,
    )
    indexes = _rows(
        "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = CAST(:t AS regclass) "
        "AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid) ORDER BY c.relname",
        t=table,
    )
    policies = _rows(
        "SELECT policyname, permissive, roles::text[] AS roles, cmd, qual, with_check FROM pg_policies "
        "WHERE schemaname = 'public' AND tablename = :n ORDER BY policyname",
        n=TABLE,
    )
    (security,) = _rows(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = CAST(:t AS regclass)", t=table
    )
    grants = _rows(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee, "
        "a.privilege_type FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE c.oid = CAST(:t AS regclass) AND a.grantee <> c.relowner",
        t=table,
    )
    triggers = _rows(
        "SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
        "AND NOT tgisinternal AND tgparentid = 0",
        t=table,
    )
    # Views keep reading the renamed table until re-planned: their text, taken while it still
    # names `cache_entries`, is replayed once the new table has that name.
    views = _rows(
        "SELECT DISTINCT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition, v.reloptions "
        "FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = CAST(:t AS regclass) "
        "AND v.oid <> d.refobjid",
        t=table,
    )

    for fk in referencing:
        op.execute(f"ALTER TABLE {fk.rel} DROP CONSTRAINT {fk.conname}")
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    for index in indexes:
        op.execute(f"DROP INDEX {index.name}")
    for constraint in reversed(own_constraints):
        op.execute(f"ALTER TABLE {OLD} DROP CONSTRAINT {constraint.conname}")

    op.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE "
        "INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING GENERATED INCLUDING IDENTITY)"
        + (" PARTITION BY HASH (tenant_id)" if partitions else "")
    )
    parts = [partition_name(r) for r in range(partitions)]
    for remainder, part in enumerate(parts):
        op.execute(
            f"CREATE TABLE {part} PARTITION OF {TABLE} FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})"
        )
    op.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608 (constants)
    for constraint in own_constraints:
        op.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {constraint.conname} {constraint.definition}")
    # Definitions taken before the rename name `cache_entries`: replayed, they make the objects
    # on the new table. A partitioned parent's index reads "ON ONLY", which would make it on the
    # parent alone: without it, it is made on every partition.
    for index in indexes:
        op.execute(index.definition.replace(f" ON ONLY {table} ", f" ON {table} "))
    for fk in referencing:
        op.execute(f"ALTER TABLE {fk.rel} ADD CONSTRAINT {fk.conname} {fk.definition}")
    for trigger in triggers:
        op.execute(trigger.definition)

    for relation in [TABLE, *parts]:
        if security.relrowsecurity:
            op.execute(f"ALTER TABLE {relation} ENABLE ROW LEVEL SECURITY")
        if security.relforcerowsecurity:
            op.execute(f"ALTER TABLE {relation} FORCE ROW LEVEL SECURITY")
        for policy in policies:
            roles = ", ".join("PUBLIC" if role == "public" else role for role in policy.roles)
            op.execute(
                f"CREATE POLICY {policy.policyname} ON {relation} AS {policy.permissive} FOR {policy.cmd} "
                f"TO {roles}"
                + (f" USING ({policy.qual})" if policy.qual else "")
                + (f" WITH CHECK ({policy.with_check})" if policy.with_check else "")
            )
        for grant in grants:
            op.execute(f"GRANT {grant.privilege_type} ON {relation} TO {grant.grantee}")
    for view in views:
        options = f" WITH ({', '.join(view.reloptions)})" if view.reloptions else ""
        op.execute(f"CREATE OR REPLACE VIEW {view.name}{options} AS {view.definition}")
    op.execute(f"DROP TABLE {OLD}")
    op.execute(f"ANALYZE {TABLE}")
