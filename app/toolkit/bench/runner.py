"""The benchmark's phases in order: load, in-process figures, HTTP traffic, report."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import delete, text

from app.cache.service import CacheService
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.models import Tenant
from app.toolkit.bench import load as loading
from app.toolkit.bench import wrk
from app.toolkit.bench.http import (
    SINGLE_CLIENT,
    ClassResult,
    DejaProcess,
    Processes,
    drive,
    free_port,
    router_config,
    traffic,
)
from app.toolkit.bench.prompts import TEMPLATE_PAIRS
from app.toolkit.bench.report import BenchConfig, BenchResult, Machine, plot, render_markdown
from app.toolkit.bench.server_side import ServerSideResult, run_server_side
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer


@dataclass
class Sizes:
    entries: int
    tenants: int
    concurrency: int
    seconds: float
    warmup: float
    real_per_tenant: int
    exact_queries: int
    semantic_queries: int
    recall_queries: int
    live_inserts: int
    # Throughput classes: wrk (when installed, with "auto"), or the httpx client in this process.
    load_generator: str = "auto"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def run(
    settings: Settings,
    url: str,
    postmaster_pid: int | None,
    description: str,
    sizes: Sizes,
    fake_latency_ms: float,
    report: Path,
    quick: bool,
    seed: int,
    command: str,
    target_url: str | None,
    fake_url: str | None,
    console: Console,
    *,
    cleanup: bool,
) -> BenchResult:
    machine = Machine.detect()
    run_id = uuid.uuid4().hex[:8]
    engine = create_engine(url, settings)
    sessionmaker = create_sessionmaker(engine)
    # Aliases off: a paraphrase measured twice must go through the semantic tier both times
    # (an alias hit is the exact tier's probe, measured by the exact classes).
    cache = CacheService.create(settings.cache.model_copy(update={"max_aliases_per_entry": 0}))
    tenants: list[loading.BenchTenant] = []
    try:
        async with engine.connect() as conn:
            machine.postgres = str((await conn.execute(text("SHOW server_version"))).scalar_one()).split()[0]
            machine.pgvector = str(
                (
                    await conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
                ).scalar_one()
            )
            existing: int = (await conn.execute(text("SELECT count(*) FROM cache_entries"))).scalar_one()
        async with transaction(sessionmaker, system=True) as session:
            await cache.prepare(session)
        embedder = cache.embedder

        with _progress(console) as bar:
            tenants = await loading.create_tenants(sessionmaker, sizes.tenants, run_id)
            result = loading.LoadResult(
                tenants=tenants, groups=[], real=[], bases=np.zeros((0, 0), np.float32)
            )
            # The synthetic rows are drawn around real prompt embeddings (all templates; fewer
            # for small loads, where they would only slow a smoke run down).
            base_count = max(64, min(len(TEMPLATE_PAIRS), sizes.entries // 50))
            base_prompts = [p.prompt for p in random.Random(seed).sample(TEMPLATE_PAIRS, base_count)]  # noqa: S311
            task = bar.add_task("embedding base prompts", total=len(base_prompts))
            bases = []
            for start in range(0, len(base_prompts), 32):
                chunk = base_prompts[start : start + 32]
                bases.append(await embedder.embed(chunk))
                bar.advance(task, len(chunk))
            result.bases = np.concatenate(bases).astype(np.float32)
            result.groups = loading.plan_groups(tenants, sizes.entries)
            vectors = loading.draw_vectors(result.bases, sizes.entries, np.random.default_rng(seed))
            task = bar.add_task(f"bulk load ({sizes.entries:,} rows)", total=sizes.entries)
            await loading.bulk_load(
                engine,
                result.groups,
                vectors,
                embedder.name,
                embedder.dimension,
                run_id,
                # Only a database of the benchmark's own may lose its index for a while.
                rebuild_index=not cleanup and existing == 0,
                result=result,
                progress=lambda n: bar.advance(task, n),
                on_step=lambda step: bar.update(task, description=f"bulk load: {step}"),
            )
            bar.update(task, description=f"bulk load ({sizes.entries:,} rows)")
            del vectors
            task = bar.add_task(
                "real prompts via CacheService.store",
                total=sizes.tenants * min(sizes.real_per_tenant, len(TEMPLATE_PAIRS)),
            )
            started = time.perf_counter()
            result.real = await loading.store_real_prompts(
                sessionmaker, cache, tenants, sizes.real_per_tenant, seed, lambda n: bar.advance(task, n)
            )
            result.real_store_s = time.perf_counter() - started
            task = bar.add_task("single-row inserts into the live index", total=sizes.live_inserts)
            live = loading.draw_vectors(result.bases, sizes.live_inserts, np.random.default_rng(seed + 7))
            started = time.perf_counter()
            await loading.live_inserts(
                sessionmaker, cache, result.groups, live, run_id, lambda n: bar.advance(task, n)
            )
            result.live_insert_s = time.perf_counter() - started
            result.live_insert_rows = sizes.live_inserts
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE cache_entries"))
            result.table_bytes, result.index_bytes = await loading.sizes(engine, embedder.name)

            total = (
                sizes.exact_queries
                + min(sizes.semantic_queries, len(result.real))
                + 2 * min(sizes.recall_queries, len(result.real))
            )
            task = bar.add_task("in-process lookups and recall", total=total)
            side = await run_server_side(
                engine,
                sessionmaker,
                cache,
                result,
                exact_queries=sizes.exact_queries,
                semantic_queries=sizes.semantic_queries,
                recall_queries=sizes.recall_queries,
                seed=seed,
                progress=lambda n: bar.advance(task, n),
            )

        config = BenchConfig(
            command=command,
            entries=sizes.entries,
            tenants=sizes.tenants,
            real_per_tenant=min(sizes.real_per_tenant, len(TEMPLATE_PAIRS)),
            concurrency=sizes.concurrency,
            seconds=sizes.seconds,
            warmup_s=sizes.warmup,
            fake_latency_ms=fake_latency_ms,
            seed=seed,
            quick=quick,
            database=description + ("" if existing == 0 else f", {existing:,} entries there before"),
            server=(
                "a running server (given --target-url)"
                if target_url
                else f"`deja serve` subprocess, {len(os.sched_getaffinity(0))} worker(s) (the default: one per core), on 127.0.0.1"
            ),
            embedder=f"{embedder.name} ({embedder.dimension}-d), {settings.cache.embedder_threads} thread(s)",
            top_k=settings.cache.top_k,
            ef_search=settings.cache.ef_search,
        )
        bench_result = BenchResult(config=config, machine=machine, load=result, server_side=side)
        bench_result.http = await _http_phase(
            url, postmaster_pid, sizes, fake_latency_ms, seed, result, side, target_url, fake_url, console
        )
        machine.load_end = os.getloadavg()
        plot_dir = report.parent / report.stem
        bench_result.plots = plot(bench_result, plot_dir, report.parent)
        report.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(report.write_text, render_markdown(bench_result) + _kept_section(report))
        return bench_result
    finally:
        if cleanup and tenants:
            async with transaction(sessionmaker, system=True) as session:
                await session.execute(delete(Tenant).where(Tenant.id.in_([t.id for t in tenants])))
        await cache.aclose()
        await engine.dispose()


# Sections of the report written by other tools (the side-by-side run against GPTCache,
# scripts/peer_bench.sh; the many-tenants run, app.toolkit.bench.tenants) between these markers
# survive a rerun of `deja bench`.
KEPT = re.compile(r"<!-- kept: [^>]*-->.*?<!-- /kept -->", re.DOTALL)


def _kept_section(report: Path) -> str:
    text = report.read_text() if report.exists() else ""
    return "".join("\n" + block + "\n" for block in KEPT.findall(text))


# The classes whose targets are a rate at a latency bound (`report.targets`): with wrk they also run
# at fewer connections than the configured concurrency.
SWEPT = ("exact hit", "semantic hit")
AT_CONNECTIONS = ", {} connections"


def sweep_connections(concurrency: int) -> list[int]:
    """The connection counts below `concurrency` a swept class also runs at: 2, 4, 8, ..."""
    counts, connections = [], 2
    while connections < concurrency:
        counts.append(connections)
        connections *= 2
    return counts


async def _http_phase(
    url: str,
    postmaster_pid: int | None,
    sizes: Sizes,
    fake_latency_ms: float,
    seed: int,
    load: loading.LoadResult,
    side: ServerSideResult,
    target_url: str | None,
    fake_url: str | None,
    console: Console,
) -> list[ClassResult]:
    if sizes.load_generator == "wrk" and not wrk.available():
        raise RuntimeError("--load-generator wrk: no wrk on PATH (Debian/Ubuntu: apt-get install wrk)")
    use_wrk = sizes.load_generator == "wrk" or (sizes.load_generator == "auto" and wrk.available())
    state = Path(tempfile.mkdtemp(prefix="deja-bench-http-"))
    fake: FakeLLMServer | None = None
    server: DejaProcess | None = None
    try:
        if fake_url is None:
            fake = FakeLLMServer(FakeLLMConfig(latency_ms=fake_latency_ms, seed=seed)).start()
            model_url = fake.base_url
        else:
            model_url = fake_url.rstrip("/")
        if target_url is None:
            config_path = state / "deja.toml"
            config_path.write_text(router_config(model_url))
            server = DejaProcess(url, config_path, state, free_port())
            await asyncio.to_thread(server.wait_ready)
            deja_url = server.url
        else:
            deja_url = target_url.rstrip("/")
        processes = Processes(server.process.pid if server else None, postmaster_pid)
        semantic = side.hit_paraphrases or load.real
        makers = traffic(load.real, semantic, [t.api_key for t in load.tenants], seed)
        limits = httpx.Limits(max_connections=sizes.concurrency, max_keepalive_connections=sizes.concurrency)
        results: list[ClassResult] = []
        async with (
            httpx.AsyncClient(base_url=deja_url, limits=limits, timeout=60) as deja_client,
            httpx.AsyncClient(base_url=model_url, limits=limits, timeout=60) as model_client,
        ):
            with _progress(console) as bar:
                for name, make in makers.items():
                    single = name.endswith(SINGLE_CLIENT)
                    task = bar.add_task(f"HTTP {name}", total=100)
                    direct = name.startswith("model direct")
                    client = model_client if direct else deja_client

                    def tick(share: float, task: TaskID = task) -> None:
                        bar.update(task, completed=share * 100)

                    if use_wrk and not single:
                        bar.update(task, completed=50)
                        results.append(
                            await wrk.drive_wrk(
                                name,
                                "model" if direct else "deja",
                                model_url if direct else deja_url,
                                make,
                                concurrency=sizes.concurrency,
                                warmup_s=sizes.warmup,
                                seconds=sizes.seconds,
                                processes=processes,
                            )
                        )
                        # The throughput targets are rates at a latency bound: the same class at
                        # fewer connections, where queueing adds less, for the highest rate within it.
                        for connections in sweep_connections(sizes.concurrency) if name in SWEPT else ():
                            results.append(
                                await wrk.drive_wrk(
                                    f"{name}{AT_CONNECTIONS.format(connections)}",
                                    "deja",
                                    deja_url,
                                    make,
                                    concurrency=connections,
                                    warmup_s=min(sizes.warmup, 1.0),
                                    seconds=sizes.seconds / 2,
                                    processes=processes,
                                )
                            )
                        bar.update(task, completed=100)
                        continue
                    results.append(
                        await drive(
                            name,
                            "model" if direct else "deja",
                            client,
                            make,
                            concurrency=1 if single else sizes.concurrency,
                            warmup_s=sizes.warmup,
                            seconds=sizes.seconds / 2 if single else sizes.seconds,
                            processes=processes,
                            on_tick=tick,
                        )
                    )
        return results
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        if fake is not None:
            fake.stop()
        shutil.rmtree(state, ignore_errors=True)
