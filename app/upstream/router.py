"""The model router: primary then fallbacks, retries with backoff, circuit breakers, priorities."""

from __future__ import annotations

import asyncio
import copy
import email.utils
import math
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Annotated, Any, Generic, NoReturn, TypeVar

import msgspec
import openai
from openai import AsyncOpenAI
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from app.errors import (
    BadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from app.upstream.breaker import BreakerState, CircuitBreaker, ModelBreakers
from app.upstream.config import RouterConfig, RouteTarget, UpstreamConfig, validate_router_config
from app.upstream.events import NoRouterEvents, Outcome, RouterEvents
from app.upstream.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, PrioritySemaphore, Turn

_T = TypeVar("_T")

# Outcomes that say nothing bad about the upstream's health: they close a breaker, never open it.
_HEALTHY = frozenset({Outcome.OK, Outcome.REJECTED, Outcome.EMPTY, Outcome.NOT_FOUND})
# Skips made without calling the upstream; they are not attempts.
_SKIPS = frozenset({Outcome.BREAKER_OPEN, Outcome.NO_KEY})
# Status codes that mean "this request is wrong", whoever serves it: passed on, not retried.
_REJECTED_STATUS = frozenset({400, 413, 415, 422})
# A key the SDK insists on for upstreams declared without one (local servers ignore it).
_NO_KEY_PLACEHOLDER = "not-needed"


class Attempt(msgspec.Struct, kw_only=True, frozen=True):
    """One attempt (or skip) at one upstream, in the order they happened."""

    upstream: str
    model: str
    outcome: Outcome
    latency_ms: float
    detail: str = ""
    # The usage of an answer the provider counted tokens for but that could not be used; empty
    # ({}) for a call sent and then given up on (its own timeout, the request's end) while the
    # provider may still answer it and bill for it, which the ledger books as the prompt's
    # estimate (`Bookkeeper.with_billed`).
    billed: dict[str, Any] | None = None


class RouterResult(msgspec.Struct, kw_only=True):
    completion: dict[str, Any]
    """The chat completion as the upstream sent it (after truncation, if any)."""
    requested_model: str
    upstream: str
    model: str
    """The model name the answering upstream was asked for."""
    fallback_used: bool
    attempts: int
    """Calls made to upstreams, retries and failed fallbacks included; skips excluded."""
    latency_ms: float
    """Time in the router: queueing, retries and backoff included."""
    truncated: bool
    trail: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    name: str
    breaker: BreakerState  # the worst of its models' breakers
    in_use: int
    waiting: int
    has_key: bool
    models_not_closed: dict[str, BreakerState] = field(default_factory=dict)


class _Failure(Exception):
    """One failed attempt, classified."""

    def __init__(
        self,
        outcome: Outcome,
        detail: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        billed: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.billed = billed
        # The provider's own `code`, `param` and `type` for a request it rejected.
        self.error = error


@dataclass(slots=True)
class _Answered(Generic[_T]):
    """What the first target to answer gave, and how the router got there."""

    value: _T
    requested_model: str
    upstream: _Upstream
    model: str
    fallback_used: bool
    trail: list[Attempt]
    latency_ms: float


@dataclass(slots=True)
class _Upstream:
    config: UpstreamConfig
    client: AsyncOpenAI | None  # None when its key variable is unset
    breakers: ModelBreakers  # one per model asked for here
    slots: PrioritySemaphore

    @property
    def name(self) -> str:
        return self.config.name


class ModelRouter:
    """Sends chat requests to the configured upstreams.

    For each request: the route's primary, then its fallbacks in order. At each upstream: up to
    `max_retries` retries with exponential backoff and full jitter on retryable failures (429,
    5xx, timeouts, connection errors), Retry-After honoured when at most `retry.retry_after_max_s`.
    A 400-class answer for the request itself raises `UpstreamRejected` at once. A target whose
    breaker (one per upstream and model) is open is skipped. Each upstream admits
    `max_concurrency` calls; waiters go by priority (10 most urgent), then arrival.
    """

    def __init__(
        self,
        config: RouterConfig,
        *,
        events: RouterEvents | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        validate_router_config(config)
        self.config = config
        self.events: RouterEvents = events or NoRouterEvents()
        self._clock = clock
        env = os.environ if environ is None else environ
        # One connection pool for all upstreams: pools are per host anyway, and TLS setup is paid once.
        self._http = openai.DefaultAsyncHttpx2Client()
        self._upstreams = {u.name: self._build_upstream(u, env) for u in config.upstreams}
        self._backoff = wait_random_exponential(
            multiplier=config.retry.backoff_base_s, max=config.retry.backoff_max_s
        )

    def _build_upstream(self, config: UpstreamConfig, env: Mapping[str, str]) -> _Upstream:
        key = env.get(config.api_key_env) if config.api_key_env else _NO_KEY_PLACEHOLDER
        # Retries are ours (with breaker and fallbacks in the loop), so the SDK makes none.
        client = (
            AsyncOpenAI(
                api_key=key,
                base_url=config.base_url,
                timeout=config.timeout_s,
                max_retries=0,
                http_client=self._http,
            )
            if key
            else None
        )
        return _Upstream(
            config=config,
            client=client,
            breakers=self._breakers(config.name),
            slots=PrioritySemaphore(config.max_concurrency),
        )

    def _breakers(self, name: str) -> ModelBreakers:
        def make(model: str) -> CircuitBreaker:
            return CircuitBreaker(
                self.config.breaker.failure_threshold,
                self.config.breaker.cooldown_s,
                clock=self._clock,
                on_change=lambda state: self.events.breaker_changed(name, model, state),
            )

        return ModelBreakers(make)

    def apart(self) -> ModelRouter:
        """This router for calls made in the background (the error bound's judge): the same
        upstreams, clients and concurrency slots, with circuit breakers of its own (named
        "<upstream> (background)" in the metrics), so that a judge model that keeps failing never
        opens the breaker that users' requests go through, whatever the tenant that set it."""
        twin = copy.copy(self)
        twin._upstreams = {
            name: replace(upstream, breakers=self._breakers(f"{name} (background)"))
            for name, upstream in self._upstreams.items()
        }
        return twin

    # Public API.

    def models_for(self, requested: str) -> tuple[str, ...]:
        """The models a request for `requested` may be answered by: its route's primary, then its
        fallbacks."""
        return tuple(target.model or requested for target in self.config.targets_for(requested))

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        priority: int = DEFAULT_PRIORITY,
        party: Hashable | None = None,
        extra_headers: Mapping[str, str] | None = None,
        trail: list[Attempt] | None = None,
    ) -> RouterResult:
        """A non-streaming chat completion (`request` is the OpenAI request body; `stream` is ignored).

        `trail`, when given, receives each attempt as it ends: a caller that gives up waiting (a
        deadline) still knows what was tried, and what a provider billed."""

        async def once(client: AsyncOpenAI, model: str) -> tuple[dict[str, Any], bool]:
            return await self._complete_once(client, model, request, extra_headers)

        answered = await self._first_answer(
            request, Turn(priority, party), once, keep_slot=False, trail=trail
        )
        completion, truncated = answered.value
        return RouterResult(
            completion=completion,
            requested_model=answered.requested_model,
            upstream=answered.upstream.name,
            model=answered.model,
            fallback_used=answered.fallback_used,
            attempts=_count_attempts(answered.trail),
            latency_ms=answered.latency_ms,
            truncated=truncated,
            trail=tuple(answered.trail),
        )

    async def stream(
        self,
        request: Mapping[str, Any],
        *,
        priority: int = DEFAULT_PRIORITY,
        party: Hashable | None = None,
        extra_headers: Mapping[str, str] | None = None,
        trail: list[Attempt] | None = None,
    ) -> RouterStream:
        """Open a streaming chat completion.

        Returns once the first chunk with content (or a tool call) has arrived, so every failure
        up to there raises here and may fall back; iterate the result for chunk dicts. After
        that, a failure raises `UpstreamError` from the iteration. Close it (`aclose()` or
        `async with`) to free the upstream's concurrency slot if you stop early. `trail`: as for
        `complete`.
        """

        async def once(client: AsyncOpenAI, model: str) -> _OpenedStream:
            return await self._open_stream_once(client, model, request, extra_headers)

        answered = await self._first_answer(request, Turn(priority, party), once, keep_slot=True, trail=trail)
        upstream, trail = answered.upstream, answered.trail

        def broken(detail: str) -> None:
            self._record(upstream, answered.model, trail, Outcome.STREAM_BROKEN, 0.0, detail)

        return RouterStream(
            upstream=upstream,
            opened=answered.value,
            requested_model=answered.requested_model,
            model=answered.model,
            fallback_used=answered.fallback_used,
            trail=trail,
            latency_ms=answered.latency_ms,
            max_answer_chars=self.config.max_answer_chars,
            on_broken=broken,
        )

    async def _first_answer(
        self,
        request: Mapping[str, Any],
        turn: Turn,
        once: Callable[[AsyncOpenAI, str], Awaitable[_T]],
        *,
        keep_slot: bool,
        trail: list[Attempt] | None = None,
    ) -> _Answered[_T]:
        """The route's targets in order (primary, then fallbacks), each with its retries, until one answers."""
        requested = _requested_model(request)
        _check_priority(turn.priority)
        started = self._clock()
        trail = [] if trail is None else trail
        targets = self.config.targets_for(requested)
        last_failure: _Failure | None = None
        for index, target in enumerate(targets):
            upstream, model = self._upstreams[target.upstream], target.model or requested

            async def call(client: AsyncOpenAI, model: str = model) -> _T:
                return await once(client, model)

            try:
                value = await self._with_retries(upstream, model, turn, trail, call, keep_slot=keep_slot)
            except _Failure as failure:
                if failure.outcome not in _SKIPS:
                    last_failure = failure
                self._note_fallback(targets, index, upstream.name, failure)
                continue
            return _Answered(
                value=value,
                requested_model=requested,
                upstream=upstream,
                model=model,
                fallback_used=index > 0,
                trail=trail,
                latency_ms=(self._clock() - started) * 1000,
            )
        raise _final_error(requested, trail, last_failure)

    def upstream_status(self) -> list[UpstreamStatus]:
        return [
            UpstreamStatus(
                name=u.name,
                breaker=u.breakers.state,
                models_not_closed=u.breakers.not_closed(),
                in_use=u.slots.in_use,
                waiting=u.slots.waiting,
                has_key=u.client is not None,
            )
            for u in self._upstreams.values()
        ]

    async def aclose(self) -> None:
        await self._http.aclose()

    # Attempts.

    async def _with_retries(
        self,
        upstream: _Upstream,
        model: str,
        turn: Turn,
        trail: list[Attempt],
        call: Callable[[AsyncOpenAI], Awaitable[_T]],
        *,
        keep_slot: bool,
    ) -> _T:
        def before_sleep(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            if isinstance(failure, _Failure):
                self.events.retry(upstream.name, model, state.attempt_number, failure.outcome, delay)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(upstream.config.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, _Failure) and exc.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        result: _T = await retrying(self._attempt, upstream, model, turn, trail, call, keep_slot)
        return result

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Failure) and failure.retry_after_s is not None:
            return failure.retry_after_s
        return float(self._backoff(state))

    async def _attempt(
        self,
        upstream: _Upstream,
        model: str,
        turn: Turn,
        trail: list[Attempt],
        call: Callable[[AsyncOpenAI], Awaitable[_T]],
        keep_slot: bool,
    ) -> _T:
        """One call at one upstream: breaker check, concurrency slot, deadline, verdict."""
        if upstream.client is None:
            # Tenants read this in their 502: the operator's variable is named in the start-up warning only.
            detail = "no API key configured for this upstream"
            self._record(upstream, model, trail, Outcome.NO_KEY, 0.0, detail)
            raise _Failure(Outcome.NO_KEY, detail, retryable=False)
        breaker = upstream.breakers.of(model)
        if not breaker.allow():
            detail = "circuit breaker open" + (
                f" after {breaker.last_failure}" if breaker.last_failure else ""
            )
            self._record(upstream, model, trail, Outcome.BREAKER_OPEN, 0.0, detail)
            raise _Failure(Outcome.BREAKER_OPEN, detail, retryable=False)
        try:
            queued_at = self._clock()
            await upstream.slots.acquire(turn.priority, turn.party)
        except BaseException:
            breaker.release()
            raise
        self.events.queued(upstream.name, turn.priority, self._clock() - queued_at)
        started = self._clock()
        try:
            async with asyncio.timeout(upstream.config.timeout_s):
                value = await call(upstream.client)
        except BaseException as exc:
            upstream.slots.release()
            if not isinstance(exc, Exception):  # cancelled: no verdict on the upstream
                breaker.release()
                # The request ended (its deadline, the server stopping) with the call in flight:
                # the provider may answer, and bill, all the same.
                trail.append(
                    Attempt(
                        upstream=upstream.name,
                        model=model,
                        outcome=Outcome.TIMEOUT,
                        latency_ms=(self._clock() - started) * 1000,
                        detail="given up on: the request ended with the call in flight",
                        billed={},
                    )
                )
                raise
            failure = exc if isinstance(exc, _Failure) else _classify(exc, upstream.config.timeout_s)
            if (
                failure.retry_after_s is not None
                and failure.retry_after_s > self.config.retry.retry_after_max_s
            ):
                failure.retryable = False  # told to come back later than we wait: try the fallback
            billed = failure.billed
            if billed is None and failure.outcome is Outcome.TIMEOUT:
                billed = {}  # sent, then given up on: the provider may finish it and bill
            self._record(
                upstream,
                model,
                trail,
                failure.outcome,
                self._clock() - started,
                failure.detail,
                billed,
                breaker=breaker,
            )
            if failure.outcome is Outcome.REJECTED:
                code = failure.error.get("code") if failure.error else None
                raise UpstreamRejected(
                    failure.detail,
                    extra={"upstream": upstream.name},
                    billed=billed_attempts(trail),
                    error=failure.error,
                    # The provider's message may quote the request: the ledger keeps its code.
                    booked=f"{upstream.name}/{model} rejected the request{f' ({code})' if code else ''}",
                ) from None
            raise failure from None
        if not keep_slot:
            upstream.slots.release()
        self._record(upstream, model, trail, Outcome.OK, self._clock() - started, breaker=breaker)
        return value

    def _record(
        self,
        upstream: _Upstream,
        model: str,
        trail: list[Attempt],
        outcome: Outcome,
        latency_s: float,
        detail: str = "",
        billed: dict[str, Any] | None = None,
        *,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """Add the attempt to `trail` and its verdict to the model's breaker (`breaker`: the one
        the call was let through by, even if the upstream's set has forgotten it since)."""
        if outcome not in _SKIPS:
            breaker = breaker or upstream.breakers.of(model)
            if outcome in _HEALTHY:
                breaker.record_success()
            else:
                breaker.record_failure()
                # Shown to every request the open breaker then skips, whoever's call failed: the
                # kind of failure and its HTTP status, never the provider's message (it may echo
                # another tenant's request).
                status = match.group(0) if (match := _HTTP_STATUS.match(detail)) else ""
                breaker.last_failure = f"{outcome}: {status}" if status else str(outcome)
        trail.append(
            Attempt(
                upstream=upstream.name,
                model=model,
                outcome=outcome,
                latency_ms=latency_s * 1000,
                detail=detail,
                billed=billed,
            )
        )
        self.events.attempt(upstream.name, model, outcome, latency_s)

    def _note_fallback(
        self, targets: list[RouteTarget], index: int, from_upstream: str, failure: _Failure
    ) -> None:
        if index + 1 < len(targets):
            following = targets[index + 1]
            self.events.fallback(from_upstream, following.upstream, following.model or "", failure.outcome)

    async def _complete_once(
        self,
        client: AsyncOpenAI,
        model: str,
        request: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
    ) -> tuple[dict[str, Any], bool]:
        # The client's generic POST: the same transport, auth and errors as `chat.completions.create`,
        # without its per-call conversion of the request into typed objects (milliseconds a call).
        body = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        raw = await client.post(
            "/chat/completions",
            cast_to=bytes,
            body={**body, "model": model},
            options={"headers": dict(extra_headers)} if extra_headers else {},
        )
        try:
            completion = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise _Failure(Outcome.SERVER_ERROR, "the answer is not JSON", retryable=True) from None
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise _Failure(Outcome.SERVER_ERROR, "the answer is not a chat completion", retryable=True)
        if not any(_choice_ended(c, c.get("message")) for c in completion["choices"] if isinstance(c, dict)):
            usage = completion.get("usage")
            raise _Failure(
                Outcome.EMPTY,
                "empty answer: no content and no tool calls",
                retryable=False,
                billed=usage if isinstance(usage, dict) else None,
            )
        truncated = _truncate_completion(completion, self.config.max_answer_chars)
        return completion, truncated

    async def _open_stream_once(
        self,
        client: AsyncOpenAI,
        model: str,
        request: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
    ) -> _OpenedStream:
        # The client's generic POST, as for an answer in one piece: each chunk comes as the dict
        # its JSON is, not typed into the SDK's objects and dumped back (the SDK's typing cost a
        # streamed miss more CPU than the relay's own work on the chunks). Error events still
        # raise the SDK's APIError.
        body = {k: v for k, v in request.items() if k != "stream"}
        sdk_stream = await client.post(
            "/chat/completions",
            cast_to=object,
            body={**body, "model": model, "stream": True},
            options={"headers": dict(extra_headers)} if extra_headers else {},
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        buffered: deque[dict[str, Any]] = deque()
        try:
            # Hold chunks back until one carries an answer: until then a failure may still fall back.
            while True:
                try:
                    chunk = await sdk_stream.__anext__()
                except StopAsyncIteration:
                    usage = next(
                        (c["usage"] for c in reversed(buffered) if isinstance(c.get("usage"), dict)), None
                    )
                    raise _Failure(
                        Outcome.EMPTY,
                        "empty answer: the stream ended without content",
                        retryable=False,
                        billed=usage,
                    ) from None
                data = _chunk_data(chunk)
                buffered.append(data)
                if any(
                    _choice_ended(c, c.get("delta")) for c in data.get("choices") or [] if isinstance(c, dict)
                ):
                    return _OpenedStream(sdk_stream=sdk_stream, buffered=buffered)
        except BaseException:
            await sdk_stream.close()
            raise


@dataclass(slots=True)
class _OpenedStream:
    sdk_stream: openai.AsyncStream[object]
    buffered: deque[dict[str, Any]]


class RouterStream:
    """Chunk dicts of one streamed completion, from the upstream that answered.

    Holds that upstream's concurrency slot until exhausted or closed.
    """

    def __init__(
        self,
        *,
        upstream: _Upstream,
        opened: _OpenedStream,
        requested_model: str,
        model: str,
        fallback_used: bool,
        trail: list[Attempt],
        latency_ms: float,
        max_answer_chars: int,
        on_broken: Callable[[str], None],
    ) -> None:
        self._upstream = upstream
        self._max_answer_chars = max_answer_chars
        self._on_broken = on_broken
        self._sdk_stream = opened.sdk_stream
        self._buffered = opened.buffered
        self._chars: dict[int, int] = {}
        self._finished: dict[int, bool] = {}  # by choice: has it said why it ended?
        self._cut = False
        self._closed = False
        self.requested_model = requested_model
        self.upstream = upstream.name
        self.model = model
        self.fallback_used = fallback_used
        self.trail = trail
        self.attempts = _count_attempts(trail)
        self.latency_ms = latency_ms
        """Time in the router until the first chunk with content."""
        self.truncated = False

    def __aiter__(self) -> RouterStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._closed or self._cut:
            await self.aclose()
            raise StopAsyncIteration
        if self._buffered:
            return self._shape(self._buffered.popleft())
        try:
            data = _chunk_data(await self._sdk_stream.__anext__())
        except StopAsyncIteration:
            if not self._finished or not all(self._finished.values()):
                # Ended cleanly, but before a choice said why it ended: an answer cut short, which
                # must not be stored as a whole one.
                await self._fail(
                    _Failure(
                        Outcome.STREAM_BROKEN, "it ended before its answer was finished", retryable=False
                    )
                )
            await self.aclose()
            raise
        except Exception as exc:
            await self._fail(exc)
        return self._shape(data)

    async def _fail(self, exc: Exception) -> NoReturn:
        failure = _classify(exc, self._upstream.config.timeout_s)
        self._on_broken(failure.detail)
        await self.aclose()
        error_type = UpstreamTimeout if failure.outcome is Outcome.TIMEOUT else UpstreamError
        raise error_type(
            f"the stream from {self.upstream}/{self.model} broke off: {failure.detail}",
            extra={"upstream": self.upstream},
        ) from None

    def _shape(self, chunk: dict[str, Any]) -> dict[str, Any]:
        limit = self._max_answer_chars
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            self._finished[index] = self._finished.get(index, False) or bool(choice.get("finish_reason"))
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if not isinstance(content, str):
                continue
            seen = self._chars.get(index, 0)
            if seen + len(content) > limit:
                # Cut here and stop reading: closing the stream stops the upstream generating.
                delta["content"] = content[: max(0, limit - seen)]
                _trim_logprobs(choice, max(0, limit - seen))
                choice["finish_reason"] = "length"
                self.truncated = self._cut = True
            self._chars[index] = seen + len(content)
        return chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._upstream.slots.release()
        await self._sdk_stream.close()

    def __del__(self) -> None:
        # A stream dropped without aclose() must not keep its upstream's slot forever.
        if not self._closed:
            self._closed = True
            self._upstream.slots.release()

    async def __aenter__(self) -> RouterStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


# Helpers.


def _requested_model(request: Mapping[str, Any]) -> str:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("The request names no model.")
    return model


def _check_priority(priority: int) -> None:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise BadRequest(f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY} (10 is most urgent).")


def _message_has_answer(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    return bool(
        message.get("content")
        or message.get("tool_calls")
        or message.get("function_call")
        or message.get("refusal")
        or message.get("audio")
    )


_HTTP_STATUS = re.compile(r"HTTP \d{3}\b")


class _ToolCallPiece(msgspec.Struct):
    index: Annotated[int, msgspec.Meta(ge=0)] = 0
    function: dict[str, str | None] | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    role: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCallPiece] | None = None


class _ChoicePiece(msgspec.Struct):
    index: Annotated[int, msgspec.Meta(ge=0)] = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _ChunkShape(msgspec.Struct):
    """What the relay, the assembler and the router read of a streamed piece (other fields pass)."""

    choices: list[_ChoicePiece] | None = None
    usage: dict[str, Any] | None = None


def _chunk_data(chunk: object) -> dict[str, Any]:
    """A streamed piece (its JSON, decoded) as a dict, once it has a chat completion chunk's
    shape; else the stream is broken (valid JSON of another shape is no answer either)."""
    try:
        if not isinstance(chunk, dict):
            raise TypeError
        msgspec.convert(chunk, _ChunkShape)
    except (TypeError, ValueError, msgspec.ValidationError):
        raise _Failure(
            Outcome.STREAM_BROKEN, "a piece that is not a chat completion chunk", retryable=False
        ) from None
    return chunk


# Why a model may end without a word: its output limit ran out (a reasoning model can spend it all
# before answering) or a content filter stopped it. Such an answer is the model's, passed on as it
# is (a fallback would only be asked to get round the limit or the filter), and never stored.
ENDED_WITHOUT_ANSWER = frozenset({"length", "content_filter"})


def _choice_ended(choice: dict[str, Any], message: Any) -> bool:
    """Whether a choice (or a chunk's) holds an answer, or says why the model gave none."""
    return _message_has_answer(message) or choice.get("finish_reason") in ENDED_WITHOUT_ANSWER


def _truncate_completion(completion: dict[str, Any], limit: int) -> bool:
    truncated = False
    for choice in completion["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and len(content) > limit:
            message["content"] = content[:limit]  # type: ignore[index]  # message is a dict here
            _trim_logprobs(choice, limit)
            choice["finish_reason"] = "length"
            truncated = True
    return truncated


def _trim_logprobs(choice: dict[str, Any], chars: int) -> None:
    """Keep the log probabilities of the tokens within the first `chars` characters of a cut
    content, so that what is sent and stored never describes text that was cut away."""
    logprobs = choice.get("logprobs")
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(tokens, list):
        return
    kept, used = 0, 0
    for token in tokens:
        text = token.get("token") if isinstance(token, dict) else None
        used += len(text) if isinstance(text, str) else 0
        if used > chars:
            break
        kept += 1
    del tokens[kept:]


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI's) or `retry-after` (seconds or an HTTP date)."""
    if (value := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# What a provider's message may quote of the operator's account: a key (OpenAI's 401 shows its
# last characters), an organisation or project id (its 429). Never passed on to a tenant.
_ACCOUNT = re.compile(r"\b(?:sk|org|proj)-[\w*.-]{3,}|\b[Bb]earer\s+\S+")


def _upstream_message(exc: openai.APIError) -> str:
    """The provider's message, with what it quotes of the operator's account left out."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = str(body["message"])
    else:
        message = exc.message
    return _ACCOUNT.sub("[redacted]", message)


# What of a provider's error object a client's code reads (`e.code == "context_length_exceeded"`),
# each a short text.
_ERROR_FIELDS = ("code", "param", "type")
_ERROR_FIELD_CHARS = 200


def _error_fields(exc: openai.APIStatusError) -> dict[str, str]:
    """The provider's `code`, `param` and `type` for a request it rejected, those it gave as text."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return {
        name: value[:_ERROR_FIELD_CHARS]
        for name in _ERROR_FIELDS
        if isinstance(value := body.get(name), str) and value
    }


def _classify(exc: Exception, timeout_s: float) -> _Failure:
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return _Failure(Outcome.TIMEOUT, f"no answer within {timeout_s:g} s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        # Its kind only: the error's text names the upstream's address, the operator's network.
        cause = type(exc.__cause__ or exc).__name__
        return _Failure(Outcome.CONNECTION, f"connection failed ({cause})", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status, message = exc.status_code, _upstream_message(exc)
        detail = f"HTTP {status}: {message}"
        if status == 429:
            # Not the message: a provider's names the organisation's limit and use, which tell
            # one tenant how much the others ask. Its code says which limit (insufficient_quota).
            code = _error_fields(exc).get("code")
            return _Failure(
                Outcome.RATE_LIMITED,
                f"HTTP 429: the provider's rate limit{f' ({code})' if code else ''}",
                retryable=True,
                retry_after_s=_retry_after_s(exc.response.headers),
                error=_error_fields(exc),
            )
        if status >= 500 or status in (408, 409):
            return _Failure(
                Outcome.SERVER_ERROR,
                detail,
                retryable=True,
                retry_after_s=_retry_after_s(exc.response.headers),
            )
        if status in _REJECTED_STATUS:
            return _Failure(Outcome.REJECTED, message, retryable=False, error=_error_fields(exc))
        if status in (401, 403):
            # The operator's credentials, not the tenant's request: nothing of them to show it.
            return _Failure(
                Outcome.AUTH, f"HTTP {status}: the provider refused this upstream's key", retryable=False
            )
        if status == 404:
            return _Failure(Outcome.NOT_FOUND, detail, retryable=False, error=_error_fields(exc))
        return _Failure(Outcome.REFUSED, detail, retryable=False)
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return _Failure(Outcome.SERVER_ERROR, _upstream_message(exc), retryable=True)
    return _Failure(Outcome.SERVER_ERROR, f"unexpected {type(exc).__name__}: {exc}", retryable=True)


def _count_attempts(trail: list[Attempt]) -> int:
    return sum(1 for a in trail if a.outcome not in _SKIPS)


def billed_attempts(trail: Sequence[Attempt]) -> tuple[tuple[str, Any], ...]:
    """The (model, usage) of the attempts so far a provider counted tokens for (`Attempt.billed`)."""
    return tuple((a.model, a.billed) for a in trail if a.billed is not None)


def _final_error(requested: str, trail: list[Attempt], last_failure: _Failure | None) -> UpstreamError:
    # One line per (upstream, model) tried, in order: how many calls, how the last call ended
    # (the cause), and a breaker that then opened; or why it was skipped without a call.
    summary: list[tuple[str, str, int, Attempt | None, Attempt]] = []
    for attempt in trail:
        call = None if attempt.outcome in _SKIPS else attempt
        if summary and summary[-1][:2] == (attempt.upstream, attempt.model):
            upstream, model, calls, last_call, _ = summary[-1]
            summary[-1] = (upstream, model, calls + (call is not None), call or last_call, attempt)
        else:
            summary.append((attempt.upstream, attempt.model, int(call is not None), call, attempt))
    parts, booked = [], []
    for upstream, model, calls, last_call, last in summary:
        shown = last_call or last
        detail = f": {shown.detail}" if shown.detail else ""
        # The ledger keeps the HTTP status, never the provider's message (it may echo the prompt).
        status = f": {match.group(0)}" if (match := _HTTP_STATUS.match(shown.detail)) else ""
        count = f" after {calls} attempt{'s' if calls != 1 else ''}" if calls else ""
        then = "; then its circuit breaker opened" if last_call is not None and last is not last_call else ""
        parts.append(f"{upstream}/{model} {shown.outcome}{count}{detail}{then}")
        booked.append(f"{upstream}/{model} {shown.outcome}{count}{status}{then}")
    message = f"No upstream answered for model {requested!r}: " + "; ".join(parts)
    kept = {"booked": f"No upstream answered for model {requested!r}: " + "; ".join(booked)}
    extra = {
        "attempts": [
            {"upstream": a.upstream, "model": a.model, "outcome": str(a.outcome), "detail": a.detail}
            for a in trail
        ]
    }
    spent = billed_attempts(trail)
    if last_failure is not None and last_failure.outcome is Outcome.TIMEOUT:
        return UpstreamTimeout(message, extra=extra, billed=spent, **kept)
    # Every call ended the same way the client can act on: the provider's rate limit (back off for
    # its Retry-After) or a model it does not have. Passed on as such, with the provider's code.
    ends = {a.outcome for a in trail if a.outcome not in _SKIPS}
    if last_failure is not None and ends == {Outcome.RATE_LIMITED}:
        wait = last_failure.retry_after_s
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
        return UpstreamRateLimited(
            message, extra=extra, billed=spent, headers=headers, error=last_failure.error, **kept
        )
    if last_failure is not None and ends == {Outcome.NOT_FOUND}:
        return UpstreamNotFound(message, extra=extra, billed=spent, error=last_failure.error, **kept)
    return UpstreamError(message, extra=extra, billed=spent, **kept)
