-- Cache entries by hits, with what their hits saved (from the ledger). No prompt or response
-- text: the entry id finds the entry through the tenant's own API.
CREATE OR REPLACE VIEW analytics.top_entries AS
SELECT
    e.tenant_id,
    t.name AS tenant_name,
    e.id AS entry_id,
    e.namespace,
    e.model,
    e.hit_count,
    rank() OVER (PARTITION BY e.tenant_id ORDER BY e.hit_count DESC) AS rank_in_tenant,
    e.created_at,
    e.last_hit_at,
    e.expires_at,
    e.flagged,
    e.cost_usd AS original_cost_usd,
    coalesce(h.avoided_cost_usd, 0) AS avoided_cost_usd
FROM public.cache_entries AS e
JOIN public.tenants AS t ON t.id = e.tenant_id
LEFT JOIN (
    SELECT entry_id, sum(avoided_cost_usd) AS avoided_cost_usd
    FROM public.ledger
    WHERE cache_status = 'hit' AND entry_id IS NOT NULL
    GROUP BY entry_id
) AS h ON h.entry_id = e.id;
