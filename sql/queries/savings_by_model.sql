-- What the cache saved, per model, over the whole ledger.
-- Needs row-level-security context: `deja psql` sets deja.system = 'on' (every tenant;
-- `deja psql --tenant ID` for one). Analysts (role deja_analyst) get it from
-- ALTER ROLE <login> IN DATABASE deja SET deja.system = 'on' (docs/analytics.md). Without
-- either the views answer no rows.
SELECT model,
       sum(requests) AS requests,
       sum(cost_usd) AS cost_usd,
       sum(avoided_cost_usd) AS avoided_cost_usd,
       round(sum(avoided_cost_usd) / nullif(sum(cost_without_cache_usd), 0), 4) AS savings_ratio
FROM analytics.cost_daily
GROUP BY model
ORDER BY avoided_cost_usd DESC;
