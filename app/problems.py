"""Errors as RFC 9457 problem details, mapped in one place."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db.errors import is_database_outage, is_statement_timeout
from app.errors import DejaError
from app.observability.request_id import request_id_of

log = logging.getLogger("deja.errors")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://deja.dev/problems/"
DATABASE_RETRY_AFTER_S = 5


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    request: Request[Any, Any, Any] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    error: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    instance = None if request is None else (request.url.path, request.scope)
    body = problem_body(status, title, detail, slug=slug, instance=instance, extra=extra, error=error)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    instance: tuple[str, Scope] | None = None,
    extra: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A problem detail's body; `instance`: the request's path and scope (for its id); `error`:
    fields of its OpenAI-shaped `error` in place of the slug's (a provider's `code`, say)."""
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance[0]
        body["request_id"] = request_id_of(instance[1])
    if extra:
        body.update(extra)
    # The same, as OpenAI's clients read an error: the official SDK takes `error` as the body of
    # the exception it raises (`e.message`, `e.code`), where the problem alone left it blank.
    body["error"] = {"message": detail, "type": slug, "code": slug, **(error or {})}
    return body


def handle_deja_error(request: Request[Any, Any, Any], exc: DejaError) -> Response[dict[str, Any]]:
    return problem(
        exc.status_code,
        exc.title,
        exc.detail,
        slug=exc.slug,
        request=request,
        extra=exc.extra,
        headers=exc.headers,
        error=exc.error,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        log.error("unhandled http error", exc_info=exc)
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
        # The first reason in the detail too: a client shows the detail (the SDK's `e.message`),
        # and "Validation failed for POST /v1/cache/lookup" alone says nothing of what to fix.
        detail = f"{detail}: {_reason(exc.extra)}"
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
        status, "Error"
    )
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        status, "error"
    )
    return problem(status, title, detail, slug=slug, request=request, extra=extra, headers=exc.headers)


def _reason(errors: Any) -> str:
    """The first of a validation's errors, as one line ("Expected `str`, got `int` (body: prompt)")."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    if not isinstance(first, dict):
        return str(first)[:300]
    where = ": ".join(str(first[key]) for key in ("source", "key") if first.get(key))
    reason = str(first.get("message", "invalid"))[:300]
    more = f" (and {len(errors) - 1} more)" if isinstance(errors, list) and len(errors) > 1 else ""
    return f"{reason} ({where}){more}" if where else reason + more


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if is_database_outage(exc):
        # Every route that needs Postgres answers the same way while it is unreachable or too slow
        # (a statement past its timeout); the chat routes go on without it (BYPASS) and never get
        # here for an outage.
        slow = is_statement_timeout(exc)
        log.warning("database too slow" if slow else "database unreachable", extra={"path": request.url.path})
        return problem(
            HTTP_503_SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The database did not answer in time; try again shortly."
            if slow
            else "The database is unreachable; try again shortly.",
            slug="database-unavailable",
            request=request,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    log.exception("unexpected error", exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal error",
        "Déjà failed to handle this request; the request id identifies it in the logs.",
        slug="internal",
        request=request,
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DejaError: handle_deja_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


# A request the server cut when it stopped: another worker, or this one restarted, is usually up
# again by then.
STOPPED_RETRY_AFTER_S = 1


def answer_when_stopped(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: a 503 problem detail for a request cut before its response began.

    When a stop's grace period runs out (`DEJA_SHUTDOWN_GRACE_S`), uvicorn cancels the requests
    still running, and one whose response had not begun got its plain-text "Internal Server
    Error" and a traceback in the error log: a bug of the server to its client, not "retry". It
    gets a 503 (`Retry-After`, `Connection: close`), which the official SDKs retry. A response
    under way (a stream) cannot change its status: its connection is closed as before, so that
    its client sees it cut short rather than complete.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if started or task is None:
                raise
            # Answered here: the task ends as a request that was answered.
            task.uncancel()
            detail = "The server stopped before this request was answered; send it again."
            body = problem_body(
                503, "Service unavailable", detail, slug="server-stopping", instance=(scope["path"], scope)
            )
            content = json.dumps(body).encode()
            headers = [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(content)).encode()),
                (b"retry-after", str(STOPPED_RETRY_AFTER_S).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": content, "more_body": False})

    return guarded
