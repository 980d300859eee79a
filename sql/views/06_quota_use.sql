-- Each tenant's use of the current UTC day and month against its quotas (null: unlimited).
-- Rows exist for a quota without use yet and for use without a quota.
CREATE OR REPLACE VIEW analytics.quota_use AS
WITH current_usage AS (
    SELECT u.*
    FROM public.usage_counters AS u
    WHERE u.period_start = CASE u.period
        WHEN 'day' THEN (now() AT TIME ZONE 'UTC')::date
        ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date
    END
)
SELECT
    coalesce(q.tenant_id, u.tenant_id) AS tenant_id,
    t.name AS tenant_name,
    coalesce(q.period, u.period) AS period,
    CASE coalesce(q.period, u.period)
        WHEN 'day' THEN (now() AT TIME ZONE 'UTC')::date
        ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date
    END AS period_start,
    coalesce(u.requests, 0) AS requests,
    q.max_requests,
    coalesce(u.tokens, 0) AS tokens,
    coalesce(u.reserved_tokens, 0) AS reserved_tokens,
    q.max_tokens,
    coalesce(u.cost_usd, 0) AS cost_usd,
    coalesce(u.reserved_cost_usd, 0) AS reserved_cost_usd,
    q.max_cost_usd,
    round(coalesce(u.requests, 0)::numeric / nullif(q.max_requests, 0), 4) AS requests_used,
    round((coalesce(u.tokens, 0) + coalesce(u.reserved_tokens, 0))::numeric / nullif(q.max_tokens, 0), 4)
        AS tokens_used,
    round((coalesce(u.cost_usd, 0) + coalesce(u.reserved_cost_usd, 0)) / nullif(q.max_cost_usd, 0), 4)
        AS cost_used
FROM public.quotas AS q
FULL JOIN current_usage AS u ON u.tenant_id = q.tenant_id AND u.period = q.period
JOIN public.tenants AS t ON t.id = coalesce(q.tenant_id, u.tenant_id);
