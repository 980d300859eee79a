"""What a request writes after its tenant was deleted: nothing of its client's, whatever the path.

A request authenticated before its tenant was deleted goes on: the model answers it, and its
answer, alias, label, usage and ledger row are written after the response, possibly after the
deletion has purged the entries and anonymised the ledger. Without a guard, such a late write
stored the prompt and answer of a deleted tenant, counted its usage again, and booked a ledger
row with the client's metadata, namespace and links.

Triggers refuse it in the database, so every writer (the one-statement bookings, the
transactions they fall back to, the spool's replays) is covered:

- rows of cache entries, aliases, labels and usage counters of a deleted tenant are not inserted
  (the statement succeeds and writes nothing);
- a ledger row of a deleted tenant is booked as the deletion left the others: its cost and
  figures kept, without metadata, error text, namespace, client request id, key or entry;
- a tenant erased with its ledger (`include_ledger`) has no row left: its rows are not inserted
  either (before, the foreign key refused them and a ledger row, client details and all, went to
  the spool's dead letters). A row whose tenant the transaction may not see is still refused by
  row-level security.

Each trigger reads the tenant's row with the lock the foreign key check takes anyway (FOR KEY
SHARE): a deletion that committed first is seen; one that starts later waits for the writing
transaction and then removes or anonymises what it wrote. The deletion locks the row FOR UPDATE
(`TenantRepository.get_for_update`), which conflicts with it. Locking a row needs UPDATE on
`tenants` (the functions run with the writer's rights): the service's role owns its tables.

Revision ID: 0160
Revises: 0150
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0160"
down_revision: str | None = "0150"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose rows a request writes after its response, but for the ledger's.
_REFUSED = ("cache_entries", "cache_aliases", "cache_labels", "usage_counters")

_REFUSE = r"""
CREATE FUNCTION deja_refuse_deleted_tenant_rows() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tenants WHERE id = NEW.tenant_id FOR KEY SHARE;
    IF (FOUND AND v_status = 'deleted') OR (NOT FOUND AND deja_tenant_visible(NEW.tenant_id)) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$
"""

_ANONYMISE = r"""
CREATE FUNCTION deja_anonymise_deleted_tenant_ledger() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tenants WHERE id = NEW.tenant_id FOR KEY SHARE;
    IF NOT FOUND THEN
        IF deja_tenant_visible(NEW.tenant_id) THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF v_status = 'deleted' THEN
        NEW.metadata := '{}'::jsonb;
        NEW.error := NULL;
        NEW.namespace := '';
        NEW.client_request_id := NULL;
        NEW.api_key_id := NULL;
        NEW.entry_id := NULL;
    END IF;
    RETURN NEW;
END
$$
"""

# Whether this transaction's row-level security context may see the tenant's rows: only then does
# a missing tenant row mean an erased tenant (otherwise the policy refuses the row, as before).
_VISIBLE = r"""
CREATE FUNCTION deja_tenant_visible(p_tenant_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT current_setting('deja.system', true) = 'on'
        OR current_setting('deja.tenant_id', true) = p_tenant_id::text
$$
"""


def upgrade() -> None:
    op.execute(_VISIBLE)
    op.execute(_REFUSE)
    op.execute(_ANONYMISE)
    for table in _REFUSED:
        op.execute(
            f"CREATE TRIGGER deja_deleted_tenant_writes_nothing BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION deja_refuse_deleted_tenant_rows()"
        )
    op.execute(
        "CREATE TRIGGER deja_deleted_tenant_books_anonymously BEFORE INSERT ON ledger "
        "FOR EACH ROW EXECUTE FUNCTION deja_anonymise_deleted_tenant_ledger()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS deja_deleted_tenant_books_anonymously ON ledger")
    for table in _REFUSED:
        op.execute(f"DROP TRIGGER IF EXISTS deja_deleted_tenant_writes_nothing ON {table}")
    op.execute("DROP FUNCTION IF EXISTS deja_anonymise_deleted_tenant_ledger()")
    op.execute("DROP FUNCTION IF EXISTS deja_refuse_deleted_tenant_rows()")
    op.execute("DROP FUNCTION IF EXISTS deja_tenant_visible(uuid)")
