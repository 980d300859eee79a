"""The semantic tier in one round trip: the embedder's probe function (created at start-up, static
SQL) sets the tenant context and the search settings itself and returns the nearest live entries
of the scope (still under row-level security, still through the HNSW index); `deja_semantic_probe`
does the same for any embedder by name; a served paraphrase is booked and aliased after the
response; the entries table is kept cheap to search (fresh statistics) and to count hits in (room
on its pages)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pgvector import HalfVector
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.models import DEFAULT_DIMENSION, DEFAULT_EMBEDDER, hnsw_index_name
from app.cache.repository import CacheRepository
from app.cache.scope import scope_of
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.db.engine import register_halfvec, transaction
from app.db.fastpath import asyncpg_dsn
from tests.conftest import ServerThread, eventually
from tests.integration.test_cache_api import MODEL, lookup, store

STORED = "How do I undo the last git commit?"
PARAPHRASE = "how can I undo my last commit in git"

PROBE = text(
    "SELECT id, distance FROM deja_semantic_probe(:t, :ns, :scope, :embedder, :dim, CAST(:v AS halfvec), "
    ":k, 64, NULL, :stale)"
)
ENSURE = text("SELECT deja_ensure_semantic_probe(:embedder, :dim)")
ENSURE_SQL = "SELECT deja_ensure_semantic_probe($1, $2)"


async def embedder_probe(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """The default embedder's own probe function, called with the same arguments as PROBE."""
    async with sessionmaker() as session:
        name = (
            await session.execute(ENSURE, {"embedder": DEFAULT_EMBEDDER, "dim": DEFAULT_DIMENSION})
        ).scalar_one()
        await session.commit()
    return text(
        f"SELECT id, distance FROM {name}(:t, :ns, :scope, CAST(:v AS halfvec), :k, 64, NULL, :stale)"  # noqa: S608
    )


def chat(content: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}]}


def scope_hash(prompt: str) -> bytes:
    return scope_of(MODEL, [{"role": "user", "content": prompt}]).scope_hash


async def _embedding(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, entry_id: str
) -> HalfVector:
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        row = await session.execute(
            text("SELECT embedding FROM cache_entries WHERE id = :id"), {"id": uuid.UUID(entry_id)}
        )
        vector: HalfVector = row.scalar_one()
    return vector


def _args(tenant_id: uuid.UUID, prompt: str, vector: HalfVector, *, stale: int = 0) -> dict[str, Any]:
    return {
        "t": tenant_id,
        "ns": "",
        "scope": scope_hash(prompt),
        "embedder": DEFAULT_EMBEDDER,
        "dim": DEFAULT_DIMENSION,
        "v": vector,
        "k": 5,
        "stale": stale,
    }


async def test_a_tenant_never_gets_another_tenants_neighbours(
    http: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant("sem-a"), await make_tenant("sem-b")
    # A fixed prompt: both tenants are new, and the paraphrase below must be one the model serves
    # (with a random code the model's word varies: it refuses this pair for codes ending in "44",
    # `python scripts/identifier_noise.py`).
    prompt = "What is the door code of office 7C?"
    b_entry = await store(http, b.headers, prompt, "B's secret: 4711")
    paraphrase = prompt.replace("What is", "Tell me")
    hit = await lookup(http, b.headers, paraphrase)
    assert (hit["hit"], hit["tier"], hit["entry_id"]) == (True, "semantic", b_entry)
    # Tenant A sends the same paraphrase (the same scope, the nearest vector is B's): no hit.
    assert (await lookup(http, a.headers, paraphrase))["hit"] is False

    vector = await _embedding(sessionmaker, b.tenant_id, b_entry)
    for probe in (PROBE, await embedder_probe(sessionmaker)):
        async with sessionmaker() as session:
            # The caller's rights: none of the probe functions is SECURITY DEFINER, and the role
            # is subject to row-level security.
            definers, bypass = (
                await session.execute(
                    text(
                        "SELECT array_agg(p.proname::text ORDER BY p.proname) FILTER (WHERE p.prosecdef), "
                        "bool_or(r.rolbypassrls OR r.rolsuper) FROM pg_proc p, pg_roles r "
                        "WHERE p.proname ~ '^deja_(ensure_)?semantic_probe' AND r.rolname = current_user"
                    )
                )
            ).one()
            assert (definers, bypass) == (None, False)
            # B's scope and B's very vector, asked as tenant A: nothing. As B: B's entry, at distance 0.
            assert (await session.execute(probe, _args(a.tenant_id, prompt, vector))).all() == []
            found = (await session.execute(probe, _args(b.tenant_id, prompt, vector))).all()
            assert [str(row.id) for row in found] == [b_entry]
            assert found[0].distance == pytest.approx(0.0, abs=1e-3)
            await session.rollback()
        async with sessionmaker() as session, session.begin():
            # Even called inside a system context, the function's own context is the tenant's it
            # was given: B's rows are invisible to what follows in A's.
            await session.execute(text("SELECT set_config('deja.system', 'on', true)"))
            assert (await session.execute(probe, _args(a.tenant_id, prompt, vector))).all() == []
            visible = await session.execute(
                text("SELECT count(*) FROM cache_entries WHERE tenant_id = :b"), {"b": b.tenant_id}
            )
            assert visible.scalar_one() == 0

    # By chat too: a miss (the model answers, not B's entry).
    response = await http.post("/v1/chat/completions", headers=a.headers, json=chat(paraphrase))
    assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
    assert "4711" not in response.text


async def test_the_search_inside_the_function_uses_the_hnsw_index(
    http: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    """The embedder's function spells the partial index's expression and predicate, so the index is
    usable from inside it: with every other way to order the rows disabled, the HNSW index is
    scanned (a statement that could not use it would fall back to a disabled scan)."""
    probe = await embedder_probe(sessionmaker)
    t = await make_tenant("sem-plan")
    entry = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    vector = await _embedding(sessionmaker, t.tenant_id, entry)
    index = hnsw_index_name(DEFAULT_EMBEDDER)
    scans = text("SELECT pg_stat_get_xact_numscans(to_regclass(:i))")  # this transaction's scans
    async with sessionmaker() as session, session.begin():
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_indexscan", "enable_sort"):
            await session.execute(text(f"SET LOCAL {setting} = off"))
        await session.execute(text("SET LOCAL enable_indexscan = on"))  # HNSW is an index scan
        before = (await session.execute(scans, {"i": index})).scalar_one()
        found = (await session.execute(probe, _args(t.tenant_id, STORED, vector))).all()
        after = (await session.execute(scans, {"i": index})).scalar_one()
    assert [str(row.id) for row in found] == [entry]
    assert after - before >= 1


async def test_each_embedder_gets_one_static_probe_function(
    deja: ServerThread, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The running service searches through its embedder's function (the migrations made the default
    embedder's; another's is made when its service starts);
    asking again names the same function without replacing it; its query is static SQL with the
    embedder's name and dimension in place; another dimension or embedder gets its own function,
    and a name that could not be spelled into SQL is refused."""
    served = deja.app.state.services.cache.semantic_probe  # type: ignore[attr-defined]
    async with sessionmaker() as session:
        name = (
            await session.execute(ENSURE, {"embedder": DEFAULT_EMBEDDER, "dim": DEFAULT_DIMENSION})
        ).scalar_one()
        assert served is not None
        assert served.function == name
        oid = text("SELECT to_regproc(:name)::oid, xmin::text FROM pg_proc WHERE proname = :name")
        before = (await session.execute(oid, {"name": name})).one()
        assert (
            await session.execute(ENSURE, {"embedder": DEFAULT_EMBEDDER, "dim": DEFAULT_DIMENSION})
        ).scalar_one() == name
        assert (await session.execute(oid, {"name": name})).one() == before  # not created again
        source = (
            await session.execute(text("SELECT prosrc FROM pg_proc WHERE proname = :n"), {"n": name})
        ).scalar_one()
        assert f"e.embedder = '{DEFAULT_EMBEDDER}'" in source
        assert f"halfvec({DEFAULT_DIMENSION})" in source
        assert "EXECUTE" not in source

        other = (await session.execute(ENSURE, {"embedder": DEFAULT_EMBEDDER, "dim": 768})).scalar_one()
        assert other != name
        await session.rollback()  # the other dimension's function is not kept
        with pytest.raises(DBAPIError, match="invalid embedder"):
            await session.execute(ENSURE, {"embedder": "x'; DROP TABLE cache_entries; --", "dim": 384})


async def test_servers_starting_together_get_the_same_function(database_url: str) -> None:
    """A second server asking while the first is creating the function waits for it, then gets the
    function the first one made (no "already exists")."""
    embedder = f"race-{uuid.uuid4().hex[:8]}"
    first = await asyncpg.connect(asyncpg_dsn(database_url))
    second = await asyncpg.connect(asyncpg_dsn(database_url))
    name = ""
    try:
        creating = first.transaction()
        await creating.start()
        name = await first.fetchval(ENSURE_SQL, embedder, 8)
        waiting = asyncio.create_task(second.fetchval(ENSURE_SQL, embedder, 8))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held until the first commits
        await creating.commit()
        assert await asyncio.wait_for(waiting, timeout=10) == name
    finally:
        if name:
            await first.execute(f"DROP FUNCTION IF EXISTS {name}")
        await first.close()
        await second.close()


async def test_a_function_under_the_name_owned_by_another_role_is_refused(
    embedded_pg: EmbeddedPostgres, database_url: str
) -> None:
    """The name is predictable: a function put there by anyone but the owner of the cache is
    never called."""
    embedder = f"planted-{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        name = "deja_semantic_probe_" + hashlib.md5(f"v1/{embedder}/8".encode()).hexdigest()[:16]  # noqa: S324
        embedded_pg.server.psql(
            f"\\c deja\nCREATE FUNCTION {name}(uuid, text, bytea, halfvec, integer, integer, integer, integer) "
            "RETURNS TABLE (id uuid) LANGUAGE sql AS 'SELECT NULL::uuid';"
        )
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match="not owned by the owner of cache_entries"
        ):
            await connection.fetchval(ENSURE_SQL, embedder, 8)
    finally:
        embedded_pg.server.psql(f"\\c deja\nDROP FUNCTION IF EXISTS {name};")
        await connection.close()


async def test_a_function_dropped_while_the_service_runs_is_made_again(
    http: httpx.AsyncClient, make_tenant, deja: ServerThread, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    """A migration that replaces the query drops the functions: the lookup that finds it gone is
    answered through a transaction, and the service makes the function again for the next."""
    cache = deja.app.state.services.cache  # type: ignore[attr-defined]
    name = cache.semantic_probe.function
    t = await make_tenant("sem-dropped")
    entry = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    async with sessionmaker() as session:
        await session.execute(text(f"DROP FUNCTION {name}"))
        await session.commit()
    for _ in range(2):
        hit = await lookup(http, t.headers, PARAPHRASE)
        assert (hit["hit"], hit["entry_id"]) == (True, entry)
    assert cache.semantic_probe is not None
    assert cache.semantic_probe.function == name
    async with sessionmaker() as session:
        assert (await session.execute(text("SELECT to_regproc(:n) IS NOT NULL"), {"n": name})).scalar_one()


async def test_expired_and_flagged_entries_are_not_returned(
    http: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("sem-live")
    expired = await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="expired")
    flagged = await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="flagged")
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        await session.execute(
            text("UPDATE cache_entries SET expires_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": uuid.UUID(expired)},
        )
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": flagged, "correct": False}
    )
    assert wrong.json()["flagged"] is True
    for namespace in ("expired", "flagged"):
        assert (await lookup(http, t.headers, PARAPHRASE, namespace=namespace))["hit"] is False

    vector = await _embedding(sessionmaker, t.tenant_id, expired)
    async with sessionmaker() as session:
        for namespace in ("expired", "flagged"):
            args = {**_args(t.tenant_id, STORED, vector), "ns": namespace}
            assert (await session.execute(PROBE, args)).all() == []
        # Expired a minute ago: returned when stale answers up to an hour old are allowed.
        stale = {**_args(t.tenant_id, STORED, vector, stale=3600), "ns": "expired"}
        assert [str(row.id) for row in (await session.execute(PROBE, stale)).all()] == [expired]
        await session.rollback()


async def test_a_semantic_hit_by_chat_is_booked_and_aliased_after_its_response(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("sem-chat")
    entry = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    response = await http.post("/v1/chat/completions", headers=t.headers, json=chat(PARAPHRASE))
    assert (response.headers["x-cache"], response.headers["x-cache-tier"]) == ("HIT", "semantic")
    assert response.headers["x-cache-entry"] == entry
    assert response.json()["choices"][0]["message"]["content"] == "git reset --soft HEAD~1"
    request_id = response.headers["x-request-id"]

    async def booked() -> list[Any]:
        async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
            rows = await session.execute(
                text("SELECT cache_status, entry_id, metadata FROM ledger WHERE request_id = :r"),
                {"r": request_id},
            )
            return list(rows)

    rows = await eventually(booked)
    assert [(status, str(entry_id)) for status, entry_id, _ in rows] == [("hit", entry)]
    # The verifier's score is kept: feedback on this request labels the error bound.
    assert "verifier" in rows[0][2]

    await deja.settle()
    again = await http.post("/v1/chat/completions", headers=t.headers, json=chat(PARAPHRASE))
    assert (again.headers["x-cache"], again.headers["x-cache-tier"]) == ("HIT", "alias")
    assert again.headers["x-cache-entry"] == entry


async def _random_entries(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    scope: bytes,
    count: int,
    *,
    first: int = 1,
) -> None:
    """`count` entries in one scope of the tenant, with random vectors, stored in one transaction
    (numbered from `first`: a later call adds others)."""
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        # Set-up, not a statement of the service's: 2,000 random vectors into the HNSW index take
        # more than the service's statement timeout on a slow machine.
        await session.execute(text("SET LOCAL statement_timeout = 0"))
        await session.execute(
            text(
                """
                INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response,
                                           embedder, embedding)
                SELECT :t, :model, :scope, sha256((:prefix || i)::bytea), 'a stored prompt ' || i,
                       '{"choices": []}'::jsonb, :embedder, r.v
                FROM generate_series(CAST(:first AS int), CAST(:first AS int) + CAST(:count AS int) - 1) AS i
                CROSS JOIN LATERAL (
                    SELECT array_agg(random() - 0.5)::vector AS v FROM generate_series(1, :dim) WHERE i > 0
                ) AS r
                """
            ),
            {
                "t": tenant_id,
                "prefix": str(tenant_id),
                "model": MODEL,
                "scope": scope,
                "first": first,
                "count": count,
                "embedder": DEFAULT_EMBEDDER,
                "dim": DEFAULT_DIMENSION,
            },
        )


async def test_a_scope_that_grows_is_searched_through_the_index_within_seconds(
    make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    """The planner chooses between scanning a scope whole and the HNSW index by the statistics of
    `cache_entries`; a scope that grew since they were taken passes for a few rows and is scanned
    whole on every lookup. The table is analysed after 50 changes plus 2% (migration 0110) and
    the embedded server's autovacuum looks every 10 s, so within seconds of 2,000 entries
    arriving the lookup goes through the index, with nobody running ANALYZE. The wait allows
    three minutes: under the whole suite's load the autovacuum workers are busy with the other
    tests' databases, and once took more than a minute to reach this one. And the scope keeps
    growing while it waits, as a scope does: an analysis that ran while the 2,000 were being
    committed counts them as analysed without having seen them (once, under the whole suite,
    the counter of changes read 0 while the plan still scanned the scope whole), and only the
    next changes bring the next analysis."""
    t = await make_tenant("sem-grow")
    async with sessionmaker() as session:
        naptime = await session.execute(text("SELECT current_setting('autovacuum_naptime')"))
        options = await session.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'cache_entries'::regclass")
        )
    assert naptime.scalar_one() == "10s"
    assert "autovacuum_analyze_scale_factor=0.02" in options.scalar_one()
    await _random_entries(sessionmaker, t.tenant_id, scope_hash(STORED), 2000)
    index = hnsw_index_name(DEFAULT_EMBEDDER)
    scans = text("SELECT pg_stat_get_xact_numscans(to_regclass(:i))")  # this transaction's scans
    vector = HalfVector([0.5] * DEFAULT_DIMENSION)

    async def through_the_index() -> bool:
        async with sessionmaker() as session, session.begin():
            before = (await session.execute(scans, {"i": index})).scalar_one()
            found = (await session.execute(PROBE, _args(t.tenant_id, STORED, vector))).all()
            after = (await session.execute(scans, {"i": index})).scalar_one()
        assert len(found) == 5
        return bool(after > before)

    grown = 2000

    async def through_the_index_as_it_grows() -> bool:
        nonlocal grown
        if await through_the_index():
            return True
        await _random_entries(sessionmaker, t.tenant_id, scope_hash(STORED), 20, first=grown + 1)
        grown += 20
        return False

    if not await eventually(through_the_index_as_it_grows, within_s=180, every_s=1.0):
        async with sessionmaker() as session:
            stats = await session.execute(
                text(
                    "SELECT n_live_tup, n_mod_since_analyze, last_autoanalyze FROM pg_stat_user_tables "
                    "WHERE relname = 'cache_entries'"
                )
            )
        pytest.fail(f"the scope was still scanned whole after 180 s: {stats.one()}")


NEIGHBOUR_ENTRIES = """
    INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response)
    SELECT $1, $2, CASE WHEN i <= 20 THEN $3::bytea ELSE $4::bytea END, sha256(convert_to($5 || i, 'UTF8')),
           'a neighbour prompt', '{}'::jsonb
      FROM generate_series(1, 150) AS i
"""
SCOPE_ENTRIES = """
    INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response, embedder, embedding)
    SELECT $1, $2, $3, sha256(convert_to($4 || i, 'UTF8')), 'a stored prompt ' || i, '{"choices": []}'::jsonb,
           $5, r.v
      FROM generate_series(1, 2000) AS i
     CROSS JOIN LATERAL (SELECT array_agg(random() - 0.5)::vector AS v FROM generate_series(1, $6) WHERE i > 0) AS r
"""


async def test_a_tenants_part_of_a_scope_many_tenants_share_is_searched_through_the_index(
    scratch_database: str,
) -> None:
    """Tenants that send the same model with no system prompt share a scope. Judged by statistics
    per column, a tenant's 2,000 entries in it (76 other tenants with 20 each) pass for a few dozen
    rows, and the scope is read whole on every lookup; migration 0150's statistics over tenant,
    namespace and scope together count the combination as it is, and the search goes through the
    HNSW index. In a database of its own: the planner's estimates depend on this test's rows alone."""
    await asyncio.to_thread(migrate.upgrade, scratch_database)
    connection = await asyncpg.connect(asyncpg_dsn(scratch_database))
    try:
        await register_halfvec(connection)
        shared = b"\x01" * 32
        async with connection.transaction():
            await connection.execute("SELECT set_config('deja.system', 'on', true)")
            for number in range(76):
                neighbour = await connection.fetchval(
                    "INSERT INTO tenants (name) VALUES ($1) RETURNING id", f"neighbour-{number}"
                )
                await connection.execute(
                    NEIGHBOUR_ENTRIES, neighbour, MODEL, shared, neighbour.bytes * 2, str(neighbour)
                )
            tenant = await connection.fetchval("INSERT INTO tenants (name) VALUES ('large') RETURNING id")
            await connection.execute(
                SCOPE_ENTRIES, tenant, MODEL, shared, str(tenant), DEFAULT_EMBEDDER, DEFAULT_DIMENSION
            )
        name = await connection.fetchval(ENSURE_SQL, DEFAULT_EMBEDDER, DEFAULT_DIMENSION)
        index = hnsw_index_name(DEFAULT_EMBEDDER)

        async def through_the_index() -> bool:
            async with connection.transaction():
                before = await connection.fetchval("SELECT pg_stat_get_xact_numscans(to_regclass($1))", index)
                found = await connection.fetch(
                    f"SELECT id FROM {name}($1, '', $2, $3, 5, 64, NULL, 0)",  # noqa: S608
                    tenant,
                    shared,
                    HalfVector([0.5] * DEFAULT_DIMENSION),
                )
                after = await connection.fetchval("SELECT pg_stat_get_xact_numscans(to_regclass($1))", index)
            assert len(found) == 5
            return bool(after > before)

        await connection.execute("ANALYZE cache_entries")
        assert await through_the_index()
        await connection.execute("DROP STATISTICS st_cache_entries_scope")
        await connection.execute("ANALYZE cache_entries")
        assert not await through_the_index()  # per column only: the scope read whole
    finally:
        await connection.close()


async def test_hit_counters_are_written_without_touching_any_index(
    make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    """Hits are added to their entries once a second; neither counter is indexed, so an update
    can stay on its page (heap-only: no index entry, no insertion into the HNSW graph) if the page
    has room. Migration 0130 leaves a fifth of every page free: a flush over one entry per page
    is heap-only throughout (with pages packed full, nearly none of it was)."""
    t = await make_tenant("sem-hot")
    await _random_entries(sessionmaker, t.tenant_id, b"\x01", 200)
    hot = text("SELECT pg_stat_get_xact_tuples_hot_updated('cache_entries'::regclass)")
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        one_per_page = list(
            (
                await session.execute(
                    text(
                        "SELECT DISTINCT ON ((ctid::text::point)[0]) id FROM cache_entries "
                        "WHERE tenant_id = :t ORDER BY (ctid::text::point)[0]"
                    ),
                    {"t": t.tenant_id},
                )
            ).scalars()
        )
        assert len(one_per_page) > 10
        before = (await session.execute(hot)).scalar_one()
        now = datetime.now(UTC)
        await CacheRepository(session).add_hits({entry_id: (1, now) for entry_id in one_per_page})
        assert (await session.execute(hot)).scalar_one() - before == len(one_per_page)
