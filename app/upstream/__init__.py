"""The model router: upstreams, routes, retries, fallbacks, circuit breakers and priorities."""

from app.upstream.breaker import BreakerState, CircuitBreaker
from app.upstream.config import (
    BreakerConfig,
    DefaultRoute,
    ModelRoute,
    RetryConfig,
    RouterConfig,
    RouterConfigError,
    RouteTarget,
    UpstreamConfig,
    config_from_env,
    load_router_config,
    parse_router_config,
    validate_router_config,
)
from app.upstream.events import NoRouterEvents, Outcome, RouterCounters, RouterEvents
from app.upstream.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, PrioritySemaphore
from app.upstream.router import Attempt, ModelRouter, RouterResult, RouterStream, UpstreamStatus

__all__ = [
    "DEFAULT_PRIORITY",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "Attempt",
    "BreakerConfig",
    "BreakerState",
    "CircuitBreaker",
    "DefaultRoute",
    "ModelRoute",
    "ModelRouter",
    "NoRouterEvents",
    "Outcome",
    "PrioritySemaphore",
    "RetryConfig",
    "RouteTarget",
    "RouterConfig",
    "RouterConfigError",
    "RouterCounters",
    "RouterEvents",
    "RouterResult",
    "RouterStream",
    "UpstreamConfig",
    "UpstreamStatus",
    "config_from_env",
    "load_router_config",
    "parse_router_config",
    "validate_router_config",
]
