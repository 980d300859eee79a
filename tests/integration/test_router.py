"""The model router against the fake model server, over real HTTP, through the real openai client."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.errors import UpstreamError, UpstreamRejected, UpstreamTimeout
from app.toolkit.fakellm import FakeLLMConfig, FakeLLMServer
from app.upstream import (
    BreakerConfig,
    BreakerState,
    DefaultRoute,
    ModelRoute,
    ModelRouter,
    Outcome,
    RetryConfig,
    RouterConfig,
    RouterCounters,
    RouteTarget,
    UpstreamConfig,
)

# Generous for calls meant to succeed on a busy machine; the timeout tests set their own.
TIMEOUT_S = 2.0
SHORT_TIMEOUT_S = 0.3


class Fake:
    """The fake server and a client for its own endpoints: faults, call counts, reset."""

    def __init__(self, server: FakeLLMServer) -> None:
        self.base_url = server.base_url
        self.control = httpx.Client(base_url=server.root_url)

    def fault(self, model: str, kind: str, times: int | None = None) -> None:
        body = {"model": model, "kind": kind, "times": times}
        self.control.post("/_fake/faults", json=body).raise_for_status()

    def calls(self) -> dict[str, int]:
        return dict(self.control.get("/_fake/stats").json()["chat"])

    def reset(self) -> None:
        self.control.post("/_fake/reset").raise_for_status()


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    # Retry-After 0 keeps retries instant; a timeout fault hangs well past SHORT_TIMEOUT_S.
    with FakeLLMServer(FakeLLMConfig(retry_after_s=0, timeout_sleep_s=1.5)) as server:
        handle = Fake(server)
        yield handle
        handle.control.close()


@pytest.fixture(autouse=True)
def _reset(fake: Fake) -> None:
    fake.reset()


class Clock:
    """A clock the tests move by hand, so breaker cool-downs need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstream(name: str, fake: Fake, **overrides: Any) -> UpstreamConfig:
    settings: dict[str, Any] = {"timeout_s": TIMEOUT_S, "max_retries": 2, "max_concurrency": 8, **overrides}
    return UpstreamConfig(name=name, base_url=fake.base_url, **settings)


def router_config(fake: Fake, *, primary: dict[str, Any] | None = None, threshold: int = 50) -> RouterConfig:
    """Two upstreams on the same fake server, told apart by the model names the routes ask for."""
    return RouterConfig(
        upstreams=(upstream("primary", fake, **(primary or {})), upstream("backup", fake)),
        routes=(
            ModelRoute(
                model="chat",
                primary="primary",
                primary_model="main-model",
                fallbacks=(RouteTarget(upstream="backup", model="backup-model"),),
            ),
            ModelRoute(model="solo", primary="primary", primary_model="solo-model"),
        ),
        default_route=DefaultRoute(primary="primary"),
        breaker=BreakerConfig(failure_threshold=threshold, cooldown_s=5.0),
        retry=RetryConfig(backoff_base_s=0.01, backoff_max_s=0.02),
    )


@pytest.fixture
async def counters() -> RouterCounters:
    return RouterCounters()


@pytest.fixture
async def router(fake: Fake, counters: RouterCounters) -> AsyncIterator[ModelRouter]:
    model_router = ModelRouter(router_config(fake), events=counters, environ={})
    yield model_router
    await model_router.aclose()


def ask(model: str = "chat", text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def test_primary_answers(router: ModelRouter, fake: Fake) -> None:
    result = await router.complete(ask())

    assert result.upstream == "primary"
    assert result.model == "main-model"
    assert result.requested_model == "chat"
    assert not result.fallback_used
    assert result.attempts == 1
    assert result.latency_ms > 0
    assert result.completion["object"] == "chat.completion"
    assert result.completion["choices"][0]["message"]["content"].startswith("Answer to: What is the capital")
    assert result.completion["usage"]["total_tokens"] > 0
    assert fake.calls() == {"main-model": 1}


async def test_unknown_model_takes_the_default_route(router: ModelRouter, fake: Fake) -> None:
    result = await router.complete(ask("some-new-model"))

    assert (result.upstream, result.model) == ("primary", "some-new-model")
    assert fake.calls() == {"some-new-model": 1}


async def test_failing_primary_falls_back(router: ModelRouter, fake: Fake, counters: RouterCounters) -> None:
    fake.fault("main-model", "500")

    result = await router.complete(ask())

    assert result.fallback_used
    assert (result.upstream, result.model) == ("backup", "backup-model")
    assert result.attempts == 4  # three at the primary (max_retries=2), one at the backup
    assert [a.outcome for a in result.trail] == [Outcome.SERVER_ERROR] * 3 + [Outcome.OK]
    assert fake.calls() == {"main-model": 3, "backup-model": 1}
    assert counters.fallbacks[("primary", "backup")] == 1


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_retries_then_succeeds(
    router: ModelRouter, fake: Fake, counters: RouterCounters, kind: str
) -> None:
    fake.fault("main-model", kind, times=2)

    result = await router.complete(ask())

    assert not result.fallback_used
    assert result.attempts == 3
    assert counters.retries["primary"] == 2
    assert fake.calls() == {"main-model": 3}


async def test_timeout_is_a_504(fake: Fake) -> None:
    config = router_config(fake, primary={"max_retries": 1, "timeout_s": SHORT_TIMEOUT_S})
    model_router = ModelRouter(config, environ={})
    fake.fault("solo-model", "timeout")
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await model_router.complete(ask("solo"))
    finally:
        await model_router.aclose()

    assert caught.value.status_code == 504
    assert "timeout after 2 attempts" in caught.value.detail
    assert fake.calls() == {"solo-model": 2}


async def test_all_failing_is_a_502_naming_the_reason(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "500")
    fake.fault("backup-model", "429")

    with pytest.raises(UpstreamError) as caught:
        await router.complete(ask())

    error = caught.value
    assert type(error) is UpstreamError
    assert error.status_code == 502
    assert "primary/main-model server_error after 3 attempts: HTTP 500" in error.detail
    assert "backup/backup-model rate_limited after 3 attempts: HTTP 429" in error.detail
    assert len(error.extra["attempts"]) == 6


async def test_invalid_request_is_passed_on_without_retry(router: ModelRouter, fake: Fake) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await router.complete({"model": "chat", "messages": []})

    assert caught.value.status_code == 400
    assert "Invalid 'messages'" in caught.value.detail
    assert fake.calls() == {"main-model": 1}  # neither retried nor sent to the fallback


async def test_rejected_by_fault_is_passed_on(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "400")

    with pytest.raises(UpstreamRejected, match="the request was rejected"):
        await router.complete(ask())

    assert fake.calls() == {"main-model": 1}


async def test_empty_answer_falls_back_without_retry(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "empty")

    result = await router.complete(ask())

    assert result.fallback_used
    assert result.trail[0].outcome is Outcome.EMPTY
    assert fake.calls() == {"main-model": 1, "backup-model": 1}


async def test_missing_key_skips_to_the_fallback(fake: Fake) -> None:
    config = router_config(fake, primary={"api_key_env": "DEJA_TEST_PRIMARY_KEY"})
    model_router = ModelRouter(config, environ={})
    try:
        result = await model_router.complete(ask())
    finally:
        await model_router.aclose()

    assert result.upstream == "backup"
    assert result.trail[0].outcome is Outcome.NO_KEY
    assert result.attempts == 1
    assert fake.calls() == {"backup-model": 1}


async def test_tool_calls_pass_through(router: ModelRouter) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]

    result = await router.complete(ask(text="Weather in Paris?", tools=tools))

    choice = result.completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_long_answer_is_truncated(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "long")

    result = await router.complete(ask(logprobs=True))

    choice = result.completion["choices"][0]
    assert result.truncated
    assert len(choice["message"]["content"]) == 50_000
    assert choice["finish_reason"] == "length"
    # The log probabilities describe the text that is kept, not the text cut away.
    described = "".join(token["token"] for token in choice["logprobs"]["content"])
    assert choice["message"]["content"].startswith(described)
    assert len(described) > 49_000


def main_model_failing(fake: Fake) -> tuple[ModelRouter, RouterCounters, Clock]:
    """A router whose primary's `main-model` answers 500 every time, its breaker opening after 3
    failures (no retries), on a clock the test moves."""
    clock, counters = Clock(), RouterCounters()
    config = router_config(fake, primary={"max_retries": 0}, threshold=3)
    fake.fault("main-model", "500")
    return ModelRouter(config, events=counters, environ={}, clock=clock), counters, clock


async def test_breaker_opens_then_skips_then_probes(fake: Fake) -> None:
    model_router, counters, clock = main_model_failing(fake)
    try:
        for _ in range(3):
            assert (await model_router.complete(ask())).upstream == "backup"
        assert ("primary", "main-model", BreakerState.OPEN) in counters.breaker_transitions

        skipped = await model_router.complete(ask())
        assert skipped.upstream == "backup"
        assert skipped.trail[0].outcome is Outcome.BREAKER_OPEN
        assert skipped.attempts == 1
        assert fake.calls()["main-model"] == 3  # the open breaker kept the fourth call away

        fake.reset()
        clock.now += 5.0  # cool-down over: one probe goes through and closes the breaker
        probed = await model_router.complete(ask())
    finally:
        await model_router.aclose()

    assert probed.upstream == "primary"
    assert counters.breaker_transitions[-2:] == [
        ("primary", "main-model", BreakerState.HALF_OPEN),
        ("primary", "main-model", BreakerState.CLOSED),
    ]


async def test_a_model_that_keeps_failing_opens_no_breaker_for_the_other_models_of_its_upstream(
    fake: Fake,
) -> None:
    """One model of a provider overloaded or withdrawn: its breaker opens, and requests for the
    provider's other models still go to it (they were skipped as well, one breaker per upstream)."""
    model_router, _, _ = main_model_failing(fake)
    try:
        for _ in range(4):
            assert (await model_router.complete(ask())).upstream == "backup"
        solo = await model_router.complete(ask("solo"))
        status = {u.name: u for u in model_router.upstream_status()}["primary"]
    finally:
        await model_router.aclose()
    assert fake.calls()["main-model"] == 3  # the open breaker kept the fourth call away
    assert (solo.upstream, solo.model, solo.attempts) == ("primary", "solo-model", 1)
    assert status.breaker is BreakerState.OPEN
    assert status.models_not_closed == {"main-model": BreakerState.OPEN}


async def test_priority_orders_waiters_under_a_limit_of_one(fake: Fake) -> None:
    counters = RouterCounters()
    model_router = ModelRouter(
        router_config(fake, primary={"max_concurrency": 1}), events=counters, environ={}
    )
    try:
        # An open stream holds the only slot while the others queue up.
        holder = await model_router.stream(ask(), priority=5)
        priorities = [1, 5, 10, 3, 5]
        tasks = []
        for priority in priorities:
            tasks.append(asyncio.create_task(model_router.complete(ask(), priority=priority)))
            await asyncio.sleep(0.01)  # a stable arrival order
        status = next(s for s in model_router.upstream_status() if s.name == "primary")
        assert (status.in_use, status.waiting) == (1, len(priorities))

        await holder.aclose()
        results = await asyncio.gather(*tasks)
    finally:
        await model_router.aclose()

    assert all(r.upstream == "primary" for r in results)
    admitted = [priority for name, priority in counters.queue_order if name == "primary"]
    assert admitted == [5, 10, 5, 5, 3, 1]  # the holder, then by priority, 10 most urgent


async def test_stream_passes_chunks_through(router: ModelRouter) -> None:
    expected = (await router.complete(ask())).completion["choices"][0]["message"]["content"]

    async with await router.stream(ask(stream=True, stream_options={"include_usage": True})) as stream:
        chunks = [chunk async for chunk in stream]

    assert (stream.upstream, stream.model, stream.fallback_used) == ("primary", "main-model", False)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


async def test_stream_falls_back_before_the_first_chunk(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "empty")

    async with await router.stream(ask(stream=True)) as stream:
        chunks = [chunk async for chunk in stream]

    assert (stream.upstream, stream.fallback_used) == ("backup", True)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).startswith("Answer to:")


async def test_stream_cannot_fall_back_after_the_first_chunk(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "midstream")

    stream = await router.stream(ask(stream=True))
    received: list[dict[str, Any]] = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(UpstreamError, match="broke off"):
        await read_all()

    assert stream.upstream == "primary"
    assert received  # the first chunks went out before the failure
    assert fake.calls() == {"main-model": 1}


async def test_stream_is_truncated(router: ModelRouter, fake: Fake) -> None:
    fake.fault("main-model", "long")

    async with await router.stream(ask(stream=True, logprobs=True)) as stream:
        chunks = [chunk async for chunk in stream]

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert stream.truncated
    assert len(text) == 50_000
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    described = "".join(
        token["token"]
        for c in chunks
        if c["choices"]
        for token in (c["choices"][0].get("logprobs") or {}).get("content", [])
    )
    assert text.startswith(described)
    assert len(described) > 49_000


async def test_stream_timeout_is_a_504(fake: Fake) -> None:
    config = router_config(fake, primary={"max_retries": 0, "timeout_s": SHORT_TIMEOUT_S})
    model_router = ModelRouter(config, environ={})
    fake.fault("solo-model", "timeout")
    try:
        with pytest.raises(UpstreamTimeout):
            await model_router.stream(ask("solo", stream=True))
    finally:
        await model_router.aclose()


async def test_retry_after_is_waited_out_when_short_and_skipped_when_long() -> None:
    with FakeLLMServer(FakeLLMConfig(retry_after_s=1)) as server:
        handle = Fake(server)
        patient = ModelRouter(router_config(handle), environ={})
        impatient_config = router_config(handle)
        impatient = ModelRouter(
            RouterConfig(
                upstreams=impatient_config.upstreams,
                routes=impatient_config.routes,
                retry=RetryConfig(retry_after_max_s=0.5),
            ),
            environ={},
        )
        try:
            handle.fault("main-model", "429", times=1)
            started = asyncio.get_running_loop().time()
            waited = await patient.complete(ask())
            elapsed = asyncio.get_running_loop().time() - started

            handle.fault("main-model", "429", times=1)
            moved_on = await impatient.complete(ask())
        finally:
            await patient.aclose()
            await impatient.aclose()
            handle.control.close()

    assert (waited.upstream, waited.attempts) == ("primary", 2)
    assert elapsed >= 1.0
    assert (moved_on.upstream, moved_on.attempts) == ("backup", 2)
    assert moved_on.trail[0].outcome is Outcome.RATE_LIMITED


async def test_a_502_after_the_breaker_opened_names_the_cause(fake: Fake) -> None:
    config = router_config(fake, primary={"max_retries": 0}, threshold=1)
    model_router = ModelRouter(config, events=RouterCounters(), environ={}, clock=Clock())
    fake.fault("solo-model", "500")
    try:
        with pytest.raises(UpstreamError) as first:
            await model_router.complete(ask("solo"))
        with pytest.raises(UpstreamError) as skipped:
            await model_router.complete(ask("solo"))
    finally:
        await model_router.aclose()
    # The call that failed says how, and a later request skipped by the open breaker says why too.
    assert "server_error after 1 attempt: HTTP 500" in first.value.detail
    assert "breaker_open" in skipped.value.detail
    assert "after server_error: HTTP 500" in skipped.value.detail
    # But not the provider's message: the call that failed may have been another tenant's.
    assert "Injected fault" in first.value.detail
    assert "Injected fault" not in skipped.value.detail


async def test_a_tenants_flood_of_urgent_requests_does_not_starve_another_tenant(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """An upstream with one slot (400 ms a call): one tenant's eight requests at X-Priority 10
    went before another tenant's at priority 1, which waited for all of them. Tenants now take
    turns; priority orders a tenant's own requests."""
    flood, other = await make_tenant("flood"), await make_tenant("patient")

    async def ask(tenant, priority: int, text: str) -> float:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        response = await http.post(
            "/v1/chat/completions",
            headers={**tenant.headers, "X-Priority": str(priority)},
            json={
                "model": "gpt-narrow",
                "messages": [{"role": "user", "content": f"{text} {uuid.uuid4().hex}"}],
            },
        )
        assert response.status_code == 200, response.text
        return time.monotonic() - started

    flooding = [asyncio.create_task(ask(flood, 10, f"Urgent report {i}")) for i in range(8)]
    await asyncio.sleep(0.1)  # the first holds the slot, the others wait
    waited = await ask(other, 1, "When is the offsite?")
    flooded = await asyncio.gather(*flooding)
    # Its turn came after the call in flight and one more of the flood's, not after all eight.
    assert waited < sorted(flooded)[4], (waited, sorted(flooded))
