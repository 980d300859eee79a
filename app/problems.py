"""Errors as RFC 9457 problem details, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

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
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = request_id_of(request.scope)
    if extra:
        body.update(extra)
    # The same, as OpenAI's clients read an error: the official SDK takes `error` as the body of
    # the exception it raises (`e.message`, `e.code`), where the problem alone left it blank.
    body["error"] = {"message": detail, "type": slug, "code": slug}
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def handle_deja_error(request: Request[Any, Any, Any], exc: DejaError) -> Response[dict[str, Any]]:
    return problem(
        exc.status_code,
        exc.title,
        exc.detail,
        slug=exc.slug,
        request=request,
        extra=exc.extra,
        headers=exc.headers,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        log.error("unhandled http error", exc_info=exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
        status, "Error"
    )
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        status, "error"
    )
    return problem(status, title, exc.detail, slug=slug, request=request, extra=extra, headers=exc.headers)


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
