"""`deja replay`: a labelled stream through a running Déjà; wrong hits counted from what was served."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

if TYPE_CHECKING:
    from app.toolkit.replay.runner import Replay


def replay_command(
    file: Annotated[
        Path, typer.Argument(help='JSONL of {"prompt", "answer"}, sent in file order.', exists=True)
    ],
    url: Annotated[str, typer.Option(help="Déjà's base URL.")] = "http://127.0.0.1:8000",
    key: Annotated[
        str, typer.Option(help="The tenant key the stream is sent with.", envvar="DEJA_API_KEY")
    ] = "",
    model: Annotated[str, typer.Option(help="The model named in every request.")] = "gpt-4o-mini",
    compare: Annotated[
        bool, typer.Option(help="Also run the stream on a fresh tenant without a bound (needs --admin-key).")
    ] = False,
    compare_settings: Annotated[
        list[str] | None,
        typer.Option(
            help="Also run on a fresh tenant with these settings (JSON); repeatable; needs --admin-key."
        ),
    ] = None,
    admin_key: Annotated[
        str | None,
        typer.Option(
            help="Admin key: creates the compared tenants, reads the model's price.",
            envvar="DEJA_ADMIN_TOKEN",
        ),
    ] = None,
    target: Annotated[
        float | None, typer.Option(help="Draw this error rate on the plot (the tenant's max_error_rate).")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write the cumulative curves as a PNG.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with per-request curves instead of a table.")
    ] = False,
) -> None:
    """Send a labelled stream through /v1/chat/completions and report hits, wrong hits (content
    served differs from the prompt's own answer), explored requests and cost."""
    # Imported here: the runner brings the openai client, which `deja --help` need not load.
    from app.toolkit.files import decode_json
    from app.toolkit.replay.runner import fresh_tenant, plot, read_price, read_stream, replay

    if not key:
        raise typer.BadParameter("a tenant key is needed (--key or DEJA_API_KEY)", param_hint="--key")
    try:
        given: list[dict[str, Any]] = [decode_json(v) for v in compare_settings or []]
        others: list[dict[str, Any]] = ([{}] if compare else []) + given
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--compare-settings") from None
    if others and not admin_key:
        raise typer.BadParameter("comparing creates tenants: give --admin-key", param_hint="--admin-key")
    try:
        stream = read_stream(file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None

    def tick(done: int) -> None:
        if not as_json and done % 200 == 0:
            typer.echo(f"  {done}/{len(stream)}", err=True)

    async def run() -> list[Replay]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            price = await read_price(client, admin_key, model) if admin_key else None
            bounded = f"tenant (max_error_rate {target:g})" if target is not None else "tenant"
            runs = [await replay(client, stream, key, label=bounded, model=model, price=price, progress=tick)]
            for settings in others:
                other = await fresh_tenant(client, str(admin_key), settings)
                label = ", ".join(f"{k} {v}" for k, v in settings.items()) if settings else "no bound"
                runs.append(
                    await replay(client, stream, other, label=label, model=model, price=price, progress=tick)
                )
            return runs

    try:
        runs = asyncio.run(run())
    except httpx.HTTPError as exc:
        typer.echo(f"replay failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if plot_path is not None:
        plot(runs, plot_path, max_error_rate=target)
    if as_json:
        typer.echo(json.dumps({"stream": str(file), "runs": [r.to_json() for r in runs]}))
        return
    names = list(runs[0].summary())[1:]
    width = max(14, *(len(r.label) + 2 for r in runs))
    typer.echo(f"{'':24}" + "".join(f"{r.label:>{width}}" for r in runs))
    for name in names:
        typer.echo(f"{name:24}" + "".join(f"{r.summary()[name]!s:>{width}}" for r in runs))
