"""Three `deja serve` processes on one data directory (the embedded Postgres they share), as
docs/scaling.md starts them: identical misses make one upstream call whichever replica they
reach, a quota holds across them, and a replica killed with SIGKILL leaves every request to the
others answered, its quota reservations released and its in-flight miss taken over."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import migrate
from app.db.embedded import EmbeddedPostgres, forget_dead_processes, start_embedded
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.repository import KeyRepository, TenantRepository
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer
from tests.conftest import eventually, start_deja_serve

ADMIN = {"Authorization": "Bearer replicas-admin-token"}
LEASE_S = 3  # short, so that the SIGKILL test waits seconds, not the default's 40


@dataclass
class Replicas:
    urls: list[str]
    processes: list[asyncio.subprocess.Process]
    model: FakeLLMServer
    sessionmaker: async_sessionmaker[AsyncSession]
    data_dir: Path

    async def calls(self) -> int:
        async with httpx.AsyncClient() as client:
            return int((await client.get(f"{self.model.root_url}/_fake/stats")).json()["chat"].get(MODEL, 0))

    async def tenant(self) -> tuple[uuid.UUID, dict[str, str]]:
        """A new tenant's id and the headers of its key."""
        async with transaction(self.sessionmaker, system=True) as session:
            tenant = await TenantRepository(session).create(f"replicas-{uuid.uuid4().hex[:8]}")
            _, new = await KeyRepository(session).issue(tenant.id)
        return tenant.id, {"Authorization": f"Bearer {new.key}"}


MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeLLMServer]:
    """A model slow enough (3 s) for concurrent requests to overlap on every replica, and for a
    replica to be killed while its calls are still in flight on a busy machine."""
    with FakeLLMServer(FakeLLMConfig(latency_ms=3000)) as server:
        yield server


@pytest.fixture(scope="module")
async def replicas(model: FakeLLMServer) -> AsyncIterator[Replicas]:
    # Outside pytest's tmp_path: the wheel runs Postgres as another user when tests run as root.
    data_dir = Path(tempfile.mkdtemp(prefix="deja-replicas-"))
    pg: EmbeddedPostgres = await asyncio.to_thread(start_embedded, data_dir)
    await asyncio.to_thread(migrate.upgrade, pg.url)  # it runs an event loop of its own
    config = data_dir / "deja.toml"
    config.write_text(f'[[upstreams]]\nname = "fake"\nbase_url = "{model.base_url}"\ntimeout_s = 10\n')
    env = {
        "DEJA_DATA_DIR": str(data_dir),
        "DEJA_CONFIG": str(config),
        "DEJA_ADMIN_TOKEN": ADMIN["Authorization"].removeprefix("Bearer "),
        "DEJA_LOG_LEVEL": "WARNING",
        "DEJA_LIMITS__LEASE_S": str(LEASE_S),
        "DEJA_LIMITS__TIMEOUT_S": "30",
    }
    started = await asyncio.gather(*(start_deja_serve(env) for _ in range(3)))
    engine = create_engine(pg.url, Settings(database_url=pg.url))
    try:
        yield Replicas(
            urls=[url for _, url in started],
            processes=[process for process, _ in started],
            model=model,
            sessionmaker=create_sessionmaker(engine),
            data_dir=data_dir,
        )
    finally:
        await engine.dispose()
        for process, _ in started:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(process.wait() for process, _ in started))
        forget_dead_processes(data_dir / "pg")  # the replica killed with SIGKILL never left
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _chat(content: str) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 50}


async def _day(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, object]:
    usage = (await client.get(f"{url}/v1/usage", headers=headers)).json()
    return next(p for p in usage["periods"] if p["period"] == "day")


async def test_identical_misses_over_three_replicas_make_one_upstream_call(replicas: Replicas) -> None:
    tenant_id, headers = await replicas.tenant()
    body = _chat(f"Summarise the plot of Hamlet in one line ({uuid.uuid4().hex[:6]}).")
    before = await replicas.calls()
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{replicas.urls[i % 3]}/v1/chat/completions", headers=headers, json=body)
                for i in range(20)
            )
        )
    assert [r.status_code for r in responses] == [200] * 20
    assert await replicas.calls() - before == 1
    assert sorted(r.headers["x-cache"] for r in responses) == ["HIT"] * 19 + ["MISS"]
    assert len({r.json()["choices"][0]["message"]["content"] for r in responses}) == 1

    async def statuses() -> dict[str, int] | None:
        async with transaction(replicas.sessionmaker, system=True) as session:
            rows = await session.execute(
                text("SELECT cache_status, count(*) FROM ledger WHERE tenant_id = :t GROUP BY 1"),
                {"t": tenant_id},
            )
            counted = {status: int(n) for status, n in rows}
        return counted if sum(counted.values()) >= 20 else None

    # Booked just after the responses, by each replica.
    assert await eventually(statuses) == {"miss": 1, "hit": 19}


async def test_a_daily_quota_of_ten_requests_holds_over_three_replicas(replicas: Replicas) -> None:
    tenant_id, headers = await replicas.tenant()
    async with httpx.AsyncClient(timeout=30) as client:
        quota = await client.put(
            f"{replicas.urls[0]}/admin/tenants/{tenant_id}/quotas/day",
            headers=ADMIN,
            json={"max_requests": 10},
        )
        assert quota.status_code == 200, quota.text
        before = await replicas.calls()
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{replicas.urls[i % 3]}/v1/chat/completions",
                    headers=headers,
                    json=_chat(f"Question {i}: name a prime above {i * 7}."),
                )
                for i in range(60)
            )
        )
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 10
        assert codes.count(429) == 50
        assert await replicas.calls() - before == 10

        async def settled() -> dict[str, object] | None:
            # Each answer's reservation is settled just after its response (app.ledger.writer).
            day = await _day(client, replicas.urls[1], headers)
            return day if day["reserved_tokens"] == 0 else None

        day = await eventually(settled) or await _day(client, replicas.urls[1], headers)
    assert day["requests"] == 10
    assert day["reserved_tokens"] == 0


async def test_sigkill_of_a_replica_releases_its_reservations_and_its_miss_is_taken_over(
    replicas: Replicas,
) -> None:
    """Last in this module: it kills the third replica."""
    _, headers = await replicas.tenant()
    victim, survivors = replicas.processes[2], replicas.urls[:2]
    shared = _chat(f"Translate 'good morning' into Welsh ({uuid.uuid4().hex[:6]}).")
    async with httpx.AsyncClient(timeout=30) as client:
        # The victim leads an identical miss and holds reservations for calls of its own.
        doomed = [
            asyncio.create_task(
                client.post(f"{replicas.urls[2]}/v1/chat/completions", headers=headers, json=body)
            )
            for body in [shared, *(_chat(f"Doomed question {i}") for i in range(5))]
        ]
        await asyncio.sleep(0.3)
        others = [
            asyncio.create_task(
                client.post(f"{survivors[i % 2]}/v1/chat/completions", headers=headers, json=body)
            )
            for i, body in enumerate([shared, shared, *(_chat(f"Other question {i}") for i in range(8))])
        ]
        await asyncio.sleep(0.3)
        day = await _day(client, survivors[0], headers)
        assert day["reserved_tokens"] > 0
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed_results = await asyncio.gather(*doomed, return_exceptions=True)
        assert all(isinstance(r, httpx.TransportError) for r in doomed_results), [
            r if isinstance(r, BaseException) else (r.status_code, r.text[:200]) for r in doomed_results
        ]
        # Every request to the survivors is answered; the identical ones once the lease ran out.
        answered = await asyncio.gather(*others)
        assert [r.status_code for r in answered] == [200] * 10
        assert answered[0].json()["choices"] == answered[1].json()["choices"]
        while (day := await _day(client, survivors[0], headers))["reserved_tokens"]:
            assert time.monotonic() - killed_at < 60, day
            await asyncio.sleep(0.25)
        released_s = time.monotonic() - killed_at
    # The victim's six calls are given back: only the answered ones count.
    assert day["requests"] == 9  # 8 own misses + 1 for the shared prompt (the other followed it)
    # Released by expiry: the lease (renewed every third of it until the kill), then a sweep
    # (every third of it) on a survivor, measured after the survivors' requests all finished,
    # on a busy machine. The issue's bound is 60 s with the default lease of 40 s.
    assert released_s < LEASE_S * 3
