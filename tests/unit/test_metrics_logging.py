"""Logs are JSON lines with the request's fields; prompt text stays out unless log_prompts is on."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import structlog

from app.observability import logging as deja_logging
from app.settings import Settings

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def configure(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Lines]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def setup(**settings: Any) -> Lines:
        deja_logging.configure_logging(Settings(database_url="postgresql+asyncpg://x@/y", **settings))

        def lines() -> list[dict[str, Any]]:
            return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

        return lines

    yield setup
    root.handlers, level = saved
    root.setLevel(level)
    deja_logging._log_prompts = False
    structlog.contextvars.clear_contextvars()


def test_request_line_carries_ids_status_model_latency(configure: Callable[..., Lines]) -> None:
    lines = configure(log_level="INFO")
    tenant_id = uuid.uuid4()
    deja_logging.log_request(
        request_id="req-1",
        tenant_id=tenant_id,
        model="gpt-4o-mini",
        model_used="gpt-4o-mini",
        cache_status="HIT",
        tier="semantic",
        similarity=0.934567,
        http_status=200,
        latency_ms=4.567,
        tokens=0,
        cost_usd=Decimal("0.000150"),
    )
    (line,) = lines()
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["request_id"] == "req-1"
    assert line["tenant_id"] == str(tenant_id)
    assert line["cache_status"] == "HIT"
    assert line["model"] == "gpt-4o-mini"
    assert line["latency_ms"] == 4.57
    assert line["similarity"] == 0.9346
    assert line["cost_usd"] == "0.000150"
    assert "timestamp" in line


def test_bound_fields_reach_standard_library_loggers(configure: Callable[..., Lines]) -> None:
    lines = configure(log_level="INFO")
    # Another uvicorn in the same test run (the fake model's) may have set its logger's level.
    uvicorn_error = logging.getLogger("uvicorn.error")
    previous, uvicorn_error.level = uvicorn_error.level, logging.NOTSET
    deja_logging.bind_request("req-2", "tenant-x")
    logging.getLogger("app.completions.pipeline").warning("could not book", extra={"entry": "e1"})
    uvicorn_error.info("Started server process", extra={"color_message": "\x1b[1m"})
    uvicorn_error.setLevel(previous)
    first, second = lines()
    assert first["request_id"] == "req-2"
    assert first["tenant_id"] == "tenant-x"
    assert first["entry"] == "e1"
    assert first["logger"] == "app.completions.pipeline"
    assert second["event"] == "Started server process"
    assert "color_message" not in second


def test_prompts_are_redacted_by_default(configure: Callable[..., Lines]) -> None:
    lines = configure(log_level="INFO")
    log = structlog.stdlib.get_logger("test")
    log.info("lookup", prompt="What is my salary?", messages=[{"role": "user"}], model="m")
    logging.getLogger("test").info("stdlib", extra={"response": "You earn 100k"})
    first, second = lines()
    assert first["prompt"] == "[redacted: 18 chars]"
    assert first["messages"] == "[redacted: 1 items]"
    assert first["model"] == "m"
    assert second["response"] == "[redacted: 13 chars]"
    assert deja_logging.redact("secret") == "[redacted: 6 chars]"


def test_prompts_are_logged_when_asked(configure: Callable[..., Lines]) -> None:
    lines = configure(log_level="INFO", log_prompts=True)
    structlog.stdlib.get_logger("test").info("lookup", prompt="What is my salary?")
    (line,) = lines()
    assert line["prompt"] == "What is my salary?"
    assert deja_logging.redact("secret") == "secret"


def test_failed_requests_log_at_warning(configure: Callable[..., Lines]) -> None:
    lines = configure(log_level="INFO")
    deja_logging.log_request(
        request_id="r", tenant_id=None, model="m", cache_status="error", http_status=502, latency_ms=1
    )
    (line,) = lines()
    assert line["level"] == "warning"
    assert "tenant_id" not in line or line["tenant_id"] is None


async def test_unhandled_exceptions_are_logged_with_traceback(configure: Callable[..., Lines]) -> None:
    from app.errors import Unprocessable

    lines = configure(log_level="INFO")
    try:
        raise ValueError("bug")
    except ValueError as exc:
        await deja_logging.log_unhandled(exc, {"path": "/v1/x", "method": "POST"})
    await deja_logging.log_unhandled(Unprocessable("bad"), {"path": "/v1/x"})
    (line,) = lines()
    assert line["event"] == "unhandled exception"
    assert line["path"] == "/v1/x"
    assert "ValueError: bug" in line["exception"]
