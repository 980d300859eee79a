"""Phase 3: traffic through `/v1/chat/completions`, class by class, closed loop.

Déjà runs as a `deja serve` subprocess: its CPU time and memory are then its own, measured
with psutil, and the load generator (this process) does not share its interpreter lock. The
fake model runs in a thread of this process; its work is a sleep, so it costs the client
little. The same miss traffic is also sent to the fake model directly, in the same run,
with the same client and concurrency: the difference is what Déjà adds to a miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from app.toolkit.bench.load import MODEL, RealEntry, messages_for
from app.toolkit.bench.prompts import miss_prompt

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

Request = tuple[str, dict[str, str], dict[str, object]]  # url path, headers, body


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(f"{what} must be a loopback address (127.0.0.1, localhost or ::1), not {host!r}")


@dataclass
class Resources:
    """CPU seconds of the processes that matter, and the machine's busy and total time."""

    server: dict[int, float] | None  # CPU seconds per process of the tree
    postgres: dict[int, float] | None
    client: float
    machine_busy: float
    machine_total: float
    wall: float


@dataclass
class ClassResult:
    name: str
    target: str  # "deja" | "model"
    latencies_ms: list[float] = field(default_factory=list)
    completed_in_window: int = 0
    seconds: float = 0.0
    errors: int = 0
    cache_status: Counter[str] = field(default_factory=Counter)
    server_cpu_pct: float | None = None
    postgres_cpu_pct: float | None = None
    client_cpu_pct: float = 0.0
    machine_cpu_pct: float = 0.0
    server_rss_mb: float | None = None
    server_rss_peak_mb: float | None = None
    generator: str = "httpx"  # the load generator: httpx (this process) or wrk

    @property
    def throughput(self) -> float:
        return self.completed_in_window / self.seconds if self.seconds else 0.0


class Processes:
    """Where CPU is spent: the server process, Postgres (postmaster and its children), this client."""

    def __init__(self, server_pid: int | None, postmaster_pid: int | None) -> None:
        self.server = psutil.Process(server_pid) if server_pid else None
        self.postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None
        self.client = psutil.Process()

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    def _tree_cpu(self, root: psutil.Process) -> dict[int, float]:
        seconds: dict[int, float] = {}
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                seconds[process.pid] = self._cpu(process)
        return seconds

    def snapshot(self) -> Resources:
        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        total = sum(machine)
        return Resources(
            server=self._tree_cpu(self.server) if self.server else None,
            postgres=self._tree_cpu(self.postmaster) if self.postmaster else None,
            client=self._cpu(self.client),
            machine_busy=total - idle,
            machine_total=total,
            wall=time.monotonic(),
        )

    def server_rss_mb(self) -> float | None:
        if self.server is None:
            return None
        try:
            rss = sum(int(p.memory_info().rss) for p in [self.server, *self.server.children(recursive=True)])
            return rss / 2**20
        except psutil.Error:
            return None


def _pct(before: dict[int, float] | None, after: dict[int, float] | None, wall: float) -> float | None:
    """CPU of a process tree over the window: processes that ended in it are lost (Postgres
    backends live as long as their pooled connection), new ones count from their start."""
    if before is None or after is None or wall <= 0:
        return None
    used = sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())
    return used / wall * 100


async def drive(
    name: str,
    target: str,
    client: httpx.AsyncClient,
    next_request: Callable[[int], Request],
    *,
    concurrency: int,
    warmup_s: float,
    seconds: float,
    processes: Processes,
    on_tick: Callable[[float], None],
) -> ClassResult:
    """`concurrency` workers send requests back to back for warmup_s + seconds; the window after
    the warm-up is measured: latencies of requests started in it, completions that end in it."""
    result = ClassResult(name=name, target=target, seconds=seconds)
    counter = itertools.count()
    start = time.perf_counter()
    window_start = start + warmup_s
    # A class slower than the window still gets `concurrency` measured requests: the window
    # then stretches until that many have started in it.
    min_samples = concurrency
    window_end = window_start + seconds
    started_in_window = 0
    done_times: list[float] = []
    rss: list[float] = []

    async def worker() -> None:
        nonlocal started_in_window, window_end
        while True:
            sent = time.perf_counter()
            if sent >= window_end:
                if started_in_window >= min_samples:
                    return
                window_end = sent
            measured = sent >= window_start
            if measured:
                started_in_window += 1
            path, headers, body = next_request(next(counter))
            try:
                response = await client.post(path, headers=headers, json=body)
                ok = response.status_code == 200
                status = response.headers.get("x-cache", "-")
            except httpx.HTTPError:
                ok, status = False, "error"
            done = time.perf_counter()
            done_times.append(done)
            if measured:
                result.latencies_ms.append((done - sent) * 1000)
                result.cache_status[status] += 1
                if not ok:
                    result.errors += 1

    before = processes.snapshot()

    async def watch() -> None:
        nonlocal before
        measuring = False
        while True:
            now = time.perf_counter()
            if not measuring and now >= window_start:
                before, measuring = processes.snapshot(), True
            if measuring:
                value = processes.server_rss_mb()
                if value is not None:
                    rss.append(value)
            on_tick(min(1.0, (now - start) / (warmup_s + seconds)))
            if now >= window_end and started_in_window >= min_samples:
                return
            await asyncio.sleep(0.05 if now >= window_end else min(0.25, max(0.01, window_start - now)))

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await watch()
    after = processes.snapshot()
    await asyncio.gather(*workers)
    result.seconds = window_end - window_start
    result.completed_in_window = sum(1 for t in done_times if window_start <= t < window_end)
    wall = after.wall - before.wall
    result.server_cpu_pct = _pct(before.server, after.server, wall)
    result.postgres_cpu_pct = _pct(before.postgres, after.postgres, wall)
    result.client_cpu_pct = (after.client - before.client) / wall * 100 if wall > 0 else 0.0
    machine_total = after.machine_total - before.machine_total
    result.machine_cpu_pct = (
        (after.machine_busy - before.machine_busy) / machine_total * 100 if machine_total else 0.0
    )
    if rss:
        result.server_rss_mb = rss[-1]
        result.server_rss_peak_mb = max(rss)
    return result


def chat_body(prompt: str) -> dict[str, object]:
    return {"model": MODEL, "messages": messages_for(prompt)}


def traffic(
    exact: list[RealEntry], semantic: list[RealEntry], tenants_keys: list[str], seed: int
) -> dict[str, Callable[[int], Request]]:
    """Request makers per class; indexes come from one counter per class."""
    miss_rng = random.Random(seed)  # noqa: S311 (benchmark draws, not security)
    direct_rng = random.Random(seed + 1)  # noqa: S311 (benchmark draws, not security)
    order = random.Random(seed + 2)  # noqa: S311 (benchmark draws, not security)
    exact = order.sample(exact, len(exact))
    semantic = order.sample(semantic, len(semantic))

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def exact_hit(i: int) -> Request:
        entry = exact[i % len(exact)]
        return "/v1/chat/completions", auth(entry.tenant.api_key), chat_body(entry.pair.prompt)

    def semantic_hit(i: int) -> Request:
        entry = semantic[i % len(semantic)]
        return "/v1/chat/completions", auth(entry.tenant.api_key), chat_body(entry.pair.paraphrase)

    def miss(i: int) -> Request:
        key = tenants_keys[i % len(tenants_keys)]
        return "/v1/chat/completions", auth(key), chat_body(miss_prompt(i, miss_rng))

    def direct(i: int) -> Request:
        return "/chat/completions", {"Authorization": "Bearer bench"}, chat_body(miss_prompt(i, direct_rng))

    return {
        "exact hit, 1 client": exact_hit,
        "semantic hit, 1 client": semantic_hit,
        "miss, 1 client": miss,
        "model direct, 1 client": direct,
        "exact hit": exact_hit,
        "semantic hit": semantic_hit,
        "miss": miss,
        "model direct": direct,
    }


SINGLE_CLIENT = ", 1 client"
"""Classes with this suffix run one request at a time: the cost of a request without queueing."""


class DejaProcess:
    """`deja serve` on a free loopback port, in a subprocess of its own."""

    def __init__(self, database_url: str, config_path: Path, state_dir: Path, port: int) -> None:
        self.port = port
        self.log_path = state_dir / "deja-serve.log"
        env = {
            **os.environ,
            "DEJA_DATABASE_URL": database_url,
            "DEJA_CONFIG": str(config_path),
            "DEJA_DATA_DIR": str(state_dir),
            "DEJA_LOG_LEVEL": "WARNING",
            "DEJA_MIGRATE_ON_START": "false",
            # The semantic classes resend paraphrases: aliases would make them exact-tier hits.
            "DEJA_CACHE__MAX_ALIASES_PER_ENTRY": "0",
        }
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),  # workers: the default (one per core)
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"deja serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"deja serve did not become ready in {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def router_config(fake_base_url: str) -> str:
    return f"""
[[upstreams]]
name = "fake"
base_url = "{fake_base_url}"
timeout_s = 30
max_retries = 0
max_concurrency = 1024
"""


def tree_cpu_s(root: psutil.Process) -> float:
    """CPU seconds (user and system) of a process and all its children."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def new_tenant_key(url: str, name: str) -> str:
    """A new tenant on the database at `url`, and its first API key."""
    from app.db.engine import create_engine, create_sessionmaker, transaction
    from app.settings import get_settings
    from app.tenants.service import TenantService

    engine = create_engine(url, get_settings())
    try:
        async with transaction(create_sessionmaker(engine), system=True) as session:
            created = await TenantService(session, name).create(name)
            return created.first_key.new.key
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class ScratchDeja:
    """`deja serve` on a fresh embedded Postgres beside the project's fake model, with one tenant."""

    server: DejaProcess
    key: str  # the tenant's API key
    fake_base_url: str
    postmaster_pid: int


@contextlib.contextmanager
def scratch_deja(name: str, *, workers: int = 1, fake_latency_ms: float = 50.0) -> Iterator[ScratchDeja]:
    """A fresh embedded Postgres, the fake model and `deja serve` with `workers` workers on them,
    and a tenant called `name`; all stopped and removed on exit."""
    from app.toolkit.fakellm.config import FakeLLMConfig
    from app.toolkit.fakellm.server import FakeLLMServer
    from app.toolkit.scratch import scratch_database

    with scratch_database(f"deja-{name}-") as scratch:
        fake = FakeLLMServer(FakeLLMConfig(latency_ms=fake_latency_ms, seed=0)).start()
        server: DejaProcess | None = None
        try:
            key = asyncio.run(new_tenant_key(scratch.url, name))
            config = scratch.folder / "router.toml"
            config.write_text(router_config(fake.base_url))
            os.environ["DEJA_WORKERS"] = str(workers)
            server = DejaProcess(scratch.url, config, scratch.folder, free_port())
            server.wait_ready()
            yield ScratchDeja(server, key, fake.base_url, scratch.postmaster_pid)
        finally:
            if server is not None:
                server.stop()
            fake.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
