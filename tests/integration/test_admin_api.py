"""The admin API over real HTTP: auth, tenants, keys, quotas, purges, stats, prices, audit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.asgi import create_app
from app.cache.purge import PurgeFilter, purge_batch
from app.cache.verifier import RULES
from app.db.engine import transaction
from app.ledger.repository import LedgerRepository, LedgerRow
from app.ledger.rollup import ROLLUP_LOCK, LedgerRollup, Step, roll_up_ledger
from app.settings import Settings
from app.tenants.service import delete_tenant
from app.tenants.stats import tenant_stats
from app.toolkit.fakellm.server import FakeLLMServer
from tests.conftest import ADMIN_HEADERS, ServerThread, eventually

MODEL = "gpt-4o-mini"
NOBODY = uuid.uuid4()

ADMIN_ROUTES = [
    ("GET", "/admin/tenants"),
    ("POST", "/admin/tenants"),
    ("GET", f"/admin/tenants/{NOBODY}"),
    ("PATCH", f"/admin/tenants/{NOBODY}"),
    ("DELETE", f"/admin/tenants/{NOBODY}"),
    ("POST", f"/admin/tenants/{NOBODY}/keys"),
    ("GET", f"/admin/tenants/{NOBODY}/keys"),
    ("DELETE", f"/admin/keys/{NOBODY}"),
    ("GET", f"/admin/tenants/{NOBODY}/quotas"),
    ("PUT", f"/admin/tenants/{NOBODY}/quotas/day"),
    ("DELETE", f"/admin/tenants/{NOBODY}/quotas/day"),
    ("DELETE", f"/admin/tenants/{NOBODY}/cache"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/prices"),
    ("POST", "/admin/prices"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/keys"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def audit_of(http: httpx.AsyncClient, tenant_id: uuid.UUID | str) -> list[dict]:  # type: ignore[type-arg]
    response = await http.get("/admin/audit", params={"tenant_id": str(tenant_id)}, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def store(http: httpx.AsyncClient, headers: dict[str, str], prompt: str, **extra: object) -> str:
    body = {"model": MODEL, "prompt": prompt, "response": f"answer to {prompt}", **extra}
    response = await http.post("/v1/cache/entries", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def hits(http: httpx.AsyncClient, headers: dict[str, str], prompt: str, **extra: object) -> bool:
    body = {"model": MODEL, "prompt": prompt, **extra}
    response = await http.post("/v1/cache/lookup", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return bool(response.json()["hit"])


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_refuse_anyone_but_an_admin(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    method: str,
    path: str,
) -> None:
    t = await make_tenant()
    nobody = await http.request(method, path)
    assert nobody.status_code == 401
    assert nobody.headers["content-type"].startswith("application/problem+json")
    wrong = await http.request(method, path, headers={"Authorization": "Bearer dj_not-a-key"})
    assert wrong.status_code == 401
    tenant = await http.request(method, path, headers=t.headers)
    assert tenant.status_code == 403
    assert tenant.json()["status"] == 403
    # Two keys, the admin's among them: a proxy in front may read the one Déjà would not.
    for keys in (
        [ADMIN_HEADERS["Authorization"], t.headers["Authorization"]],
        [t.headers["Authorization"]] * 2,
    ):
        both = await http.request(method, path, headers=[("Authorization", key) for key in keys])
        assert both.status_code == 401, both.text
        assert "More than one Authorization header" in both.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_every_admin_route_refuses_a_query_parameter_it_does_not_take(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    # `GET /admin/prices?model=x` listed every price, as if filtered.
    response = await http.request(method, f"{path}?model=x&unheard_of=1", headers=ADMIN_HEADERS)
    assert response.status_code == 400, response.text
    assert "unheard_of" in response.json()["unknown_parameters"]


async def test_tenant_lifecycle(http: httpx.AsyncClient) -> None:
    name = unique("acme")
    created = await http.post(
        "/admin/tenants", json={"name": name, "settings": {"min_similarity": 0.9}}, headers=ADMIN_HEADERS
    )
    assert created.status_code == 201, created.text
    body = created.json()
    tenant_id, api_key = body["tenant"]["id"], body["api_key"]["api_key"]
    assert body["tenant"]["status"] == "active"
    assert body["tenant"]["settings"] == {"min_similarity": 0.9}
    assert api_key.startswith(body["api_key"]["prefix"])
    key_headers = {"Authorization": f"Bearer {api_key}"}
    assert (await http.get("/v1/usage", headers=key_headers)).status_code == 200

    duplicate = await http.post("/admin/tenants", json={"name": name}, headers=ADMIN_HEADERS)
    assert duplicate.status_code == 409
    bad_settings = await http.post(
        "/admin/tenants",
        json={"name": unique("bad"), "settings": {"min_similarity": "high"}},
        headers=ADMIN_HEADERS,
    )
    assert bad_settings.status_code == 422
    assert (await http.post("/admin/tenants", json={"name": ""}, headers=ADMIN_HEADERS)).status_code == 400
    assert (await http.post("/admin/tenants", json={}, headers=ADMIN_HEADERS)).status_code == 400

    got = await http.get(f"/admin/tenants/{tenant_id}", headers=ADMIN_HEADERS)
    assert got.status_code == 200
    assert got.json()["name"] == name
    listed = await http.get("/admin/tenants", headers=ADMIN_HEADERS)
    assert tenant_id in {t["id"] for t in listed.json()}
    assert (await http.get(f"/admin/tenants/{NOBODY}", headers=ADMIN_HEADERS)).status_code == 404
    assert (await http.get("/admin/tenants/not-a-uuid", headers=ADMIN_HEADERS)).status_code in (400, 404)

    suspended = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"status": "suspended"}, headers=ADMIN_HEADERS
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert (await http.get("/v1/usage", headers=key_headers)).status_code == 401
    resumed = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"status": "active"}, headers=ADMIN_HEADERS
    )
    assert resumed.json()["status"] == "active"
    assert (await http.get("/v1/usage", headers=key_headers)).status_code == 200

    other = (await http.post("/admin/tenants", json={"name": unique("other")}, headers=ADMIN_HEADERS)).json()
    clash = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"name": other["tenant"]["name"]}, headers=ADMIN_HEADERS
    )
    assert clash.status_code == 409
    for bad in ({"status": "deleted"}, {"settings": {"no_such_setting": 1}}, {"colour": "red"}):
        response = await http.patch(f"/admin/tenants/{tenant_id}", json=bad, headers=ADMIN_HEADERS)
        assert 400 <= response.status_code < 500, (bad, response.text)
    assert (
        await http.patch(f"/admin/tenants/{NOBODY}", json={"status": "active"}, headers=ADMIN_HEADERS)
    ).status_code == 404

    actions = [(a["action"], a["actor"], a["rows_affected"]) for a in await audit_of(http, tenant_id)]
    assert actions == [
        ("tenant.update", "admin-token", 1),
        ("tenant.update", "admin-token", 1),
        ("tenant.create", "admin-token", 2),
    ]


async def test_keys_issue_list_revoke(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    issued = await http.post(f"/admin/tenants/{t.tenant_id}/keys", json={"name": "ci"}, headers=ADMIN_HEADERS)
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert set(key) == {"key_id", "api_key", "prefix", "name", "created_at"}
    new_headers = {"Authorization": f"Bearer {key['api_key']}"}
    assert (await http.get("/v1/usage", headers=new_headers)).status_code == 200

    listed = (await http.get(f"/admin/tenants/{t.tenant_id}/keys", headers=ADMIN_HEADERS)).json()
    assert {k["key_id"] for k in listed} == {str(t.key_id), key["key_id"]}
    assert all("api_key" not in k and "key_hash" not in k for k in listed)
    assert key["prefix"] in {k["prefix"] for k in listed}

    revoked = await http.delete(f"/admin/keys/{key['key_id']}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert (await http.get("/v1/usage", headers=new_headers)).status_code == 401
    assert (await http.get("/v1/usage", headers=t.headers)).status_code == 200  # the other key lives
    assert (await http.delete(f"/admin/keys/{NOBODY}", headers=ADMIN_HEADERS)).status_code == 404
    assert (
        await http.post(f"/admin/tenants/{NOBODY}/keys", json={}, headers=ADMIN_HEADERS)
    ).status_code == 404

    actions = [(a["action"], a["filters"]["key_id"]) for a in await audit_of(http, t.tenant_id)]
    assert actions == [("key.revoke", key["key_id"]), ("key.issue", key["key_id"])]


async def test_quotas(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    base = f"/admin/tenants/{t.tenant_id}/quotas"
    day = await http.put(
        f"{base}/day", json={"max_requests": 1000, "max_cost_usd": "2.50"}, headers=ADMIN_HEADERS
    )
    assert day.status_code == 200, day.text
    assert day.json() == {
        "tenant_id": str(t.tenant_id),
        "period": "day",
        "max_requests": 1000,
        "max_tokens": None,
        "max_cost_usd": "2.5000000000",
    }
    month = await http.put(f"{base}/month", json={"max_tokens": 5_000_000}, headers=ADMIN_HEADERS)
    assert month.status_code == 200
    replaced = await http.put(f"{base}/day", json={"max_requests": 10}, headers=ADMIN_HEADERS)
    assert replaced.json()["max_cost_usd"] is None  # absent means unlimited
    listed = (await http.get(base, headers=ADMIN_HEADERS)).json()
    assert [(q["period"], q["max_requests"], q["max_tokens"]) for q in listed] == [
        ("day", 10, None),
        ("month", None, 5_000_000),
    ]
    for bad in ({"max_requests": -1}, {"max_cost_usd": "-1"}, {"max_cost_usd": "NaN"}, {"max_cost": 1}):
        response = await http.put(f"{base}/day", json=bad, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (bad, response.text)
    assert (await http.put(f"{base}/week", json={}, headers=ADMIN_HEADERS)).status_code in (400, 404)
    assert (
        await http.put(f"/admin/tenants/{NOBODY}/quotas/day", json={}, headers=ADMIN_HEADERS)
    ).status_code == 404
    assert (await http.delete(f"{base}/day", headers=ADMIN_HEADERS)).status_code == 204
    assert (await http.delete(f"{base}/day", headers=ADMIN_HEADERS)).status_code == 404
    assert [q["period"] for q in (await http.get(base, headers=ADMIN_HEADERS)).json()] == ["month"]
    actions = [a["action"] for a in await audit_of(http, t.tenant_id)]
    assert actions == ["quota.delete", "quota.put", "quota.put", "quota.put"]


async def bulk_entries(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    n: int,
    *,
    model: str,
    age_s: int = 0,
) -> None:
    """Many entries at once, straight into the table (the API path is tested elsewhere)."""
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        await session.execute(
            text(
                """
                INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response, created_at)
                SELECT :tenant_id, :model, sha256(('s' || i)::bytea), sha256(('e' || i)::bytea),
                       'bulk prompt ' || i, '{}'::jsonb, now() - make_interval(secs => :age_s)
                FROM generate_series(1, :n) AS i
                """
            ),
            {"tenant_id": tenant_id, "model": model, "n": n, "age_s": age_s},
        )


async def entry_count(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> int:
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        return int(await session.scalar(text("SELECT count(*) FROM cache_entries")) or 0)


async def test_purge_counts_exactly_in_batches_and_spares_other_tenants(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    a, b = await make_tenant("purge-a"), await make_tenant("purge-b")
    kept_prompt, gone_prompt = "What is our refund window?", "How do I rotate my API key?"
    await store(http, a.headers, gone_prompt)
    await store(http, a.headers, kept_prompt, model="gpt-4o")
    await store(http, b.headers, gone_prompt)
    await bulk_entries(sessionmaker, a.tenant_id, 11_000, model=MODEL)  # three batches
    await bulk_entries(sessionmaker, b.tenant_id, 300, model=MODEL)
    assert await hits(http, a.headers, gone_prompt)

    purged = await http.delete(
        f"/admin/tenants/{a.tenant_id}/cache", params={"model": MODEL}, headers=ADMIN_HEADERS
    )
    assert purged.status_code == 200, purged.text
    assert purged.json() == {"deleted": 11_001}
    assert not await hits(http, a.headers, gone_prompt)
    assert await hits(http, a.headers, kept_prompt, model="gpt-4o")
    assert await entry_count(sessionmaker, a.tenant_id) == 1
    assert await entry_count(sessionmaker, b.tenant_id) == 301
    assert await hits(http, b.headers, gone_prompt)

    again = await http.delete(
        f"/admin/tenants/{a.tenant_id}/cache", params={"model": MODEL}, headers=ADMIN_HEADERS
    )
    assert again.json() == {"deleted": 0}
    rest = await http.delete(f"/admin/tenants/{a.tenant_id}/cache", headers=ADMIN_HEADERS)
    assert rest.json() == {"deleted": 1}
    assert not await hits(http, a.headers, kept_prompt, model="gpt-4o")

    audit = await audit_of(http, a.tenant_id)
    assert [(e["action"], e["filters"], e["rows_affected"]) for e in audit] == [
        ("cache.purge", {}, 1),
        ("cache.purge", {"model": MODEL}, 0),
        ("cache.purge", {"model": MODEL}, 11_001),
    ]
    assert await audit_of(http, b.tenant_id) == []


@contextlib.asynccontextmanager
async def slow_deletes(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, per_row_s: float
) -> AsyncIterator[None]:
    """Deleting this tenant's entries takes `per_row_s` a row (a loaded database, for it alone)."""
    name = f"slow_delete_{tenant_id.hex}"
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_sleep({per_row_s}); RETURN OLD; END $$"
            )
        )
        await session.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE DELETE ON cache_entries FOR EACH ROW "
                f"WHEN (OLD.tenant_id = '{tenant_id}') EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text(f"DROP TRIGGER {name} ON cache_entries"))
            await session.execute(text(f"DROP FUNCTION {name}()"))


async def test_a_purge_batch_deletes_at_most_its_size_whatever_the_plan(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each batch is a short transaction only if it removes at most its size: with the plan the
    planner picks for a tenant its statistics think small (a nested loop, which rescans the
    batch's locking subquery for every row), a batch of 10 once removed all 300 entries."""
    t = await make_tenant("purge-plan")
    await bulk_entries(sessionmaker, t.tenant_id, 300, model=MODEL)
    async with transaction(sessionmaker, system=True) as session:
        for setting in ("enable_hashjoin", "enable_mergejoin", "enable_material"):
            await session.execute(text(f"SET LOCAL {setting} = off"))
        assert await purge_batch(session, t.tenant_id, PurgeFilter(), 10) == 10
    assert await entry_count(sessionmaker, t.tenant_id) == 290


async def test_a_purge_slower_than_the_statement_timeout_goes_on_in_smaller_batches(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """A batch that runs past the statement timeout is rolled back whole and tried again at half
    the size: the purge completes, and its count and audit entry are exact. When even the
    smallest batch cannot finish, the purge answers 503 (the database too slow, not unreachable)
    with nothing removed or counted."""
    t = await make_tenant("purge-slow")
    await bulk_entries(sessionmaker, t.tenant_id, 600, model=MODEL)
    tight = settings.database.model_copy(update={"statement_timeout_ms": 300})
    url = f"/admin/tenants/{t.tenant_id}/cache"
    with ServerThread(create_app(settings.model_copy(update={"database": tight}))) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            async with slow_deletes(sessionmaker, t.tenant_id, 0.001):  # 5,000 rows: 5 s; 300 ms allowed
                purged = await http.delete(url, headers=ADMIN_HEADERS)
            assert (purged.status_code, purged.json()) == (200, {"deleted": 600})
            assert await entry_count(sessionmaker, t.tenant_id) == 0

            await bulk_entries(sessionmaker, t.tenant_id, 100, model=MODEL)
            async with slow_deletes(sessionmaker, t.tenant_id, 0.02):  # even 50 rows take 1 s
                failed = await http.delete(url, headers=ADMIN_HEADERS)
            assert failed.status_code == 503
            assert failed.json()["detail"] == "The database did not answer in time; try again shortly."
            assert int(failed.headers["retry-after"]) > 0
            assert await entry_count(sessionmaker, t.tenant_id) == 100
            audit = await audit_of(http, t.tenant_id)
    assert [(e["action"], e["rows_affected"]) for e in audit] == [("cache.purge", 600)]


async def test_purge_by_namespace_and_age(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t = await make_tenant("purge-age")
    await bulk_entries(sessionmaker, t.tenant_id, 40, model=MODEL, age_s=7200)
    await bulk_entries(sessionmaker, t.tenant_id, 25, model=MODEL, age_s=0)
    await store(http, t.headers, "Which plan includes SSO?", namespace="billing")
    url = f"/admin/tenants/{t.tenant_id}/cache"

    by_namespace = await http.delete(url, params={"namespace": "billing"}, headers=ADMIN_HEADERS)
    assert by_namespace.json() == {"deleted": 1}
    old = await http.delete(url, params={"older_than": 3600}, headers=ADMIN_HEADERS)
    assert old.json() == {"deleted": 40}
    before = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert (await http.delete(url, params={"created_before": before}, headers=ADMIN_HEADERS)).json() == {
        "deleted": 0
    }
    assert await entry_count(sessionmaker, t.tenant_id) == 25

    # Ages are whole seconds in digits: a decoder would take 1e3 or 10.0 (purging by an age
    # nobody typed), and "٣" as 3.
    for bad in (
        {"older_than": -1},
        {"older_than": "soon"},
        {"older_than": "1e3"},
        {"older_than": "10.0"},
        {"older_than": "٣"},
        {"created_before": "yesterday"},
    ):
        response = await http.delete(url, params=bad, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (bad, response.text)
    assert await entry_count(sessionmaker, t.tenant_id) == 25
    for bad_limit in ("1e2", "5.0", "١٠"):
        listed = await http.get("/admin/audit", params={"limit": bad_limit}, headers=ADMIN_HEADERS)
        assert listed.status_code == 400, (bad_limit, listed.text)
    assert (await http.delete(f"/admin/tenants/{NOBODY}/cache", headers=ADMIN_HEADERS)).status_code == 404


async def request(http: httpx.AsyncClient, headers: dict[str, str], prompt: str, **extra: object) -> dict:  # type: ignore[type-arg]
    response = await http.post(
        "/v1/requests", headers=headers, json={"input": prompt, "model": MODEL, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def empty_rollup(session: AsyncSession) -> None:
    """The ledger's hourly rollup emptied and its watermark reset: rebuilt by the next read."""
    await session.execute(text("DELETE FROM ledger_hourly"))
    await session.execute(text("UPDATE ledger_rollup_mark SET rolled_up_until = DEFAULT"))


async def rolled_up(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> int:
    """A tenant's requests in the hourly rollup."""
    async with transaction(sessionmaker, system=True) as session:
        found = await session.execute(
            text("SELECT coalesce(sum(requests), 0) FROM ledger_hourly WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
        return int(found.scalar_one())


async def old_ledger_rows(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    count: int,
    ago: str,
    *,
    hit_every: int = 0,
    answered: str | None = None,
) -> None:
    """`count` ledger rows booked `ago` (an SQL interval over the row number `i`) and answered then
    or at `answered` (an SQL time over `i`); every `hit_every`-th a hit (0: all misses), the others
    misses at $0.000078."""
    hit = f"i % {int(hit_every)} = 0" if hit_every else "false"
    created = answered or f"now() - {ago}"
    await session.execute(
        text(
            f"""
            INSERT INTO ledger (tenant_id, request_id, created_at, booked_at, requested_model, used_model,
                                namespace, cache_status, prompt_tokens, completion_tokens, cost_usd,
                                avoided_cost_usd, latency_ms, http_status, priority)
            SELECT :t, 'old-' || gen_random_uuid() || '-' || i, {created}, now() - {ago},
                   'gpt-4o-mini', 'gpt-4o-mini', '', CASE WHEN {hit} THEN 'hit' ELSE 'miss' END,
                   40, 120, CASE WHEN {hit} THEN 0 ELSE 0.000078 END, CASE WHEN {hit} THEN 0.000078 ELSE 0 END,
                   12, 200, 1
            FROM generate_series(1, :n) AS i
            """  # noqa: S608 (the test's own constants)
        ),
        {"t": tenant_id, "n": count},
    )


async def test_a_backlog_is_rolled_up_a_step_at_a_time(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A ledger never rolled up (a deployment's first read) goes in steps of a bounded number of
    rows, each its own statement and transaction, until every closed hour is in; rows booked in
    one instant stay together (the watermark is a time), and every row is counted once."""
    t = await make_tenant("rollup-steps")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        # 20 rows at 4 instants, 1,000 days ago (older than anything else in the ledger).
        await old_ledger_rows(session, t.tenant_id, 20, "make_interval(days => 1000, hours => 12 * (i % 4))")
    async with transaction(sessionmaker, system=True) as session:
        # Steps of 3 rows: the oldest instant (older than anything else in the ledger) holds 5
        # rows, all taken in the first step.
        assert await LedgerRollup(session).roll_up(step_rows=3) is Step.MORE
        first_step = await session.execute(
            text("SELECT sum(requests) FROM ledger_hourly WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert first_step.scalar_one() == 5
    await roll_up_ledger(sessionmaker)
    async with transaction(sessionmaker, system=True) as session:
        rolled = await session.execute(
            text("SELECT sum(requests) FROM ledger_hourly WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert rolled.scalar_one() == 20
        mark = await session.execute(
            text(
                "SELECT rolled_up_until = date_trunc('hour', now() - interval '5 minutes', 'UTC') "
                "FROM ledger_rollup_mark"
            )
        )
        assert mark.scalar_one() is True
        assert await LedgerRollup(session).roll_up() is Step.DONE


async def test_a_reader_neither_works_through_a_backlog_nor_waits_for_another_roll_up(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A roll-up starts no step once its time budget is spent, and one that does not wait leaves
    the work to whoever holds the roll-up lock (GET /admin/stats and the overview page pass both);
    the figures read then are still the ledger's, its rows past the rollup read one by one."""
    t = await make_tenant("rollup-budget")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        await old_ledger_rows(session, t.tenant_id, 20, "make_interval(days => 1000, hours => 12 * (i % 4))")

    assert await roll_up_ledger(sessionmaker, budget_s=0) is False
    assert await rolled_up(sessionmaker, t.tenant_id) == 0
    async with transaction(sessionmaker, system=True) as session:
        [mine] = await tenant_stats(session, tenant_id=t.tenant_id)
        assert (mine.requests, mine.misses) == (20, 20)

    # Another caller mid-step: it holds the lock (for as long as a 60 s step may take).
    async with transaction(sessionmaker, system=True) as holder:
        await holder.execute(select(func.pg_advisory_xact_lock(ROLLUP_LOCK)))
        assert await asyncio.wait_for(roll_up_ledger(sessionmaker, budget_s=30, wait=False), 10) is False
        stats = await asyncio.wait_for(
            http.get("/admin/stats", params={"since": "1970-01-01T00:00:00Z"}, headers=ADMIN_HEADERS), 10
        )
        assert stats.status_code == 200, stats.text
        mine_now = next(s for s in stats.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
        assert (mine_now["requests"], mine_now["misses"]) == (20, 20)
    assert await rolled_up(sessionmaker, t.tenant_id) == 0
    await roll_up_ledger(sessionmaker)
    assert await rolled_up(sessionmaker, t.tenant_id) == 20


async def test_the_rollup_is_kept_up_in_the_background(
    settings: Settings,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each worker rolls the closed hours up every `ledger_rollup_interval_s`, whether anyone reads
    the figures or not."""
    t = await make_tenant("rollup-background")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        await old_ledger_rows(session, t.tenant_id, 12, "interval '3 hours'")

    async def all_rolled_up() -> bool:
        return await rolled_up(sessionmaker, t.tenant_id) == 12

    assert not await all_rolled_up()
    with ServerThread(create_app(settings.model_copy(update={"ledger_rollup_interval_s": 1}))):
        assert await eventually(all_rolled_up, within_s=30)


async def test_stats_from_the_ledger(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("stats")
    first = await request(http, t.headers, "Name three primary colours.")
    second = await request(http, t.headers, "Name three primary colours.")
    assert (first["cache"]["status"], second["cache"]["status"]) == ("MISS", "HIT")
    await store(http, t.headers, "An extra entry")

    response = await http.get("/admin/stats", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    mine = next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
    assert mine["requests"] == 2
    assert (mine["hits"], mine["misses"], mine["bypasses"], mine["errors"]) == (1, 1, 0, 0)
    assert mine["hit_rate"] == 0.5
    assert float(mine["cost_usd"]) == pytest.approx(float(first["cost_usd"]))
    assert float(mine["cost_usd"]) > 0
    assert mine["avoided_cost_usd"] == mine["cost_usd"]  # the hit saved what the miss paid
    assert mine["cache_entries"] == 2

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = await http.get("/admin/stats", params={"since": future}, headers=ADMIN_HEADERS)
    mine = next(s for s in later.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
    assert (mine["requests"], mine["hit_rate"], mine["cost_usd"]) == (0, None, "0")
    backwards = await http.get(
        "/admin/stats", params={"since": future, "until": "2020-01-01T00:00:00Z"}, headers=ADMIN_HEADERS
    )
    assert backwards.status_code == 400
    for edge in ("9999-12-31T23:30:00Z", "0001-01-01T00:30:00", "2026-03-01T10:00:00+05:30"):
        assert (
            await http.get("/admin/stats", params={"since": edge}, headers=ADMIN_HEADERS)
        ).status_code == 200
    # A bare number would be read as seconds since 1970: nobody means `since=1` so.
    for path, params in [
        ("/admin/stats", {"since": "1"}),
        ("/admin/stats", {"until": "1700000000"}),
        ("/admin/stats", {"since": "yesterday"}),
        (f"/admin/tenants/{t.tenant_id}/cache", {"created_before": "5"}),
    ]:
        method = "DELETE" if path.endswith("/cache") else "GET"
        refused = await http.request(method, path, params=params, headers=ADMIN_HEADERS)
        assert refused.status_code == 400, (params, refused.text)
        assert "ISO 8601" in refused.json()["detail"]
    assert (await hits(http, t.headers, "An extra entry")) is True  # the purge refused purged nothing


async def test_what_a_hit_saves_is_the_stored_usage_within_what_one_request_can_count(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """A client stores an answer with the usage its own call reported: a hit on it saves that,
    priced. A count no request to the model could reach would book savings that never were;
    6,400 hits on one such entry once overflowed the hourly rollup every tenant's figures use."""
    t = await make_tenant("claimed")
    model = f"gpt-4o-mini-{uuid.uuid4().hex[:8]}"  # gpt-4o-mini's output limit: 16,384 tokens
    priced = await http.post(
        "/admin/prices",
        headers=ADMIN_HEADERS,
        json={"model": model, "input_per_mtok": "2", "output_per_mtok": "8"},
    )
    assert priced.status_code == 201, priced.text

    def entry(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        answer = {"model": model, "choices": [{"message": {"content": "Within 30 days."}}], "usage": usage}
        return {"model": model, "prompt": "What is our refund window?", "response": answer}

    for counts in [(2**31 - 1, 10), (10, 2**31 - 1), (200_001, 10), (10, 16_385)]:
        refused = await http.post("/v1/cache/entries", headers=t.headers, json=entry(*counts))
        assert refused.status_code == 422, (counts, refused.text)
        assert "usage" in refused.json()["detail"]
    # One answer (the requests it serves ask for one), as long as the model allows.
    longest = entry(10, 16_384)
    longest["prompt"] = "What is our refund window, at length?"
    assert (await http.post("/v1/cache/entries", headers=t.headers, json=longest)).status_code == 201
    stored = await http.post("/v1/cache/entries", headers=t.headers, json=entry(1_000, 500))
    assert stored.status_code == 201, stored.text
    hit = await http.post(
        "/v1/requests", headers=t.headers, json={"input": "What is our refund window?", "model": model}
    )
    assert hit.json()["cache"]["status"] == "HIT"

    response = await http.get("/admin/stats", headers=ADMIN_HEADERS)
    mine = next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
    assert Decimal(mine["avoided_cost_usd"]) == Decimal("0.006")  # 1,000 x $2/M + 500 x $8/M


# A tenant's figures read from its ledger rows themselves, in a window (either end open).
WINDOW_FIGURES = text(
    """
    SELECT count(*), count(*) FILTER (WHERE cache_status = 'hit'), count(*) FILTER (WHERE cache_status = 'miss'),
           coalesce(sum(cost_usd), 0)
      FROM ledger
     WHERE tenant_id = :t
       AND (CAST(:since AS timestamptz) IS NULL OR created_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR created_at < CAST(:until AS timestamptz))
    """
)


async def test_all_time_stats_come_from_the_hourly_rollup_and_agree_with_the_ledger(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Without a window, GET /admin/stats reads the ledger's hourly rollup (rolling the closed
    hours up first) instead of every ledger row, which outlasts the statement timeout on a large
    ledger; its figures are the ledger's, as a window holding every row shows."""
    t = await make_tenant("stats-rollup")
    async with transaction(sessionmaker, system=True) as session:
        # The rollup emptied (it can be rebuilt at any time), so that rows booked hours ago are
        # rolled up by the next read, as on a deployment's first one.
        await empty_rollup(session)
        await old_ledger_rows(session, t.tenant_id, 40, "interval '3 hours'", hit_every=4)
    await request(http, t.headers, "What changed in the last release?")  # booked now: read live

    def mine(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        return next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))

    all_time = mine(await http.get("/admin/stats", headers=ADMIN_HEADERS))
    async with transaction(sessionmaker, system=True) as session:
        rolled = await session.execute(
            text("SELECT sum(requests) FROM ledger_hourly WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert rolled.scalar_one() == 40
    assert (all_time["requests"], all_time["hits"], all_time["misses"]) == (41, 10, 31)
    assert all_time["hit_rate"] == pytest.approx(10 / 41)
    async with transaction(sessionmaker, system=True) as session:
        ledger = (
            await session.execute(WINDOW_FIGURES, {"t": t.tenant_id, "since": None, "until": None})
        ).one()
    assert (
        all_time["requests"],
        all_time["hits"],
        all_time["misses"],
        Decimal(all_time["cost_usd"]),
    ) == tuple(ledger)


async def test_an_hour_whose_rows_sum_past_a_rows_column_is_rolled_up_exactly(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each row fits the ledger's NUMERIC(20,10), their sum in one hour did not fit the rollup's:
    the one roll-up for every tenant failed on that hour, and `GET /admin/stats` with it."""
    t = await make_tenant("rollup-sums")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        await old_ledger_rows(session, t.tenant_id, 3, "interval '3 hours'", hit_every=1)
        await session.execute(
            text("UPDATE ledger SET avoided_cost_usd = 9000000000.5 WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
    response = await http.get("/admin/stats", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    mine = next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
    assert Decimal(mine["avoided_cost_usd"]) == Decimal("27000000001.5")
    async with transaction(sessionmaker, system=True) as session:
        rolled = await session.execute(
            text("SELECT sum(avoided_cost_usd) FROM ledger_hourly WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert rolled.scalar_one() == Decimal("27000000001.5")


async def test_stats_stand_when_a_roll_up_step_fails(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """One roll-up serves every tenant's figures: a step that fails (here a check the rollup's
    rows cannot meet) is left for the next, and the figures come from the ledger's own rows."""
    t = await make_tenant("rollup-fails")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        await old_ledger_rows(session, t.tenant_id, 6, "interval '3 hours'", hit_every=3)
        await session.execute(
            text("ALTER TABLE ledger_hourly ADD CONSTRAINT test_no_rows CHECK (requests < 0) NOT VALID")
        )
    try:
        response = await http.get("/admin/stats", headers=ADMIN_HEADERS)
        assert response.status_code == 200, response.text
        mine = next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
        async with transaction(sessionmaker, system=True) as session:
            ledger = (
                await session.execute(WINDOW_FIGURES, {"t": t.tenant_id, "since": None, "until": None})
            ).one()
        assert await rolled_up(sessionmaker, t.tenant_id) == 0
        assert (mine["requests"], mine["hits"], mine["misses"], Decimal(mine["cost_usd"])) == tuple(ledger)
        assert (mine["requests"], mine["hits"]) == (6, 2)
    finally:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("ALTER TABLE ledger_hourly DROP CONSTRAINT test_no_rows"))


async def test_a_window_reads_its_whole_hours_from_the_rollup_and_its_partial_hours_from_the_ledger(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """GET /admin/stats with a window gives the ledger's figures for it, whether its ends fall on
    an hour or not and whether its rows are rolled up or not; the hours wholly inside it come from
    the hourly rollup (a window over a large ledger read every row in it and outlasted the
    statement timeout), the partial hours at its ends from the ledger's rows."""
    t = await make_tenant("stats-window")
    async with transaction(sessionmaker, system=True) as session:
        await empty_rollup(session)
        # 60 requests answered on 2001-02-03 from 04:04 to 08:00, one every 4 minutes, every third
        # a hit, booked three hours ago: rolled up by the next read.
        answered = "timestamptz '2001-02-03 04:00Z' + make_interval(mins => {} * i)"
        await old_ledger_rows(
            session, t.tenant_id, 60, "interval '3 hours'", hit_every=3, answered=answered.format(4)
        )
        # Five more answered in the same stretch (04:37 to 07:05) but booked now, as a spooled row
        # replayed after an outage: past the rollup's watermark, read from the ledger.
        await old_ledger_rows(session, t.tenant_id, 5, "interval '0 hours'", answered=answered.format(37))
    windows = [
        (None, None),
        ("2001-02-03T04:00:00Z", "2001-02-03T08:00:00Z"),  # whole hours only
        ("2001-02-03T04:10:00Z", "2001-02-03T06:30:00Z"),  # a partial hour at each end
        ("2001-02-03T06:20:00+02:00", None),  # 04:20 UTC on
        (None, "2001-02-03T05:30:00Z"),
        ("2001-02-03T05:10:00Z", "2001-02-03T05:50:00Z"),  # inside one hour
        ("2001-02-03T05:30:00Z", "2001-02-03T06:30:00Z"),  # two partial hours, no whole one
    ]

    async def figures(since: str | None, until: str | None) -> tuple[int, int, int, Decimal]:
        params = {name: at for name, at in (("since", since), ("until", until)) if at is not None}
        response = await http.get("/admin/stats", params=params, headers=ADMIN_HEADERS)
        assert response.status_code == 200, response.text
        mine = next(s for s in response.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
        return mine["requests"], mine["hits"], mine["misses"], Decimal(mine["cost_usd"])

    async with transaction(sessionmaker, system=True) as session:
        for since, until in windows:
            got = await figures(since, until)
            bounds = {
                "t": t.tenant_id,
                "since": since and datetime.fromisoformat(since),
                "until": until and datetime.fromisoformat(until),
            }
            expected = tuple((await session.execute(WINDOW_FIGURES, bounds)).one())
            assert got == expected, (since, until)
        assert (await figures(None, None))[0] == 65
        rolled = await session.execute(
            text("SELECT sum(requests) FROM ledger_hourly WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert rolled.scalar_one() == 60

    # Where each window's figures come from: 05:00 to 06:00 marked in the rollup alone.
    async def mark_the_rollup(requests: int) -> None:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(
                text(
                    "UPDATE ledger_hourly SET requests = requests + :n "
                    "WHERE tenant_id = :t AND hour = timestamptz '2001-02-03 05:00Z'"
                ),
                {"t": t.tenant_id, "n": requests},
            )

    await mark_the_rollup(1000)
    try:
        assert (await figures("2001-02-03T04:10:00Z", "2001-02-03T06:30:00Z"))[0] > 1000  # a whole hour
        for since, until in windows[-2:]:  # that hour partly inside the window: read from the ledger
            assert (await figures(since, until))[0] < 1000
    finally:
        await mark_the_rollup(-1000)


async def test_prices_keep_their_history(http: httpx.AsyncClient) -> None:
    model = unique("model")
    first = await http.post(
        "/admin/prices",
        json={
            "model": model,
            "input_per_mtok": "0.15",
            "output_per_mtok": 0.6,
            "effective_from": "2026-01-01T00:00:00Z",
        },
        headers=ADMIN_HEADERS,
    )
    assert first.status_code == 201, first.text
    assert first.json()["output_per_mtok"] == "0.600000"
    second = await http.post(
        "/admin/prices",
        json={
            "model": model,
            "input_per_mtok": "0.10",
            "output_per_mtok": "0.40",
            "cached_input_per_mtok": "0.025",
        },
        headers=ADMIN_HEADERS,
    )
    assert second.status_code == 201
    rows = [p for p in (await http.get("/admin/prices", headers=ADMIN_HEADERS)).json() if p["model"] == model]
    assert [p["input_per_mtok"] for p in rows] == ["0.100000", "0.150000"]  # newest first
    duplicate = await http.post(
        "/admin/prices",
        json={
            "model": model,
            "input_per_mtok": "1",
            "output_per_mtok": "1",
            "effective_from": "2026-01-01T00:00:00Z",
        },
        headers=ADMIN_HEADERS,
    )
    assert duplicate.status_code == 409
    for bad in (
        {"model": model, "input_per_mtok": "-1", "output_per_mtok": "1"},
        {"model": model, "input_per_mtok": "1"},
        {"model": "", "input_per_mtok": "1", "output_per_mtok": "1"},
        {
            "model": model,
            "input_per_mtok": "1",
            "output_per_mtok": "1",
            "effective_from": "2026-01-01T00:00:00",
        },
        # A bare number was read as seconds since 1970: a price in force since then.
        *(
            {"model": model, "input_per_mtok": "1", "output_per_mtok": "1", "effective_from": n}
            for n in (5, "5", 1.7e9)
        ),
    ):
        response = await http.post("/admin/prices", json=bad, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (bad, response.text)
    log = (await http.get("/admin/audit", params={"limit": 50}, headers=ADMIN_HEADERS)).json()
    assert sum(1 for e in log if e["action"] == "price.add" and e["filters"]["model"] == model) == 2


async def ledger_rows(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> list[dict]:  # type: ignore[type-arg]
    async with transaction(sessionmaker, system=True) as session:
        result = await session.execute(
            text(
                "SELECT metadata, namespace, client_request_id, api_key_id, entry_id, cost_usd FROM ledger "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return [dict(row._mapping) for row in result]


async def test_delete_tenant_keeps_an_anonymised_ledger(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t, other = await make_tenant("doomed"), await make_tenant("bystander")
    await request(http, t.headers, "Summarise the onboarding guide.", metadata={"user": "alice@example.com"})
    await request(http, t.headers, "Summarise the onboarding guide.")
    await request(http, other.headers, "Summarise the onboarding guide.")
    await http.put(
        f"/admin/tenants/{t.tenant_id}/quotas/day", json={"max_requests": 5}, headers=ADMIN_HEADERS
    )
    await bulk_entries(sessionmaker, t.tenant_id, 20, model=MODEL)
    before = await ledger_rows(sessionmaker, t.tenant_id)
    assert any(row["metadata"] for row in before)

    deleted = await http.delete(f"/admin/tenants/{t.tenant_id}", headers=ADMIN_HEADERS)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "tenant_id": str(t.tenant_id),
        "cache_entries": 21,
        "api_keys": 1,
        "quotas": 1,
        "usage_counters": deleted.json()["usage_counters"],  # whatever quota enforcement counted
        "ledger_rows_anonymised": 2,
        "ledger_rows_deleted": 0,
    }
    assert (await http.get("/v1/usage", headers=t.headers)).status_code == 401
    assert (await http.get(f"/admin/tenants/{t.tenant_id}", headers=ADMIN_HEADERS)).status_code == 404
    assert str(t.tenant_id) not in {
        x["id"] for x in (await http.get("/admin/tenants", headers=ADMIN_HEADERS)).json()
    }
    assert await entry_count(sessionmaker, t.tenant_id) == 0
    after = await ledger_rows(sessionmaker, t.tenant_id)
    assert len(after) == 2
    assert all(r["metadata"] == {} and r["api_key_id"] is None and r["entry_id"] is None for r in after)
    assert sorted(r["cost_usd"] for r in after) == sorted(r["cost_usd"] for r in before)
    # The name is free again, and the deleted tenant still counts in stats for its window.
    assert (
        await http.post("/admin/tenants", json={"name": t.name}, headers=ADMIN_HEADERS)
    ).status_code == 201
    stats = (await http.get("/admin/stats", headers=ADMIN_HEADERS)).json()["tenants"]
    ghost = next(s for s in stats if s["tenant_id"] == str(t.tenant_id))
    assert (ghost["status"], ghost["requests"], ghost["cache_entries"]) == ("deleted", 2, 0)
    assert (await http.get("/v1/usage", headers=other.headers)).status_code == 200
    assert len(await ledger_rows(sessionmaker, other.tenant_id)) == 1

    # Deleting again finishes the job: here, the ledger goes too, and so does the row.
    gone = await http.delete(
        f"/admin/tenants/{t.tenant_id}", params={"include_ledger": "true"}, headers=ADMIN_HEADERS
    )
    assert gone.status_code == 200
    assert gone.json()["ledger_rows_deleted"] == 2
    assert await ledger_rows(sessionmaker, t.tenant_id) == []
    assert (await http.delete(f"/admin/tenants/{t.tenant_id}", headers=ADMIN_HEADERS)).status_code == 404
    audit = [
        (e["action"], e["filters"]["include_ledger"], e["rows_affected"])
        for e in await audit_of(http, t.tenant_id)
        if e["action"] == "tenant.delete"
    ]
    assert audit[0] == ("tenant.delete", True, 2)
    assert audit[1][:2] == ("tenant.delete", False)
    assert audit[1][2] == 21 + 1 + 1 + deleted.json()["usage_counters"] + 2


async def test_a_large_ledger_goes_in_batches_each_row_once(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A tenant's ledger is anonymised, or deleted, a batch at a time (one statement over a large
    tenant's rows would outlast the statement timeout): every row once, rows booked at the same
    instant across a batch boundary included, rows already anonymous not counted, no other
    tenant's row touched; the audit entry counts each batch."""
    t, other = await make_tenant("ledger-batches"), await make_tenant("ledger-bystander")
    async with transaction(sessionmaker, system=True) as session:
        for tenant_id, rows in ((t.tenant_id, 30), (other.tenant_id, 5)):
            await session.execute(
                text(
                    """
                    INSERT INTO ledger (tenant_id, request_id, client_request_id, created_at, booked_at,
                                        requested_model, used_model, namespace, cache_status, prompt_tokens,
                                        completion_tokens, cost_usd, avoided_cost_usd, latency_ms,
                                        http_status, priority, metadata)
                    SELECT :t, 'batch-' || i, 'client-' || i, timestamptz '2026-11-01' + make_interval(secs => greatest(i - 20, 0)),
                           now(), 'gpt-4o-mini', 'gpt-4o-mini', 'docs', 'miss', 40, 120, 0.000078, 0, 12,
                           200, 1, '{"user": "alice@example.com"}'::jsonb
                    FROM generate_series(1, :n) AS i
                    """
                ),
                {"t": tenant_id, "n": rows},  # 20 of the tenant's rows at the same instant
            )
        await session.execute(
            text(
                "INSERT INTO ledger (tenant_id, request_id, requested_model, cache_status, prompt_tokens, "
                "completion_tokens, cost_usd, avoided_cost_usd, latency_ms, http_status, priority) "
                "SELECT :t, 'anonymous-' || i, 'gpt-4o-mini', 'hit', 0, 0, 0, 0.000078, 3, 200, 1 "
                "FROM generate_series(1, 3) AS i"
            ),
            {"t": t.tenant_id},
        )

    kept = await delete_tenant(sessionmaker, "test", t.tenant_id, include_ledger=False, ledger_batch=7)
    assert kept.ledger_rows_anonymised == 30
    rows = await ledger_rows(sessionmaker, t.tenant_id)
    assert len(rows) == 33
    assert all(r["metadata"] == {} and r["namespace"] == "" and r["client_request_id"] is None for r in rows)
    assert all(
        r["metadata"] == {"user": "alice@example.com"}
        for r in await ledger_rows(sessionmaker, other.tenant_id)
    )

    gone = await delete_tenant(sessionmaker, "test", t.tenant_id, include_ledger=True, ledger_batch=7)
    assert (gone.ledger_rows_deleted, gone.ledger_rows_anonymised) == (33, 0)
    assert await ledger_rows(sessionmaker, t.tenant_id) == []
    assert len(await ledger_rows(sessionmaker, other.tenant_id)) == 5
    async with transaction(sessionmaker, system=True) as session:
        audited = await session.execute(
            text(
                "SELECT filters->>'include_ledger', rows_affected FROM audit_log WHERE tenant_id = :t ORDER BY id"
            ),
            {"t": t.tenant_id},
        )
        assert [(flag, rows) for flag, rows in audited] == [("false", 1 + 30), ("true", 33)]


async def test_delete_with_ledger_removes_everything(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t = await make_tenant("erase")
    await request(http, t.headers, "What does the error E42 mean?")
    gone = await http.delete(
        f"/admin/tenants/{t.tenant_id}", params={"include_ledger": "true"}, headers=ADMIN_HEADERS
    )
    assert gone.status_code == 200, gone.text
    assert (gone.json()["ledger_rows_deleted"], gone.json()["ledger_rows_anonymised"]) == (1, 0)
    assert await ledger_rows(sessionmaker, t.tenant_id) == []
    async with transaction(sessionmaker, system=True) as session:
        assert (
            await session.scalar(text("SELECT count(*) FROM tenants WHERE id = :t"), {"t": t.tenant_id}) == 0
        )


async def usage_counter_rows(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> int:
    async with transaction(sessionmaker, system=True) as session:
        found = await session.scalar(
            text("SELECT count(*) FROM usage_counters WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return int(found or 0)


async def in_the_models_hands(model_server: FakeLLMServer, model: str, calls_before: int) -> None:
    """Wait until `model_server` has received one more call of `model` than `calls_before`."""

    async def arrived() -> bool:
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{model_server.root_url}/_fake/stats")).json()
        return int(stats["chat"].get(model, 0)) > calls_before

    assert await eventually(arrived), f"{model} never received the call"


async def slow_calls(model_server: FakeLLMServer) -> int:
    async with httpx.AsyncClient() as client:
        return int(
            (await client.get(f"{model_server.root_url}/_fake/stats")).json()["chat"].get("gpt-slow", 0)
        )


@pytest.mark.parametrize("include_ledger", [False, True])
async def test_a_request_in_flight_when_its_tenant_is_deleted_leaves_nothing_behind(
    http: httpx.AsyncClient,
    deja: ServerThread,
    slow_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    include_ledger: bool,
) -> None:
    """A request let in before its tenant was deleted still gets its answer, but what it writes
    after the deletion is over neither stores the prompt and answer nor books client details."""
    t = await make_tenant("in-flight")
    await http.put(
        f"/admin/tenants/{t.tenant_id}/quotas/day", json={"max_requests": 50}, headers=ADMIN_HEADERS
    )
    before = await slow_calls(slow_llm)
    in_flight = asyncio.create_task(
        http.post(
            "/v1/requests",
            headers={**t.headers, "X-Cache-Namespace": "support"},
            json={"input": "Draft a reply to ticket 8812.", "model": "gpt-slow", "metadata": {"user": "bob"}},
        )
    )
    await in_the_models_hands(slow_llm, "gpt-slow", before)  # past authentication, quota reserved
    deleted = await http.delete(
        f"/admin/tenants/{t.tenant_id}",
        params={"include_ledger": str(include_ledger).lower()},
        headers=ADMIN_HEADERS,
    )
    assert deleted.status_code == 200, deleted.text
    assert not in_flight.done()  # what it writes comes after the deletion is over
    answered = await in_flight
    assert answered.status_code == 200, answered.text  # the model was paid for: the client gets it
    await deja.settle()

    assert await entry_count(sessionmaker, t.tenant_id) == 0
    assert await usage_counter_rows(sessionmaker, t.tenant_id) == 0
    rows = await ledger_rows(sessionmaker, t.tenant_id)
    if include_ledger:
        assert rows == []
    else:  # booked, so its cost counts, but as anonymous as the rows the deletion anonymised
        assert len(rows) == 1
        row = rows[0]
        assert (row["metadata"], row["namespace"], row["api_key_id"], row["entry_id"]) == ({}, "", None, None)
        async with transaction(sessionmaker, system=True) as session:
            booked = (
                await session.execute(
                    text("SELECT cache_status, prompt_tokens FROM ledger WHERE tenant_id = :t"),
                    {"t": t.tenant_id},
                )
            ).one()
        assert booked.cache_status == "miss"
        assert booked.prompt_tokens > 0


LATE_WRITES = {
    "cache_entries": "INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response) "
    "VALUES (:t, 'gpt-4o-mini', '\\x01', '\\x02', 'a prompt of a deleted tenant', '{}')",
    "cache_aliases": "INSERT INTO cache_aliases (tenant_id, namespace, exact_hash, entry_id, similarity) "
    "VALUES (:t, 'support', '\\x03', gen_random_uuid(), 0.93)",
    "cache_labels": "INSERT INTO cache_labels (tenant_id, entry_id, request_id, source, judge, correct, "
    "similarity, scorer, score) VALUES (:t, gen_random_uuid(), 'late', 'judge', 'judge', true, 0.9, 'ce', 0.8)",
    "usage_counters": "INSERT INTO usage_counters (tenant_id, period, period_start) VALUES (:t, 'day', current_date) "
    "ON CONFLICT DO NOTHING",
}


def late_row(tenant_id: uuid.UUID) -> LedgerRow:
    return LedgerRow(
        tenant_id=tenant_id,
        request_id=uuid.uuid4().hex,
        requested_model=MODEL,
        cache_status="miss",
        http_status=200,
        latency_ms=300.0,
        namespace="support",
        entry_id=uuid.uuid4(),
        prompt_tokens=12,
        cost_usd=Decimal("0.0003"),
        metadata={"user": "carol"},
        client_request_id="client-7",
    )


@pytest.mark.parametrize("include_ledger", [False, True])
async def test_a_deleted_tenant_is_written_nothing_whatever_writes(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    include_ledger: bool,
) -> None:
    """Every statement a late write can run, in the tenant's own context as the writers run them:
    no entry, alias, label or usage row lands (an alias or label naming no entry would otherwise
    break its foreign key), the ledger row is booked anonymised, and after an erase not at all."""
    t = await make_tenant("late-writes")
    await delete_tenant(sessionmaker, "test", t.tenant_id, include_ledger=include_ledger)
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        for table, statement in LATE_WRITES.items():
            written = await session.execute(text(statement), {"t": t.tenant_id})
            assert written.rowcount == 0, table  # type: ignore[attr-defined]
        booked = await LedgerRepository(session).append(late_row(t.tenant_id))
    assert booked is not include_ledger
    rows = await ledger_rows(sessionmaker, t.tenant_id)
    assert rows == (
        []
        if include_ledger
        else [
            {
                "metadata": {},
                "namespace": "",
                "client_request_id": None,
                "api_key_id": None,
                "entry_id": None,
                "cost_usd": Decimal("0.0003"),
            }
        ]
    )
    # Another tenant's context still cannot write for it: row-level security refuses, as before.
    other = await make_tenant("bystander")
    with pytest.raises(Exception, match="row-level security"):
        async with transaction(sessionmaker, tenant_id=other.tenant_id) as session:
            await session.execute(text(LATE_WRITES["cache_entries"]), {"t": t.tenant_id})


async def test_a_deletion_and_a_booking_holding_its_counters_both_finish(
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A miss's booking locks its usage counters, then the tenant's row (with its ledger row). A
    deletion that held the tenant's row while it waited to delete the counters waited for the
    booking while the booking waited for it, and Postgres broke the deadlock by failing one."""
    t = await make_tenant("deadlock")
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        await session.execute(text(LATE_WRITES["usage_counters"]), {"t": t.tenant_id})
    counters_locked, go_on = asyncio.Event(), asyncio.Event()

    async def booking() -> bool:
        async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
            await session.execute(
                text("SELECT 1 FROM usage_counters WHERE tenant_id = :t FOR UPDATE"), {"t": t.tenant_id}
            )
            counters_locked.set()
            await go_on.wait()
            return await LedgerRepository(session).append(late_row(t.tenant_id))

    async def deletion_waits_for_the_counters() -> bool:
        async with transaction(sessionmaker, system=True) as session:
            waiting = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'DELETE FROM usage_counters%'"
                )
            )
            return bool(waiting.scalar_one())

    booked = asyncio.create_task(booking())
    await counters_locked.wait()
    deleted = asyncio.create_task(delete_tenant(sessionmaker, "test", t.tenant_id, include_ledger=False))
    assert await eventually(deletion_waits_for_the_counters)
    go_on.set()
    assert await booked  # no deadlock error on either side
    assert (await deleted).usage_counters == 1
    assert [row["metadata"] for row in await ledger_rows(sessionmaker, t.tenant_id)] == [{}]
    assert await usage_counter_rows(sessionmaker, t.tenant_id) == 0


async def test_unknown_repeated_or_unholdable_query_parameters_are_refused(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("bogus-query")
    await store(http, tenant.headers, "keep me, whatever the query says")
    for method, path in [
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}/cache?bogus=1"),
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}/cache?modle={MODEL}"),
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}?include_ledgr=true"),
        ("DELETE", f"/admin/keys/{tenant.key_id}?force=1"),
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}/quotas/day?x=1"),
        ("GET", "/admin/stats?foo=1"),
        ("GET", "/admin/audit?limt=5"),
    ]:
        response = await http.request(method, path, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Unknown query parameter" in response.json()["detail"]
    # A parameter given twice is not left to a guess of which one counts.
    for method, path in [
        ("GET", "/admin/audit?limit=1&limit=2"),
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}/cache?model={MODEL}&model=other"),
    ]:
        response = await http.request(method, path, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (path, response.text)
        assert "given more than once" in response.json()["detail"]
    # Text Postgres cannot hold is refused, not a failed query (a 500).
    for query in ["model=%00", "namespace=x%00", f"model={MODEL}%00b"]:
        response = await http.delete(
            f"/admin/tenants/{tenant.tenant_id}/cache?{query}", headers=ADMIN_HEADERS
        )
        assert response.status_code == 400, (query, response.text)
        assert "NUL" in response.json()["detail"]
    assert await hits(http, tenant.headers, "keep me, whatever the query says")  # nothing was purged
    assert await audit_of(http, tenant.tenant_id) == []


@pytest.mark.parametrize(
    "cache_settings",
    [
        {"default_ttl_s": 10**12},
        {"default_ttl_s": 1e12},
        {"default_ttl_s": 0},
        {"stale_if_error_s": 10**12},
        {"min_similarity": 1.5},
        {"cross_encoder_strict_below": -0.1},
        {"cross_encoder_strict_min_score": 2},
        {"cross_encoder_far_below": "0.6"},
        {"cross_encoder_far_min_score": 1.2},
        {"cross_encoder_reworded_above": 1.01},
        {"cross_encoder_reworded_margin": -0.3},
        {"max_temperature": -1},
    ],
)
async def test_tenant_settings_are_bounded_like_requests(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    cache_settings: dict[str, object],
) -> None:
    created = await http.post(
        "/admin/tenants", json={"name": unique("bounded"), "settings": cache_settings}, headers=ADMIN_HEADERS
    )
    assert created.status_code == 422, created.text
    tenant = await make_tenant("bounded")
    patched = await http.patch(
        f"/admin/tenants/{tenant.tenant_id}", json={"settings": cache_settings}, headers=ADMIN_HEADERS
    )
    assert patched.status_code == 422, patched.text
    assert patched.headers["content-type"].startswith("application/problem+json")
    # The tenant still serves: nothing was stored.
    assert (
        await http.post("/v1/cache/lookup", headers=tenant.headers, json={"model": MODEL, "prompt": "hi"})
    ).status_code == 200


# Times whose UTC falls outside what Python's datetime holds, or on the instants the driver reads as
# -infinity and infinity.
OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
]


@pytest.mark.parametrize("at", OUT_OF_RANGE_TIMES)
async def test_times_past_the_edges_of_the_range_are_a_4xx_that_says_the_range(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    at: str,
) -> None:
    tenant = await make_tenant("time-edges")
    await store(http, tenant.headers, "kept whatever the cutoff says")
    price = {
        "model": unique("edge-model"),
        "input_per_mtok": "1",
        "output_per_mtok": "1",
        "effective_from": at,
    }
    for method, path, params, body in [
        ("GET", "/admin/stats", {"since": at}, None),
        ("GET", "/admin/stats", {"until": at}, None),
        ("DELETE", f"/admin/tenants/{tenant.tenant_id}/cache", {"created_before": at}, None),
        ("POST", "/admin/prices", None, price),
    ]:
        response = await http.request(method, path, params=params, json=body, headers=ADMIN_HEADERS)
        assert response.status_code == 400, (path, at, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "0001-01-01T00:00:01Z to 9999-12-31T23:59:59Z" in response.text, response.text
    assert await hits(http, tenant.headers, "kept whatever the cutoff says")  # nothing was purged
    assert not [
        p
        for p in (await http.get("/admin/prices", headers=ADMIN_HEADERS)).json()
        if p["model"] == price["model"]
    ]


async def test_times_just_inside_the_range_are_taken_in_utc(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("time-inside")
    await store(http, tenant.headers, "an entry made now")
    for since, until in [("0001-01-01T14:00:01+14:00", None), (None, "9999-12-31T09:59:59-14:00")]:
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        response = await http.get("/admin/stats", params=params, headers=ADMIN_HEADERS)
        assert response.status_code == 200, (params, response.text)
    # The latest time there is: every entry was made before it.
    purged = await http.delete(
        f"/admin/tenants/{tenant.tenant_id}/cache",
        params={"created_before": "9999-12-31T23:59:59Z"},
        headers=ADMIN_HEADERS,
    )
    assert purged.json() == {"deleted": 1}
    model = unique("edge-model")
    added = await http.post(
        "/admin/prices",
        json={
            "model": model,
            "input_per_mtok": "1",
            "output_per_mtok": "1",
            "effective_from": "9999-12-31T23:59:59+14:00",
        },
        headers=ADMIN_HEADERS,
    )
    assert added.status_code == 201, added.text
    assert added.json()["effective_from"] == "9999-12-31T09:59:59Z"


async def test_tenant_and_key_names_show_what_they_hold(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """A name of zero-width spaces looks blank; one with a right-to-left override shows its
    letters in another order (another tenant's name, read in the dashboard or the CLI)."""
    tenant = await make_tenant("shown")

    async def create_and_rename(name: str) -> tuple[httpx.Response, httpx.Response]:
        """A new tenant of that name, and the existing one renamed to it."""
        created = await http.post("/admin/tenants", json={"name": name}, headers=ADMIN_HEADERS)
        renamed = await http.patch(
            f"/admin/tenants/{tenant.tenant_id}", json={"name": name}, headers=ADMIN_HEADERS
        )
        return created, renamed

    for name in (
        "\u200b\u200b",
        "acme\u202eemca",
        "acme\u0007",
        "ac\u00adme",
        "acme\ue000",
        "a\u2028b",
        "\u3164",
    ):
        created, renamed = await create_and_rename(name)
        assert created.status_code == 422, (name, created.text)
        assert "characters that show" in created.json()["detail"]
        assert renamed.status_code == 422, (name, renamed.text)
        key = await http.post(
            f"/admin/tenants/{tenant.tenant_id}/keys", json={"name": name}, headers=ADMIN_HEADERS
        )
        assert key.status_code == 422, (name, key.text)
    for name in ("Ünïcode Öffice", "東京チーム", "team 🚀", "devs 👩\u200d💻", "می\u200cخواهم"):
        created = await http.post("/admin/tenants", json={"name": unique(name)}, headers=ADMIN_HEADERS)
        assert created.status_code == 201, (name, created.text)
    # A letter and its combining accent read as the composed letter: one name, not two.
    composed = unique("b\u00e9ta")
    first = await http.post("/admin/tenants", json={"name": composed}, headers=ADMIN_HEADERS)
    assert first.status_code == 201, first.text
    decomposed = composed.replace("\u00e9", "e\u0301")
    again = await http.post("/admin/tenants", json={"name": decomposed}, headers=ADMIN_HEADERS)
    assert again.status_code == 409, again.text
    # Names that differ only in case are one name too, by Unicode's full folding ("ß" is "ss").
    cased = unique("Straße Büro")
    first = await http.post("/admin/tenants", json={"name": cased}, headers=ADMIN_HEADERS)
    assert first.status_code == 201, first.text
    for variant in (cased.upper(), cased.lower(), cased.upper().replace("SS", "ß")):
        again, renamed = await create_and_rename(variant)
        assert again.status_code == 409, (variant, again.text)
        assert "differs only in case" in again.json()["detail"]
        assert renamed.status_code == 409, (variant, renamed.text)
    # A tenant may change the case of its own name.
    own = await http.patch(
        f"/admin/tenants/{first.json()['tenant']['id']}", json={"name": cased.upper()}, headers=ADMIN_HEADERS
    )
    assert own.status_code == 200, own.text
    assert own.json()["name"] == cased.upper()
    # Composing may lengthen a name (U+1D160 is three code points): still at most 200.
    for path in ("/admin/tenants", f"/admin/tenants/{tenant.tenant_id}/keys"):
        long = await http.post(path, json={"name": "\U0001d160" * 100}, headers=ADMIN_HEADERS)
        assert long.status_code == 422, long.text
        assert "once composed" in long.json()["detail"]
    # And composing may shorten one ("e" and a combining accent are "é"): 388 code points sent,
    # 198 characters kept, within the 200 (the limit was applied to what was sent, a 400).
    accented = "e\u0301" * 190 + uuid.uuid4().hex[:8]
    composed = await http.post("/admin/tenants", json={"name": accented}, headers=ADMIN_HEADERS)
    assert composed.status_code == 201, composed.text
    assert len(composed.json()["tenant"]["name"]) == 198


async def test_a_tenant_can_always_be_deleted_whatever_the_others_are_named(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    squatter, victim = await make_tenant("squatter"), await make_tenant("victim")
    reserved = f"deleted-{victim.tenant_id}"
    for name in (reserved, reserved.upper(), f"  {reserved}-2 "):
        renamed = await http.patch(
            f"/admin/tenants/{squatter.tenant_id}", json={"name": name}, headers=ADMIN_HEADERS
        )
        assert renamed.status_code == 422, (name, renamed.text)
        assert "reserved for deleted tenants" in renamed.json()["detail"]
        created = await http.post("/admin/tenants", json={"name": name}, headers=ADMIN_HEADERS)
        assert created.status_code == 422, (name, created.text)
    # Names that only look alike are a tenant's to choose.
    fine = await http.patch(
        f"/admin/tenants/{squatter.tenant_id}", json={"name": unique("deleted-items")}, headers=ADMIN_HEADERS
    )
    assert fine.status_code == 200, fine.text

    # A tenant named so before names of that form were refused (in another case, which names
    # no longer differ by): the deletion still goes through.
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text("UPDATE tenants SET name = :name WHERE id = :id"),
            {"name": reserved.upper(), "id": squatter.tenant_id},
        )
    deleted = await http.delete(f"/admin/tenants/{victim.tenant_id}", headers=ADMIN_HEADERS)
    assert deleted.status_code == 200, deleted.text
    again = await http.delete(
        f"/admin/tenants/{victim.tenant_id}", headers=ADMIN_HEADERS
    )  # finishing is fine too
    assert again.status_code == 200, again.text
    tenants = {
        t["id"]: t
        for t in (await http.get("/admin/tenants?include_deleted=true", headers=ADMIN_HEADERS)).json()
    }
    assert tenants[str(victim.tenant_id)]["name"] == f"{reserved}-1"
    assert tenants[str(victim.tenant_id)]["status"] == "deleted"
    assert tenants[str(squatter.tenant_id)]["name"] == reserved.upper()
    erased = await http.delete(
        f"/admin/tenants/{squatter.tenant_id}?include_ledger=true", headers=ADMIN_HEADERS
    )
    assert erased.status_code == 200, erased.text


async def test_money_is_kept_exactly_and_never_in_exponent_form(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t = await make_tenant("money")
    quota = f"/admin/tenants/{t.tenant_id}/quotas/day"
    # Tiny exponents too, which a decimal context would round to 0 and no column can hold.
    for amount in ("0.00000000001", "1.00000000001", 1e-11, "1E-50000000", "1.5E-1000030", "0E-20000"):
        refused = await http.put(quota, json={"max_cost_usd": amount}, headers=ADMIN_HEADERS)
        assert refused.status_code == 422, (amount, refused.text)
        assert "more than 10 decimal places" in refused.json()["detail"]
    for amount, shown in [
        ("0", "0.0000000000"),
        ("0.0000000001", "0.0000000001"),
        ("1e-7", "0.0000001000"),
        ("1E+1", "10.0000000000"),
        ("2.50000000000000", "2.5000000000"),  # trailing zeros are no places
        # Nor are sixteen thousand of them, more digits than Postgres takes in a numeric.
        ("1." + "0" * 16_384, "1.0000000000"),
    ]:
        put = await http.put(quota, json={"max_cost_usd": amount}, headers=ADMIN_HEADERS)
        assert put.status_code == 200, (amount, put.text)
        assert put.json()["max_cost_usd"] == shown
        assert (await http.get(f"/admin/tenants/{t.tenant_id}/quotas", headers=ADMIN_HEADERS)).json()[0][
            "max_cost_usd"
        ] == shown
    put_entries = [a for a in await audit_of(http, t.tenant_id) if a["action"] == "quota.put"]
    # Audited as set, at the ledger's scale.
    assert [a["filters"]["max_cost_usd"] for a in put_entries][:3] == [
        "1.0000000000",
        "2.5000000000",
        "10.0000000000",
    ]

    model = unique("money-model")
    for price in ("0.0000001", "1.0000001"):
        refused = await http.post(
            "/admin/prices",
            json={"model": model, "input_per_mtok": price, "output_per_mtok": "1"},
            headers=ADMIN_HEADERS,
        )
        assert refused.status_code == 422, (price, refused.text)
    long_zeros = await http.post(
        "/admin/prices",
        json={"model": model, "input_per_mtok": "1." + "0" * 16_384, "output_per_mtok": "2." + "0" * 20_000},
        headers=ADMIN_HEADERS,
    )
    assert long_zeros.status_code == 201, long_zeros.text
    assert (long_zeros.json()["input_per_mtok"], long_zeros.json()["output_per_mtok"]) == (
        "1.000000",
        "2.000000",
    )
    added = await http.post(
        "/admin/prices",
        json={
            "model": model,
            "input_per_mtok": "0",
            "output_per_mtok": "1e-6",
            "cached_input_per_mtok": 0,
            "effective_from": "2099-01-01T00:00:00Z",
        },
        headers=ADMIN_HEADERS,
    )
    assert added.status_code == 201, added.text
    expected = {
        "input_per_mtok": "0.000000",
        "output_per_mtok": "0.000001",
        "cached_input_per_mtok": "0.000000",
    }
    assert {k: added.json()[k] for k in expected} == expected
    listed = next(
        p for p in (await http.get("/admin/prices", headers=ADMIN_HEADERS)).json() if p["model"] == model
    )
    assert {k: listed[k] for k in expected} == expected

    # A tenth of a micro-dollar spent, nothing avoided: what str() writes "1.000E-7" and "0E-10".
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text(
                "INSERT INTO ledger (tenant_id, request_id, requested_model, cache_status, prompt_tokens, "
                "completion_tokens, cost_usd, avoided_cost_usd, latency_ms, http_status, priority, created_at) "
                "VALUES (:t, :r, 'gpt-4o-mini', 'miss', 1, 1, 0.0000001, 0, 5, 200, 1, timestamptz '2026-11-01 10:15')"
            ),
            {"t": t.tenant_id, "r": unique("tiny")},
        )
    for params in (
        {"since": "2026-11-01T10:00:00Z", "until": "2026-11-01T11:00:00Z"},
        {"since": "2026-11-01T10:10:00Z"},
    ):
        stats = await http.get("/admin/stats", params=params, headers=ADMIN_HEADERS)
        mine = next(s for s in stats.json()["tenants"] if s["tenant_id"] == str(t.tenant_id))
        assert (mine["cost_usd"], mine["avoided_cost_usd"]) == ("0.0000001000", "0.0000000000"), params


async def test_disabled_rules_must_name_rules_that_exist(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("rules")
    for settings in ({"disabled_rules": ["nope"]}, {"disabled_rules": ["order", "Number"]}):
        patched = await http.patch(
            f"/admin/tenants/{tenant.tenant_id}", json={"settings": settings}, headers=ADMIN_HEADERS
        )
        assert patched.status_code == 422, (settings, patched.text)
        body = patched.json()
        assert body["known_rules"] == list(RULES)
        assert "direction, number, time, negation, antonym, entity, order, code" in body["detail"]
        created = await http.post(
            "/admin/tenants", json={"name": unique("rules"), "settings": settings}, headers=ADMIN_HEADERS
        )
        assert created.status_code == 422, (settings, created.text)
    fine = await http.patch(
        f"/admin/tenants/{tenant.tenant_id}",
        json={"settings": {"disabled_rules": ["order", "entity"]}},
        headers=ADMIN_HEADERS,
    )
    assert fine.status_code == 200, fine.text
    assert fine.json()["settings"] == {"disabled_rules": ["order", "entity"]}


async def test_every_audit_entry_can_be_read_however_many_came_after_it(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """The log gave the newest 1,000 entries and no way past them: a purge followed by a thousand
    re-revocations of one key could no longer be read through the API."""
    t = await make_tenant("audit-pages")
    purged = await http.delete(f"/admin/tenants/{t.tenant_id}/cache", headers=ADMIN_HEADERS)
    assert purged.status_code == 200, purged.text
    for _ in range(12):
        revoked = await http.delete(f"/admin/keys/{t.key_id}", headers=ADMIN_HEADERS)
        assert revoked.status_code == 200, revoked.text
    seen, before = [], None
    while True:
        params = {"tenant_id": str(t.tenant_id), "limit": 5} | ({"before": before} if before else {})
        page = (await http.get("/admin/audit", params=params, headers=ADMIN_HEADERS)).json()
        if not page:
            break
        seen += page
        before = page[-1]["id"]
    ids = [row["id"] for row in seen]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids))
    assert [row["action"] for row in seen].count("key.revoke") == 12
    assert "cache.purge" in {row["action"] for row in seen}
    only = await http.get(
        "/admin/audit", params={"tenant_id": str(t.tenant_id), "action": "cache.purge"}, headers=ADMIN_HEADERS
    )
    assert [row["action"] for row in only.json()] == ["cache.purge"]
    for bad in ("0", "-1", "1e3"):
        refused = await http.get("/admin/audit", params={"before": bad}, headers=ADMIN_HEADERS)
        assert refused.status_code == 400, (bad, refused.text)
