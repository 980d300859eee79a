-- Cache entries by hits. hit_count is the entry's own counter (native lookups included);
-- ledger_hits and avoided_cost_usd come from requests booked in the ledger; entries rank by
-- the larger of the two. No prompt or response text: the entry id finds the entry through the
-- tenant's own API.
CREATE OR REPLACE VIEW analytics.top_entries AS
SELECT
    e.tenant_id,
    t.name AS tenant_name,
    e.id AS entry_id,
    e.namespace,
    e.model,
    e.hit_count,
    coalesce(h.hits, 0) AS ledger_hits,
    rank() OVER (PARTITION BY e.tenant_id ORDER BY greatest(e.hit_count, coalesce(h.hits, 0)) DESC)
        AS rank_in_tenant,
    e.created_at,
    e.last_hit_at,
    e.expires_at,
    e.flagged,
    e.cost_usd AS original_cost_usd,
    coalesce(h.avoided_cost_usd, 0) AS avoided_cost_usd
FROM public.cache_entries AS e
JOIN public.tenants AS t ON t.id = e.tenant_id
LEFT JOIN (
    SELECT entry_id, count(*) AS hits, sum(avoided_cost_usd) AS avoided_cost_usd
    FROM public.ledger
    WHERE cache_status = 'hit' AND entry_id IS NOT NULL
    GROUP BY entry_id
) AS h ON h.entry_id = e.id;
