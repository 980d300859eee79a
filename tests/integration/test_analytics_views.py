"""The analytics views agree with the API, obey row-level security, and serve a read-only
analyst role that cannot reach the tables."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.embedded import EmbeddedPostgres
from app.db.engine import transaction
from tests.conftest import ADMIN_HEADERS

MODEL = "gpt-4o-mini"
SQL = Path(__file__).resolve().parents[2] / "sql"


async def ask(http: httpx.AsyncClient, headers: dict[str, str], prompt: str) -> dict:  # type: ignore[type-arg]
    response = await http.post("/v1/requests", headers=headers, json={"input": prompt, "model": MODEL})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def traffic(http: httpx.AsyncClient, make_tenant):  # type: ignore[no-untyped-def]
    """Two tenants' requests, through the API: A misses then hits, B misses."""
    a, b = await make_tenant("views-a"), await make_tenant("views-b")
    miss = await ask(http, a.headers, "List the steps to export a report.")
    hit = await ask(http, a.headers, "List the steps to export a report.")
    await ask(http, b.headers, "How long are invoices kept?")
    assert (miss["cache"]["status"], hit["cache"]["status"]) == ("MISS", "HIT")
    quota = await http.put(
        f"/admin/tenants/{a.tenant_id}/quotas/day", json={"max_requests": 100}, headers=ADMIN_HEADERS
    )
    assert quota.status_code == 200
    stats = (await http.get("/admin/stats", headers=ADMIN_HEADERS)).json()["tenants"]
    return a, b, hit, {s["tenant_id"]: s for s in stats}


async def view_rows(session: AsyncSession, view: str, tenant_id: uuid.UUID) -> list[dict]:  # type: ignore[type-arg]
    result = await session.execute(
        text(f"SELECT * FROM analytics.{view} WHERE tenant_id = :t"),  # noqa: S608 (test constants)
        {"t": tenant_id},
    )
    return [dict(row._mapping) for row in result]


async def test_views_agree_with_the_api(
    traffic,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    a, _, hit, stats = traffic
    mine = stats[str(a.tenant_id)]
    async with transaction(sessionmaker, system=True) as session:
        [rate] = await view_rows(session, "hit_rate_daily", a.tenant_id)
        [cost] = await view_rows(session, "cost_daily", a.tenant_id)
        latency = await view_rows(session, "latency_daily", a.tenant_id)
        [entry] = await view_rows(session, "top_entries", a.tenant_id)
        quotas = await view_rows(session, "quota_use", a.tenant_id)
    assert (rate["requests"], rate["hits"], rate["misses"]) == (
        mine["requests"],
        mine["hits"],
        mine["misses"],
    )
    assert float(rate["hit_rate"]) == mine["hit_rate"] == 0.5
    assert rate["model"] == MODEL
    assert str(cost["cost_usd"]) == mine["cost_usd"]
    assert str(cost["avoided_cost_usd"]) == mine["avoided_cost_usd"]
    assert float(cost["savings_ratio"]) == 0.5
    assert {row["cache_status"] for row in latency} == {"hit", "miss"}
    assert all(row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] for row in latency)
    assert str(entry["entry_id"]) == hit["cache"]["entry_id"]
    assert (entry["ledger_hits"], entry["rank_in_tenant"]) == (1, 1)
    assert str(entry["avoided_cost_usd"]) == mine["avoided_cost_usd"]
    [day] = [q for q in quotas if q["period"] == "day"]
    assert day["max_requests"] == 100


async def test_views_obey_row_level_security(
    traffic,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    a, b, _, _ = traffic
    count = text("SELECT count(*) FROM analytics.requests WHERE tenant_id IN (:a, :b)")
    ids = {"a": a.tenant_id, "b": b.tenant_id}
    async with transaction(sessionmaker) as session:  # no context: nothing
        assert await session.scalar(count, ids) == 0
    async with transaction(sessionmaker, tenant_id=b.tenant_id) as session:  # one tenant: its rows
        assert await session.scalar(count, ids) == 1
    async with transaction(sessionmaker, system=True) as session:  # system: everyone
        assert await session.scalar(count, ids) == 3


async def test_analyst_role_reads_views_and_nothing_else(
    traffic,  # type: ignore[no-untyped-def]
    embedded_pg: EmbeddedPostgres,
) -> None:
    a, _, _, stats = traffic
    analyst = f"analyst_{uuid.uuid4().hex[:8]}"
    embedded_pg.server.psql(
        f"\\c deja\n{(SQL / 'analyst_role.sql').read_text()}\n"
        f"CREATE ROLE {analyst} LOGIN IN ROLE deja_analyst;\n"
        f"ALTER ROLE {analyst} IN DATABASE deja SET deja.system = 'on';\n"
    )
    connection = await asyncpg.connect(host=str(embedded_pg.socket_dir), user=analyst, database="deja")
    try:
        row = await connection.fetchrow(
            "SELECT sum(requests) AS requests, sum(hits) AS hits FROM analytics.hit_rate_daily WHERE tenant_id = $1",
            a.tenant_id,
        )
        assert (row["requests"], row["hits"]) == (stats[str(a.tenant_id)]["requests"], 1)
        for table in ("ledger", "cache_entries", "tenants", "api_keys"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.fetch(f"SELECT * FROM public.{table} LIMIT 1")  # noqa: S608
        may_write = "SELECT has_table_privilege('analytics.requests', 'INSERT, UPDATE, DELETE')"
        assert await connection.fetchval(may_write) is False
        for query in sorted((SQL / "queries").glob("*.sql")):
            await connection.fetch(query.read_text())  # every example query runs
    finally:
        await connection.close()


def deja_psql(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "psql", *args],
        input=stdin,
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_deja_psql_runs_the_example_queries_across_tenants(
    traffic,  # type: ignore[no-untyped-def]
    database_url: str,
) -> None:
    a, b, _, _ = traffic
    result = deja_psql(database_url, stdin=(SQL / "queries" / "hit_rate_last_7_days.sql").read_text())
    assert result.returncode == 0, result.stderr
    assert a.name in result.stdout
    assert b.name in result.stdout
    one = deja_psql(
        database_url,
        "-At",
        "-c",
        f"SELECT count(*) FROM analytics.requests WHERE tenant_id = '{a.tenant_id}'",  # noqa: S608 (a uuid)
    )
    assert (one.returncode, one.stdout.strip()) == (0, "2"), one.stderr
    # --tenant: only that tenant's rows, as row-level security gives a tenant.
    scoped = deja_psql(
        database_url,
        "--tenant",
        str(b.tenant_id),
        "-At",
        "-c",
        "SELECT DISTINCT tenant_name FROM analytics.requests",
    )
    assert (scoped.returncode, scoped.stdout.strip()) == (0, b.name), scoped.stderr
