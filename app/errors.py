"""The one exception hierarchy of Déjà.

Every error a client can cause or see is a `DejaError`; `app.asgi` maps them, in one place,
to RFC 9457 problem details. Code below the routes raises these and nothing else on purpose.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DejaError(Exception):
    """Base of every error that becomes a problem detail."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        error: dict[str, str] | None = None,
        booked: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}
        # What the ledger keeps of the error (its `error` column, shown on the dashboard): the
        # detail, or less of it where that quotes a provider, whose message may echo a prompt.
        self.booked = detail if booked is None else booked
        # Fields of the problem's OpenAI-shaped `error` other than the slug's (a provider's own
        # `code`, `param` and `type`, passed on).
        self.error = error or {}


class BadRequest(DejaError):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"


class Unauthorized(DejaError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"

    def __init__(self, detail: str = "A valid API key is required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="deja"'})
        super().__init__(detail, **kwargs)


class Forbidden(DejaError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(DejaError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class RequestTimeout(DejaError):
    status_code = 408
    title = "Request timeout"
    slug = "request-timeout"

    # The rest of the body is not read: the connection cannot carry another request.
    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Connection": "close"})
        super().__init__(detail, **kwargs)


class ClientClosedRequest(DejaError):
    """The client closed the connection before its request had arrived: nobody reads the answer."""

    status_code = 499
    title = "Client closed request"
    slug = "client-closed-request"


class Conflict(DejaError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class PayloadTooLarge(DejaError):
    status_code = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaType(DejaError):
    status_code = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class Unprocessable(DejaError):
    status_code = 422
    title = "Unprocessable request"
    slug = "unprocessable"


class QuotaExceeded(DejaError):
    status_code = 429
    title = "Quota exceeded"
    slug = "quota-exceeded"

    def __init__(self, detail: str, *, retry_after_s: int, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, retry_after_s))
        super().__init__(detail, headers=headers, **kwargs)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DejaError):
    status_code = 503
    title = "Service unavailable"
    slug = "unavailable"


class Billed:
    """`billed`: the (model, usage) of each attempt a provider answered and counted tokens for,
    though its answer could not be used (an empty one): the request is booked for them."""

    billed: tuple[tuple[str, Any], ...] = ()


class UpstreamError(Billed, DejaError):
    """Every upstream model failed after retries and fallbacks."""

    status_code = 502
    title = "Upstream model failed"
    slug = "upstream-failed"

    def __init__(self, detail: str, *, billed: tuple[tuple[str, Any], ...] = (), **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.billed = billed


class ServerStopped(Billed, ServiceUnavailable):
    """The server stopped before the request was answered; `billed`: the calls it had made, a
    call in flight among them (app.upstream.router, `Attempt.billed`)."""

    def __init__(self, detail: str, *, billed: tuple[tuple[str, Any], ...] = (), **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.billed = billed


class UpstreamRateLimited(UpstreamError):
    """Every upstream called answered 429 (its rate limit or its quota): passed on as such, with
    the provider's Retry-After, so that a client backs off as it would from the provider."""

    status_code = 429
    title = "Upstream rate limited"
    slug = "upstream-rate-limited"


class UpstreamNotFound(UpstreamError):
    """Every upstream called answered 404 (the model does not exist there): passed on as such."""

    status_code = 404
    title = "Upstream model not found"
    slug = "upstream-not-found"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    title = "Upstream model timed out"
    slug = "upstream-timeout"


class UpstreamRejected(Billed, DejaError):
    """The upstream answered 4xx for the request itself (passed on as 400, with the provider's
    own `code`, `param` and `type` in the problem's OpenAI-shaped `error`)."""

    status_code = 400
    title = "Upstream rejected the request"
    slug = "upstream-rejected"

    def __init__(self, detail: str, *, billed: tuple[tuple[str, Any], ...] = (), **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.billed = billed
