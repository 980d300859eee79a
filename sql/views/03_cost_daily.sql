-- Money by tenant, UTC day and requested model, in USD (NUMERIC, exact). cost_usd is what
-- was paid upstream; avoided_cost_usd what cache hits would have cost; savings_ratio the
-- avoided share of what everything would have cost without the cache.
CREATE OR REPLACE VIEW analytics.cost_daily AS
SELECT
    tenant_id,
    tenant_name,
    day,
    model,
    count(*) AS requests,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cost_usd) AS cost_usd,
    sum(avoided_cost_usd) AS avoided_cost_usd,
    sum(cost_usd) + sum(avoided_cost_usd) AS cost_without_cache_usd,
    round(sum(avoided_cost_usd) / nullif(sum(cost_usd) + sum(avoided_cost_usd), 0), 4) AS savings_ratio
FROM analytics.requests
GROUP BY tenant_id, tenant_name, day, model;
