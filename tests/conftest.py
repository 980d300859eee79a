"""Shared fixtures: one embedded Postgres per test run, migrated by Alembic (never create_all),
and Déjà served over real HTTP on a loopback port.

Tests isolate themselves by tenant: each test makes its own tenants with unique names, so
tests never see each other's rows and can share one database."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.asgi import create_app
from app.db import migrate
from app.db.embedded import APP_ROLE, EmbeddedPostgres, start_embedded
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.repository import KeyRepository, TenantRepository
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer

ADMIN_TOKEN = "test-admin-token"


async def eventually(check: Any, *, within_s: float = 10.0, every_s: float = 0.05) -> Any:
    """`check()`'s first truthy value within `within_s` (bookings and answers are written just
    after their responses), asked every `every_s`; its last value when none came."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp_path: the wheel runs Postgres as an unprivileged user when the
    # tests run as root, and pytest's per-user temp root is closed to other users.
    data_dir = Path(tempfile.mkdtemp(prefix="deja-test-"))
    pg = start_embedded(data_dir)
    yield pg
    pg.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(embedded_pg: EmbeddedPostgres) -> str:
    migrate.upgrade(embedded_pg.url)
    return embedded_pg.url


@pytest.fixture
def scratch_database(embedded_pg: EmbeddedPostgres) -> str:
    """The URL of an empty database of its own on the embedded server (not migrated), for a test
    that must not disturb the others (downgrades) or must not be disturbed by them (statistics)."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    embedded_pg.server.psql(f"CREATE DATABASE {name} OWNER {APP_ROLE};")
    embedded_pg.server.psql(f"\\c {name}\nCREATE EXTENSION IF NOT EXISTS vector;")
    return embedded_pg.url.replace("/deja?", f"/{name}?")


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    """The project's own OpenAI-compatible model; `gpt-broken` and `gpt-down` always fail with a 500
    (`gpt-broken` has a fallback route to another model, `gpt-down` none)."""
    with FakeLLMServer(FakeLLMConfig(fail_models={"gpt-broken": "500", "gpt-down": "500"})) as server:
        yield server


@pytest.fixture(scope="session")
def slow_llm() -> Iterator[FakeLLMServer]:
    """A model that takes 400 ms: long enough for concurrent identical requests to overlap."""
    with FakeLLMServer(FakeLLMConfig(latency_ms=400)) as server:
        yield server


@pytest.fixture(scope="session")
def down_llm() -> Iterator[FakeLLMServer]:
    """A provider that fails: `gpt-mirrored` falls back from it to the same model at `fake_llm`,
    `gpt-downgraded` to another model (failures here open no breaker the other tests go through)."""
    with FakeLLMServer(FakeLLMConfig(fail_models={"gpt-mirrored": "500", "gpt-downgraded": "500"})) as server:
        yield server


@pytest.fixture(scope="session")
def router_config(
    fake_llm: FakeLLMServer,
    slow_llm: FakeLLMServer,
    down_llm: FakeLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("config") / "deja.toml"
    path.write_text(
        f"""
[retry]
backoff_base_s = 0.01
backoff_max_s = 0.05

[[upstreams]]
name = "fake"
base_url = "{fake_llm.base_url}"
timeout_s = 5
max_retries = 1

[[upstreams]]
name = "backup"
base_url = "{fake_llm.base_url}"
timeout_s = 5
max_retries = 0

[[upstreams]]
name = "slow"
base_url = "{slow_llm.base_url}"
timeout_s = 5

[[upstreams]]
name = "down"
base_url = "{down_llm.base_url}"
timeout_s = 5
max_retries = 0

[[upstreams]]
name = "narrow"
base_url = "{slow_llm.base_url}"
timeout_s = 5
max_concurrency = 1

[[routes]]
model = "gpt-narrow"
primary = "narrow"
primary_model = "gpt-slow"

[[routes]]
model = "gpt-broken"
primary = "fake"
fallbacks = [{{ upstream = "backup", model = "gpt-4o-mini" }}]

[[routes]]
model = "gpt-slow"
primary = "slow"

[[routes]]
model = "gpt-mirrored"
primary = "down"
fallbacks = [{{ upstream = "backup" }}]

[[routes]]
model = "gpt-downgraded"
primary = "down"
fallbacks = [{{ upstream = "backup", model = "gpt-4o-mini" }}]
"""
    )
    return path


@pytest.fixture(scope="session")
def settings(database_url: str, router_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("deja-state"),
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        log_level="WARNING",
        config=router_config,
        # The rollup is rolled up by the reads that need it: tests that empty it see their own steps.
        ledger_rollup_interval_s=0,
    )


class ServerThread:
    """A uvicorn server on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")  # type: ignore[arg-type]
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    async def settle(self) -> None:
        """Wait until the bookings, answers, labels and aliases this server writes after its
        responses are written."""
        services = self.app.state.services  # type: ignore[attr-defined]
        loop = services.background[0].get_loop()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(services.pipeline.background_done(), loop))
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(services.pipeline.writer.flush(), loop))
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(services.cache.aliases.flush(), loop))

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def deja(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture
async def http(deja: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=deja.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def sessionmaker(
    database_url: str, settings: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@dataclass(frozen=True)
class TenantKey:
    tenant_id: uuid.UUID
    name: str
    api_key: str
    key_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_tenant(sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    async def make(prefix: str = "t") -> TenantKey:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        async with transaction(sessionmaker, system=True) as session:
            tenant = await TenantRepository(session).create(name)
            key, new = await KeyRepository(session).issue(tenant.id)
        return TenantKey(tenant_id=tenant.id, name=name, api_key=new.key, key_id=key.id)

    return make


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def start_deja_serve(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """`deja serve` as a process of its own (signals, memory), on a free port, once `/ready`
    answers: the process and its base URL. `env` adds to this process's environment. One worker,
    so that the process signalled and measured is the one answering."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--no-migrate",
        "--workers",
        "1",
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + 90
        while True:
            try:
                if (await client.get("/ready")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            if process.returncode is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("deja serve did not become ready")
            await asyncio.sleep(0.2)
