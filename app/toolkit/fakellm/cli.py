"""`deja fake-llm`: serve the fake OpenAI-compatible model server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.toolkit.fakellm.config import FAULT_KINDS, FakeLLMConfig, FaultKind, load_answers, parse_fault

_KINDS = "|".join(sorted(FAULT_KINDS))


def _parse_fail_models(values: list[str]) -> dict[str, str]:
    fail_models: dict[str, str] = {}
    for value in values:
        model, sep, spec = value.partition("=")
        if not sep or not model:
            raise typer.BadParameter(f"expected MODEL=FAULT, got {value!r}", param_hint="--fail-model")
        try:
            parse_fault(spec)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fail-model") from None
        fail_models[model] = spec
    return fail_models


def _parse_kinds(values: list[str]) -> tuple[FaultKind, ...]:
    kinds: list[FaultKind] = []
    for value in values:
        try:
            kinds.append(parse_fault(value).kind)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fail-kind") from None
    return tuple(kinds) or ("500",)


def fake_llm(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    latency_ms: Annotated[float, typer.Option(help="Fixed delay before each answer.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Random extra delay, 0..jitter.")] = 0.0,
    token_latency_ms: Annotated[float, typer.Option(help="Delay between streamed chunks.")] = 0.0,
    fail_rate: Annotated[float, typer.Option(help="Share of calls (0..1) that fail.")] = 0.0,
    fail_kind: Annotated[
        list[str] | None, typer.Option(help=f"Fault drawn for --fail-rate ({_KINDS}); repeatable.")
    ] = None,
    fail_model: Annotated[
        list[str] | None,
        typer.Option(help="MODEL=FAULT, e.g. gpt-broken=500 or gpt-flaky=429*2 (first 2 calls); repeatable."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault and jitter draws.")] = 0,
    timeout_sleep_s: Annotated[float, typer.Option(help="How long a timeout fault hangs.")] = 30.0,
    retry_after_s: Annotated[int, typer.Option(help="Retry-After sent with 429 answers.")] = 1,
    embedding_dim: Annotated[int, typer.Option(help="Embedding size for unknown model names.")] = 384,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require this bearer key (default: accept any).", envvar="FAKE_LLM_API_KEY"),
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            help='JSONL of {"prompt": ..., "answer": ...}: a request whose last user message is the prompt '
            "(after normalisation) gets that answer.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Serve an OpenAI-compatible stand-in model: deterministic answers, latency and injectable faults."""
    try:
        config = FakeLLMConfig(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            token_latency_ms=token_latency_ms,
            fail_rate=fail_rate,
            fail_kinds=_parse_kinds(fail_kind or []),
            fail_models=_parse_fail_models(fail_model or []),
            seed=seed,
            timeout_sleep_s=timeout_sleep_s,
            retry_after_s=retry_after_s,
            embedding_dim=embedding_dim,
            api_key=api_key,
            answers=load_answers(answers) if answers is not None else {},
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"fake model server on http://{host}:{port}/v1 (set OPENAI_BASE_URL to this)", err=True)
    # Imported here: the server's framework is not needed to read `deja --help`.
    import uvicorn

    from app.toolkit.fakellm.app import create_fake_llm_app

    uvicorn.run(
        create_fake_llm_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=2
    )


if __name__ == "__main__":
    typer.run(fake_llm)
