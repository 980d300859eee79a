"""Chaos, bounded in time: Postgres stopped in the middle of a load and started again, and a
model that fails now and then. Every request must get an answer or a documented problem
detail, and the ledger must end with exactly one row per request: none lost, none doubled."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.asgi import create_app
from app.db import migrate
from app.db.embedded import EmbeddedPostgres, start_embedded
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.repository import KeyRepository, TenantRepository
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer
from tests.conftest import ServerThread, free_port

# Answered, the upstream failing (502; its rate limit, passed on: 429), Postgres down (503), too slow (504).
DOCUMENTED = {200, 429, 502, 503, 504}


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A Postgres of this test's own: stopping it must not disturb the other tests."""
    data_dir = Path(tempfile.mkdtemp(prefix="deja-chaos-"))
    pg = start_embedded(data_dir)
    migrate.upgrade(pg.url)
    yield pg
    pg.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


async def _tenant_key(settings: Settings, url: str) -> tuple[uuid.UUID, str]:
    engine = create_engine(url, settings)
    try:
        async with transaction(create_sessionmaker(engine), system=True) as session:
            tenant = await TenantRepository(session).create(f"chaos-{uuid.uuid4().hex[:8]}")
            _, new = await KeyRepository(session).issue(tenant.id)
        return tenant.id, new.key
    finally:
        await engine.dispose()


async def _ledger(settings: Settings, url: str, tenant_id: uuid.UUID) -> list[str]:
    engine = create_engine(url, settings)
    try:
        async with transaction(create_sessionmaker(engine), system=True) as session:
            rows = await session.execute(
                text("SELECT client_request_id FROM ledger WHERE tenant_id = :t"), {"t": tenant_id}
            )
            return [r[0] for r in rows]
    finally:
        await engine.dispose()


async def test_postgres_stopped_mid_load_loses_no_request_and_no_ledger_row(
    own_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    with FakeLLMServer(FakeLLMConfig(latency_ms=20, fail_rate=0.1, fail_kinds=("500", "429"))) as model:
        config = tmp_path / "deja.toml"
        config.write_text(
            f"[retry]\nbackoff_base_s = 0.01\nbackoff_max_s = 0.05\nretry_after_max_s = 0\n"
            f'[[upstreams]]\nname = "fake"\nbase_url = "{model.base_url}"\ntimeout_s = 2\nmax_retries = 1\n'
        )
        settings = Settings(
            database_url=own_postgres.url,
            data_dir=tmp_path / "state",
            config=config,
            log_level="ERROR",
            database={"pool_timeout_s": 1, "statement_timeout_ms": 2000},  # type: ignore[arg-type]
        )
        tenant_id, key = await _tenant_key(settings, own_postgres.url)
        with ServerThread(create_app(settings)) as deja:
            sent: dict[str, int] = {}
            bypassed: set[str] = set()
            async with httpx.AsyncClient(base_url=deja.url, timeout=20) as client:

                async def one(i: int) -> None:
                    request_id = f"chaos-{i}-{uuid.uuid4().hex[:6]}"
                    response = await client.post(
                        "/v1/chat/completions",
                        headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
                        # Repeats, so hits, misses and coalesced requests all take part.
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": f"Question {i % 45}"}],
                        },
                    )
                    assert response.status_code in DOCUMENTED, response.text
                    if response.status_code != 200:
                        assert response.headers["content-type"].startswith("application/problem+json")
                    sent[request_id] = response.status_code
                    if response.headers.get("x-cache") == "BYPASS":
                        bypassed.add(request_id)

                async def load(start: int, count: int) -> None:
                    for batch in range(start, start + count, 5):
                        await asyncio.gather(*(one(i) for i in range(batch, batch + 5)))

                await load(0, 30)
                await asyncio.to_thread(own_postgres.server._stop)  # the database goes away mid-load
                await load(30, 30)
                outage_answers = dict(sent)
                await asyncio.to_thread(own_postgres.server.ensure_postgres_running)
                await load(60, 30)

            # The spool drains in the background once Postgres answers again.
            deadline = time.monotonic() + 30
            booked = await _ledger(settings, own_postgres.url, tenant_id)
            while len(booked) < len(sent) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                booked = await _ledger(settings, own_postgres.url, tenant_id)

    assert len(sent) == 90
    during_outage = {rid for rid in outage_answers if int(rid.split("-")[1]) >= 30}
    # Requests kept being answered by the model while the database was down, past the cache.
    assert {rid for rid in during_outage if sent[rid] == 200} & bypassed
    assert sorted(booked) == sorted(sent)  # exactly one row per request: none lost, none doubled


async def test_every_route_answers_503_with_retry_after_while_postgres_is_down(
    own_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=own_postgres.url,
        data_dir=tmp_path / "state",
        admin_token="chaos-admin-token",  # type: ignore[arg-type]
        log_level="ERROR",
        database={"pool_timeout_s": 1, "statement_timeout_ms": 2000},  # type: ignore[arg-type]
    )
    _, key = await _tenant_key(settings, own_postgres.url)
    tenant = {"Authorization": f"Bearer {key}"}
    admin = {"Authorization": "Bearer chaos-admin-token"}
    with ServerThread(create_app(settings)) as deja:
        async with httpx.AsyncClient(base_url=deja.url, timeout=30) as client:
            assert (await client.get("/v1/usage", headers=tenant)).status_code == 200  # the key is known now
            await asyncio.to_thread(own_postgres.server._stop)
            try:
                for method, path, headers, body in [
                    ("POST", "/v1/cache/lookup", tenant, {"prompt": "hello there", "model": "gpt-4o-mini"}),
                    (
                        "POST",
                        "/v1/cache/entries",
                        tenant,
                        {"prompt": "hi", "model": "gpt-4o-mini", "response": "x"},
                    ),
                    ("GET", f"/v1/cache/entries/{uuid.uuid4()}", tenant, None),
                    ("GET", "/v1/usage", tenant, None),
                    ("GET", "/admin/tenants", admin, None),
                ]:
                    response = await client.request(method, path, headers=headers, json=body)
                    assert response.status_code == 503, (path, response.status_code, response.text[:300])
                    assert response.headers["content-type"].startswith("application/problem+json")
                    assert int(response.headers["retry-after"]) > 0
                    assert response.json()["status"] == 503
                # Not ready, to a load balancer's GET and HEAD alike; alive all the same.
                for method in ("GET", "HEAD"):
                    assert (await client.request(method, "/ready")).status_code == 503, method
                    assert (await client.request(method, "/health")).status_code == 200, method
            finally:
                await asyncio.to_thread(own_postgres.server.ensure_postgres_running)


async def test_serve_starts_its_embedded_postgres_again_when_it_is_killed() -> None:
    """`/health` stays 200 while the database is gone, so no liveness probe restarts the server:
    `deja serve` itself starts the embedded Postgres again, and the service is ready again."""
    # Not under pytest's tmp_path: the wheel runs Postgres as another user when tests run as root.
    data_dir = Path(tempfile.mkdtemp(prefix="deja-test-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEJA_")}
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"),
        env={**env, "DEJA_DATA_DIR": str(data_dir), "DEJA_LOG_LEVEL": "WARNING"},
        stderr=asyncio.subprocess.PIPE,
    )

    async def ready_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/ready")).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        return False

    try:
        assert await ready_within(120)
        pid_file = data_dir / "pg" / "postmaster.pid"
        killed = int(pid_file.read_text().split()[0])
        os.kill(killed, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert (await client.get("/ready")).status_code == 503
        assert await ready_within(30)
        assert int(pid_file.read_text().split()[0]) != killed
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(server.communicate(), timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert server.returncode == 0
    assert "deja: the embedded Postgres had stopped; started it again" in stderr.decode()
