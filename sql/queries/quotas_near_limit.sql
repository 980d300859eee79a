-- Quotas at 80 % or more of any limit in the current period.
-- Needs row-level-security context: `deja psql` sets deja.system = 'on' (every tenant;
-- `deja psql --tenant ID` for one). Analysts (role deja_analyst) get it from
-- ALTER ROLE <login> IN DATABASE deja SET deja.system = 'on' (docs/analytics.md). Without
-- either the views answer no rows.
SELECT tenant_name, period, period_start, requests, max_requests, tokens, max_tokens,
       cost_usd, max_cost_usd, requests_used, tokens_used, cost_used
FROM analytics.quota_use
WHERE greatest(requests_used, tokens_used, cost_used) >= 0.8
ORDER BY greatest(requests_used, tokens_used, cost_used) DESC;
