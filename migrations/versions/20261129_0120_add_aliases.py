"""Aliases written in one statement: `deja_add_aliases` writes a batch of one tenant's served
paraphrases as aliases of their entries, after the responses.

It runs the statement a transaction of the tenant's ran for each alias (each alias written unless
its entry already holds `p_max_aliases`, or is gone or flagged; a wording that already has an alias
keeps it), in order, in one round trip for the whole batch. Aliases may be lost (a cache of
lookups, not a record): the statement commits without waiting for its WAL flush. It is meant to run
as a statement of its own (outside any explicit transaction): the tenant context and
`synchronous_commit` it sets last until its transaction ends.

It runs with the caller's rights (SECURITY INVOKER): row-level security applies to every row.

Revision ID: 0120
Revises: 0110
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0120"
down_revision: str | None = "0110"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statement is app.cache.repository's _ADD_ALIAS, once per alias, in order.
_FUNCTION = """
CREATE FUNCTION deja_add_aliases(
    p_tenant_id uuid, p_namespaces text[], p_exact_hashes bytea[], p_entry_ids uuid[], p_similarities real[],
    p_max_aliases integer
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
DECLARE
    v_written integer := 0;
    v_one integer;
BEGIN
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true),
            set_config('synchronous_commit', 'off', true);
    FOR i IN 1 .. coalesce(array_length(p_entry_ids, 1), 0) LOOP
        INSERT INTO cache_aliases (tenant_id, namespace, exact_hash, entry_id, similarity)
        SELECT p_tenant_id, p_namespaces[i], p_exact_hashes[i], p_entry_ids[i], p_similarities[i]
         WHERE (SELECT count(*) FROM cache_aliases WHERE entry_id = p_entry_ids[i]) < p_max_aliases
           AND EXISTS (SELECT FROM cache_entries
                        WHERE id = p_entry_ids[i] AND tenant_id = p_tenant_id AND NOT flagged)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_one = ROW_COUNT;
        v_written := v_written + v_one;
    END LOOP;
    RETURN v_written;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS deja_add_aliases(uuid, text[], bytea[], uuid[], real[], integer)")
