"""The semantic tier's nearest-neighbour search as one SQL function: the tenant context, the search
settings and the HNSW top-k in one statement.

A semantic lookup then costs one round trip to the database instead of a transaction (BEGIN, the
tenant context, the search settings, the query, COMMIT). The function sets `deja.tenant_id`, the
iterative scan, `hnsw.ef_search` and `plan_cache_mode` for its own statement's transaction
(`set_config(..., true)`), and returns the k nearest live entries of the scope with everything needed
to answer, nearest first. It runs with the caller's rights (SECURITY INVOKER, the default): row-level
security applies to every row it reads.

The query is the one `CacheRepository.nearest` sends, built with `EXECUTE`: the partial HNSW index of
an embedder is over `embedding::halfvec(<dimension>)` `WHERE embedder = '<name>'`, and only a query
that spells that expression and that literal can use it (a typmod cannot be a parameter). A dynamic
statement is planned each time with its parameters' values (a custom plan: it knows the tenant), so a
cached generic plan that sorts the tenant's rows by distance never arises here.

Revision ID: 0080
Revises: 0070
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0080"
down_revision: str | None = "0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Live: as app.cache.repository's _LIVE (not flagged, not expired beyond p_stale_s, young enough for
# p_max_age_s). relaxed_order may return rows slightly out of order: the outer query re-sorts.
# The embedder name is checked as app.cache.repository.check_embedder_name does, and quoted (%L).
_FUNCTION = r"""
CREATE FUNCTION deja_semantic_probe(
    p_tenant_id uuid, p_namespace text, p_scope_hash bytea, p_embedder text, p_dimension integer,
    p_vector halfvec, p_k integer, p_ef_search integer, p_max_age_s integer, p_stale_s integer
) RETURNS TABLE (
    id uuid, prompt text, model text, namespace text, response jsonb, prompt_tokens integer,
    completion_tokens integer, created_at timestamptz, expires_at timestamptz, hit_count bigint,
    flagged boolean, distance double precision
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
BEGIN
    IF p_embedder !~ '^[A-Za-z0-9_.:\-]{1,100}$' OR p_dimension IS NULL OR p_dimension NOT BETWEEN 1 AND 16000 THEN
        RAISE EXCEPTION 'deja_semantic_probe: invalid embedder % or dimension %', p_embedder, p_dimension
            USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true),
            set_config('hnsw.iterative_scan', 'relaxed_order', true),
            set_config('hnsw.ef_search', p_ef_search::text, true),
            set_config('plan_cache_mode', 'force_custom_plan', true);
    RETURN QUERY EXECUTE format(
        'SELECT n.id, n.prompt, n.model::text, n.namespace::text, n.response, n.prompt_tokens, '
        '       n.completion_tokens, n.created_at, n.expires_at, n.hit_count, n.flagged, n.distance '
        '  FROM (SELECT e.id, e.prompt, e.model, e.namespace, e.response, e.prompt_tokens, '
        '               e.completion_tokens, e.created_at, e.expires_at, e.hit_count, e.flagged, '
        '               (e.embedding::halfvec(%1$s) <=> $5::halfvec(%1$s)) AS distance '
        '          FROM cache_entries e '
        '         WHERE e.embedder = %2$L AND e.tenant_id = $1 AND e.namespace = $2 '
        '           AND e.scope_hash = $3 AND NOT e.flagged '
        '           AND (e.expires_at IS NULL OR e.expires_at > now() - make_interval(secs => $7)) '
        '           AND ($6::integer IS NULL OR e.created_at > now() - make_interval(secs => $6)) '
        '         ORDER BY (e.embedding::halfvec(%1$s) <=> $5::halfvec(%1$s)) LIMIT $4) n '
        ' ORDER BY n.distance',
        p_dimension, p_embedder)
    USING p_tenant_id, p_namespace, p_scope_hash, p_k, p_vector, p_max_age_s, p_stale_s;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS deja_semantic_probe(uuid, text, bytea, text, integer, halfvec, integer, "
        "integer, integer, integer)"
    )
