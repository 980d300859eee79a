"""Where models are served: upstreams and per-model routes, from the environment or a TOML file."""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_UPSTREAM = "openai"
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROUTER_KEYS = ("upstreams", "routes", "default_route", "breaker", "retry", "max_answer_chars")
logger = logging.getLogger(__name__)


class RouterConfigError(ValueError):
    """The router configuration is unusable; raised at startup, never per request."""


class UpstreamConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One OpenAI-compatible API: a provider, a proxy, a local server."""

    name: str
    base_url: str | None = None
    """None: the SDK's default (`OPENAI_BASE_URL`, else https://api.openai.com/v1)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key; None for servers that need none."""
    timeout_s: float = 60.0
    """Per attempt: the whole answer, or the first chunk of a stream and then each next chunk."""
    max_concurrency: int = 64
    max_retries: int = 2
    """Retries after the first attempt, on retryable failures only."""


class RouteTarget(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    upstream: str
    model: str | None = None
    """Model name at that upstream; None: the name the client asked for."""


class ModelRoute(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    model: str
    primary: str
    primary_model: str | None = None
    fallbacks: tuple[RouteTarget, ...] = ()


class DefaultRoute(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    primary: str
    fallbacks: tuple[RouteTarget, ...] = ()


class BreakerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    failure_threshold: int = 5
    """Consecutive failed attempts at one model of an upstream that open that model's breaker there."""
    cooldown_s: float = 30.0
    """How long an open breaker skips its model at that upstream before letting one probe through."""


class RetryConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 10.0
    """A Retry-After up to this is waited out; a longer one sends the request to the next fallback."""


class RouterConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    upstreams: tuple[UpstreamConfig, ...]
    routes: tuple[ModelRoute, ...] = ()
    default_route: DefaultRoute | None = None
    """None: the first upstream, no fallbacks."""
    breaker: BreakerConfig = BreakerConfig()
    retry: RetryConfig = RetryConfig()
    max_answer_chars: int = 50_000
    """Longer answers are cut to this and marked finish_reason "length"."""

    def model_names(self) -> set[str]:
        """Every model name the configuration mentions (routes and their targets)."""
        names = set()
        for route in self.routes:
            names.add(route.model)
            names.update(m for m in (route.primary_model, *(f.model for f in route.fallbacks)) if m)
        if self.default_route is not None:
            names.update(f.model for f in self.default_route.fallbacks if f.model)
        return names

    def targets_for(self, model: str) -> list[RouteTarget]:
        """Primary first, then fallbacks, each with the model name to ask that upstream for."""
        for route in self.routes:
            if route.model == model:
                primary = RouteTarget(upstream=route.primary, model=route.primary_model or model)
                return [
                    primary,
                    *(RouteTarget(upstream=f.upstream, model=f.model or model) for f in route.fallbacks),
                ]
        default = self.default_route or DefaultRoute(primary=self.upstreams[0].name)
        return [
            RouteTarget(upstream=default.primary, model=model),
            *(RouteTarget(upstream=f.upstream, model=f.model or model) for f in default.fallbacks),
        ]


def config_from_env(environ: Mapping[str, str] | None = None) -> RouterConfig:
    """With only the SDK's own variables set, every model goes to one upstream."""
    env = os.environ if environ is None else environ
    upstream = UpstreamConfig(
        name=DEFAULT_UPSTREAM, base_url=env.get("OPENAI_BASE_URL") or None, api_key_env="OPENAI_API_KEY"
    )
    return RouterConfig(upstreams=(upstream,))


def parse_router_config(text: str, *, source: str = "router config") -> RouterConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RouterConfigError(f"{source}: not valid TOML: {exc}") from None
    # The file may hold other sections; the router reads only its own keys, and names the others
    # (a misspelt `[[route]]` would otherwise send its models to the default upstream unseen).
    router_data = {key: value for key, value in data.items() if key in _ROUTER_KEYS}
    for key in sorted(set(data) - set(_ROUTER_KEYS)):
        close = difflib.get_close_matches(key, _ROUTER_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        logger.warning("%s: the router does not read %r%s", source, key, hint)
    if "upstreams" not in router_data:
        raise RouterConfigError(f"{source}: no [[upstreams]] declared")
    try:
        config = msgspec.convert(router_data, RouterConfig)
    except msgspec.ValidationError as exc:
        raise RouterConfigError(f"{source}: {exc}") from None
    validate_router_config(config, source=source)
    return config


def load_router_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> RouterConfig:
    """The file at `path` when given (Déjà passes `DEJA_CONFIG`), else the SDK's environment variables."""
    if path is None or str(path) == "":
        return config_from_env(environ)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RouterConfigError(f"cannot read router config {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RouterConfigError(
            f"cannot read router config {file}: not UTF-8 text (byte {exc.start + 1})"
        ) from None
    return parse_router_config(text, source=str(file))


def validate_router_config(config: RouterConfig, *, source: str = "router config") -> None:
    """Raise `RouterConfigError` listing every problem: names, references, ranges."""
    problems: list[str] = []
    names = [u.name for u in config.upstreams]
    if not names:
        problems.append("at least one upstream is required")
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"upstream {name!r} is declared twice")
    for upstream in config.upstreams:
        where = f"upstream {upstream.name!r}"
        if not upstream.name:
            problems.append("an upstream has an empty name")
        if upstream.base_url is not None and not upstream.base_url.startswith(("http://", "https://")):
            problems.append(f"{where}: base_url must start with http:// or https://")
        if upstream.api_key_env is not None and not _ENV_NAME_RE.match(upstream.api_key_env):
            problems.append(f"{where}: api_key_env must name an environment variable, not hold a key")
        if not (math.isfinite(upstream.timeout_s) and upstream.timeout_s > 0):
            problems.append(f"{where}: timeout_s must be a positive number of seconds")
        if upstream.max_concurrency < 1:
            problems.append(f"{where}: max_concurrency must be at least 1")
        if upstream.max_retries < 0:
            problems.append(f"{where}: max_retries must not be negative")
    known = set(names)
    models = [r.model for r in config.routes]
    for model in sorted({m for m in models if models.count(m) > 1}):
        problems.append(f"model {model!r} has two routes")
    routes: list[tuple[str, str, tuple[RouteTarget, ...]]] = [
        (f"route {r.model!r}", r.primary, r.fallbacks) for r in config.routes
    ]
    if config.default_route is not None:
        routes.append(("default_route", config.default_route.primary, config.default_route.fallbacks))
    for where, primary, fallbacks in routes:
        for upstream_name in (primary, *(f.upstream for f in fallbacks)):
            if upstream_name not in known:
                problems.append(f"{where}: unknown upstream {upstream_name!r} (declared: {', '.join(names)})")
    if config.breaker.failure_threshold < 1:
        problems.append("breaker.failure_threshold must be at least 1")
    if not _seconds(config.breaker.cooldown_s):
        problems.append("breaker.cooldown_s must be a number of seconds, not negative")
    retry = config.retry
    if not all(_seconds(s) for s in (retry.backoff_base_s, retry.backoff_max_s, retry.retry_after_max_s)):
        problems.append("retry durations must be numbers of seconds, not negative")
    if config.max_answer_chars < 1:
        problems.append("max_answer_chars must be at least 1")
    if problems:
        raise RouterConfigError(f"{source}: " + "; ".join(problems))


def _seconds(value: float) -> bool:
    """A duration the router can wait: finite (TOML reads `nan` and `inf`) and not negative."""
    return math.isfinite(value) and value >= 0
