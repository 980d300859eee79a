-- Latency percentiles by cache status across every tenant, today (UTC): computed from
-- analytics.requests, since percentiles of groups cannot be combined.
-- Needs row-level-security context: `deja psql` sets deja.system = 'on' (every tenant;
-- `deja psql --tenant ID` for one). Analysts (role deja_analyst) get it from
-- ALTER ROLE <login> IN DATABASE deja SET deja.system = 'on' (docs/analytics.md). Without
-- either the views answer no rows.
SELECT cache_status,
       count(*) AS requests,
       round(percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) AS p99_ms
FROM analytics.requests
WHERE day = (now() AT TIME ZONE 'UTC')::date
GROUP BY cache_status
ORDER BY cache_status;
