-- Hit rate and requests per tenant over the last 7 UTC days, best first.
-- Needs row-level-security context: `deja psql` sets deja.system = 'on' (every tenant;
-- `deja psql --tenant ID` for one). Analysts (role deja_analyst) get it from
-- ALTER ROLE <login> IN DATABASE deja SET deja.system = 'on' (docs/analytics.md). Without
-- either the views answer no rows.
SELECT tenant_name,
       sum(requests) AS requests,
       sum(hits) AS hits,
       round(sum(hits)::numeric / nullif(sum(hits) + sum(misses), 0), 4) AS hit_rate
FROM analytics.hit_rate_daily
WHERE day > (now() AT TIME ZONE 'UTC')::date - 7
GROUP BY tenant_name
ORDER BY hit_rate DESC NULLS LAST, requests DESC;
