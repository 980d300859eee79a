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
