"""`deja bench`: load the cache, time its lookups, drive HTTP traffic, write the report."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import typer
from rich.console import Console
from rich.markdown import Markdown

from app.settings import Settings, get_settings

QUICK = {
    "entries": 2_000,
    "tenants": 3,
    "concurrency": 8,
    "seconds": 2.0,
    "warmup": 0.5,
    "real_per_tenant": 40,
    "exact_queries": 50,
    "semantic_queries": 40,
    "recall_queries": 30,
    "live_inserts": 50,
}
FULL = {
    "entries": 100_000,
    "tenants": 10,
    "concurrency": 16,
    "seconds": 20.0,
    "warmup": 3.0,
    "real_per_tenant": 300,
    "exact_queries": 1_000,
    "semantic_queries": 600,
    "recall_queries": 300,
    "live_inserts": 1_000,
}


def bench(
    entries: Annotated[
        int | None, typer.Option(help="Cache entries to load (synthetic bulk). [100000; quick 2000]")
    ] = None,
    tenants: Annotated[
        int | None, typer.Option(help="Tenants the entries are spread over. [10; quick 3]")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Concurrent HTTP requests. [16; quick 8]")] = None,
    seconds: Annotated[
        float | None, typer.Option(help="Measured seconds per traffic class. [20; quick 2]")
    ] = None,
    warmup: Annotated[
        float | None, typer.Option(help="Warm-up seconds before each class. [3; quick 0.5]")
    ] = None,
    real_per_tenant: Annotated[
        int | None, typer.Option(help="Real prompts stored per tenant through the service (at most 428).")
    ] = None,
    fake_latency_ms: Annotated[float, typer.Option(help="Latency of the fake model.")] = 300.0,
    load_generator: Annotated[
        str,
        typer.Option(
            help="Throughput classes: wrk (a C load generator, so the client is not the limit), httpx "
            "(the Python client in this process), or auto: wrk when it is installed."
        ),
    ] = "auto",
    report: Annotated[
        Path, typer.Option(help="Markdown report; plots go to a folder of the same name.")
    ] = Path("docs/benchmarks.md"),
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes, for CI and smoke tests.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    database: Annotated[
        str,
        typer.Option(
            help="temp: a fresh embedded Postgres, removed afterwards; configured: DEJA_DATABASE_URL "
            "or the embedded one in DEJA_DATA_DIR (bench tenants are removed afterwards)."
        ),
    ] = "temp",
    target_url: Annotated[
        str | None,
        typer.Option(help="A running Déjà (loopback) on the configured database, instead of starting one."),
    ] = None,
    fake_url: Annotated[
        str | None,
        typer.Option(help="A running fake model (loopback, ending in /v1), instead of starting one."),
    ] = None,
) -> None:
    """Benchmark the cache: bulk load, in-process lookup figures and recall, HTTP traffic per class.

    Runs on loopback only and stops by itself; writes a markdown report with tables and plots."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # found out now, not after the run
        typer.echo(
            "error: deja bench draws its plots with matplotlib, which a serving install leaves out: "
            "pip install 'deja[tools]' (or make tools).",
            err=True,
        )
        raise typer.Exit(2)
    from app.toolkit.bench.http import require_loopback
    from app.toolkit.bench.runner import Sizes

    base = QUICK if quick else FULL
    sizes = Sizes(
        entries=entries if entries is not None else int(base["entries"]),
        tenants=tenants if tenants is not None else int(base["tenants"]),
        concurrency=concurrency if concurrency is not None else int(base["concurrency"]),
        seconds=seconds if seconds is not None else float(base["seconds"]),
        warmup=warmup if warmup is not None else float(base["warmup"]),
        real_per_tenant=real_per_tenant if real_per_tenant is not None else int(base["real_per_tenant"]),
        exact_queries=int(base["exact_queries"]),
        semantic_queries=int(base["semantic_queries"]),
        recall_queries=int(base["recall_queries"]),
        live_inserts=int(base["live_inserts"]),
        load_generator=load_generator,
    )
    if load_generator not in ("auto", "wrk", "httpx"):
        raise typer.BadParameter("expected auto, wrk or httpx", param_hint="--load-generator")
    if database not in ("temp", "configured"):
        raise typer.BadParameter("expected temp or configured", param_hint="--database")
    if target_url and (database != "configured" or not fake_url):
        raise typer.BadParameter(
            "a running server must share the benchmark's data and model: "
            "give --database configured and the --fake-url that server calls",
            param_hint="--target-url",
        )
    if sizes.entries < 0 or sizes.tenants < 1 or sizes.concurrency < 1 or sizes.seconds <= 0:
        raise typer.BadParameter("sizes must be positive")
    try:
        for url, what in ((target_url, "--target-url"), (fake_url, "--fake-url")):
            if url:
                require_loopback(url, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    argv = sys.argv[sys.argv.index("bench") + 1 :] if "bench" in sys.argv else []
    command = shlex.join(["deja", "bench", *argv])
    console = Console()
    settings = get_settings()
    with _database(settings, database) as (url, postmaster_pid, description):
        from app.toolkit.bench.runner import run

        result = asyncio.run(
            run(
                settings,
                url,
                postmaster_pid,
                description,
                sizes,
                fake_latency_ms,
                report,
                quick,
                seed,
                command,
                target_url,
                fake_url,
                console,
                cleanup=database == "configured",
            )
        )
    from app.toolkit.bench.report import render_markdown

    console.print(Markdown(render_markdown(result, images=False)))
    console.print(f"report: {report}" + (f", plots: {', '.join(result.plots)}" if result.plots else ""))


@contextmanager
def _database(settings: Settings, mode: str) -> Iterator[tuple[str, int | None, str]]:
    """The database URL, the postmaster's pid when it runs here, and a description for the report."""
    from app.toolkit.scratch import postmaster_pid, scratch_database

    if mode == "temp":
        with scratch_database("deja-bench-") as scratch:
            yield scratch.url, scratch.postmaster_pid, "a fresh embedded Postgres (pip wheel), local socket"
        return
    from app.db.migrate import database_url

    url = database_url(settings, say=lambda line: typer.echo(f"deja: {line}", err=True))
    parts = urlsplit(url.replace("+asyncpg", ""))
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    if host and not host.startswith("/") and host not in ("localhost", "::1") and not host.startswith("127."):
        raise typer.BadParameter(
            f"the configured database {host!r} is not on this machine", param_hint="--database"
        )
    pid = (
        postmaster_pid(settings.data_dir.expanduser().resolve() / "pg") if not settings.database_url else None
    )
    try:
        yield url, pid, "the configured database" + (" (embedded)" if pid else "")
    finally:
        from app.db.embedded import running_embedded

        running = running_embedded()
        if running is not None:
            running.stop()
