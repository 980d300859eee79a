"""Per-request cache controls, from headers or from the body field `cache` (as LiteLLM clients
send them). Headers win where both are given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.bounds import whole_number
from app.cache.policy import MAX_SECONDS
from app.cache.scope import MAX_NAMESPACE, MAX_NAMESPACE_INPUT, namespace_name
from app.errors import Unprocessable


@dataclass(frozen=True, slots=True)
class CacheControls:
    no_cache: bool = False  # skip the lookup; the answer is fetched and stored afresh
    no_store: bool = False  # do not store this answer
    max_age_s: int | None = None  # serve only entries younger than this
    ttl_s: int | None = None  # lifetime of the entry stored from this request
    namespace: str = ""
    threshold: float | None = None  # only stricter than the tenant's
    stale_if_error_s: int | None = None  # serve an answer expired this recently if every upstream fails


def _int(value: Any, name: str) -> int:
    """Seconds, from a header's text or a body's JSON integer."""
    if isinstance(value, str):
        value = whole_number(value, 0, MAX_SECONDS)  # ASCII digits only: "²" is a digit to isdigit()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
        raise Unprocessable(f"{name} must be a whole number of seconds from 0 to {MAX_SECONDS}.")
    return int(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Unprocessable(f"The cache control {name!r} must be true or false.")
    return value


def _threshold(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise Unprocessable("The cache threshold must be a number between 0 and 1.")
    return number


def _utf8_header(value: str, name: str) -> str:
    """A header's text as the client wrote it: a server reads header bytes as Latin-1, a
    client sends UTF-8 ("café" would become "cafÃ©", a namespace of its own no purge names)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise Unprocessable(f"The {name} header must be UTF-8 text.") from None


def parse_controls(headers: Mapping[str, str], body_cache: Any) -> CacheControls:
    if body_cache is not None and not isinstance(body_cache, dict):
        raise Unprocessable("The body field 'cache' must be an object.")
    body: dict[str, Any] = body_cache or {}
    unknown = set(body) - {
        "no-cache",
        "no-store",
        "ttl",
        "namespace",
        "threshold",
        "max-age",
        "s-maxage",
        "stale-if-error",
    }
    if unknown:
        raise Unprocessable(f"Unknown cache controls: {', '.join(sorted(unknown))}.")

    no_cache = _bool(body.get("no-cache", False), "no-cache")
    no_store = _bool(body.get("no-store", False), "no-store")
    max_age = _int(body["max-age"], "max-age") if body.get("max-age") is not None else None
    if body.get("s-maxage") is not None:
        max_age = _int(body["s-maxage"], "s-maxage")
    stale = _int(body["stale-if-error"], "stale-if-error") if body.get("stale-if-error") is not None else None
    for directive in (d.strip().lower() for d in headers.get("cache-control", "").split(",") if d.strip()):
        name, _, value = directive.partition("=")
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name in ("max-age", "s-maxage"):
            max_age = _int(value.strip('"'), name)
        elif name == "stale-if-error":
            stale = _int(value.strip('"'), name)

    ttl_raw = headers.get("x-cache-ttl", body.get("ttl"))
    ttl = _int(ttl_raw, "ttl") if ttl_raw is not None else None
    if ttl == 0:
        no_store = True  # a zero lifetime means: do not keep it
        ttl = None
    header_namespace = headers.get("x-cache-namespace")
    if header_namespace is not None:
        namespace: Any = _utf8_header(header_namespace, "X-Cache-Namespace")
    else:
        namespace = body.get("namespace")
        if namespace is None:
            namespace = ""
    if not isinstance(namespace, str) or len(namespace) > MAX_NAMESPACE_INPUT:
        raise Unprocessable(f"The cache namespace must be text of at most {MAX_NAMESPACE} characters.")
    namespace = namespace_name(namespace)
    threshold_raw = headers.get("x-cache-threshold", body.get("threshold"))
    return CacheControls(
        no_cache=no_cache,
        no_store=no_store,
        max_age_s=max_age,
        ttl_s=ttl,
        namespace=namespace,
        threshold=_threshold(threshold_raw) if threshold_raw is not None else None,
        stale_if_error_s=stale,
    )
