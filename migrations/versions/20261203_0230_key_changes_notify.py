"""Every worker forgets the keys it remembers as soon as a key or a tenant changes.

Each process remembers a resolved API key for a few seconds (`app.tenants.auth.Authenticator`),
so a hit costs no authentication round trip. Before, a key revoked (or a tenant suspended,
deleted or given other settings) in one process kept working in the others until their memory
of it ran out, up to ten seconds, and a change made in SQL by an operator was not seen at once
anywhere.

Statement-level triggers now send a notification on the `deja_keys` channel whenever a statement
adds or removes keys, revokes one, moves one to another owner, or renames, suspends, deletes or
resets the settings of tenants. Postgres delivers it when the transaction commits, and not if it
rolls back; every process listens (`app.tenants.auth.forget_on_change`) and forgets the keys it
remembers. The columns written on the hot path (`api_keys.last_used_at`) send nothing.

Revision ID: 0230
Revises: 0220
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0230"
down_revision: str | None = "0220"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFY = r"""
CREATE FUNCTION deja_notify_keys_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM pg_notify('deja_keys', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""

_TRIGGERS = {
    "api_keys": "INSERT OR DELETE OR UPDATE OF revoked_at, role, tenant_id, key_hash",
    "tenants": "DELETE OR UPDATE OF name, status, settings",
}


def upgrade() -> None:
    op.execute(_NOTIFY)
    for table, events in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify_keys_changed AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION deja_notify_keys_changed()"
        )


def downgrade() -> None:
    for table in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_keys_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS deja_notify_keys_changed()")
