"""The path of one chat request: cache controls and policy, exact and semantic
lookup, then on a miss one coalesced upstream call through the router, the answer stored
and the request booked in the ledger (app.ledger.booking).

No database connection is held while the model works: the lookup, the quota reservation
and the write-back are short transactions of their own. Every request has a deadline
(`limits.timeout_s`) for its upstream work, a stream's last chunk included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
from litestar.types import Receive
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bounds import whole_number
from app.cache.bound.service import ErrorBound, verifier_metadata
from app.cache.policy import TenantCachePolicy
from app.cache.repository import CacheRepository, StoredEntry
from app.cache.responses import replay
from app.cache.scope import NothingToLookUp, Scope, scope_of_request
from app.cache.service import CacheService, LookupResult
from app.completions.client_watch import ClientWatch
from app.completions.coalesce import LeaderGone, ReplicaCoalescer, SingleFlight
from app.completions.controls import CacheControls, parse_controls
from app.completions.inputs import ChatBody, chat_body
from app.completions.judge_calls import BookedJudgeCalls
from app.completions.miss_booking import Claim, MissBooking
from app.completions.miss_reservation import QuotaFull, reserve_miss
from app.completions.repository import InflightRepository
from app.completions.streaming import (
    DONE,
    REPLAY_BATCH,
    CompletionAssembler,
    replay_chunks,
    servable_again,
    sse,
)
from app.db.engine import DatabaseDown, attempt
from app.db.fastpath import FastConnections, missing_function, unavailable
from app.db.leases import Lease
from app.db.replica import ReadReplica
from app.errors import (
    Billed,
    DejaError,
    PayloadTooLarge,
    QuotaExceeded,
    ServerStopped,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
)
from app.ledger.booking import Bookkeeper
from app.ledger.quotas import (
    QuotaRepository,
    Reservation,
    ReservationTerms,
    most_output_tokens,
    unnamed_refusal,
)
from app.ledger.repository import ERROR_CHARS, LedgerRow
from app.ledger.writer import BookingWriter
from app.observability import metrics
from app.observability.logging import bind_request, log_request
from app.settings import RequestLimits
from app.tenants.models import TenantStatus
from app.tenants.repository import TenantRepository
from app.upstream.router import Attempt, ModelRouter, RouterStream, billed_attempts
from app.upstream.usage import Usage

log = logging.getLogger(__name__)

ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
# HTTP status booked for a stream the client stopped reading (nginx's "client closed request").
CLIENT_GONE = 499
# How long closing the pipeline waits for cancelled requests to unwind and book themselves.
UNWIND_S = 5.0
# How long a request the quota refused waits for an identical one to take the lead.
FOLLOW_WAIT_S = 0.05
PRIORITY_HEADER = "x-priority"
# What the model reads of a request besides its messages, counted in the prompt's estimate (a
# predicted output is read too, and what of it the answer does not use is billed).
MODEL_READS = ("tools", "functions", "response_format", "prediction")


@dataclass(slots=True)
class Caller:
    tenant_id: uuid.UUID
    key_id: uuid.UUID | None
    request_id: str  # Déjà's own, unique
    policy: TenantCachePolicy
    priority: int = 5
    metadata: dict[str, Any] = field(default_factory=dict)
    client_request_id: str | None = None  # the client's own, if it sent one
    booked: bool = False  # its ledger row is written (or spooled): exactly one per request
    # A failed request as booked: the model that billed tokens, those tokens, their cost, and
    # the time to the failure (the native call's failure body reports them).
    failed_model: str | None = None
    failed_tokens: int = 0
    failed_cost_usd: Decimal = Decimal(0)
    failed_latency_ms: float = 0.0
    # The connection's ASGI `receive`: a miss watches it until its response starts, so that a
    # client that left before the answer (or a stream's first byte) is booked 499; a started
    # stream's response watches its own.
    receive: Receive | None = None


@dataclass(slots=True)
class ChatAnswer:
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
    http_status: int = 200  # as booked: 499 when the client left before the answer


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]  # what goes upstream: the client's own (without Déjà's `cache` field)
    checked: ChatBody  # the same body, bounded and typed
    messages: list[dict[str, Any]]

    @property
    def model(self) -> str:
        return self.checked.model

    @property
    def stream(self) -> bool:
        return self.checked.stream

    @property
    def include_usage(self) -> bool:
        options = self.checked.stream_options
        return self.stream and options is not None and options.include_usage

    @property
    def max_output_tokens(self) -> int | None:
        checked = self.checked
        return (
            checked.max_completion_tokens if checked.max_completion_tokens is not None else checked.max_tokens
        )


def parse_request(body: dict[str, Any], *, max_messages: int) -> ChatRequest:
    checked = chat_body(body, max_messages=max_messages)
    return ChatRequest(
        body={k: v for k, v in body.items() if k != "cache"}, checked=checked, messages=body["messages"]
    )


def parse_priority(value: str) -> int:
    """`X-Priority`: 1..10, 10 most urgent (it wins over a body's `priority`)."""
    priority = whole_number(value, 1, 10)
    if priority is None:
        raise Unprocessable("X-Priority must be a whole number from 1 to 10.")
    return priority


def bypass_reason(request: ChatRequest, policy: TenantCachePolicy) -> str | None:
    """Why this request is not cacheable at all (BYPASS), or None."""
    if request.checked.messages[-1].role != "user":
        return "the last message is not the user's"
    temperature = request.checked.temperature
    if temperature is not None and temperature > policy.max_temperature:
        return f"temperature {temperature} is above the tenant's limit {policy.max_temperature}"
    return None


@dataclass(slots=True)
class _Job:
    """One request on its way through the miss path."""

    caller: Caller
    request: ChatRequest
    controls: CacheControls
    started: float
    deadline: float  # loop time by which the upstream work must be over
    status: str  # ledger cache_status: miss | bypass
    scope: Scope | None = None  # None: nothing will be stored
    embedding: npt.NDArray[np.float32] | None = None
    key: Hashable | None = None  # coalescing key; None: not coalesced
    future: asyncio.Future[Any] | None = None
    replica_key: bytes | None = None  # the exact hash this replica leads for every replica
    reservation: Reservation | None = None
    prompt_tokens: int = 0  # estimated before the call
    # The error bound kept this candidate from serving; the answer labels it.
    explored: LookupResult | None = None
    writing: bool = False  # its answer is being stored after the response (app.ledger.writer)
    watch: ClientWatch | None = None  # a miss's client, until its response starts
    # The id a stream's answer will be stored under, named in its headers before the answer is
    # known (none when it cannot be stored: told not to, or another model answers).
    entry_id: uuid.UUID | None = None

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
        books: Bookkeeper,
        limits: RequestLimits,
        lease: Lease,
        replica: ReadReplica,
        fast: FastConnections | None = None,
    ) -> None:
        self.limits = limits
        # The exact tier's one-round-trip probe (not with a read replica: lookups search there).
        self.fast = fast if replica.engine is None else None
        # A probed miss reserves its quota and claims its key in one round trip too.
        self.fast_reserve = True
        # A miss's booking goes to the primary in one statement (the same connections serve the
        # probes when there is no read replica).
        self.writer = BookingWriter(books, fast=fast)
        self.lease = lease
        self.sessionmaker = sessionmaker
        self.cache = cache
        self.router = router
        self.books = books
        self.inflight = SingleFlight()
        self.replicas = ReplicaCoalescer(sessionmaker, lease)
        self.replica = replica
        # The judge calls the upstreams in the background, behind breakers of its own, and books
        # its calls as the tenant's.
        judge_calls = BookedJudgeCalls(
            sessionmaker, router.apart(), books, max_prompt_tokens=limits.max_prompt_tokens
        )
        self.bound = ErrorBound(sessionmaker, cache.embedder, judge_calls)
        self._background: set[asyncio.Task[Any]] = set()
        # Streams whose client left, read to their end (`_finish_left`); cut when the server stops.
        self._reading_rest: set[asyncio.Future[DejaError | None]] = set()
        self._stopping = False
        # Requests in `run` and streams being relayed: at shutdown those the server cancelled
        # book themselves as they unwind (`aclose` waits for them).
        self._open = 0
        self._idle = asyncio.Event()  # set while none is open
        self._idle.set()

    async def run(self, caller: Caller, body: dict[str, Any], headers: Mapping[str, str]) -> ChatAnswer:
        """Answer one chat request; every request leaves one ledger row, a metric and one summary
        log line, also when it is refused for what it says."""
        started = time.monotonic()
        model = body.get("model") if isinstance(body.get("model"), str) else None
        bind_request(caller.request_id, caller.tenant_id)
        client_id = {"client_request_id": caller.client_request_id} if caller.client_request_id else None
        with metrics.track_active(), self._opened():
            try:
                answer = await self._run(caller, body, headers, started)
            except asyncio.CancelledError:
                # The server stopped (its grace period over) before this request was answered or
                # booked: booked in the background, which closing the pipeline waits for.
                if not caller.booked:
                    caller.booked = True
                    stopped = ServiceUnavailable("The server stopped before the request was answered.")
                    latency_ms = (time.monotonic() - started) * 1000
                    self._spawn(self._book_refusal(caller, model, stopped.status_code, latency_ms, stopped))
                raise
            except Exception as exc:
                status = exc.status_code if isinstance(exc, DejaError) else 500
                seconds = time.monotonic() - started
                if not caller.booked:
                    await self._book_refusal(caller, model, status, seconds * 1000, exc)
                caller.failed_latency_ms = caller.failed_latency_ms or seconds * 1000
                if isinstance(exc, QuotaExceeded):
                    # A refusal whose quota could not be read names none (`unnamed_refusal`).
                    named = exc.extra.get("quota") or {}
                    metrics.quota_rejected(named.get("period", "unknown"), named.get("limit", "unknown"))
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
                    extra=client_id,
                )
                raise
        metrics.observe_request(model, answer.http_status, answer.cache_status, answer.latency_ms / 1000)
        log_request(
            request_id=caller.request_id,
            tenant_id=caller.tenant_id,
            model=model,
            model_used=answer.model_used,
            cache_status=answer.cache_status,
            tier=answer.tier,
            similarity=answer.similarity,
            http_status=answer.http_status,
            latency_ms=answer.latency_ms,
            tokens=answer.tokens_used,
            cost_usd=answer.cost_usd,
            extra=client_id,
        )
        return answer

    async def _run(
        self, caller: Caller, body: dict[str, Any], headers: Mapping[str, str], started: float
    ) -> ChatAnswer:
        if (priority := headers.get(PRIORITY_HEADER)) is not None:
            caller.priority = parse_priority(priority)
        request = parse_request(body, max_messages=self.limits.max_messages)
        controls = parse_controls(headers, request.checked.cache)
        deadline = asyncio.get_running_loop().time() + self.limits.timeout_s

        def job(status: str, **values: Any) -> _Job:
            return _Job(caller, request, controls, started, deadline, status=status, **values)

        if bypass_reason(request, caller.policy):
            metrics.cache_lookup("bypass")
            return await self._miss(job("bypass"))
        try:
            scope = await scope_of_request(request.model, request.messages, request.body)
        except NothingToLookUp:
            # An image or a recording alone is a question for the model, not one to look up.
            metrics.cache_lookup("bypass")
            return await self._miss(job("bypass"))
        if controls.no_cache:
            # A refresh: no lookup, but the fresh answer replaces what later requests find.
            metrics.cache_lookup("bypass")
            return await self._miss(job("bypass", scope=scope))

        key = (caller.tenant_id, controls.namespace, scope.exact_hash)
        if (leader := self.inflight.join(key, started_at=started)) is not None:
            try:
                result = await self._wait(leader, deadline)
            except UpstreamError as exc:
                stale = await self._serve_stale(job("miss", scope=scope), exc, coalesced=True)
                if stale is None:
                    raise
                return stale
            if result is not None:
                return await self._follow(caller, request, controls, result, started)
        miss = job("miss", scope=scope, key=key)
        lookup_started = time.monotonic()
        exact_probed = False
        if self.fast is not None:
            probed = await self._probe_exact(caller, request, controls, scope, started, lookup_started)
            if isinstance(probed, ChatAnswer):
                return probed
            exact_probed = probed
        gate = self.bound.gate(caller.tenant_id, caller.policy)
        # The semantic tier's miss, found by the one-round-trip probe: the transaction below only
        # reserves the quota and claims the key.
        searched: LookupResult | None = None
        if exact_probed and gate is None:  # the error bound's gate needs the transaction
            semantic = await self._probe_semantic(caller, request, controls, scope, started, lookup_started)
            if isinstance(semantic, ChatAnswer):
                return semantic
            searched = semantic
        # What the probes did not answer may go upstream: its prompt's tokens are estimated for
        # the reservation, and a prompt over the limit is refused (413). A hit the probes serve
        # skips this; a lookup in a transaction (a read replica, an error bound) comes after it.
        try:
            await self._estimate(miss)
        except PayloadTooLarge as exc:
            await self._fail(miss, exc)

        async def look_up(session: AsyncSession) -> ChatAnswer | tuple[LookupResult, Reservation]:
            if searched is not None:
                found = searched
            else:
                async with self.replica.reading(caller.tenant_id) as reads:
                    found = await self.cache.lookup(
                        session,
                        caller.tenant_id,
                        controls.namespace,
                        scope,
                        caller.policy.verifier_policy(controls.threshold),
                        max_age_s=controls.max_age_s,
                        gate=gate,
                        reads=reads,
                        exact_probed=exact_probed,
                    )
                decision: metrics.LookupDecision = (
                    "exact_hit"
                    if found.tier in ("exact", "alias")
                    else "semantic_hit"
                    if found.entry
                    else "miss"
                )
                metrics.cache_lookup(decision, found.similarity, time.monotonic() - lookup_started)
            if found.entry is None:
                # A miss reserves its quota and claims its key among the replicas in this same
                # transaction: nothing else stands between the lookup and the model. Its commit is
                # not waited for (see above); the settling commit, durable, comes later in the WAL
                # and makes both durable.
                reservation = await self._reserve_in(session, miss)
                if await InflightRepository(session).claim(
                    caller.tenant_id, controls.namespace, scope.exact_hash, self.lease
                ):
                    miss.replica_key = scope.exact_hash
                return found, reservation
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

        looked: ChatAnswer | tuple[LookupResult, Reservation] | DatabaseDown | None = None
        try:
            if searched is not None and self.fast is not None and self.fast_reserve:
                looked = await self._reserve_fast(miss, searched)
            if looked is None:
                # Not durable: this transaction writes a hit's booking, or a miss's quota reservation.
                looked = await attempt(self.sessionmaker, look_up, tenant_id=caller.tenant_id, durable=False)
        except QuotaExceeded as exc:
            # An identical request that reserved just before leads the call: its answer is this
            # one's too, a hit that needs no quota (quota refuses calls, not hits).
            if (followed := await self._follow_instead(miss, key)) is not None:
                return followed
            await self._fail(miss, exc)
        if isinstance(looked, ChatAnswer):
            return looked
        if isinstance(looked, DatabaseDown):
            # Postgres is unreachable: the cache steps aside, the model still answers (BYPASS).
            caller.booked = False  # a hit's booking, if it got that far, was rolled back with it
            log.warning("cache lookup skipped: database unreachable")
            metrics.cache_lookup("bypass")
            return await self._miss(job("bypass"))
        found, miss.reservation = looked
        while (leader := self.inflight.join(key, started_at=started)) is not None:
            # Its claim is the leader's row too (one holder per process): the leader releases it.
            miss.replica_key = None
            try:
                result = await self._wait(leader, deadline)
            except BaseException as exc:
                if (
                    isinstance(exc, UpstreamError)
                    and (stale := await self._serve_stale(miss, exc, coalesced=True)) is not None
                ):
                    return stale
                # Booked here, to give back the reservation the lookup made just before the leader began;
                # what a provider billed the leader's call is the leader's to book, once. Cut by the
                # server stopping: booked in the background, which closing the pipeline waits for.
                latency_ms = (time.monotonic() - started) * 1000
                failure = (
                    exc
                    if isinstance(exc, Exception)
                    else ServiceUnavailable("The server stopped before the request was answered.")
                )
                booking = self._book_failure(
                    caller, request, controls, failure, latency_ms, reservation=miss.reservation, billed=False
                )
                if isinstance(exc, Exception):
                    await booking
                else:
                    caller.booked = True
                    self._spawn(booking)
                raise
            if result is not None:
                return await self._follow(
                    caller, request, controls, result, started, release=miss.reservation
                )
            # The leader's client left: follow whoever leads now, or lead.
        miss.embedding = found.embedding
        miss.explored = found if found.withheld is not None else None
        return await self._miss(miss)

    async def _probe_exact(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        scope: Scope,
        started: float,
        lookup_started: float,
    ) -> ChatAnswer | bool:
        """The exact tier in one round trip (no transaction, no ORM); a hit's booking is written
        after the response. The answer on a hit, else whether the probe ran (and found nothing)."""
        assert self.fast is not None
        try:
            found = await self.cache.probe_exact(
                self.fast,
                caller.tenant_id,
                controls.namespace,
                scope,
                caller.policy.verifier_policy(controls.threshold),
                max_age_s=controls.max_age_s,
            )
        except Exception as exc:
            # Either way the transaction's lookup decides (an outage: BYPASS).
            if not unavailable(exc, "deja_exact_probe", "exact probes use transactions"):
                raise
            if missing_function(exc):
                self.fast = None
            return False
        if found is None or found.entry is None:
            return True
        metrics.cache_lookup("exact_hit", found.similarity, time.monotonic() - lookup_started)
        return await self._serve_probed(caller, request, controls, found, started)

    async def _probe_semantic(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        scope: Scope,
        started: float,
        lookup_started: float,
    ) -> ChatAnswer | LookupResult | None:
        """The semantic tier outside any transaction (one round trip to the database); a hit's
        booking and its alias are written after the response. The answer on a hit, the lookup's
        result on a miss, None when the probe could not run (the transaction's lookup decides)."""
        assert self.fast is not None
        found = await self.cache.probe_semantic(
            self.fast,
            caller.tenant_id,
            controls.namespace,
            scope,
            caller.policy.verifier_policy(controls.threshold),
            max_age_s=controls.max_age_s,
        )
        if found is None:
            return None
        decision: metrics.LookupDecision = "semantic_hit" if found.entry else "miss"
        metrics.cache_lookup(decision, found.similarity, time.monotonic() - lookup_started)
        if found.entry is None:
            return found
        return await self._serve_probed(caller, request, controls, found, started)

    async def _caps_cost(self, tenant_id: uuid.UUID) -> bool:
        """Whether a cost quota caps the tenant's spend (also when that cannot be read now)."""

        async def read(session: AsyncSession) -> bool:
            return await QuotaRepository(session).caps_cost(tenant_id)

        capped = await attempt(self.sessionmaker, read, tenant_id=tenant_id, durable=False)
        return capped is not False

    async def _reserve_fast(self, miss: _Job, found: LookupResult) -> tuple[LookupResult, Reservation] | None:
        """A probed miss's quota reservation and replica claim in one round trip (no transaction,
        no ORM). None when it could not run: the transaction then does both."""
        assert self.fast is not None
        assert miss.scope is not None
        caller, request = miss.caller, miss.request
        quotas = self.books.quotas
        terms = await quotas.terms(
            self.router.models_for(request.model),
            miss.prompt_tokens,
            max_output_tokens=request.max_output_tokens,
            choices=request.checked.n or 1,
        )
        if terms.unpriced and await self._caps_cost(caller.tenant_id):
            return None  # the transaction refuses it, saying why
        try:
            reservation, claimed = await reserve_miss(
                self.fast,
                caller.tenant_id,
                terms,
                quotas.lease,
                miss.controls.namespace,
                miss.scope.exact_hash,
                self.lease,
            )
        except QuotaFull:
            raise await self._quota_refusal(caller.tenant_id, terms) from None
        except Exception as exc:
            # Either way the transaction decides (an outage: BYPASS).
            if not unavailable(exc, "deja_reserve_miss", "misses reserve in transactions"):
                raise
            if missing_function(exc):
                self.fast_reserve = False
            return None
        if claimed:
            miss.replica_key = miss.scope.exact_hash
        return found, reservation

    async def _follow_instead(self, miss: _Job, key: Hashable) -> ChatAnswer | None:
        """The answer of an identical call in flight in this process, for a request the quota
        refused; None when there is none. Requests sent together look up, then reserve, at the
        same moment: the one that reserved first leads a few turns of the event loop after the
        others' refusals, so its lead is waited for a moment (`FOLLOW_WAIT_S`)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + FOLLOW_WAIT_S
        while (leader := self.inflight.join(key, started_at=miss.started)) is None:
            if loop.time() >= until:
                return None
            await asyncio.sleep(0.002)
        try:
            result = await self._wait(leader, miss.deadline)
        except Exception as exc:
            if (
                isinstance(exc, UpstreamError)
                and (stale := await self._serve_stale(miss, exc, coalesced=True)) is not None
            ):
                return stale
            # The leader's failure is this request's too (what a provider billed, the leader's).
            latency_ms = (time.monotonic() - miss.started) * 1000
            await self._book_failure(
                miss.caller, miss.request, miss.controls, exc, latency_ms, reservation=None, billed=False
            )
            raise
        if result is None:  # the leader's client left before its answer: refused after all
            return None
        return await self._follow(miss.caller, miss.request, miss.controls, result, miss.started)

    async def _quota_refusal(self, tenant_id: uuid.UUID, terms: ReservationTerms) -> DejaError:
        """Which quota refused a reservation made outside a transaction, read in one; a tenant
        deleted meanwhile (its key still remembered by this process for a few seconds) refuses
        every reservation: that is a 401, no quota's doing."""

        async def read(session: AsyncSession) -> DejaError:
            tenant = await TenantRepository(session).get(tenant_id)
            if tenant is None or tenant.status == TenantStatus.DELETED:
                return Unauthorized("This key's tenant was deleted.")
            return await QuotaRepository(session).exceeded(tenant_id, terms)

        refusal = await attempt(self.sessionmaker, read, tenant_id=tenant_id)
        if isinstance(refusal, DatabaseDown):
            return unnamed_refusal()
        return refusal

    async def _serve_probed(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        found: LookupResult,
        started: float,
    ) -> ChatAnswer:
        """A hit found outside any transaction: the answer now, its booking after the response."""
        entry = found.entry
        assert entry is not None
        latency_ms = (time.monotonic() - started) * 1000
        row = await self._entry_hit_row(caller, request, controls, latency_ms, entry)
        row.metadata.update(verifier_metadata(found))
        metrics.add_avoided_cost(row.used_model, row.avoided_cost_usd)
        await self.writer.submit(row)
        caller.booked = True
        return _replay(request, entry.response, entry.id, entry.similarity, found.tier, latency_ms)

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
        spent: tuple[Usage, Decimal] | None = None,
    ) -> ChatAnswer:
        """Serve `entry` and book the hit; `spent`: what the request cost anyway (the answers a
        provider billed before a stale entry was served), booked on the hit's row."""
        latency_ms = (time.monotonic() - started) * 1000
        row = await self._entry_hit_row(caller, request, controls, latency_ms, entry)
        row.metadata.update(metadata or {})
        if spent is not None:
            usage, row.cost_usd = spent
            row.prompt_tokens, row.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        await self.books.book_hit(session, row)
        caller.booked = True
        return _replay(request, entry.response, entry.id, entry.similarity, tier, latency_ms)

    async def _wait(self, leader: asyncio.Future[Any], deadline: float) -> Any:
        """The result of the identical request already in flight in this process; None when the
        leader's own client left before it was complete (this request then asks for itself)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(leader)
        except TimeoutError:
            raise _deadline_passed(self.limits.timeout_s) from None
        except LeaderGone:
            return None

    async def _follow(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        result: Any,
        started: float,
        release: Reservation | None = None,
    ) -> ChatAnswer:
        """Answer with the result of the identical request that was in flight (here or on another
        replica), and give back `release`, reserved by a lookup that missed just before."""
        completion, entry_id, model = result
        latency_ms = (time.monotonic() - started) * 1000
        row = await self._hit_row(
            caller, request, controls, latency_ms, model, Usage.of(completion.get("usage"))
        )
        row.similarity, row.entry_id, row.used_model = 1.0, entry_id, model
        row.metadata["coalesced"] = True
        metrics.add_avoided_cost(model, row.avoided_cost_usd)
        if entry_id is not None:
            self.cache.record_hit(entry_id)
        await self.writer.submit(row, reservation=release)
        caller.booked = True
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
    ) -> LedgerRow:
        """A hit's booking: no cost, and as avoided cost what its tokens cost at today's price."""
        avoided = await self.books.cost(model, saved)
        return _row(
            caller, request.model, controls.namespace, "hit", 200, latency_ms, avoided_cost_usd=avoided
        )

    async def _entry_hit_row(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        latency_ms: float,
        entry: StoredEntry,
    ) -> LedgerRow:
        """The booking of a hit served from a stored entry (exact, alias or semantic). What it saves
        is priced as the model that answered (a route's name, "team-chat", has no price of its
        own), else as the model the entry was stored for."""
        answered = entry.response.get("model")
        saved = Usage(entry.prompt_tokens, entry.completion_tokens)
        priced = answered if isinstance(answered, str) and await self.books.priced(answered) else entry.model
        row = await self._hit_row(caller, request, controls, latency_ms, priced, saved)
        row.similarity, row.entry_id, row.used_model = entry.similarity, entry.id, answered
        return row

    # Misses and bypasses.

    async def _miss(self, job: _Job) -> ChatAnswer:
        """Reserve quota, ask the model, store and book; lead the coalescing group meanwhile."""
        if job.key is not None:
            job.future = self.inflight.lead(job.key)
        tried: list[Attempt] = []  # the calls made to upstreams, in order
        try:
            if job.key is not None and job.scope is not None and job.replica_key is None:
                followed = await self._follow_replica(job, job.scope)
                if followed is not None:
                    return followed
            if job.reservation is None:  # not reserved with a lookup
                await self._estimate(job)
                job.reservation = await self._reserve(job)
            # Watched until the response starts (a stream's first byte): a client that left
            # before it is booked as left, whatever the model then does.
            if job.caller.receive is not None:
                job.watch = ClientWatch(job.caller.receive)
            if job.request.stream:
                return await self._stream(job, tried)
            try:
                async with asyncio.timeout_at(job.deadline):
                    result = await self.router.complete(
                        job.request.body,
                        priority=job.caller.priority,
                        party=job.caller.tenant_id,
                        trail=tried,
                    )
            except TimeoutError:
                # This request's deadline, not theirs: the requests waiting on it ask for themselves.
                await self._fail(job, _deadline_passed(self.limits.timeout_s, tried), followers=LeaderGone())
            except DejaError as exc:
                stale = await self._stale_or_book_error(job, exc)
                self._settle(job, error=exc)
                return stale
            answer = await self._finish(
                job,
                result.completion,
                result.model,
                result.latency_ms,
                fallback_used=result.fallback_used,
                trail=result.trail,
            )
        except BaseException as exc:
            # Refused or cut: still booked, once (a deadline met in `_fail` is booked there).
            # A cancelled request (the server stopping) does not fail the requests waiting on it.
            self._settle(job, error=exc if isinstance(exc, Exception) else LeaderGone())
            if isinstance(exc, QuotaExceeded | PayloadTooLarge | UpstreamTimeout) and not job.caller.booked:
                await self._book_error(job, exc)
            elif isinstance(exc, asyncio.CancelledError) and not job.caller.booked:
                # The server stopped before the model answered (its grace period over): booked
                # in the background, which closing the pipeline waits for, with the calls it had
                # made (the one in flight may be answered, and billed, all the same).
                job.caller.booked = True
                stopped = ServerStopped(
                    "The server stopped before the model answered.", billed=billed_attempts(tried)
                )
                self._spawn(self._book_error(job, stopped))
            raise
        finally:
            if job.watch is not None:
                job.watch.stop()
        self._settle(job, result=(answer.completion, answer.entry_id, result.model))
        return answer

    async def _follow_replica(self, job: _Job, scope: Scope) -> ChatAnswer | None:
        """Wait for an identical call in flight on another replica and answer with its entry;
        None: no other replica has one, this one leads."""
        try:
            async with asyncio.timeout_at(job.deadline):
                entry = await self.replicas.lead_or_wait(
                    job.caller.tenant_id,
                    job.controls.namespace,
                    scope.exact_hash,
                    max_age_s=job.controls.max_age_s,
                )
        except TimeoutError:
            # This request's deadline, not theirs: the requests waiting on it ask for themselves.
            await self._fail(job, _deadline_passed(self.limits.timeout_s), followers=LeaderGone())
        if entry is None:
            job.replica_key = scope.exact_hash
            return None
        result = (entry.response, entry.id, entry.response.get("model") or entry.model)
        self._settle(job, result=result)
        return await self._follow(
            job.caller, job.request, job.controls, result, job.started, release=job.reservation
        )

    async def _fail(self, job: _Job, exc: DejaError, *, followers: BaseException | None = None) -> NoReturn:
        """Book `exc` and raise it; identical requests waiting on this one get `followers`
        (default: the same error)."""
        self._settle(job, error=followers or exc)
        await self._book_error(job, exc)
        raise exc

    def _settle(self, job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
        future, replica_key, key = job.future, job.replica_key, job.key
        if (
            isinstance(error, LeaderGone)
            and future is not None
            and replica_key is not None
            and key is not None
        ):
            job.future = job.replica_key = None  # settled: later calls leave it be
            self._hand_over(job, key, future, replica_key, error)
            return
        if job.future is not None and job.key is not None:
            # Only a stored answer stays joinable after the fact (no-store means: do not reuse).
            stored = result is not None and result[1] is not None
            self.inflight.finish(
                job.key, job.future, result=result, error=error, linger=stored, written=not job.writing
            )
        if job.replica_key is not None:
            # After the answer's entry is stored: the other replicas' followers look for it then.
            self._spawn(self.replicas.release(job.caller.tenant_id, job.controls.namespace, job.replica_key))
            job.replica_key = None

    def _hand_over(
        self, job: _Job, key: Hashable, future: asyncio.Future[Any], replica_key: bytes, gone: LeaderGone
    ) -> None:
        """Release the replicas' claim on the key, then wake this process's followers: the first of
        them leads and claims the key anew, and no release of this call's claim comes after it
        (the claim's holder is the process, so a late release would remove the new leader's)."""

        async def hand_over() -> None:
            try:
                await self.replicas.release(job.caller.tenant_id, job.controls.namespace, replica_key)
            finally:
                self.inflight.finish(key, future, error=gone, linger=False, written=not job.writing)

        self._spawn(hand_over())

    def _used_row(
        self,
        job: _Job,
        completion: dict[str, Any],
        model_used: str,
        usage: Usage,
        cost: Decimal,
        http_status: int,
        **values: Any,
    ) -> LedgerRow:
        return _row(
            job.caller,
            job.request.model,
            job.controls.namespace,
            job.status,
            http_status,
            job.elapsed_ms(),
            used_model=model_used,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost,
            **values,
        )

    async def _finish(
        self,
        job: _Job,
        completion: dict[str, Any],
        model_used: str,
        upstream_latency_ms: float,
        *,
        fallback_used: bool = False,
        trail: Sequence[Attempt] = (),
        storable: bool = True,
        left: bool = False,
    ) -> ChatAnswer:
        """Store the answer (unless told not to, or not `storable`: a stream that came in shapes
        a copy cannot give back), settle the quota and book the request: one transaction; `left`:
        its client had left (as a watch of the connection says for a request without a stream). The
        request is booked for the answer and for the answers of the attempts before it that a
        provider counted tokens for but that could not be used (`trail`); the entry costs what
        its answer did, which is what a hit on it saves."""
        # Those who call this settle the request's coalescing group after it, but for a stream its
        # client left (`_finish_left`), which settled it when the client went.
        settled_after = not left
        answer_usage, reported = self._answer_usage(job, model_used, completion)
        cost = await self.books.cost(model_used, answer_usage)
        usage, booked_cost = await self._with_billed(
            answer_usage, cost, billed_attempts(trail), job.request, job.prompt_tokens
        )
        metadata: dict[str, Any] = {"fallback": True} if fallback_used else {}
        if reported is not None:
            # The provider counted more than the request can use: booked, and stored (what each
            # hit saves), at most that; what it said is kept beside.
            metadata["usage_capped"] = reported
            completion = {**completion, "usage": answer_usage.as_openai()}
        left = left or (job.watch is not None and job.watch.left)
        if left:
            # Paid for and stored all the same; booked as never delivered.
            metadata["client_left"] = True
        row = self._used_row(
            job,
            completion,
            model_used,
            usage,
            booked_cost,
            CLIENT_GONE if left else 200,
            upstream_latency_ms=upstream_latency_ms,
            metadata=metadata,
            explored=job.explored is not None,
        )
        # Another model than the route's primary answered: served to this request and those
        # waiting on it, but neither stored nor taken as the primary's answer to label an explored
        # hit with; the next request is the primary's to answer (a fallback to the same model at
        # another provider is the primary's answer).
        other_model = self._other_model(job, model_used, fallback_used)
        # Stored unless told not to, or when a copy could not give back what the model said.
        storable = storable and servable_again(completion) and not job.controls.no_store and not other_model
        scope = job.scope if storable else None
        # The answer goes to the client first; storing it, settling the quota and booking the
        # request are written after (app.ledger.writer), under the entry id chosen here.
        row.entry_id = (job.entry_id or uuid.uuid4()) if scope is not None else None
        refreshed = scope if scope is not None and job.controls.no_cache else None
        if refreshed is not None and job.key is None and settled_after:
            # Until the answers a refresh replaces are retired, this process's identical requests
            # get its answer: one sent right after it would otherwise be served the old answer.
            job.key = (job.caller.tenant_id, job.controls.namespace, refreshed.exact_hash)
            job.future = self.inflight.lead(job.key)
        key, future, replica_key = job.key, job.future, job.replica_key
        tenant_id, namespace = job.caller.tenant_id, job.controls.namespace
        job.replica_key = None  # released with the stored answer, or by `stored` when that failed
        job.writing = key is not None and future is not None

        ttl_s = job.controls.ttl_s or job.caller.policy.default_ttl_s

        async def store(session: AsyncSession) -> None:
            if scope is not None:
                await self.cache.store(
                    session,
                    tenant_id,
                    namespace,
                    scope,
                    completion,
                    ttl_s=ttl_s,
                    embedding=job.embedding,
                    cost_usd=cost,
                    entry_id=row.entry_id,
                )
            if replica_key is not None:
                # In the transaction that stores the answer: the other replicas' followers, who
                # look for the entry once the key is free, find both at once.
                await InflightRepository(session).release(tenant_id, namespace, replica_key, self.lease)

        async def stored(written: bool) -> None:
            if written and refreshed is not None and row.entry_id is not None:
                # A refresh replaces what later requests find: the answers stored before for the
                # same prompt expire, and the paraphrases aliased to them are let go, before the
                # requests that joined the refresh stop doing so and look up.
                await self._retire_older(tenant_id, namespace, refreshed.exact_hash, row.entry_id)
            if key is not None and future is not None:
                self.inflight.written(key, future)
            if replica_key is not None and not written:
                # The answer's transaction did not commit (it waits in the spool, or failed): the
                # key is freed on its own, so that the followers lead themselves.
                await self.replicas.release(tenant_id, namespace, replica_key)

        entry_id = row.entry_id
        await self.writer.submit(
            row,
            reservation=job.reservation,
            usage=usage,
            also=store if scope is not None or replica_key is not None else None,
            after=stored,
            fast=self._miss_booking(job, row, usage, cost, completion, scope, ttl_s, replica_key),
        )
        job.caller.booked = True
        metrics.add_cost(model_used, booked_cost)
        if job.explored is not None and job.scope is not None and not other_model:
            explored, caller = job.explored, job.caller
            question, model = job.scope.prompt, job.request.model
            self._spawn(
                self.bound.label(
                    caller.tenant_id, caller.request_id, caller.policy, explored, question, completion, model
                )
            )
        return ChatAnswer(
            cache_status=job.header_status,
            model_used=model_used,
            completion=completion,
            entry_id=entry_id,
            tokens_used=usage.total,
            cost_usd=booked_cost,
            latency_ms=row.latency_ms,
            explored=job.explored is not None,
            http_status=row.http_status,
        )

    def _miss_booking(
        self,
        job: _Job,
        row: LedgerRow,
        usage: Usage,
        answer_cost: Decimal,
        completion: dict[str, Any],
        scope: Scope | None,
        ttl_s: int | None,
        replica_key: bytes | None,
    ) -> MissBooking | None:
        """The booking `_finish` submits, as one statement, when `deja_book_miss` can write it."""
        if self.writer.fast is None or job.reservation is None:
            return None  # written in a transaction anyway: build nothing for it
        namespace = job.controls.namespace
        entry = (
            self.cache.new_entry(
                job.caller.tenant_id,
                namespace,
                scope,
                completion,
                ttl_s=ttl_s,
                embedding=job.embedding,
                cost_usd=answer_cost,
                entry_id=row.entry_id,
            )
            if scope is not None
            else None
        )
        if not MissBooking.possible(job.reservation, entry):
            return None
        claim = Claim(namespace, replica_key, self.lease.holder) if replica_key is not None else None
        return MissBooking(row, job.reservation, usage, entry, claim)

    async def _stream(self, job: _Job, tried: list[Attempt]) -> ChatAnswer:
        # Always ask for usage: the ledger needs it. The client sees the usage chunk only if it asked.
        options = {**(job.request.body.get("stream_options") or {}), "include_usage": True}
        try:
            async with asyncio.timeout_at(job.deadline):
                upstream = await self.router.stream(
                    {**job.request.body, "stream_options": options},
                    priority=job.caller.priority,
                    party=job.caller.tenant_id,
                    trail=tried,
                )
        except TimeoutError:
            await self._fail(job, _deadline_passed(self.limits.timeout_s, tried), followers=LeaderGone())
        except DejaError as exc:
            stale = await self._stale_or_book_error(job, exc)
            self._settle(job, error=exc)
            return stale
        # Named before the answer is known: the entry it is stored under if it can be (a stream
        # cut short or shaped so that a copy cannot give it back is not stored).
        storable = job.scope is not None and not job.controls.no_store
        if storable and not self._other_model(job, upstream.model, upstream.fallback_used):
            job.entry_id = uuid.uuid4()
        return ChatAnswer(
            cache_status=job.header_status,
            model_used=upstream.model,
            stream=self._relay(job, upstream),
            entry_id=job.entry_id,
            latency_ms=job.elapsed_ms(),
            explored=job.explored is not None,
        )

    def _other_model(self, job: _Job, model_used: str, fallback_used: bool) -> bool:
        """Another model than the route's primary answered (a fallback to the same model at another
        provider is the primary's answer)."""
        return fallback_used and model_used != self.router.models_for(job.request.model)[0]

    async def _relay(self, job: _Job, upstream: RouterStream) -> AsyncIterator[bytes]:
        """The upstream's chunks as SSE; the request is booked however the stream ends: finished,
        cut by an upstream failure or the deadline (what was delivered), or the client gone (the
        rest read without it, `_finish_left`)."""
        include_usage = job.request.include_usage
        assembler = CompletionAssembler()
        ended = relayed = False
        # The upstream's next chunk, read by a task of its own: a client that leaves cancels this
        # relay, never the read, which the rest of the stream goes on from.
        reading: asyncio.Future[dict[str, Any]] | None = None
        left: Coroutine[Any, Any, None] | None = None  # the rest of the stream, read without the client
        self._enter()
        try:
            async with contextlib.AsyncExitStack() as holding:
                await holding.enter_async_context(upstream)
                failure: DejaError | None = None
                followers: BaseException | None = None  # what the requests waiting on this one get
                try:
                    while True:
                        reading = asyncio.ensure_future(anext(upstream))
                        try:
                            async with asyncio.timeout_at(job.deadline):
                                chunk = await asyncio.shield(reading)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            reading.cancel()
                            # This request's deadline, not theirs: they ask for themselves.
                            failure, followers = _deadline_passed(self.limits.timeout_s), LeaderGone()
                            break
                        except UpstreamError as exc:
                            failure = exc
                            break
                        reading = None
                        assembler.add(chunk)
                        if not relayed:
                            relayed = True
                            # One turn of the event loop before the first piece goes out: the
                            # server's watch for a client that left runs, and cancels this relay
                            # (the rest is read without it, below) instead of a buffered answer
                            # going to a closed connection at once.
                            await asyncio.sleep(0)
                        if not include_usage:
                            if chunk.get("usage") and not chunk.get("choices"):
                                continue
                            chunk = {k: v for k, v in chunk.items() if k != "usage"}
                        yield sse(chunk)
                except (GeneratorExit, asyncio.CancelledError):
                    # The client went away mid-stream (or the server, stopping, cut the stream).
                    # What the provider bills is the whole answer, hidden reasoning included,
                    # which only the stream's end says: the rest is read without the client,
                    # the upstream handed over open (`_finish_left`).
                    left = self._finish_left(job, upstream, holding.pop_all(), reading, assembler)
                    raise
            completion = assembler.completion()
            if failure is None:
                answer = await self._finish(
                    job,
                    completion,
                    upstream.model,
                    upstream.latency_ms,
                    fallback_used=upstream.fallback_used,
                    trail=upstream.trail,
                    storable=assembler.storable,
                )
                self._settle(job, result=(answer.completion, answer.entry_id, upstream.model))
                ended = True
                yield DONE
                return
            ended = True
            # Settled first, and booked whatever becomes of this generator: a client that leaves
            # while the row is written cancels the wait, never the booking.
            self._settle(job, error=followers or failure)
            await asyncio.shield(
                self._spawn(self._book_delivered(job, upstream, completion, failure.status_code, failure))
            )
            # Headers are gone: the failure travels as an SSE error event, as OpenAI sends it, with
            # the slug every other error of Déjà's has as its type and code, and the HTTP status
            # the request is booked with.
            yield sse(
                {
                    "error": {
                        "message": failure.detail,
                        "type": failure.slug,
                        "code": failure.slug,
                        "status": failure.status_code,
                    }
                }
            )
        finally:
            try:
                if not ended:
                    # Identical requests waiting on this one ask for themselves.
                    self._settle(job, error=LeaderGone())
                    if left is not None:
                        self._spawn(left)
                    else:
                        # Cut after the upstream's end (while the answer was being booked): booked
                        # at what it delivered.
                        gone = UpstreamError("the client stopped reading the stream")
                        self._spawn(
                            self._book_delivered(job, upstream, assembler.completion(), CLIENT_GONE, gone)
                        )
            finally:
                self._leave()

    async def _finish_left(
        self,
        job: _Job,
        upstream: RouterStream,
        holding: contextlib.AsyncExitStack,
        reading: asyncio.Future[dict[str, Any]] | None,
        assembler: CompletionAssembler,
    ) -> None:
        """A stream whose client left before its end, finished as a request whose client left
        while the model worked: the rest is read (within the request's deadline), and the answer
        booked at what the provider counted for it (`client_left`, 499) and stored. Booked at what
        was read when the rest cannot be had: the upstream broke off, the deadline passed, or the
        server stopped (which cancels the reading)."""

        async def read_rest() -> DejaError | None:
            """Read the rest into `assembler` (from the chunk `reading` when one was on its way),
            then close the upstream; what ended it early, or None."""
            async with holding:
                try:
                    async with asyncio.timeout_at(job.deadline):
                        if reading is not None:
                            assembler.add(await reading)
                        async for chunk in upstream:
                            assembler.add(chunk)
                except StopAsyncIteration:
                    pass
                except TimeoutError:
                    return _deadline_passed(self.limits.timeout_s)
                except UpstreamError as exc:
                    return exc
            return None

        rest = asyncio.ensure_future(read_rest())
        self._reading_rest.add(rest)
        rest.add_done_callback(self._reading_rest.discard)
        if self._stopping:
            rest.cancel()
        try:
            failure = await rest
        except asyncio.CancelledError:
            failure = ServiceUnavailable("The server stopped before the stream's end.")
        except Exception:
            # Never a request without its row: booked at what was read.
            log.exception("the rest of a stream whose client left could not be read")
            failure = UpstreamError("the rest of the stream could not be read")
        if failure is None:
            await self._finish(
                job,
                assembler.completion(),
                upstream.model,
                upstream.latency_ms,
                fallback_used=upstream.fallback_used,
                trail=upstream.trail,
                storable=assembler.storable,
                left=True,
            )
            return
        await self._book_delivered(job, upstream, assembler.completion(), CLIENT_GONE, failure)

    async def _book_delivered(
        self,
        job: _Job,
        upstream: RouterStream,
        completion: dict[str, Any],
        http_status: int,
        error: DejaError,
    ) -> None:
        """Book a stream that ended early at what it delivered (never free), and the answers before
        it a provider counted tokens for but that could not be used; settle its quota."""
        delivered, reported = self._answer_usage(job, upstream.model, completion)
        usage, cost = await self._with_billed(
            delivered,
            await self.books.cost(upstream.model, delivered),
            billed_attempts(upstream.trail),
            job.request,
            job.prompt_tokens,
        )
        row = self._used_row(
            job,
            completion,
            upstream.model,
            usage,
            cost,
            http_status,
            upstream_latency_ms=upstream.latency_ms,
            error=error.booked[:ERROR_CHARS],
            metadata={
                "stream_ended": "client_gone" if http_status == CLIENT_GONE else "upstream_error",
                **({"usage_capped": reported} if reported is not None else {}),
            },
            explored=job.explored is not None,
        )
        await self.books.book(row, reservation=job.reservation, usage=usage)
        job.caller.booked = True
        metrics.add_cost(upstream.model, cost)

    async def _stale_or_book_error(self, job: _Job, exc: DejaError) -> ChatAnswer:
        """Every upstream failed: serve an answer that expired recently if the tenant or the
        request allows it (like HTTP's stale-if-error), else book the failure and raise it."""
        if isinstance(exc, UpstreamError) and (served := await self._serve_stale(job, exc)) is not None:
            return served
        await self._book_error(job, exc)
        raise exc

    async def _serve_stale(
        self, job: _Job, exc: UpstreamError, *, coalesced: bool = False
    ) -> ChatAnswer | None:
        """An answer that expired no longer ago than the tenant or the request allows, served
        (and the job's reservation settled) because every upstream failed; None when none is
        allowed or found. `coalesced`: the job waited on the identical call that failed, whose
        request books what a provider billed for it; otherwise the answers billed before every
        upstream failed cost this request as much when a stale entry is served."""
        allowed = job.controls.stale_if_error_s or job.caller.policy.stale_if_error_s
        scope = job.scope
        if scope is None or not allowed:
            return None
        spent = (Usage(), Decimal(0))
        if not coalesced:
            spent = await self._with_billed(*spent, exc.billed, job.request, job.prompt_tokens)
        metadata: dict[str, Any] = {"stale": True, "upstream_error": exc.booked[:200]}
        if coalesced:
            metadata["coalesced"] = True

        async def stale(session: AsyncSession) -> ChatAnswer | None:
            found = await self.cache.lookup(
                session,
                job.caller.tenant_id,
                job.controls.namespace,
                scope,
                job.caller.policy.verifier_policy(job.controls.threshold),
                stale_s=allowed,
            )
            if found.entry is None:
                return None
            await self.books.quotas.settle(session, job.reservation, *spent)
            return await self._hit(
                session,
                job.caller,
                job.request,
                job.controls,
                found.entry,
                found.tier,
                job.started,
                metadata=metadata,
                spent=spent if spent[0].total else None,
            )

        served = await attempt(self.sessionmaker, stale, tenant_id=job.caller.tenant_id)
        if not isinstance(served, ChatAnswer):
            return None
        served.stale = True
        return served

    # Booking.

    async def _book_error(self, job: _Job, exc: BaseException) -> None:
        """Book a failed request and give back its quota reservation."""
        await self._book_failure(
            job.caller,
            job.request,
            job.controls,
            exc,
            job.elapsed_ms(),
            reservation=job.reservation,
            explored=job.explored is not None,
            left=job.watch is not None and job.watch.left,
            prompt_tokens=job.prompt_tokens,
        )

    async def _book_failure(
        self,
        caller: Caller,
        request: ChatRequest,
        controls: CacheControls,
        exc: BaseException,
        latency_ms: float,
        *,
        reservation: Reservation | None,
        billed: bool = True,
        explored: bool = False,
        left: bool = False,
        prompt_tokens: int = 0,
    ) -> None:
        """Book a failed request; with `billed`, for the answers a provider counted tokens for
        though none could be used (a follower's failure is its leader's: `billed=False`);
        `explored`: the error bound sent it to the model instead of a hit (it learns what that
        costs, failures included); `left`: its client was gone before the failure, which it
        never saw (499, as an answer its client left is booked; the error is kept)."""
        status = CLIENT_GONE if left else exc.status_code if isinstance(exc, DejaError) else 500
        detail = exc.booked if isinstance(exc, DejaError) else type(exc).__name__
        spent_on = list(exc.billed) if billed and isinstance(exc, Billed) else []
        used, cost = await self._with_billed(Usage(), Decimal(0), spent_on, request, prompt_tokens)
        spent: dict[str, Any] = {}
        if used.total:
            spent = {
                "used_model": spent_on[-1][0],
                "prompt_tokens": used.prompt_tokens,
                "completion_tokens": used.completion_tokens,
                "cost_usd": cost,
            }
        row = _row(
            caller,
            request.model,
            controls.namespace,
            "error",
            status,
            latency_ms,
            error=detail[:ERROR_CHARS],
            explored=explored,
            # A follower failed with the call it waited on, and made none: its request is given
            # back when settled (`counted_request`).
            metadata=({"client_left": True} if left else {}) | ({} if billed else {"coalesced": True}),
            **spent,
        )
        await self.books.book(row, reservation=reservation, usage=used if used.total else None)
        caller.booked = True
        caller.failed_latency_ms = latency_ms
        if used.total:
            caller.failed_model = spent_on[-1][0]
            caller.failed_tokens = used.total
            caller.failed_cost_usd = cost

    async def _with_billed(
        self,
        usage: Usage,
        cost: Decimal,
        billed: Sequence[tuple[str, Any]],
        request: ChatRequest,
        prompt_tokens: int = 0,
    ) -> tuple[Usage, Decimal]:
        """`usage` and `cost` with those of the answers a provider counted tokens for though they
        could not be used, none counted beyond what `request` can use (`_most`)."""
        return await self.books.with_billed(
            usage, cost, billed, lambda model: self._most(request, prompt_tokens, model), prompt_tokens
        )

    async def _book_refusal(
        self, caller: Caller, model: str | None, status: int, latency_ms: float, exc: Exception
    ) -> None:
        """Book a request that failed before any other booking: refused for what it says (422,
        413), or by an error of Déjà's own (500). Nothing was reserved for it."""
        detail = exc.booked if isinstance(exc, DejaError) else type(exc).__name__
        row = _row(caller, model or "", "", "error", status, latency_ms, error=detail[:ERROR_CHARS])
        try:
            await self.books.book(row)
        except Exception:
            log.exception("could not book a refused request", extra={"request_id": caller.request_id})
        caller.booked = True

    async def _retire_older(
        self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes, keep: uuid.UUID
    ) -> None:
        async def retire(session: AsyncSession) -> None:
            await CacheRepository(session).retire_older(tenant_id, namespace, exact_hash, keep)

        try:
            await attempt(self.sessionmaker, retire, tenant_id=tenant_id)
        except Exception:
            log.exception("could not retire the answers a refresh replaced")

    def _most(self, request: ChatRequest, prompt_tokens: int, model: str) -> tuple[int, int]:
        """The most tokens one answer of `model` to `request` can count: its prompt at most the
        prompt limit (or four times its estimate, if more: the estimate is not the provider's
        tokenizer, and a file or an image sent by reference counts more than it shows), each of
        its `n` answers at most its own output limit, or the model's."""
        per_answer = request.max_output_tokens or most_output_tokens(model)
        return max(self.limits.max_prompt_tokens, 4 * prompt_tokens), per_answer * (request.checked.n or 1)

    def _answer_usage(
        self, job: _Job, model: str, completion: dict[str, Any]
    ) -> tuple[Usage, dict[str, int] | None]:
        """What the answer used (`Bookkeeper.usage`), none of it beyond what the request can use
        (`_most`). The second value is what the provider counted, when it counted more."""
        usage = self.books.usage(completion.get("usage"), completion, job.prompt_tokens)
        most_prompt, most_completion = self._most(job.request, job.prompt_tokens, model)
        if usage.prompt_tokens <= most_prompt and usage.completion_tokens <= most_completion:
            return usage, None
        reported = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
        return usage.within(most_prompt, most_completion), reported

    async def _estimate(self, job: _Job) -> None:
        """The prompt's tokens, estimated for the reservation; too many is a 413."""
        body = job.request.body
        job.prompt_tokens = await self.books.quotas.estimator.prompt_tokens(
            job.request.messages,
            (body.get(name) for name in MODEL_READS),
            models=self.router.models_for(job.request.model),
            most=self.limits.max_prompt_tokens,
        )
        if job.prompt_tokens > self.limits.max_prompt_tokens:
            raise PayloadTooLarge(
                f"The prompt has about {job.prompt_tokens} tokens or more (counting stops past the limit); "
                f"the limit is {self.limits.max_prompt_tokens}."
            )

    async def _reserve_in(self, session: AsyncSession, job: _Job) -> Reservation:
        """Reserve quota for the job's upstream call inside a transaction already open."""
        request = job.request
        return await self.books.quotas.reserve(
            session,
            job.caller.tenant_id,
            self.router.models_for(request.model),
            job.prompt_tokens,
            max_output_tokens=request.max_output_tokens,
            choices=request.checked.n or 1,
        )

    async def _reserve(self, job: _Job) -> Reservation | None:
        """Reserve in a transaction of its own (a bypass: no lookup to fold it into)."""

        async def reserve(session: AsyncSession) -> Reservation:
            return await self._reserve_in(session, job)

        reserved = await attempt(self.sessionmaker, reserve, tenant_id=job.caller.tenant_id)
        if not isinstance(reserved, DatabaseDown):
            return reserved
        if job.caller.policy.quota_outage == "closed":
            raise ServiceUnavailable(
                "Quotas cannot be checked while the database is unreachable, and this tenant's "
                "policy is to refuse then.",
                headers={"Retry-After": "5"},
            )
        job.scope = None  # nothing can be stored either
        return None

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _enter(self) -> None:
        self._open += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._open -= 1
        if not self._open:
            self._idle.set()

    @contextlib.contextmanager
    def _opened(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._leave()

    async def aclose(self) -> None:
        """Wait for the bookings in progress, then for the writer's. The server cancels the
        requests still running when its grace period ends and stops the app at once: those
        requests book themselves (or spawn their booking) as they unwind, a few turns of the
        event loop later, so their unwinding is waited for first (at most `UNWIND_S`). Streams
        whose client left are not read to their end any more (`_finish_left`)."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(UNWIND_S):
                await self._idle.wait()
        for rest in list(self._reading_rest):
            rest.cancel()
        # Bookings (and the judge's labels) already on their way are waited for, however long.
        await self.background_done()
        await self.writer.aclose()

    async def background_done(self) -> None:
        """Wait until the work spawned after responses (bookings, the judge's labels) is done."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _deadline_passed(timeout_s: float, tried: Sequence[Attempt] = ()) -> UpstreamTimeout:
    """The request's deadline passed; `tried`: the upstream attempts made by then, whose billed
    answers the request is booked for."""
    return UpstreamTimeout(
        f"No answer within the request's deadline of {timeout_s:g} s.", billed=billed_attempts(tried)
    )


def _row(
    caller: Caller,
    requested_model: str,
    namespace: str,
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
        client_request_id=caller.client_request_id,
        requested_model=requested_model,
        namespace=namespace,
        cache_status=status,
        http_status=http_status,
        latency_ms=latency_ms,
        priority=caller.priority,
        metadata=metadata,
        **values,
    )


def _zeroed(usage: Any) -> dict[str, Any]:
    """A `usage` object's counts, nested ones included, as 0: its shape, none of its tokens."""
    if not isinstance(usage, dict):
        return {}
    return {
        key: _zeroed(value) if isinstance(value, dict) else 0
        for key, value in usage.items()
        if isinstance(value, dict) or (isinstance(value, int | float) and not isinstance(value, bool))
    }


def _replay(
    request: ChatRequest,
    stored: dict[str, Any],
    entry_id: uuid.UUID | None,
    similarity: float | None,
    tier: str | None,
    latency_ms: float,
) -> ChatAnswer:
    # A hit consumed no tokens: usage says so (docs/caching.md, "usage on a hit"), in the shape the
    # answer's own usage had (`completion_tokens_details.reasoning_tokens` reads 0, not missing).
    completion = {**replay(stored), "usage": {**_zeroed(stored.get("usage")), **ZERO_USAGE}}
    answer = ChatAnswer(
        cache_status="HIT",
        model_used=completion.get("model"),
        similarity=similarity,
        entry_id=entry_id,
        tier=tier,
        latency_ms=latency_ms,
    )
    if request.stream:
        answer.stream = _replay_stream(completion, include_usage=request.include_usage)
    else:
        answer.completion = completion
    return answer


async def _replay_stream(completion: dict[str, Any], *, include_usage: bool) -> AsyncIterator[bytes]:
    """The stored answer as SSE, REPLAY_BATCH events a write, the event loop getting a turn
    between writes (a write does not wait for the client unless its buffer is full)."""
    batch: list[bytes] = []
    for chunk in replay_chunks(completion, include_usage=include_usage):
        batch.append(sse(chunk))
        if len(batch) == REPLAY_BATCH:
            yield b"".join(batch)
            batch.clear()
            await asyncio.sleep(0)
    batch.append(DONE)
    yield b"".join(batch)
