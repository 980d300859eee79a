-- One row per request, from the ledger, without anything a client wrote (metadata, error
-- text, request id): the base for ad-hoc questions. Days are UTC days.
CREATE OR REPLACE VIEW analytics.requests AS
SELECT
    l.id,
    l.tenant_id,
    t.name AS tenant_name,
    l.created_at,
    (l.created_at AT TIME ZONE 'UTC')::date AS day,
    l.requested_model AS model,
    l.used_model,
    l.namespace,
    l.cache_status,
    l.similarity,
    l.prompt_tokens,
    l.completion_tokens,
    l.cost_usd,
    l.avoided_cost_usd,
    l.latency_ms,
    l.upstream_latency_ms,
    l.http_status,
    l.priority
FROM public.ledger AS l
JOIN public.tenants AS t ON t.id = l.tenant_id;
