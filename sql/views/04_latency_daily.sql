-- Latency percentiles in milliseconds by tenant, UTC day and cache status. Percentiles do not
-- add up across groups: for other groupings query analytics.requests (sql/queries/).
CREATE OR REPLACE VIEW analytics.latency_daily AS
SELECT
    tenant_id,
    tenant_name,
    day,
    cache_status,
    count(*) AS requests,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p50_ms,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p95_ms,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p99_ms,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY upstream_latency_ms)::numeric, 2) AS upstream_p50_ms,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY upstream_latency_ms)::numeric, 2) AS upstream_p95_ms
FROM analytics.requests
GROUP BY tenant_id, tenant_name, day, cache_status;
