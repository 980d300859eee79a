"""SIGTERM under load: `deja serve` stops taking requests, finishes the ones in flight, books
each of them, and exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer
from tests.conftest import TenantKey, start_deja_serve


async def test_sigterm_under_load_loses_no_request_and_no_ledger_row(
    database_url: str,
    tmp_path: Path,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant: TenantKey = await make_tenant("shutdown")
    with FakeLLMServer(FakeLLMConfig(latency_ms=800)) as model:
        config = tmp_path / "deja.toml"
        config.write_text(f'[[upstreams]]\nname = "fake"\nbase_url = "{model.base_url}"\ntimeout_s = 10\n')
        server, url = await start_deja_serve(
            {
                "DEJA_DATABASE_URL": database_url,
                "DEJA_DATA_DIR": str(tmp_path / "state"),
                "DEJA_CONFIG": str(config),
                "DEJA_LOG_LEVEL": "WARNING",
            }
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:

                async def ask(i: int) -> httpx.Response:
                    return await client.post(
                        "/v1/chat/completions",
                        headers={**tenant.headers, "X-Request-Id": f"sigterm-{i}-{uuid.uuid4().hex[:6]}"},
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Task {i}"}]},
                    )

                in_flight = [asyncio.create_task(ask(i)) for i in range(12)]
                await asyncio.sleep(0.3)  # every request is now waiting on the model
                server.send_signal(signal.SIGTERM)
                responses = await asyncio.gather(*in_flight)
            assert [r.status_code for r in responses] == [200] * 12
            assert await asyncio.wait_for(server.wait(), timeout=60) == 0
        finally:
            if server.returncode is None:
                server.kill()
    async with transaction(sessionmaker, system=True) as session:
        booked = (
            (
                await session.execute(
                    text("SELECT request_id FROM ledger WHERE tenant_id = :t"), {"t": tenant.tenant_id}
                )
            )
            .scalars()
            .all()
        )
    assert sorted(booked) == sorted(r.headers["x-request-id"] for r in responses)


async def test_requests_still_running_when_the_grace_period_ends_are_booked(
    database_url: str,
    tmp_path: Path,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A stream, a non-streamed call and a request waiting on that call outlast the grace
    period (1 s here, 30 s by default): the server cuts them, and each is still booked, at what
    it delivered. They used to leave no ledger row, and their reservations were freed only when
    their leases ran out."""
    tenant: TenantKey = await make_tenant("cut-at-shutdown")
    with (
        FakeLLMServer(FakeLLMConfig(token_latency_ms=300)) as trickling,
        FakeLLMServer(FakeLLMConfig(latency_ms=20_000)) as slow,
    ):
        config = tmp_path / "deja.toml"
        config.write_text(
            f'[[upstreams]]\nname = "fake"\nbase_url = "{trickling.base_url}"\ntimeout_s = 60\n'
            f'[[upstreams]]\nname = "slow"\nbase_url = "{slow.base_url}"\ntimeout_s = 60\n'
            '[[routes]]\nmodel = "gpt-slow"\nprimary = "slow"\n'
        )
        server, url = await start_deja_serve(
            {
                "DEJA_DATABASE_URL": database_url,
                "DEJA_DATA_DIR": str(tmp_path / "state"),
                "DEJA_CONFIG": str(config),
                "DEJA_LOG_LEVEL": "WARNING",
                "DEJA_SHUTDOWN_GRACE_S": "1",
            }
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                body = {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "Write a long story about the sea"}],
                    "max_tokens": 400,
                }

                async def stream() -> list[str]:
                    lines = []
                    try:
                        async with client.stream(
                            "POST",
                            "/v1/chat/completions",
                            headers=tenant.headers,
                            json={**body, "stream": True},
                        ) as response:
                            async for line in response.aiter_lines():
                                lines.append(line)
                    except httpx.HTTPError:
                        pass
                    return lines

                async def plain() -> httpx.Response | None:
                    try:
                        return await client.post(
                            "/v1/chat/completions", headers=tenant.headers, json={**body, "model": "gpt-slow"}
                        )
                    except httpx.HTTPError:
                        return None

                # The call, and an identical request waiting on it (coalesced).
                streamed = asyncio.create_task(stream())
                answered = [asyncio.create_task(plain()) for _ in range(2)]
                await asyncio.sleep(1.5)  # both are waiting on the model's slow pieces
                server.send_signal(signal.SIGTERM)
                lines, *cut = await asyncio.gather(streamed, *answered)
            assert await asyncio.wait_for(server.wait(), timeout=60) == 0
        finally:
            if server.returncode is None:
                server.kill()
    assert any(line.startswith("data: {") for line in lines), "the stream never started"
    async with transaction(sessionmaker, system=True) as session:
        rows = (
            await session.execute(
                text("SELECT http_status, completion_tokens, prompt_tokens FROM ledger WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
        ).all()
        reserved = (
            await session.execute(
                text("SELECT coalesce(sum(reserved_tokens), 0) FROM usage_counters WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
        ).scalar_one()
    # Cut: told so, and to retry (it was uvicorn's plain-text 500, and a traceback in the log).
    for response in cut:
        assert response is not None
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert response.json()["request_id"] == response.headers["x-request-id"]
    # The stream is booked for the pieces it sent, the call and its follower as cut by the
    # server stopping (503); none holds a reservation any more.
    assert sorted(status for status, _, _ in rows) == [499, 503, 503], rows
    assert next(tokens for status, tokens, _ in rows if status == 499) > 0
    # The call in flight may be answered, and billed, all the same: booked at its prompt's
    # estimate; its follower made no call.
    assert sorted(prompt > 0 for status, _, prompt in rows if status == 503) == [False, True], rows
    assert reserved == 0
