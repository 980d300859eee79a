"""A miss's booking as one SQL function: one round trip after the answer is sent.

`deja_book_miss` writes what the booking transaction of a miss wrote, with the same statements:
the answer's cache entry (when it is stored), the release of the replicas' claim on the prompt's
key (when this process held it), the reservation settled to what the call used (its lease row
deleted, the day's and the month's counters locked day before month, the reserved amounts given
back and the used ones counted; a reservation reclaimed meanwhile counts the request again, as
its request was given back), and the request's ledger row (a request id already booked is left as
it is). It runs as one statement outside any explicit transaction, so it commits durably as a
whole or not at all; the caller falls back to the transaction when it fails.

The ledger row comes as JSON (`jsonb_populate_record` over the ledger's row type) with its
metadata apart; the columns listed are those `LedgerRow` writes.

It runs with the caller's rights (SECURITY INVOKER): row-level security applies to every row.

Revision ID: 0100
Revises: 0090
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0100"
down_revision: str | None = "0090"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = r"""
CREATE FUNCTION deja_book_miss(
    p_tenant_id uuid, p_ledger jsonb, p_metadata jsonb,
    p_reservation_id uuid, p_day date, p_month date, p_reserved_tokens bigint, p_reserved_cost numeric,
    p_tokens bigint, p_cost numeric,
    p_entry_id uuid, p_namespace text, p_model text, p_scope_hash bytea, p_exact_hash bytea,
    p_prompt text, p_embedder text, p_embedding halfvec, p_response jsonb,
    p_prompt_tokens integer, p_completion_tokens integer, p_ttl_s integer,
    p_claim_holder text
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
DECLARE
    v_reclaimed boolean;
BEGIN
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true);
    IF p_entry_id IS NOT NULL THEN
        INSERT INTO cache_entries (id, tenant_id, namespace, model, scope_hash, exact_hash, prompt, embedder,
                                   embedding, response, prompt_tokens, completion_tokens, cost_usd, expires_at)
        VALUES (p_entry_id, p_tenant_id, p_namespace, p_model, p_scope_hash, p_exact_hash, p_prompt, p_embedder,
                p_embedding, p_response, p_prompt_tokens, p_completion_tokens, p_cost,
                now() + make_interval(secs => p_ttl_s));
    END IF;
    IF p_claim_holder IS NOT NULL THEN
        DELETE FROM inflight_misses
        WHERE tenant_id = p_tenant_id AND namespace = p_namespace AND exact_hash = p_exact_hash
          AND holder = p_claim_holder;
    END IF;
    DELETE FROM quota_reservations WHERE tenant_id = p_tenant_id AND id = p_reservation_id;
    -- Not found: reclaimed meanwhile, its request and reservation given back; the call it made
    -- counts the request again (its counter rows ensured first, as the transaction does).
    v_reclaimed := NOT FOUND;
    IF v_reclaimed THEN
        INSERT INTO usage_counters (tenant_id, period, period_start)
        VALUES (p_tenant_id, 'day', p_day), (p_tenant_id, 'month', p_month)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM 1 FROM usage_counters
    WHERE tenant_id = p_tenant_id
      AND ((period = 'day' AND period_start = p_day) OR (period = 'month' AND period_start = p_month))
    ORDER BY period
    FOR UPDATE;
    UPDATE usage_counters
    SET requests = requests + CASE WHEN v_reclaimed THEN 1 ELSE 0 END,
        tokens = tokens + p_tokens, cost_usd = cost_usd + p_cost,
        reserved_tokens = CASE WHEN v_reclaimed THEN reserved_tokens
                               ELSE greatest(reserved_tokens - p_reserved_tokens, 0) END,
        reserved_cost_usd = CASE WHEN v_reclaimed THEN reserved_cost_usd
                                 ELSE greatest(reserved_cost_usd - p_reserved_cost, 0) END
    WHERE tenant_id = p_tenant_id
      AND ((period = 'day' AND period_start = p_day) OR (period = 'month' AND period_start = p_month));
    INSERT INTO ledger (tenant_id, request_id, requested_model, cache_status, http_status, latency_ms,
                        api_key_id, used_model, namespace, similarity, entry_id, prompt_tokens,
                        completion_tokens, cost_usd, avoided_cost_usd, upstream_latency_ms, priority, error,
                        metadata, client_request_id, created_at, explored)
    SELECT p_tenant_id, r.request_id, r.requested_model, r.cache_status, r.http_status, r.latency_ms,
           r.api_key_id, r.used_model, r.namespace, r.similarity, r.entry_id, r.prompt_tokens,
           r.completion_tokens, r.cost_usd, r.avoided_cost_usd, r.upstream_latency_ms, r.priority, r.error,
           p_metadata, r.client_request_id, r.created_at, r.explored
    FROM jsonb_populate_record(NULL::ledger, p_ledger) AS r
    ON CONFLICT (request_id, tenant_id) DO NOTHING;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS deja_book_miss(uuid, jsonb, jsonb, uuid, date, date, bigint, numeric, bigint, "
        "numeric, uuid, text, text, bytea, bytea, text, text, halfvec, jsonb, integer, integer, integer, text)"
    )
