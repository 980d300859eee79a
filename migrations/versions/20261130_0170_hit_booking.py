"""Hits' bookings as one SQL function: one round trip for a batch of one tenant's ledger rows.

`deja_book_hits` writes what `Bookkeeper.book_many` wrote for a tenant's hits in a transaction
(pool checkout, BEGIN, the tenant context, the INSERT, COMMIT): the rows of the batch, a request id
already booked left as it is. Like that transaction it does not wait for its WAL to reach disk (a
hit's booking never did: docs/reliability.md). It runs as one statement outside any explicit
transaction, so it commits as a whole or not at all; the caller falls back to the transaction
when it fails.

The rows come as a JSON array (`jsonb_populate_recordset` over the ledger's row type), each with
the columns `LedgerRow` writes, its metadata a JSON object.

It runs with the caller's rights (SECURITY INVOKER): row-level security applies to every row, and
the ledger's triggers (a deleted tenant's rows) fire as for any insert.

Revision ID: 0170
Revises: 0160
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0170"
down_revision: str | None = "0160"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = r"""
CREATE FUNCTION deja_book_hits(p_tenant_id uuid, p_rows jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
BEGIN
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true),
            set_config('synchronous_commit', 'off', true);
    INSERT INTO ledger (tenant_id, request_id, requested_model, cache_status, http_status, latency_ms,
                        api_key_id, used_model, namespace, similarity, entry_id, prompt_tokens,
                        completion_tokens, cost_usd, avoided_cost_usd, upstream_latency_ms, priority, error,
                        metadata, client_request_id, created_at, explored)
    SELECT p_tenant_id, r.request_id, r.requested_model, r.cache_status, r.http_status, r.latency_ms,
           r.api_key_id, r.used_model, r.namespace, r.similarity, r.entry_id, r.prompt_tokens,
           r.completion_tokens, r.cost_usd, r.avoided_cost_usd, r.upstream_latency_ms, r.priority, r.error,
           r.metadata, r.client_request_id, r.created_at, r.explored
    FROM jsonb_populate_recordset(NULL::ledger, p_rows) AS r
    ON CONFLICT (request_id, tenant_id) DO NOTHING;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS deja_book_hits(uuid, jsonb)")
