"""Prometheus metrics: what the pipeline, the cache and the router report, and `GET /metrics`.

Several uvicorn workers: each worker is its own process with its own counters, so a scrape
must add them up. prometheus_client does that in multiprocess mode: with
`PROMETHEUS_MULTIPROC_DIR` set *before prometheus_client is first imported* every worker writes
its values to memory-mapped files in that directory and `/metrics` merges all of them.
`deja serve` sets the variable (a fresh, empty directory per start) before uvicorn starts its
workers. Without the variable (one process, tests) the ordinary in-memory registry is served.

Labels stay bounded: models, upstreams and fixed outcome words, never tenants, keys or prompts.
Model names come from clients, so only the names the operator configured (the router's routes
and the price list, at start-up) get a series of their own; every other name is counted under
`other`. A tenant can neither read another's model names here nor fill the label space.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from litestar import Request, Response, get
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from app.bounds import only_authorization
from app.errors import Unauthorized
from app.upstream.breaker import BreakerState
from app.upstream.events import NoRouterEvents, Outcome

LookupDecision = Literal["exact_hit", "semantic_hit", "miss", "bypass", "coalesced"]
CacheStatus = Literal["hit", "miss", "bypass", "error"]
QuotaPeriod = Literal["day", "month"]
QuotaLimit = Literal["requests", "tokens", "cost"]  # as QuotaExceeded.extra["quota"]["limit"] says

# The classic text format every Prometheus version reads (Litestar appends the charset).
CONTENT_TYPE = "text/plain; version=0.0.4"

OTHER = "other"
UNKNOWN = "unknown"

# A hit answers in milliseconds, a miss in seconds: the buckets span both.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
SIMILARITY_BUCKETS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0)


def multiprocess_mode() -> bool:
    """True when this process writes its values to PROMETHEUS_MULTIPROC_DIR (decided at import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _KnownLabels:
    """Names allowed as label values pass; anything else becomes `other` (no name: `unknown`)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = frozenset(known)

    def allow(self, names: Iterable[str]) -> None:
        self._known = self._known | frozenset(names)

    def __call__(self, value: str | None) -> str:
        if value is None:
            return UNKNOWN
        return value if value in self._known else OTHER


class Metrics:
    """Every metric Déjà exports, registered in `registry` (a fresh one in tests)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, *, models: Iterable[str] = ()) -> None:
        self.model_label = _KnownLabels(models)
        # Requests (the names the first version of the service exported, kept for existing dashboards).
        self.requests = Counter(
            "ai_requests_total",
            "Chat requests answered, by requested model and HTTP status.",
            ["model", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "ai_request_duration_seconds",
            "Time from request to answer (for streams: to the first byte), by cache status.",
            ["cache"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.active = Gauge(
            "ai_active_requests",
            "Chat requests being worked on now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        # Cache.
        self.lookups = Counter(
            "deja_cache_lookups_total",
            "Cache decisions: exact_hit, semantic_hit, miss, bypass, coalesced (joined an identical miss).",
            ["result"],
            registry=registry,
        )
        self.similarity = Histogram(
            "deja_cache_similarity",
            "Cosine of the served entry (semantic hits) or of the nearest candidate (misses).",
            ["result"],
            buckets=SIMILARITY_BUCKETS,
            registry=registry,
        )
        self.embedding_seconds = Histogram(
            "deja_embedding_seconds",
            "Time to get one prompt's embedding (with any wait for a shared batch).",
            buckets=FAST_BUCKETS,
            registry=registry,
        )
        self.lookup_seconds = Histogram(
            "deja_lookup_seconds",
            "Time of one cache lookup: exact tier, embedding, nearest neighbours, verifier.",
            ["result"],
            buckets=FAST_BUCKETS,
            registry=registry,
        )
        # Money. prometheus_client keeps floats; the ledger keeps the exact NUMERIC amounts.
        self.cost = Counter(
            "deja_cost_usd_total",
            "Dollars spent upstream, by the model that answered.",
            ["model"],
            registry=registry,
        )
        self.avoided_cost = Counter(
            "deja_avoided_cost_usd_total",
            "Dollars not spent because the cache answered, by the model of the stored answer.",
            ["model"],
            registry=registry,
        )
        self.quota_rejections = Counter(
            "deja_quota_rejections_total",
            "Requests refused with 429 because a quota was used up.",
            ["period", "limit"],
            registry=registry,
        )
        self.ledger_dead_letters = Counter(
            "deja_ledger_dead_letters_total",
            "Spooled ledger rows the database refused for good, moved to the dead-letter file.",
            registry=registry,
        )
        # Upstreams (fed by PrometheusRouterEvents).
        self.upstream_seconds = Histogram(
            "deja_upstream_seconds",
            "One attempt at one upstream, by how it ended (skips count with 0 s).",
            ["upstream", "model", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_retries = Counter(
            "deja_upstream_retries_total",
            "Retries at an upstream after a retryable failure.",
            ["upstream"],
            registry=registry,
        )
        self.upstream_fallbacks = Counter(
            "deja_upstream_fallbacks_total",
            "Requests that moved on from one upstream to the next target.",
            ["from_upstream", "to_upstream"],
            registry=registry,
        )
        self.upstream_queue_seconds = Histogram(
            "deja_upstream_queue_seconds",
            "Wait for a concurrency slot at an upstream.",
            ["upstream"],
            buckets=FAST_BUCKETS,
            registry=registry,
        )
        self.breaker_open = Gauge(
            "deja_circuit_breaker_open",
            "1 while the circuit breaker of one of an upstream's models is open or half-open in any "
            "worker, else 0.",
            ["upstream"],
            multiprocess_mode="livemax",
            registry=registry,
        )

    # The calls the pipeline makes.

    def observe_request(
        self, model: str | None, status: int, cache: CacheStatus | str, seconds: float
    ) -> None:
        """One chat request answered (or failed) with HTTP `status` after `seconds`; `cache` is the
        cache status in either case (`Outcome.cache_status`: HIT, MISS, BYPASS; or error)."""
        self.requests.labels(self.model_label(model), str(status)).inc()
        self.request_seconds.labels(cache.lower()).observe(seconds)

    @contextmanager
    def track_active(self) -> Iterator[None]:
        self.active.inc()
        try:
            yield
        finally:
            self.active.dec()

    def cache_lookup(
        self, result: LookupDecision, similarity: float | None = None, seconds: float | None = None
    ) -> None:
        """One cache decision. An exact hit's similarity (always 1.0) is not observed: it says nothing."""
        self.lookups.labels(result).inc()
        if similarity is not None and result in ("semantic_hit", "miss"):
            self.similarity.labels(result).observe(similarity)
        if seconds is not None:
            self.lookup_seconds.labels(result).observe(seconds)

    @contextmanager
    def time_embedding(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.embedding_seconds.observe(time.perf_counter() - started)

    def add_cost(self, model: str | None, cost_usd: Decimal) -> None:
        if cost_usd > 0:
            self.cost.labels(self.model_label(model)).inc(float(cost_usd))

    def add_avoided_cost(self, model: str | None, avoided_cost_usd: Decimal) -> None:
        if avoided_cost_usd > 0:
            self.avoided_cost.labels(self.model_label(model)).inc(float(avoided_cost_usd))

    def quota_rejected(self, period: QuotaPeriod, limit: QuotaLimit) -> None:
        self.quota_rejections.labels(period, limit).inc()

    def ledger_dead_letter(self) -> None:
        self.ledger_dead_letters.inc()


class PrometheusRouterEvents(NoRouterEvents):
    """The router's hooks, turned into the deja_upstream_* and breaker metrics."""

    def __init__(self, target: Metrics | None = None) -> None:
        self.metrics = target or METRICS
        # Per upstream, the models whose breaker is open or half-open in this process.
        self._not_closed: dict[str, set[str]] = {}

    def attempt(self, upstream: str, model: str, outcome: Outcome, latency_s: float) -> None:
        model_label = self.metrics.model_label(model)
        self.metrics.upstream_seconds.labels(upstream, model_label, outcome.value).observe(latency_s)

    def retry(self, upstream: str, model: str, attempt: int, outcome: Outcome, delay_s: float) -> None:
        self.metrics.upstream_retries.labels(upstream).inc()

    def fallback(self, from_upstream: str, to_upstream: str, to_model: str, outcome: Outcome) -> None:
        self.metrics.upstream_fallbacks.labels(from_upstream, to_upstream).inc()

    def breaker_changed(self, upstream: str, model: str, state: BreakerState) -> None:
        models = self._not_closed.setdefault(upstream, set())
        if state is BreakerState.CLOSED:
            models.discard(model)
        else:
            models.add(model)
        self.metrics.breaker_open.labels(upstream).set(1 if models else 0)

    def queued(self, upstream: str, priority: int, waited_s: float) -> None:
        self.metrics.upstream_queue_seconds.labels(upstream).observe(waited_s)


METRICS = Metrics()

observe_request = METRICS.observe_request
track_active = METRICS.track_active
cache_lookup = METRICS.cache_lookup
time_embedding = METRICS.time_embedding
add_cost = METRICS.add_cost
add_avoided_cost = METRICS.add_avoided_cost
quota_rejected = METRICS.quota_rejected
ledger_dead_letter = METRICS.ledger_dead_letter


def prepare_multiprocess_dir(path: os.PathLike[str] | str) -> str:
    """For `deja serve`, before uvicorn starts workers: an empty directory for the workers' files.

    Files left by an earlier run would add its counts to this one's, so they are removed.
    """
    directory = os.fspath(path)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
    return directory


def worker_exiting() -> None:
    """At the end of a worker's lifespan: drop its live gauges (active requests, breakers)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The text exposition of every worker's metrics (multiprocess) or of this process's."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@get("/metrics", include_in_schema=False, sync_to_thread=True)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus scrape endpoint (text format). Reading the workers' files is blocking I/O.

    With `metrics_token` set, a scrape must present it as a bearer token."""
    token = request.app.state.services.settings.metrics_token
    if token is not None:
        sent = (only_authorization(request.headers.getall("authorization", [])) or "").encode("latin-1")
        if not hmac.compare_digest(sent, b"Bearer " + token.get_secret_value().encode()):
            raise Unauthorized("GET /metrics needs the metrics token.")
    return Response(exposition(), media_type=CONTENT_TYPE)
