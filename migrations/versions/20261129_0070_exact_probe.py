"""The exact probe as one SQL function: the tenant context and the lookup in one statement.

An exact (or alias) hit then costs one round trip: the function sets `deja.tenant_id` for its own
statement's transaction (`set_config(..., true)`) and returns the entry. It runs with the caller's
rights (SECURITY INVOKER, the default): row-level security applies to every row it reads.

Revision ID: 0070
Revises: 0060
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0070"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Servable: as app.cache.repository's _LIVE (not flagged, not expired beyond p_stale_s, young
# enough for p_max_age_s). The entry under this exact hash first, else an alias's entry served at
# p_min_alias_similarity or above. LANGUAGE sql: the first statement sets the context, the last
# one's rows are the result; each statement is planned when it runs, after the context is set.
_FUNCTION = """
CREATE FUNCTION deja_exact_probe(
    p_tenant_id uuid, p_namespace text, p_exact_hash bytea, p_max_age_s integer, p_stale_s integer,
    p_min_alias_similarity real
) RETURNS TABLE (
    id uuid, prompt text, model text, namespace text, response jsonb, prompt_tokens integer,
    completion_tokens integer, created_at timestamptz, expires_at timestamptz, hit_count bigint,
    flagged boolean, alias boolean, similarity real
)
LANGUAGE sql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $$
SELECT set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true);
(SELECT e.id, e.prompt, e.model::text, e.namespace::text, e.response, e.prompt_tokens,
        e.completion_tokens, e.created_at, e.expires_at, e.hit_count, e.flagged, false, 1.0::real
   FROM cache_entries e
  WHERE e.tenant_id = p_tenant_id AND e.namespace = p_namespace AND e.exact_hash = p_exact_hash
    AND NOT e.flagged
    AND (e.expires_at IS NULL OR e.expires_at > now() - make_interval(secs => p_stale_s))
    AND (p_max_age_s IS NULL OR e.created_at > now() - make_interval(secs => p_max_age_s))
  ORDER BY e.created_at DESC LIMIT 1)
UNION ALL
(SELECT e.id, e.prompt, e.model::text, e.namespace::text, e.response, e.prompt_tokens,
        e.completion_tokens, e.created_at, e.expires_at, e.hit_count, e.flagged, true, a.similarity
   FROM cache_aliases a JOIN cache_entries e ON e.id = a.entry_id
  WHERE a.tenant_id = p_tenant_id AND a.namespace = p_namespace AND a.exact_hash = p_exact_hash
    AND a.similarity >= p_min_alias_similarity
    AND NOT e.flagged
    AND (e.expires_at IS NULL OR e.expires_at > now() - make_interval(secs => p_stale_s))
    AND (p_max_age_s IS NULL OR e.created_at > now() - make_interval(secs => p_max_age_s)))
LIMIT 1;
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS deja_exact_probe(uuid, text, bytea, integer, integer, real)")
