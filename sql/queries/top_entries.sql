-- Each tenant's three most-hit cache entries and what their hits saved.
-- Needs row-level-security context: `deja psql` sets deja.system = 'on' (every tenant;
-- `deja psql --tenant ID` for one). Analysts (role deja_analyst) get it from
-- ALTER ROLE <login> IN DATABASE deja SET deja.system = 'on' (docs/analytics.md). Without
-- either the views answer no rows.
SELECT tenant_name, rank_in_tenant, entry_id, model, namespace, hit_count, ledger_hits, avoided_cost_usd
FROM analytics.top_entries
WHERE rank_in_tenant <= 3 AND greatest(hit_count, ledger_hits) > 0
ORDER BY tenant_name, rank_in_tenant;
