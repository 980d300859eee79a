"""The path of one chat request (DESIGN §2): cache controls and policy, exact and semantic
lookup, then on a miss one coalesced upstream call through the router, the answer stored
and the request booked in the ledger.

No database connection is held while the model works: the lookup, the quota reservation
and the write-back are short transactions of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.bound.service import ErrorBound, verifier_metadata
from app.cache.policy import TenantCachePolicy
from app.cache.repository import StoredEntry
from app.cache.responses import replay
from app.cache.scope import Scope, scope_of
from app.cache.service import CacheService, LookupResult
from app.completions.coalesce import SingleFlight
from app.completions.controls import CacheControls
from app.completions.streaming import DONE, CompletionAssembler, replay_chunks, sse
from app.db.engine import transaction
from app.db.errors import is_database_outage
from app.errors import (
    DejaError,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
    Unprocessable,
    UpstreamError,
)
from app.ledger.pricing import PriceBook, Usage
from app.ledger.quotas import Quotas, Reservation
from app.ledger.repository import LedgerRepository, LedgerRow
from app.ledger.spool import LedgerSpool
from app.observability import metrics
from app.observability.logging import bind_request, log_request
from app.settings import RequestLimits
from app.upstream.router import ModelRouter

log = logging.getLogger(__name__)

ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: uuid.UUID
    key_id: uuid.UUID | None
    request_id: str
    policy: TenantCachePolicy
    priority: int = 5
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    cache_status: str  # HIT | MISS | BYPASS
    model_used: str | None
    completion: dict[str, Any] | None = None  # non-streaming answer
    stream: AsyncIterator[bytes] | None = None  # SSE bytes, for stream=true
    similarity: float | None = None
    entry_id: uuid.UUID | None = None
    tier: str | None = None
    tokens_used: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: float = 0.0
    stale: bool = False  # an expired answer, served because every upstream failed
    explored: bool = False  # the error bound sent a would-be hit to the model to learn


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]  # what goes upstream (without Déjà's `cache` field)
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool


def parse_request(body: dict[str, Any], *, max_messages: int) -> ChatRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise Unprocessable("'model' is required and must be a model name.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Unprocessable("'messages' must be a non-empty list.")
    if len(messages) > max_messages:
        raise Unprocessable(
            f"At most {max_messages} messages are accepted; this request has {len(messages)}."
        )
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise Unprocessable("Each message must be an object with a 'role'.")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    upstream = {k: v for k, v in body.items() if k != "cache"}
    return ChatRequest(
        body=upstream, model=model, messages=messages, stream=stream, include_usage=include_usage
    )


def bypass_reason(request: ChatRequest, policy: TenantCachePolicy) -> str | None:
    """Why this request is not cacheable at all (BYPASS), or None."""
    if request.messages[-1].get("role") != "user":
        return "the last message is not the user's"
    temperature = request.body.get("temperature")
    if isinstance(temperature, int | float) and temperature > policy.max_temperature:
        return f"temperature {temperature} is above the tenant's limit {policy.max_temperature}"
    return None


@dataclass(slots=True)
class _Job:
    """One request on its way through the miss path."""

    caller: Caller
    request: ChatRequest
    controls: CacheControls
    started: float
    status: str  # ledger cache_status: miss | bypass
    scope: Scope | None = None  # None: nothing will be stored
    embedding: npt.NDArray[np.float32] | None = None
    key: Hashable | None = None  # coalescing key; None: not coalesced
    future: asyncio.Future[Any] | None = None
    reservation: Reservation | None = None
    prompt_tokens: int = 0  # estimated before the call
    # The error bound kept this candidate from serving; the answer labels it.
    explored: LookupResult | None = None

    @property
    def header_status(self) -> str:
        return "MISS" if self.status == "miss" else "BYPASS"

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000


class CompletionPipeline:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: CacheService,
        router: ModelRouter,
        prices: PriceBook,
        spool: LedgerSpool,
        limits: RequestLimits,
    ) -> None:
        self.limits = limits
        self.sessionmaker = sessionmaker
        self.spool = spool
        self.cache = cache
        self.router = router
        self.prices = prices
        self.quotas = Quotas(prices)
        self.inflight = SingleFlight()
        self.bound = ErrorBound(sessionmaker, cache.embedder, router)
        self._background: set[asyncio.Task[Any]] = set()

    async def run(self, caller: Caller, body: dict[str, Any], controls: CacheControls) -> Outcome:
        """Answer one chat request; every request leaves a metric and one summary log line."""
        started = time.monotonic()
        model = body.get("model") if isinstance(body.get("model"), str) else None
        bind_request(caller.request_id, caller.tenant_id)
        with metrics.track_active():
            try:
                outcome = await self._run(caller, body, controls, started)
            except Exception as exc:
                status = exc.status_code if isinstance(exc, DejaError) else 500
                seconds = time.monotonic() - started
                if isinstance(exc, QuotaExceeded):
                    metrics.quota_rejected(exc.extra["quota"]["period"], exc.extra["quota"]["limit"])
                metrics.observe_request(model, status, "error", seconds)
                # The slug, not the detail: an upstream's message may echo the prompt.
                log_request(
                    request_id=caller.request_id,
                    tenant_id=caller.tenant_id,
                    model=model,
                    cache_status="error",
                    http_status=status,
                    latency_ms=seconds * 1000,
                    error=getattr(exc, "slug", type(exc).__name__),
                )
                raise
        metrics.observe_request(model, 200, outcome.cache_status, outcome.latency_ms / 1000)
        log_request(
            request_id=caller.request_id,
            tenant_id=caller.tenant_id,
            model=model,
            model_used=outcome.model_used,
            cache_status=outcome.cache_status,
            tier=outcome.tier,
            similarity=outcome.similarity,
            http_status=200,
            latency_ms=outcome.latency_ms,
            tokens=outcome.tokens_used,
            cost_usd=outcome.cost_usd,
        )
        return outcome

    async def _run(
        self, caller: Caller, body: dict[str, Any], controls: CacheControls, started: float
    ) -> Outcome:
        request = parse_request(body, max_messages=self.limits.max_messages)
        if bypass_reason(request, caller.policy):
            metrics.cache_lookup("bypass")
            return await self._miss(_Job(caller, request, controls, started, status="bypass"))
        scope = scope_of(request.model, request.messages, request.body)
        if controls.no_cache:
            # A refresh: no lookup, but the fresh answer replaces what later requests find.
            metrics.cache_lookup("bypass")
            return await self._miss(_Job(caller, request, controls, started, status="bypass", scope=scope))

        key = (caller.tenant_id, controls.namespace, scope.exact_hash)
        leader = self.inflight.join(key, started_at=started)
        if leader is not None:
            return await self._follow(caller, request, controls, leader, started)
        lookup_started = time.monotonic()
        try:
            # Not durable: this transaction writes only if it hits (the hit's booking, hit count).
            async with transaction(self.sessionmaker, tenant_id=caller.tenant_id, durable=False) as session:
                found = await self.cache.lookup(
                    session,
                    caller.tenant_id,
                    controls.namespace,
                    scope,
                    caller.policy.verifier_policy(controls.threshold),
                    max_age_s=controls.max_age_s,
                    gate=self.bound.gate(caller.tenant_id, caller.policy),
                )
                result: metrics.LookupResult = (
                    "exact_hit" if found.tier == "exact" else "semantic_hit" if found.entry else "miss"
                )
                metrics.cache_lookup(result, found.similarity, time.monotonic() - lookup_started)
                if found.entry is not None:
                    return await self._hit(
                        session,
                        caller,
                        request,
                        controls,
                        found.entry,
                        found.tier,
                        started,
                        metadata=verifier_metadata(found),
                    )
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # Postgres is unreachable: the cache steps aside, the model still answers (BYPASS).
            log.warning("cache lookup skipped: database unreachable")
            metrics.cache_lookup("bypass")
            return await self._miss(_Job(caller, request, controls, started, status="bypass"))
        leader = self.inflight.join(key, started_at=started)
        if leader is not None:
            return await self._follow(caller, request, controls, leader, started)
        job = _Job(
            caller, request, controls, started, status="miss", scope=scope, embedding=found.embedding, key=key
        )
        job.explored = found if found.withheld is not None else None
        return await self._miss(job)

    # Hits.

    async def _hit(
        self,
        session: AsyncSession,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        entry: StoredEntry,
        tier: str | None,
        started: float,
        metadata: dict[str, Any] | None = None,
    ) -> Outcome:
        saved = Usage(entry.prompt_tokens, entry.completion_tokens)
        latency_ms = (time.monotonic() - started) * 1000
        row = await self._hit_row(caller, request, controls, latency_ms, entry.model, saved, metadata or {})
        row.similarity, row.entry_id, row.used_model = entry.similarity, entry.id, entry.response.get("model")
        await LedgerRepository(session).append(row)
        return _replay(request, entry.response, entry.id, entry.similarity, tier, latency_ms)

    async def _follow(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        leader: asyncio.Future[Any],
        started: float,
    ) -> Outcome:
        """Wait for the identical request already in flight and answer with its result."""
        completion, entry_id, model = await asyncio.shield(leader)
        latency_ms = (time.monotonic() - started) * 1000
        saved = Usage.of(completion.get("usage"))
        row = await self._hit_row(caller, request, controls, latency_ms, model, saved, {"coalesced": True})
        row.similarity, row.entry_id, row.used_model = 1.0, entry_id, model
        await self._book(row)
        metrics.cache_lookup("coalesced")
        return _replay(request, completion, entry_id, 1.0, "coalesced", latency_ms)

    async def _hit_row(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        latency_ms: float,
        model: str,
        saved: Usage,
        metadata: dict[str, Any],
    ) -> LedgerRow:
        """A hit's booking: no cost, and as avoided cost what its tokens cost at today's price."""
        avoided = await self.prices.cost(model, saved, datetime.now(UTC))
        metrics.add_avoided_cost(model, avoided)
        return _row(
            caller, request, controls, "hit", 200, latency_ms, avoided_cost_usd=avoided, metadata=metadata
        )

    # Misses and bypasses.

    async def _miss(self, job: _Job) -> Outcome:
        """Reserve quota, ask the model, store and book; lead the coalescing group meanwhile."""
        if job.key is not None:
            job.future = self.inflight.lead(job.key)
        try:
            job.prompt_tokens = self.quotas.estimator.prompt_tokens(job.request.messages)
            if job.prompt_tokens > self.limits.max_prompt_tokens:
                raise PayloadTooLarge(
                    f"The prompt has about {job.prompt_tokens} tokens; the limit is {self.limits.max_prompt_tokens}."
                )
            job.reservation = await self._reserve(job)
            if job.request.stream:
                return await self._stream(job)
            try:
                result = await self.router.complete(job.request.body, priority=job.caller.priority)
            except DejaError as exc:
                stale = await self._stale_or_book_error(job, exc)
                self._settle(job, error=exc)
                return stale
            outcome = await self._finish(
                job, result.completion, result.model, result.latency_ms, fallback_used=result.fallback_used
            )
        except BaseException as exc:
            if isinstance(exc, QuotaExceeded | PayloadTooLarge):  # refused before any call: still booked
                await self._book_error(job, exc)
            self._settle(job, error=exc)
            raise
        self._settle(job, result=(result.completion, outcome.entry_id, result.model))
        return outcome

    def _settle(self, job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
        if job.future is not None and job.key is not None:
            # Only a stored answer stays joinable after the fact (no-store means: do not reuse).
            stored = result is not None and result[1] is not None
            self.inflight.finish(job.key, job.future, result=result, error=error, linger=stored)

    async def _finish(
        self,
        job: _Job,
        completion: dict[str, Any],
        model_used: str,
        upstream_latency_ms: float,
        *,
        fallback_used: bool = False,
    ) -> Outcome:
        """Store the answer (unless told not to), settle the quota and book the request: one transaction."""
        usage = Usage.of(completion.get("usage"))
        cost = await self.prices.cost(model_used, usage, datetime.now(UTC))
        entry_id: uuid.UUID | None = None
        latency_ms = job.elapsed_ms()
        row = _row(
            job.caller,
            job.request,
            job.controls,
            job.status,
            200,
            latency_ms,
            used_model=model_used,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost,
            upstream_latency_ms=upstream_latency_ms,
            metadata={"fallback": True} if fallback_used else {},
            explored=job.explored is not None,
        )
        try:
            async with transaction(self.sessionmaker, tenant_id=job.caller.tenant_id) as session:
                if job.scope is not None and not job.controls.no_store:
                    entry_id = await self.cache.store(
                        session,
                        job.caller.tenant_id,
                        job.controls.namespace,
                        job.scope,
                        completion,
                        ttl_s=job.controls.ttl_s or job.caller.policy.default_ttl_s,
                        embedding=job.embedding,
                        cost_usd=cost,
                    )
                await self.quotas.settle(session, job.reservation, usage, cost)
                row.entry_id = entry_id
                await LedgerRepository(session).append(row)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # The answer is not stored; its accounting waits in the spool.
            entry_id = row.entry_id = None
            await self.spool.append(row)
        metrics.add_cost(model_used, cost)
        if job.explored is not None and job.scope is not None:
            explored, caller = job.explored, job.caller
            question, model = job.scope.prompt, job.request.model
            self._spawn(
                self.bound.label(
                    caller.tenant_id, caller.request_id, caller.policy, explored, question, completion, model
                )
            )
        return Outcome(
            cache_status=job.header_status,
            model_used=model_used,
            completion=completion,
            entry_id=entry_id,
            tokens_used=usage.total,
            cost_usd=cost,
            latency_ms=latency_ms,
            explored=job.explored is not None,
        )

    async def _stream(self, job: _Job) -> Outcome:
        # Always ask for usage: the ledger needs it. The client sees the usage chunk only if it asked.
        options = {**(job.request.body.get("stream_options") or {}), "include_usage": True}
        try:
            upstream = await self.router.stream(
                {**job.request.body, "stream_options": options}, priority=job.caller.priority
            )
        except DejaError as exc:
            stale = await self._stale_or_book_error(job, exc)
            self._settle(job, error=exc)
            return stale
        include_usage = job.request.include_usage

        async def chunks() -> AsyncIterator[bytes]:
            assembler = CompletionAssembler()
            settled = False
            try:
                async with upstream:
                    async for chunk in upstream:
                        assembler.add(chunk)
                        if not include_usage:
                            if chunk.get("usage") and not chunk.get("choices"):
                                continue
                            chunk = {k: v for k, v in chunk.items() if k != "usage"}
                        yield sse(chunk)
                completion = assembler.completion()
                outcome = await self._finish(
                    job, completion, upstream.model, upstream.latency_ms, fallback_used=upstream.fallback_used
                )
                self._settle(job, result=(completion, outcome.entry_id, upstream.model))
                settled = True
                yield DONE
            except UpstreamError as exc:
                # Headers are gone: the failure travels as an SSE error event, as OpenAI sends it.
                yield sse(
                    {"error": {"message": exc.detail, "type": "upstream_error", "code": exc.status_code}}
                )
                self._spawn(self._book_error(job, exc))
                self._settle(job, error=exc)
                settled = True
            finally:
                if not settled:
                    # The client went away mid-stream (or the write-back failed): nothing to reuse.
                    gone = UpstreamError("the streamed answer was not completed")
                    self._settle(job, error=gone)
                    self._spawn(self._book_error(job, gone, http_status=499))

        return Outcome(
            cache_status=job.header_status,
            model_used=upstream.model,
            stream=chunks(),
            latency_ms=job.elapsed_ms(),
            explored=job.explored is not None,
        )

    async def _stale_or_book_error(self, job: _Job, exc: DejaError) -> Outcome:
        """Every upstream failed: serve an answer that expired recently if the tenant or the
        request allows it (like HTTP's stale-if-error), else book the failure and raise it."""
        allowed = job.controls.stale_if_error_s or job.caller.policy.stale_if_error_s
        if job.scope is not None and allowed and isinstance(exc, UpstreamError):
            try:
                async with transaction(self.sessionmaker, tenant_id=job.caller.tenant_id) as session:
                    found = await self.cache.lookup(
                        session,
                        job.caller.tenant_id,
                        job.controls.namespace,
                        job.scope,
                        job.caller.policy.verifier_policy(job.controls.threshold),
                        stale_s=allowed,
                    )
                    if found.entry is not None:
                        await self.quotas.settle(session, job.reservation, Usage(), Decimal(0))
                        outcome = await self._hit(
                            session,
                            job.caller,
                            job.request,
                            job.controls,
                            found.entry,
                            found.tier,
                            job.started,
                            metadata={"stale": True, "upstream_error": exc.detail[:200]},
                        )
                        outcome.stale = True
                        return outcome
            except Exception as error:
                if not is_database_outage(error):
                    raise
        await self._book_error(job, exc)
        raise exc

    # Booking.

    async def _book_error(self, job: _Job, exc: DejaError, *, http_status: int | None = None) -> None:
        """Book a failed request and give back its quota reservation."""
        row = _row(
            job.caller,
            job.request,
            job.controls,
            "error",
            http_status or exc.status_code,
            job.elapsed_ms(),
            error=exc.detail[:500],
        )
        try:
            async with transaction(self.sessionmaker, tenant_id=job.caller.tenant_id) as session:
                await self.quotas.settle(session, job.reservation, Usage(), Decimal(0))
                await LedgerRepository(session).append(row)
        except Exception as error:
            if not is_database_outage(error):
                log.exception("could not book a failed request", extra={"request_id": job.caller.request_id})
            await self.spool.append(row)

    async def _book(self, row: LedgerRow) -> None:
        """Book a row in a transaction of its own, or spool it while Postgres is unreachable."""
        try:
            async with transaction(self.sessionmaker, tenant_id=row.tenant_id) as session:
                if row.cache_status == "hit" and row.entry_id is not None:
                    await self.cache.record_hit(session, row.entry_id)
                await LedgerRepository(session).append(row)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            await self.spool.append(row)

    async def _reserve(self, job: _Job) -> Reservation | None:
        try:
            async with transaction(self.sessionmaker, tenant_id=job.caller.tenant_id) as session:
                return await self.quotas.reserve(
                    session, job.caller.tenant_id, job.request.model, job.request.body, job.prompt_tokens
                )
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            if job.caller.policy.quota_outage == "closed":
                raise ServiceUnavailable(
                    "Quotas cannot be checked while the database is unreachable, and this tenant's "
                    "policy is to refuse then.",
                    headers={"Retry-After": "5"},
                ) from exc
            job.scope = None  # nothing can be stored either
            return None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _row(
    caller: Caller,
    request: ChatRequest,
    controls: CacheControls,
    status: str,
    http_status: int,
    latency_ms: float,
    **values: Any,
) -> LedgerRow:
    metadata = {**caller.metadata, **values.pop("metadata", {})}
    return LedgerRow(
        tenant_id=caller.tenant_id,
        api_key_id=caller.key_id,
        request_id=caller.request_id,
        requested_model=request.model,
        namespace=controls.namespace,
        cache_status=status,
        http_status=http_status,
        latency_ms=latency_ms,
        priority=caller.priority,
        metadata=metadata,
        **values,
    )


def _replay(
    request: ChatRequest,
    stored: dict[str, Any],
    entry_id: uuid.UUID | None,
    similarity: float | None,
    tier: str | None,
    latency_ms: float,
) -> Outcome:
    # A hit consumed no tokens: usage says so (docs/caching.md, "usage on a hit").
    completion = {**replay(stored), "usage": dict(ZERO_USAGE)}
    outcome = Outcome(
        cache_status="HIT",
        model_used=completion.get("model"),
        similarity=similarity,
        entry_id=entry_id,
        tier=tier,
        latency_ms=latency_ms,
    )
    if request.stream:
        outcome.stream = _replay_stream(completion, include_usage=request.include_usage)
    else:
        outcome.completion = completion
    return outcome


async def _replay_stream(completion: dict[str, Any], *, include_usage: bool) -> AsyncIterator[bytes]:
    for chunk in replay_chunks(completion, include_usage=include_usage):
        yield sse(chunk)
    yield DONE
