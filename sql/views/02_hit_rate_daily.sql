-- Hit rate by tenant, UTC day and requested model. hit_rate = hits / (hits + misses): the
-- share of cacheable requests answered from the cache (bypasses and errors never looked).
CREATE OR REPLACE VIEW analytics.hit_rate_daily AS
SELECT
    tenant_id,
    tenant_name,
    day,
    model,
    count(*) AS requests,
    count(*) FILTER (WHERE cache_status = 'hit') AS hits,
    count(*) FILTER (WHERE cache_status = 'miss') AS misses,
    count(*) FILTER (WHERE cache_status = 'bypass') AS bypasses,
    count(*) FILTER (WHERE cache_status = 'error') AS errors,
    round(
        count(*) FILTER (WHERE cache_status = 'hit')::numeric
        / nullif(count(*) FILTER (WHERE cache_status IN ('hit', 'miss')), 0),
        4
    ) AS hit_rate
FROM analytics.requests
GROUP BY tenant_id, tenant_name, day, model;
