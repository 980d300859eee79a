"""The `deja` command. Every sub-command is documented in docs/cli.md."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from app.settings import Settings, get_settings
from app.toolkit.bench.cli import bench
from app.toolkit.fakellm.cli import fake_llm
from app.toolkit.ml.cli import embedder_app, verifier_app
from app.toolkit.replay.cli import replay_command

T = TypeVar("T")

cli = typer.Typer(
    name="deja",
    help="Déjà: a semantic cache for LLM responses, on Postgres and pgvector.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenants_cli = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
keys_cli = typer.Typer(help="Issue and revoke API keys.", no_args_is_help=True)
cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(keys_cli, name="keys")
cli.command("fake-llm")(fake_llm)
cli.command("replay")(replay_command)
cli.command("bench")(bench)
cli.add_typer(
    verifier_app, name="verifier", help="Train and export the cross-encoder verifier (needs PyTorch)."
)
cli.add_typer(embedder_app, name="embedder", help="Export the embedder to ONNX (needs PyTorch).")


def _database_url(settings: Settings, *, migrate: bool = True) -> str:
    """The configured database, or the embedded one (started or joined), at the schema head."""
    from app.db import migrate as migrations
    from app.db.embedded import resolve_database_url

    url = resolve_database_url(settings)
    if migrate:
        migrations.upgrade(url)
    return url


def _with_session(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run `fn(session)` in one system-context transaction on the configured database."""
    from app.db.engine import create_engine, create_sessionmaker, transaction

    settings = get_settings()
    url = _database_url(settings)

    async def run() -> T:
        engine = create_engine(url, settings)
        try:
            async with transaction(create_sessionmaker(engine), system=True) as session:
                return await fn(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, default=str))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [DEJA_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [DEJA_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [DEJA_WORKERS].")] = None,
    migrate: Annotated[
        bool | None, typer.Option(help="Upgrade the schema first [DEJA_MIGRATE_ON_START].")
    ] = None,
) -> None:
    """Run the API. Without DEJA_DATABASE_URL, start (or join) the embedded Postgres in DEJA_DATA_DIR."""
    import uvicorn

    from app.db.embedded import running_embedded

    settings = get_settings()
    url = _database_url(settings, migrate=settings.migrate_on_start if migrate is None else migrate)
    # Worker processes read the resolved URL instead of starting servers of their own.
    os.environ["DEJA_DATABASE_URL"] = url
    get_settings.cache_clear()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so that
    # the embedded Postgres below is left cleanly instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    worker_count = workers or settings.workers
    metrics_dir: Path | None = None
    if worker_count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts in its own process; /metrics merges their files from this directory.
        from app.observability.metrics import prepare_multiprocess_dir

        metrics_dir = settings.data_dir.resolve() / "prometheus" / f"serve-{os.getpid()}"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = prepare_multiprocess_dir(metrics_dir)
    try:
        uvicorn.run(
            "app.asgi:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=worker_count,
            log_config=None,
            timeout_graceful_shutdown=30,
            proxy_headers=True,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        embedded = running_embedded()
        if embedded is not None:
            embedded.stop()


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (default: to the newest revision)."""
    from app.db import migrate as migrations

    migrations.upgrade(_database_url(get_settings(), migrate=False), revision)
    typer.echo(f"schema at {revision}")


@tenants_cli.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="A unique tenant name.")]) -> None:
    """Create a tenant and its first API key; prints {"tenant_id", "api_key"} as JSON. The key is shown once."""
    from app.tenants.repository import KeyRepository, TenantRepository

    async def create(session: Any) -> dict[str, str]:
        tenant = await TenantRepository(session).create(name)
        _, new = await KeyRepository(session).issue(tenant.id, name="initial")
        return {"tenant_id": str(tenant.id), "api_key": new.key}

    _print_json(_run_or_exit(lambda: _with_session(create)))


@tenants_cli.command("list")
def tenants_list() -> None:
    """List tenants as JSON lines."""
    from app.tenants.repository import TenantRepository

    async def fetch(session: Any) -> list[dict[str, Any]]:
        return [
            {
                "tenant_id": str(t.id),
                "name": t.name,
                "status": t.status,
                "created_at": t.created_at.isoformat(),
            }
            for t in await TenantRepository(session).list()
        ]

    for row in _with_session(fetch):
        _print_json(row)


@keys_cli.command("create")
def keys_create(
    tenant_id: Annotated[
        uuid.UUID | None, typer.Option("--tenant", help="Tenant the key belongs to.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin key (no tenant).")] = False,
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
) -> None:
    """Issue a key; prints {"key_id", "api_key", "prefix"} as JSON. The key is shown once."""
    from app.errors import NotFound
    from app.tenants.repository import KeyRepository, TenantRepository

    if admin == (tenant_id is not None):
        raise typer.BadParameter("give either --tenant ID or --admin")

    async def issue(session: Any) -> dict[str, str]:
        if tenant_id is not None and await TenantRepository(session).get(tenant_id) is None:
            raise NotFound(f"No tenant {tenant_id}.")
        key, new = await KeyRepository(session).issue(
            tenant_id, role="admin" if admin else "tenant", name=name
        )
        return {"key_id": str(key.id), "api_key": new.key, "prefix": new.prefix}

    _print_json(_run_or_exit(lambda: _with_session(issue)))


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; requests with it get 401 (within seconds on running servers)."""
    from app.errors import NotFound
    from app.tenants.repository import KeyRepository

    async def revoke(session: Any) -> dict[str, str]:
        keys = KeyRepository(session)
        key = await keys.get(key_id)
        if key is None:
            raise NotFound(f"No key {key_id}.")
        key = await keys.revoke(key)
        return {"key_id": str(key.id), "revoked_at": str(key.revoked_at)}

    _print_json(_run_or_exit(lambda: _with_session(revoke)))


@cli.command("eval")
def eval_pairs(
    pairs: Annotated[
        Path, typer.Option("--pairs", help="PAWS TSV, CSV (sentence1,sentence2,label) or JSONL {a,b,label}.")
    ],
    plot: Annotated[Path | None, typer.Option(help="Where to write the precision/recall PNG.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate a seeded random sample of this many pairs.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    tenant_settings: Annotated[
        str | None,
        typer.Option("--settings", help="Tenant cache settings as JSON, e.g. '{\"min_similarity\": 0.85}'."),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(help="Also run the decision without the cross-encoder (cosine floor and rules only)."),
    ] = False,
) -> None:
    """Precision, recall, false-hit rate and hit rate of the hit decision on labelled pairs.

    Each pair's first prompt is stored and its second looked up, through the service's own
    lookup path, on the configured database (a throw-away tenant, removed afterwards). Plain
    cosine >= 0.9 on the same pairs is printed beside it."""
    import random

    import msgspec
    from rich.progress import Progress

    from app.cache.policy import parse_policy
    from app.cache.service import CacheService
    from app.db.engine import create_engine, create_sessionmaker, transaction
    from app.errors import DejaError
    from app.toolkit.evaluation.metrics import format_evaluation, plot_evaluation, read_pairs
    from app.toolkit.evaluation.runner import evaluation_json, run_pairs

    try:
        labelled = read_pairs(pairs)
        policy = parse_policy(json.loads(tenant_settings) if tenant_settings else None)
    except (DejaError, json.JSONDecodeError) as exc:
        typer.echo(f"error: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(2) from exc
    if limit is not None and limit < len(labelled):
        labelled = random.Random(seed).sample(labelled, limit)  # noqa: S311 (sampling, not security)
    policies = {"deja": policy}
    if compare:
        policies["rules, no cross-encoder"] = msgspec.structs.replace(policy, cross_encoder_min_score=None)
    settings = get_settings()
    url = _database_url(settings)

    async def run() -> Any:
        engine = create_engine(url, settings)
        sessionmaker = create_sessionmaker(engine)
        cache = CacheService.create(settings.cache)
        try:
            async with transaction(sessionmaker, system=True) as session:
                await cache.prepare(session)
            with Progress(transient=True, disable=as_json) as bar:
                task = bar.add_task(f"{pairs.name}", total=len(labelled))
                return await run_pairs(
                    sessionmaker,
                    cache,
                    labelled,
                    policies,
                    name=pairs.name,
                    progress=lambda n: bar.advance(task, n),
                )
        finally:
            await cache.aclose()
            await engine.dispose()

    evaluations = asyncio.run(run())
    plot_path = plot or Path(f"{pairs.stem}-precision-recall.png")
    plot_evaluation(evaluations["deja"], plot_path, operating_score=None)
    if as_json:
        _print_json({"runs": [evaluation_json(e) for e in evaluations.values()], "plot": str(plot_path)})
    else:
        for evaluation in evaluations.values():
            typer.echo(format_evaluation(evaluation) + "\n")
        typer.echo(f"precision/recall plot: {plot_path}")


@cli.command()
def psql() -> None:
    """Open a psql shell on the configured database (the embedded one by default)."""
    from app.db.embedded import running_embedded

    url = _database_url(get_settings(), migrate=False)
    embedded = running_embedded()
    binary = shutil.which("psql")
    if embedded is not None:
        binary = str(embedded.server.bin_path / "psql")
    if binary is None:
        typer.echo("psql is not installed; install the PostgreSQL client.", err=True)
        raise typer.Exit(1)
    libpq_url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    code = subprocess.run([binary, libpq_url], check=False).returncode  # noqa: S603 (our own binary and URL)
    raise typer.Exit(code)


def _exit_on_signal(signum: int, frame: object) -> None:
    # Reached only after uvicorn's graceful shutdown finished: a clean exit.
    raise SystemExit(0)


def _run_or_exit(fn: Callable[[], T]) -> T:
    from app.errors import DejaError

    try:
        return fn()
    except DejaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
