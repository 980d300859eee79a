"""A miss's quota reservation and its replica claim as one SQL function: one round trip between the
lookup and the model.

`deja_reserve_miss` does what the lookup's transaction did on a miss, with the same statements: it
makes sure the tenant's day and month counter rows exist, locks them day before month (the order
every writer takes them in), counts the request and reserves its tokens and cost in both periods
where their limits allow, writes the reservation's lease row, and claims the prompt's key among the
replicas. It returns whether the claim was taken.

When a period's limit does not allow the request, it raises SQLSTATE DJ429 and everything it did
is rolled back with its statement: the caller then reads the quotas to say which one is full. The
commit does not wait for the WAL (`synchronous_commit` off for its own transaction), as the
lookup's transaction did not: the durable commit that settles the reservation comes later.

It runs with the caller's rights (SECURITY INVOKER): row-level security applies to every row.

Revision ID: 0090
Revises: 0080
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0090"
down_revision: str | None = "0080"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = r"""
CREATE FUNCTION deja_reserve_miss(
    p_tenant_id uuid, p_day date, p_month date, p_tokens bigint, p_cost numeric,
    p_reservation_id uuid, p_holder text, p_lease_s double precision,
    p_namespace text, p_exact_hash bytea, p_claim_holder text, p_claim_lease_s double precision
) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
DECLARE
    v_reserved integer;
    v_holder text;
BEGIN
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true),
            set_config('synchronous_commit', 'off', true);
    INSERT INTO usage_counters (tenant_id, period, period_start)
    VALUES (p_tenant_id, 'day', p_day), (p_tenant_id, 'month', p_month)
    ON CONFLICT DO NOTHING;
    WITH locked AS (
        SELECT period FROM usage_counters
        WHERE tenant_id = p_tenant_id
          AND ((period = 'day' AND period_start = p_day) OR (period = 'month' AND period_start = p_month))
        ORDER BY period
        FOR UPDATE
    ), reserved AS (
        UPDATE usage_counters AS u
        SET requests = u.requests + 1,
            reserved_tokens = u.reserved_tokens + p_tokens,
            reserved_cost_usd = u.reserved_cost_usd + p_cost
        FROM (VALUES ('day', p_day), ('month', p_month)) AS p(period, start)
        LEFT JOIN quotas AS q ON q.tenant_id = p_tenant_id AND q.period = p.period
        WHERE u.tenant_id = p_tenant_id AND u.period = p.period AND u.period_start = p.start
          AND u.period IN (SELECT period FROM locked)
          AND (q.max_requests IS NULL OR u.requests + 1 <= q.max_requests)
          AND (q.max_tokens IS NULL OR u.tokens + u.reserved_tokens + p_tokens <= q.max_tokens)
          AND (q.max_cost_usd IS NULL OR u.cost_usd + u.reserved_cost_usd + p_cost <= q.max_cost_usd)
        RETURNING u.period
    )
    SELECT count(*) INTO v_reserved FROM reserved;
    IF v_reserved <> 2 THEN
        RAISE EXCEPTION 'deja_reserve_miss: a quota of tenant % is full', p_tenant_id USING ERRCODE = 'DJ429';
    END IF;
    INSERT INTO quota_reservations (tenant_id, id, holder, day_start, month_start, tokens, cost_usd, expires_at)
    VALUES (p_tenant_id, p_reservation_id, p_holder, p_day, p_month, p_tokens, p_cost,
            now() + make_interval(secs => p_lease_s));
    INSERT INTO inflight_misses (tenant_id, namespace, exact_hash, holder, expires_at)
    VALUES (p_tenant_id, p_namespace, p_exact_hash, p_claim_holder, now() + make_interval(secs => p_claim_lease_s))
    ON CONFLICT (tenant_id, namespace, exact_hash) DO UPDATE
    SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE inflight_misses.expires_at < now() OR inflight_misses.holder = excluded.holder
    RETURNING holder INTO v_holder;
    RETURN v_holder IS NOT NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS deja_reserve_miss(uuid, date, date, bigint, numeric, uuid, text, "
        "double precision, text, bytea, text, double precision)"
    )
