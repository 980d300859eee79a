"""The service's foundation as a client and an operator see it: health, readiness, problem
details, request ids, authentication, and the schema under row-level security."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.models import CacheEntry
from app.db.engine import transaction
from app.observability.logging import scrub_database_errors
from app.tenants.repository import KeyRepository
from tests.conftest import ADMIN_HEADERS, eventually

PROBLEM = "application/problem+json"


async def test_health_and_ready(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    ready = await http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    # What many load balancers' checks send: HEAD was a 405.
    for path in ("/health", "/ready"):
        checked = await http.head(path)
        assert (checked.status_code, checked.content) == (200, b""), path


async def test_every_response_has_its_own_request_id_and_echoes_a_sane_client_id(
    http: httpx.AsyncClient,
) -> None:
    assert len((await http.get("/health")).headers["x-request-id"]) >= 16
    echoed = await http.get("/health", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] != "abc-123"  # Déjà's id is its own, whatever is sent
    assert echoed.headers["x-client-request-id"] == "abc-123"
    unknown = await http.get("/no/such/route", headers={"X-Request-Id": "bad id with spaces"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert "x-client-request-id" not in unknown.headers
    assert unknown.json()["request_id"] == unknown.headers["x-request-id"]
    # Bytes that are not UTF-8 in the header: still a problem detail, not a bare 500.
    garbled = await http.get("/no/such/route", headers=[(b"X-Request-Id", b"\xff\xfe\x80abc")])
    assert garbled.status_code == 404
    assert garbled.json()["request_id"] == garbled.headers["x-request-id"]


async def test_openapi_schema_is_served(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/schema/openapi.json")).json()
    assert "/v1/usage" in schema["paths"]
    assert "/admin/tenants" in schema["paths"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer dj_not-a-real-key", "dj_no-scheme"],
)
async def test_requests_without_a_valid_key_get_401_problem(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await http.get("/v1/usage", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_tenant_key_reaches_its_own_usage(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant()
    response = await http.get("/v1/usage", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["tenant_id"] == str(tenant.tenant_id)
    assert response.json()["tenant_name"] == tenant.name


async def test_tenant_key_on_admin_route_is_403(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant()
    response = await http.get("/admin/tenants", headers=tenant.headers)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_admin_token_is_not_a_tenant(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/usage", headers=ADMIN_HEADERS)).status_code == 403


async def test_admin_lists_tenants(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    response = await http.get("/admin/tenants", headers=ADMIN_HEADERS)
    assert response.status_code == 200
    names = {t["name"] for t in response.json()}
    assert {a.name, b.name} <= names


async def test_admin_role_key_works_like_the_admin_token(
    http: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with transaction(sessionmaker, system=True) as session:
        _, new = await KeyRepository(session).issue(None, role="admin")
    response = await http.get("/admin/tenants", headers={"Authorization": f"Bearer {new.key}"})
    assert response.status_code == 200


async def test_revoked_key_is_refused(
    http: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,
    deja,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant()
    async with transaction(sessionmaker, system=True) as session:
        keys = KeyRepository(session)
        key = await keys.get(tenant.key_id)
        assert key is not None
        await keys.revoke(key)
    # Running servers remember a resolved key for a few seconds; this one was never used.
    response = await http.get("/v1/usage", headers=tenant.headers)
    assert response.status_code == 401


async def test_a_key_revoked_or_a_tenant_suspended_elsewhere_is_refused_at_once(
    http: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """The server remembers a key it resolved for ten seconds; a change made by another worker, the
    CLI or an operator's SQL reaches it as the change commits (migration 0230), not ten seconds
    later."""
    revoked, suspended, kept = await make_tenant(), await make_tenant(), await make_tenant()
    for tenant in (revoked, suspended, kept):
        assert (await http.get("/v1/usage", headers=tenant.headers)).status_code == 200
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE id = :k"), {"k": revoked.key_id}
        )
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text("UPDATE tenants SET status = 'suspended' WHERE id = :t"), {"t": suspended.tenant_id}
        )

    async def refused(tenant) -> bool:  # type: ignore[no-untyped-def]
        return (await http.get("/v1/usage", headers=tenant.headers)).status_code == 401

    assert await eventually(lambda: refused(revoked), within_s=2)
    assert await eventually(lambda: refused(suspended), within_s=2)
    assert (await http.get("/v1/usage", headers=kept.headers)).status_code == 200


async def test_a_key_read_while_its_revocation_commits_is_not_remembered_as_valid(
    http: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """A request read a key before its revocation committed, and its write of `last_used_at`
    waited for the revoking transaction's row lock: it ended after the revocation's notice and
    remembered the key as valid for ten seconds, every request with it answered meanwhile."""
    tenant = await make_tenant()  # its key never used: this server has not read it yet
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE id = :k"), {"k": tenant.key_id}
        )
        # The revocation holds the key's row; the request reads the key as not revoked yet.
        racing = asyncio.create_task(http.get("/v1/usage", headers=tenant.headers))
        await asyncio.sleep(0.5)
    await racing  # answered once the revocation committed, whichever way
    await asyncio.sleep(0.5)  # the revocation's notice has arrived
    assert (await http.get("/v1/usage", headers=tenant.headers)).status_code == 401


async def test_keys_are_stored_only_as_hashes(
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant()
    async with transaction(sessionmaker, system=True) as session:
        row = (
            await session.execute(
                text("SELECT key_hash, prefix FROM api_keys WHERE id = :id"), {"id": tenant.key_id}
            )
        ).one()
        dump = (await session.execute(text("SELECT string_agg(t::text, '') FROM api_keys t"))).scalar_one()
    assert tenant.api_key not in dump
    assert len(row.key_hash) == 32
    assert tenant.api_key.startswith(row.prefix)


async def _add_entry(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    session.add(
        CacheEntry(
            tenant_id=tenant_id,
            model="m",
            scope_hash=b"s",
            exact_hash=uuid.uuid4().bytes,
            prompt="secret prompt",
            response={"choices": []},
        )
    )
    await session.flush()


async def test_row_level_security_hides_other_tenants_even_without_a_filter(
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    a, b = await make_tenant("rls-a"), await make_tenant("rls-b")
    async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
        await _add_entry(session, a.tenant_id)
    async with transaction(sessionmaker, tenant_id=b.tenant_id) as session:
        await _add_entry(session, b.tenant_id)
        await _add_entry(session, b.tenant_id)

    async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
        # Deliberately no tenant filter: the policy alone must hide b's rows.
        tenants_seen = set((await session.scalars(select(CacheEntry.tenant_id))).all())
        assert tenants_seen == {a.tenant_id}
        visible_tenants = (await session.execute(text("SELECT count(*) FROM tenants"))).scalar_one()
        assert visible_tenants == 1
    async with transaction(sessionmaker) as session:
        # No context at all: nothing is visible.
        assert (await session.scalar(select(func.count()).select_from(CacheEntry))) == 0


async def test_row_level_security_refuses_writes_into_another_tenant(
    sessionmaker: async_sessionmaker[AsyncSession],
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    a, b = await make_tenant(), await make_tenant()
    with pytest.raises(Exception, match="row-level security"):
        async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
            await _add_entry(session, b.tenant_id)


async def test_database_errors_never_log_statement_parameters(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    secret = "my private prompt about the merger"
    with pytest.raises(DBAPIError) as caught:
        async with transaction(sessionmaker) as session:
            await session.execute(text("SELECT CAST(:prompt AS integer)"), {"prompt": secret})
    # SQLAlchemy's part of the message is hidden; the driver's own quotes the value...
    assert "SQL parameters hidden" in str(caught.value)
    # ...so a logged traceback keeps its frames and says what failed, without the message.
    event = scrub_database_errors(None, "error", {"event": "unexpected error", "exc_info": caught.value})
    rendered = structlog.processors.format_exc_info(None, "error", event)["exception"]
    assert secret not in rendered
    assert "test_foundation.py" in rendered
    assert rendered.splitlines()[-1].startswith("DataError")
