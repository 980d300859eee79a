"""The semantic probe as a static statement, one function per embedder.

`deja_semantic_probe` (0080) builds its query as text on every call (`EXECUTE format(...)`): the
partial HNSW index of an embedder is over `embedding::halfvec(<dimension>)` `WHERE embedder =
'<name>'`, and a query can use it only if it spells that dimension and that name as literals. So
every lookup paid for building, parsing and analysing the statement before planning it.

`deja_ensure_semantic_probe(embedder, dimension)` creates, once, a function for that embedder
whose query is static SQL with the literals in place (`deja_semantic_probe_<hash>`, the hash of
the embedder's name and dimension; its comment names both), and returns its name. The service
calls it at start-up beside creating the HNSW index, and its lookups call the function it named.
PL/pgSQL keeps a static statement parsed; `plan_cache_mode = force_custom_plan` still plans it
with each call's values (it knows the tenant), as the dynamic statement was. The functions run
with the caller's rights, as 0080's: row-level security applies to every row they read.

The default embedder's function is created here, as its index is by the migrations.
`deja_semantic_probe` keeps its signature and now calls the embedder's own function, so the
query is written once, here. A later migration that changes the query drops the per-embedder
functions (`DROP_PER_EMBEDDER` below); the service creates them again when it starts.

Revision ID: 0140
Revises: 0130
Create Date: 2026-11-29
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0140"
down_revision: str | None = "0130"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The per-embedder function's query is 0080's with the embedder and dimension as literals (%1$s
# the dimension, %2$L the name, quoted). Live: not flagged, not expired beyond p_stale_s, young
# enough for p_max_age_s. relaxed_order may return rows slightly out of order: the outer query
# re-sorts.
#
# The name hashes the template's version ('v1/') with the embedder and dimension: a migration that
# changes the query bumps the version (new names, which servers create when they start) and drops
# the old functions (DROP_PER_EMBEDDER). A function found under the name is used only if the owner of
# cache_entries owns it. Servers starting together: an advisory lock (key 0x64656A61_0002, beside
# the dashboard roll-up's 0x64656A61_0001) lets one create it; the others then find it (a fresh
# read of pg_proc after the lock), and one that still collides takes the committed function.
_ENSURE = r"""
CREATE FUNCTION deja_ensure_semantic_probe(p_embedder text, p_dimension integer) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
AS $ensure$
DECLARE
    v_name text;
    v_owner oid;
BEGIN
    IF p_embedder IS NULL OR p_embedder !~ '^[A-Za-z0-9_.:\-]{1,100}$'
       OR p_dimension IS NULL OR p_dimension NOT BETWEEN 1 AND 16000 THEN
        RAISE EXCEPTION 'deja_ensure_semantic_probe: invalid embedder % or dimension %', p_embedder, p_dimension
            USING ERRCODE = '22023';
    END IF;
    v_name := 'deja_semantic_probe_' || left(md5('v1/' || p_embedder || '/' || p_dimension), 16);
    SELECT p.proowner INTO v_owner FROM pg_proc p
     WHERE p.proname = v_name AND p.pronamespace = current_schema()::regnamespace;
    IF NOT FOUND THEN
        PERFORM pg_advisory_xact_lock(110386739216386);
        SELECT p.proowner INTO v_owner FROM pg_proc p
         WHERE p.proname = v_name AND p.pronamespace = current_schema()::regnamespace;
    END IF;
    IF FOUND THEN
        IF v_owner <> (SELECT c.relowner FROM pg_class c WHERE c.oid = 'cache_entries'::regclass) THEN
            RAISE EXCEPTION 'deja_ensure_semantic_probe: % is not owned by the owner of cache_entries', v_name
                USING ERRCODE = '42501';
        END IF;
        RETURN v_name;
    END IF;
    BEGIN
    EXECUTE format($create$
CREATE FUNCTION %3$I(
    p_tenant_id uuid, p_namespace text, p_scope_hash bytea, p_vector halfvec, p_k integer,
    p_ef_search integer, p_max_age_s integer, p_stale_s integer
) RETURNS TABLE (
    id uuid, prompt text, model text, namespace text, response jsonb, prompt_tokens integer,
    completion_tokens integer, created_at timestamptz, expires_at timestamptz, hit_count bigint,
    flagged boolean, distance double precision
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER PARALLEL UNSAFE
SET plan_cache_mode = force_custom_plan
AS $probe$
BEGIN
    PERFORM set_config('deja.tenant_id', p_tenant_id::text, true), set_config('deja.system', 'off', true),
            set_config('hnsw.iterative_scan', 'relaxed_order', true),
            set_config('hnsw.ef_search', p_ef_search::text, true);
    RETURN QUERY
    SELECT n.id, n.prompt, n.model::text, n.namespace::text, n.response, n.prompt_tokens,
           n.completion_tokens, n.created_at, n.expires_at, n.hit_count, n.flagged, n.distance
      FROM (SELECT e.id, e.prompt, e.model, e.namespace, e.response, e.prompt_tokens,
                   e.completion_tokens, e.created_at, e.expires_at, e.hit_count, e.flagged,
                   (e.embedding::halfvec(%1$s) <=> p_vector::halfvec(%1$s)) AS distance
              FROM cache_entries e
             WHERE e.embedder = %2$L AND e.tenant_id = p_tenant_id AND e.namespace = p_namespace
               AND e.scope_hash = p_scope_hash AND NOT e.flagged
               AND (e.expires_at IS NULL OR e.expires_at > now() - make_interval(secs => p_stale_s))
               AND (p_max_age_s IS NULL OR e.created_at > now() - make_interval(secs => p_max_age_s))
             ORDER BY (e.embedding::halfvec(%1$s) <=> p_vector::halfvec(%1$s)) LIMIT p_k) n
     ORDER BY n.distance;
END
$probe$
$create$, p_dimension, p_embedder, v_name);
    EXECUTE format('COMMENT ON FUNCTION %I(uuid, text, bytea, halfvec, integer, integer, integer, integer) IS %L',
                   v_name, format('The semantic probe of embedder %s at dimension %s (deja_ensure_semantic_probe).',
                                  p_embedder, p_dimension));
    EXCEPTION WHEN duplicate_function THEN
        NULL;  -- created by a caller whose transaction committed after this statement's snapshot
    END;
    RETURN v_name;
END
$ensure$
"""

# The generic entry point, for any embedder: the embedder's own function, created if need be.
_GENERIC = r"""
CREATE OR REPLACE FUNCTION deja_semantic_probe(
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
    RETURN QUERY EXECUTE format('SELECT * FROM %I($1, $2, $3, $4, $5, $6, $7, $8)',
                                deja_ensure_semantic_probe(p_embedder, p_dimension))
    USING p_tenant_id, p_namespace, p_scope_hash, p_vector, p_k, p_ef_search, p_max_age_s, p_stale_s;
END
$$
"""

DROP_PER_EMBEDDER = r"""
DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.proname ~ '^deja_semantic_probe_[0-9a-f]{16}$'
           AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_function);
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(_ENSURE)
    op.execute(_GENERIC)
    # The default embedder's, as its HNSW index is made by the migrations: a service whose role may
    # not create functions still finds it.
    op.execute("SELECT deja_ensure_semantic_probe('minilm-l6-v2-int8', 384)")


def downgrade() -> None:
    # 0080's function as it was, then nothing that calls the per-embedder ones.
    path = Path(__file__).with_name("20261129_0080_semantic_probe.py")
    spec = importlib.util.spec_from_file_location("semantic_probe_0080", path)
    assert spec is not None
    assert spec.loader is not None
    earlier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(earlier)
    op.execute(earlier._FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(DROP_PER_EMBEDDER)
    op.execute("DROP FUNCTION IF EXISTS deja_ensure_semantic_probe(text, integer)")
