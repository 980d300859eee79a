"""Déjà through the official `openai` SDK, as an app that changed only its base_url would use it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import openai
import pytest

from app.toolkit.fakellm import FakeLLMServer
from tests.conftest import ServerThread, TenantKey


@pytest.fixture
async def tenant(make_tenant) -> TenantKey:  # type: ignore[no-untyped-def]
    return await make_tenant("sdk")  # type: ignore[no-any-return]


@pytest.fixture
def client(deja: ServerThread, tenant: TenantKey) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0)


@pytest.fixture
def sync_client(deja: ServerThread, tenant: TenantKey) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0)


# A tool the fake model calls when offered it.
TICKET_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_ticket",
            "description": "Look up a ticket",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
]


def unique(text: str) -> str:
    """Prompts unique to a test, so tests never hit each other's entries (they share no tenant anyway)."""
    return f"{text} (ticket {uuid.uuid4().hex[:6]})"


async def test_miss_then_paraphrase_hit_with_the_same_content(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    first = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I reset my VPN password?"}]
    )
    assert first.headers["x-cache"] == "MISS"
    miss = first.parse()
    assert miss.choices[0].message.content
    assert miss.usage is not None
    assert miss.usage.completion_tokens > 0
    await deja.settle()  # the answer is stored just after it is sent

    second = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "how can I reset my VPN password"}]
    )
    assert second.headers["x-cache"] == "HIT"
    assert 0.8 < float(second.headers["x-cache-similarity"]) < 1.0
    assert second.headers["x-cache-entry"] == first.headers["x-cache-entry"]
    hit = second.parse()
    assert hit.choices[0].message.content == miss.choices[0].message.content
    assert hit.id != miss.id
    assert hit.usage is not None
    assert hit.usage.total_tokens == 0  # a hit consumed no tokens


async def test_look_alike_is_a_miss_with_its_own_answer(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "convert 5 km to miles"}]
    )
    second = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "convert 5 miles to km"}]
    )
    assert second.headers["x-cache"] == "MISS"
    assert second.parse().choices[0].message.content != first.choices[0].message.content


async def test_a_field_only_another_kind_of_upstream_reads_keeps_its_own_entries(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """vLLM reads `guided_choice` (sent through the SDK's `extra_body`) and answers one of the
    choices: the plain request's answer must not be served to it, nor the other way round; a
    field of delivery (`user`) still shares the entry."""
    messages = [{"role": "user", "content": unique("Is the deploy pipeline green?")}]
    plain = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert plain.headers["x-cache"] == "MISS"
    await deja.settle()
    guided = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_body={"guided_choice": ["yes", "no"]}
    )
    assert guided.headers["x-cache"] == "MISS"
    await deja.settle()
    again = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_body={"guided_choice": ["yes", "no"]}, user="ci-bot"
    )
    assert (again.headers["x-cache"], again.headers["x-cache-entry"]) == (
        "HIT",
        guided.headers["x-cache-entry"],
    )


async def test_an_answer_is_served_only_to_requests_of_its_own_output_limit(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """An answer cut at 2 tokens is no answer to a request that allows 50, and an answer of more
    than 20 tokens is more than a request that allows 20 may be sent, however near the limits."""
    messages = [{"role": "user", "content": unique("Summarise the incident review for the on-call team")}]

    async def ask(limit: int) -> tuple[str, str, openai.types.chat.ChatCompletion]:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=messages, max_tokens=limit
        )
        await deja.settle()
        return raw.headers["x-cache"], raw.headers["x-cache-entry"], raw.parse()

    state, cut_entry, cut = await ask(2)
    assert (state, cut.choices[0].finish_reason) == ("MISS", "length")
    state, whole_entry, whole = await ask(50)
    assert (state, whole.choices[0].finish_reason) == ("MISS", "stop")
    assert whole.usage is not None
    assert 20 < whole.usage.completion_tokens <= 50
    state, _, shorter = await ask(20)
    assert state == "MISS"
    assert shorter.usage is not None
    assert shorter.usage.completion_tokens <= 20
    # The same limit again is the app's repeat: its own entry.
    assert (await ask(2))[:2] == ("HIT", cut_entry)
    assert (await ask(50))[:2] == ("HIT", whole_entry)


def test_sync_client_works_unchanged(sync_client: openai.OpenAI) -> None:
    prompt = unique("What is the office wifi password?")
    a = sync_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    b = sync_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert a.choices[0].message.content == b.choices[0].message.content


async def test_streamed_miss_then_streamed_hit(client: openai.AsyncOpenAI) -> None:
    prompt = unique("Write a haiku about on-call rotations")
    missed = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    # Named before the answer: the entry it is stored under (feedback can flag it).
    assert missed.headers["x-cache"] == "MISS"
    entry = missed.headers["x-cache-entry"]
    pieces, usage, finish = [], None, None
    async for chunk in missed.parse():
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    first_text = "".join(pieces)
    assert first_text
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0

    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True
    )
    assert (raw.headers["x-cache"], raw.headers["x-cache-entry"]) == ("HIT", entry)
    replayed, finish, usage_seen = [], None, False
    async for chunk in raw.parse():
        usage_seen = usage_seen or chunk.usage is not None
        for choice in chunk.choices:
            replayed.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(replayed) == first_text
    assert finish == "stop"
    assert not usage_seen  # not asked for: no usage chunk

    # The streamed answer was stored whole: a non-streamed request gets the same text.
    plain = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert plain.choices[0].message.content == first_text


async def test_tool_calls_survive_storage_and_replay(client: openai.AsyncOpenAI) -> None:
    tools = TICKET_TOOLS
    prompt = unique("Show me ticket 4711")
    first = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        tools=tools,  # type: ignore[arg-type]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        tools=tools,
        stream=True,  # type: ignore[arg-type]
    )
    name, arguments, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                name += delta.function.name or ""  # type: ignore[union-attr]
                arguments += delta.function.arguments or ""  # type: ignore[union-attr]
            finish = choice.finish_reason or finish
    assert name == call.function.name  # type: ignore[union-attr]
    assert arguments == call.function.arguments  # type: ignore[union-attr]
    assert finish == first.choices[0].finish_reason
    # Without the tools the request is another scope.
    without = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert without.headers["x-cache"] == "MISS"


async def test_a_tool_call_stored_from_a_stream_has_no_content_when_served_again(
    client: openai.AsyncOpenAI,
) -> None:
    """A stream opens its answer with content "": a tool call stored from a stream came back with
    content "" instead of null, unstreamed and through the SDK's stream helper."""
    tools = TICKET_TOOLS
    asked = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": unique("Open ticket 99")}]}
    async for _ in await client.chat.completions.create(**asked, tools=tools, stream=True):  # type: ignore[call-overload]
        pass  # the miss, stored from its stream
    raw = await client.chat.completions.with_raw_response.create(**asked, tools=tools)  # type: ignore[call-overload]
    assert raw.headers["x-cache"] == "HIT"
    message = raw.parse().choices[0].message
    assert message.tool_calls
    assert message.content is None
    async with client.chat.completions.stream(**asked, tools=tools) as stream:  # type: ignore[call-overload]
        final = await stream.get_final_completion()
    assert final.choices[0].message.tool_calls
    assert final.choices[0].message.content is None
    # Each hit's calls have ids of their own (a client keeping calls by id kept one for all).
    ids = {message.tool_calls[0].id, final.choices[0].message.tool_calls[0].id}
    assert len(ids) == 2


async def _streamed(stream: openai.AsyncStream) -> dict[str, object]:  # type: ignore[type-arg]
    """What a client makes of a stream: content, a legacy function call, logprobs, finish."""
    content, name, arguments, tokens, finish = "", "", "", [], None
    async for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            if choice.delta.function_call is not None:
                name += choice.delta.function_call.name or ""
                arguments += choice.delta.function_call.arguments or ""
            if choice.logprobs is not None:
                tokens += choice.logprobs.content or []
            finish = choice.finish_reason or finish
    return {"content": content, "function": (name, arguments), "logprobs": tokens, "finish": finish}


async def test_a_legacy_function_call_and_logprobs_survive_storage_and_replay(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """Streamed misses are assembled whole: a legacy `function_call` (from `functions`) and the
    logprobs of each piece used to be dropped, so the stored answer was empty or had none, and
    replays of stored answers left them out too."""
    functions = [
        {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ]
    called = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": unique("Weather in Oslo?")}]}
    streamed = await _streamed(
        await client.chat.completions.create(**called, functions=functions, stream=True)
    )
    assert streamed["function"][0] == "get_weather"
    assert streamed["function"][1]
    await deja.settle()
    stored = await client.chat.completions.with_raw_response.create(**called, functions=functions)
    assert stored.headers["x-cache"] == "HIT"
    message = stored.parse().choices[0].message
    assert message.function_call is not None
    assert (message.function_call.name, message.function_call.arguments) == streamed["function"]
    replayed = await _streamed(
        await client.chat.completions.create(**called, functions=functions, stream=True)
    )
    assert replayed["function"] == streamed["function"]
    assert replayed["finish"] == streamed["finish"] == "function_call"

    asked = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": unique("Name three rivers.")}]}
    streamed = await _streamed(await client.chat.completions.create(**asked, logprobs=True, stream=True))
    assert streamed["logprobs"]
    assert "".join(t.token for t in streamed["logprobs"]) == streamed["content"]
    await deja.settle()
    stored = await client.chat.completions.with_raw_response.create(**asked, logprobs=True)
    assert stored.headers["x-cache"] == "HIT"
    choice = stored.parse().choices[0]
    assert choice.message.content == streamed["content"]
    assert choice.logprobs is not None
    assert choice.logprobs.content == streamed["logprobs"]
    replayed = await _streamed(await client.chat.completions.create(**asked, logprobs=True, stream=True))
    assert replayed["content"] == streamed["content"]
    assert replayed["logprobs"] == streamed["logprobs"]


async def test_a_spoken_answer_is_passed_on_and_not_stored(client: openai.AsyncOpenAI) -> None:
    """An answer in audio (`modalities: ["text", "audio"]`) has no content: it was refused as an
    empty answer (502) while the provider billed it. It is passed on, streamed or not, and not
    stored: its audio id expires with the provider."""
    spoken = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": unique("Say hello to the team.")}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
    }
    first = await client.chat.completions.with_raw_response.create(**spoken)
    assert first.headers["x-cache"] == "MISS"
    audio = first.parse().choices[0].message.audio
    assert audio is not None
    assert audio.transcript
    again = await client.chat.completions.with_raw_response.create(**spoken)
    assert again.headers["x-cache"] == "MISS"
    transcript = ""
    async for chunk in await client.chat.completions.create(**spoken, stream=True):
        for choice in chunk.choices:
            if choice.delta.audio is not None:
                transcript += choice.delta.audio.transcript or ""
    assert transcript == audio.transcript


async def test_a_model_that_spent_its_output_limit_before_answering_is_passed_on_and_not_stored(
    deja: ServerThread, tenant: TenantKey, fake_llm: FakeLLMServer
) -> None:
    """A reasoning model can spend its whole output limit thinking: 200, content "" and
    `finish_reason: "length"`. That was an empty answer, a 502 the SDK retried (each retry billed
    again). It is the model's answer: passed on, streamed or not, booked, and not stored."""
    model = f"reasoner-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as fake:
        planted = await fake.post("/_fake/faults", json={"model": model, "kind": "spent", "times": None})
        assert planted.status_code == 200, planted.text
    asked = {
        "model": model,
        "messages": [{"role": "user", "content": unique("Prove the lemma.")}],
        "max_completion_tokens": 50,
    }
    async with openai.AsyncOpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=2) as sdk:
        first = await sdk.chat.completions.with_raw_response.create(**asked)
        assert first.headers["x-cache"] == "MISS"
        answer = first.parse()
        assert (answer.choices[0].finish_reason, answer.choices[0].message.content) == ("length", "")
        assert answer.usage is not None
        assert answer.usage.completion_tokens > 0
        again = await sdk.chat.completions.with_raw_response.create(**asked)
        assert again.headers["x-cache"] == "MISS"  # nothing to serve again
        reasons = [
            choice.finish_reason
            async for chunk in await sdk.chat.completions.create(**asked, stream=True)
            for choice in chunk.choices
            if choice.finish_reason
        ]
    assert reasons == ["length"]


async def test_a_hits_usage_has_the_misss_details_at_zero(
    client: openai.AsyncOpenAI, tenant: TenantKey, fake_llm: FakeLLMServer
) -> None:
    """`usage.completion_tokens_details.reasoning_tokens` worked on a miss and raised
    AttributeError on its hit, whose usage had only the three totals."""
    model = f"thinker-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as fake:
        planted = await fake.post("/_fake/faults", json={"model": model, "kind": "reasoning", "times": None})
        assert planted.status_code == 200, planted.text
    asked = {"model": model, "messages": [{"role": "user", "content": unique("Plan the migration.")}]}
    miss = await client.chat.completions.create(**asked)
    assert miss.usage is not None
    assert miss.usage.completion_tokens_details is not None
    assert miss.usage.completion_tokens_details.reasoning_tokens == 2000
    raw = await client.chat.completions.with_raw_response.create(**asked)
    assert raw.headers["x-cache"] == "HIT"
    hit = raw.parse()
    assert hit.usage is not None
    assert hit.usage.total_tokens == 0
    assert hit.usage.completion_tokens_details is not None
    assert hit.usage.completion_tokens_details.reasoning_tokens == 0


async def test_a_request_the_provider_rejects_keeps_the_providers_error_code(
    client: openai.AsyncOpenAI, fake_llm: FakeLLMServer
) -> None:
    """Code that catches a prompt too long (`e.code == "context_length_exceeded"`) never saw it:
    the provider's 400 came back with Déjà's slug as its code and no param."""
    model = f"strict-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as fake:
        planted = await fake.post("/_fake/faults", json={"model": model, "kind": "400", "times": None})
        assert planted.status_code == 200, planted.text
    asked = {"model": model, "messages": [{"role": "user", "content": unique("Summarise the archive.")}]}
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as rejected:
            await client.chat.completions.create(**asked, stream=stream)
        error = rejected.value
        assert (error.code, error.param, error.type) == (
            "context_length_exceeded",
            "messages",
            "invalid_request_error",
        )
        assert "rejected" in error.message


async def test_a_providers_rate_limit_and_unknown_model_reach_the_sdk_as_such(
    deja: ServerThread, tenant: TenantKey, fake_llm: FakeLLMServer
) -> None:
    """Every call answered 429, or 404: both were a 502 without Retry-After, which the SDK retried
    as a server error (a 404 three times), and code catching RateLimitError or NotFoundError never
    saw them."""
    limited, unknown = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("limited", "unknown"))
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as fake:
        for model, kind in ((limited, "429"), (unknown, "404")):
            planted = await fake.post("/_fake/faults", json={"model": model, "kind": kind, "times": None})
            assert planted.status_code == 200, planted.text
    async with openai.AsyncOpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0) as sdk:
        messages = [{"role": "user", "content": unique("Draft the memo.")}]
        with pytest.raises(openai.RateLimitError) as rate_limited:
            await sdk.chat.completions.create(model=limited, messages=messages)  # type: ignore[arg-type]
        assert rate_limited.value.code == "rate_limit_exceeded"
        assert rate_limited.value.response.headers["retry-after"] == "1"
        with pytest.raises(openai.NotFoundError) as not_found:
            await sdk.chat.completions.create(model=unknown, messages=messages, stream=True)  # type: ignore[arg-type]
        assert not_found.value.code == "model_not_found"


async def test_primary_failing_and_fallback_answering(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-broken", messages=[{"role": "user", "content": unique("Summarise the incident report")}]
    )
    assert raw.headers["x-cache"] == "MISS"
    assert raw.parse().choices[0].message.content
    native = await http.post(
        "/v1/requests",
        headers=tenant.headers,
        json={"input": unique("Draft a status update"), "model": "gpt-broken", "priority": 8},
    )
    assert native.status_code == 200
    assert native.json()["model_used"] == "gpt-4o-mini"  # the fallback's model


async def test_another_models_answer_is_served_but_never_stored_for_the_primarys_requests(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """An outage must not leave the fallback model's answers in the primary's place for as long
    as they live: the next request, the primary back, is the primary's to answer. A fallback to
    the same model at another provider is the same answer, and stored."""
    messages = [{"role": "user", "content": unique("List the steps of our release checklist")}]
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-downgraded", messages=messages
        )
        assert raw.headers["x-cache"] == "MISS"
        assert "x-cache-entry" not in raw.headers  # nothing is stored: no entry to name
        assert raw.parse().model == "gpt-4o-mini"
        await deja.settle()
    # Streamed, the same: its headers name no entry, and none is stored.
    for _ in range(2):
        streamed = await client.chat.completions.with_raw_response.create(
            model="gpt-downgraded", messages=messages, stream=True
        )
        assert streamed.headers["x-cache"] == "MISS"
        assert "x-cache-entry" not in streamed.headers
        assert {chunk.model async for chunk in streamed.parse()} == {"gpt-4o-mini"}
        await deja.settle()

    # `gpt-mirrored`'s primary provider fails; the fallback is the same model at another one.
    first = await client.chat.completions.with_raw_response.create(model="gpt-mirrored", messages=messages)
    assert first.headers["x-cache"] == "MISS"
    await deja.settle()
    again = await client.chat.completions.with_raw_response.create(model="gpt-mirrored", messages=messages)
    assert (again.headers["x-cache"], again.headers["x-cache-entry"]) == (
        "HIT",
        first.headers["x-cache-entry"],
    )


async def test_identical_concurrent_misses_make_one_upstream_call(
    deja: ServerThread, tenant: TenantKey, slow_llm
) -> None:  # type: ignore[no-untyped-def]
    prompt = unique("Explain our deployment freeze policy")
    async with httpx.AsyncClient() as fake:
        before = (await fake.get(f"{slow_llm.root_url}/_fake/stats")).json()["chat"].get("gpt-slow", 0)
    client = openai.AsyncOpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0)
    responses = await asyncio.gather(
        *[
            client.chat.completions.with_raw_response.create(
                model="gpt-slow", messages=[{"role": "user", "content": prompt}]
            )
            for _ in range(20)
        ]
    )
    async with httpx.AsyncClient() as fake:
        after = (await fake.get(f"{slow_llm.root_url}/_fake/stats")).json()["chat"].get("gpt-slow", 0)
    assert after - before == 1
    contents = {r.parse().choices[0].message.content for r in responses}
    assert len(contents) == 1
    assert sorted(r.headers["x-cache"] for r in responses).count("MISS") == 1


async def test_cache_controls(client: openai.AsyncOpenAI) -> None:
    prompt = unique("List the steps to rotate an API key")
    messages = [{"role": "user", "content": prompt}]
    stored = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    assert stored.headers["x-cache"] == "MISS"
    refreshed = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_headers={"Cache-Control": "no-cache"},  # type: ignore[arg-type]
    )
    assert refreshed.headers["x-cache"] == "BYPASS"
    other_ns = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_headers={"X-Cache-Namespace": "other"},  # type: ignore[arg-type]
    )
    assert other_ns.headers["x-cache"] == "MISS"
    in_body = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_body={"cache": {"namespace": "other"}},  # type: ignore[arg-type]
    )
    assert in_body.headers["x-cache"] == "HIT"
    not_stored_prompt = unique("Who is on call today?")
    for _ in range(2):
        unstored = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": not_stored_prompt}],
            extra_headers={"Cache-Control": "no-store"},
        )
        assert unstored.headers["x-cache"] == "MISS"
    hot = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        temperature=1.5,  # type: ignore[arg-type]
    )
    assert hot.headers["x-cache"] == "BYPASS"
    await asyncio.sleep(1.1)
    too_old = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_headers={"Cache-Control": "max-age=1"},  # type: ignore[arg-type]
    )
    assert too_old.headers["x-cache"] == "MISS"


async def test_upstream_errors_are_problem_details(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    failing = await http.post(
        "/v1/chat/completions",
        headers={**tenant.headers, "X-Fake-Fail": "500"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": unique("hello")}]},
    )
    # The fault header goes upstream only if forwarded; Déjà does not forward client headers,
    # so the fake answers normally.
    assert failing.status_code == 200
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[])
    # The SDK's exception carries the problem's detail and a code, as it would OpenAI's.
    assert refused.value.code == "unprocessable"
    assert refused.value.body["message"] == refused.value.response.json()["detail"]  # type: ignore[index]
    assert refused.value.response.json()["detail"] in str(refused.value)
    bad = await http.post("/v1/chat/completions", headers=tenant.headers, json={"model": "gpt-4o-mini"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_native_request_matches_the_seed_fields(http: httpx.AsyncClient, tenant: TenantKey) -> None:
    body = {
        "input": unique("Give me three names for a build bot"),
        "model": "gpt-4o-mini",
        "priority": 3,
        "metadata": {"team": "infra"},
    }
    first = (await http.post("/v1/requests", headers=tenant.headers, json=body)).json()
    assert set(first) >= {
        "request_id",
        "output",
        "model_used",
        "latency_ms",
        "tokens_used",
        "cost_usd",
        "status",
        "cache",
    }
    assert first["status"] == "COMPLETED"
    assert first["cache"]["status"] == "MISS"
    assert first["tokens_used"] > 0
    assert float(first["cost_usd"]) > 0
    second = (await http.post("/v1/requests", headers=tenant.headers, json=body)).json()
    assert second["cache"]["status"] == "HIT"
    assert second["output"] == first["output"]
    assert second["cost_usd"] in (0, "0")
    assert second["request_id"] != first["request_id"]
    # A field it does not take is named, never ignored: a namespace in the body used to be
    # dropped, the answer stored and served in the default namespace.
    for extra in ({"namespace": "team-secret"}, {"cache": {"no-store": True}}):
        refused = await http.post("/v1/requests", headers=tenant.headers, json={**body, **extra})
        assert refused.status_code == 400, refused.text
        assert next(iter(extra)) in refused.text


async def test_limits_are_problem_details(http: httpx.AsyncClient, tenant: TenantKey) -> None:
    too_many = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}] * 1001},
    )
    assert too_many.status_code == 422
    assert "1001" in too_many.json()["detail"]
    huge = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        content=b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        + b"x" * 2_000_000
        + b'"}]}',
    )
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("application/problem+json")
    long_prompt = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "word " * 205_000}]},
    )
    assert long_prompt.status_code == 413
    assert "tokens" in long_prompt.json()["detail"]


async def test_the_prompt_token_limit_guards_the_model_not_an_exact_hit(
    http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    # The limit is on what would go upstream: the same words already stored are served as they are.
    messages = [{"role": "user", "content": unique("word " * 205_000)}]
    stored = await http.post(
        "/v1/cache/entries",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "messages": messages, "response": "A stored answer."},
    )
    assert stored.status_code == 201, stored.text[:300]
    hit = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": "gpt-4o-mini", "messages": messages}
    )
    assert hit.status_code == 200, hit.text[:300]
    assert (hit.headers["x-cache"], hit.headers["x-cache-tier"]) == ("HIT", "exact")
    assert hit.json()["choices"][0]["message"]["content"] == "A stored answer."
    longer = [{"role": "user", "content": messages[0]["content"] + " word"}]
    refused = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": "gpt-4o-mini", "messages": longer}
    )
    assert refused.status_code == 413
    assert "tokens" in refused.json()["detail"]


async def test_the_prompt_token_limit_guards_the_model_not_a_semantic_hit(
    http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    # A rewording of a stored prompt over the limit is served by the semantic tier, not refused:
    # nothing goes upstream. The two differ only in one word of their opening instruction.
    notes = (
        unique("Notes of the weekly review:")
        + " the migration of the billing service finished two weeks late; support hired four people."
        + " a" * 205_000
    )
    stored = await http.post(
        "/v1/cache/entries",
        headers=tenant.headers,
        json={
            "model": "gpt-4o-mini",
            "prompt": f"Summarise these notes for me. {notes}",
            "response": "A summary.",
        },
    )
    assert stored.status_code == 201, stored.text[:300]
    reworded = [{"role": "user", "content": f"Summarize these notes for me. {notes}"}]
    hit = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": "gpt-4o-mini", "messages": reworded}
    )
    assert hit.status_code == 200, hit.text[:300]
    assert (hit.headers["x-cache"], hit.headers["x-cache-tier"]) == ("HIT", "semantic")
    assert hit.json()["choices"][0]["message"]["content"] == "A summary."


async def test_every_upstream_failing_is_a_502_or_a_stale_answer_when_allowed(
    http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    prompt = unique("What changed in the last release?")
    stored = await http.post(
        "/v1/cache/entries",
        headers=tenant.headers,
        json={"model": "gpt-down", "prompt": prompt, "response": "Faster lookups.", "ttl_seconds": 1},
    )
    assert stored.status_code == 201
    await asyncio.sleep(1.2)  # the entry has expired
    body = {"model": "gpt-down", "messages": [{"role": "user", "content": prompt}]}
    failed = await http.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert failed.status_code == 502
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert "HTTP 500" in failed.json()["detail"]
    stale = await http.post(
        "/v1/chat/completions", headers={**tenant.headers, "Cache-Control": "stale-if-error=60"}, json=body
    )
    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "HIT"
    assert stale.headers["x-cache-stale"] == "true"
    assert stale.json()["choices"][0]["message"]["content"] == "Faster lookups."


async def test_metrics_count_what_the_requests_did(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, deja: ServerThread
) -> None:
    def value(text: str, prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    before = (await http.get("/metrics")).text
    prompt = unique("How do I request a new laptop?")
    await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    await deja.settle()  # stored: the repeat is an exact hit (before that it joins the first, coalesced)
    await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    after = (await http.get("/metrics")).text
    for series in ('deja_cache_lookups_total{result="miss"}', 'deja_cache_lookups_total{result="exact_hit"}'):
        assert value(after, series) - value(before, series) >= 1, series
    assert value(after, 'ai_requests_total{model="gpt-4o-mini"') > value(
        before, 'ai_requests_total{model="gpt-4o-mini"'
    )
    assert value(after, "deja_cost_usd_total") > value(before, "deja_cost_usd_total")


def assert_completion_shape(completion: object) -> None:
    """What an OpenAI chat completion always carries, read through the SDK's own model."""
    from openai.types.chat import ChatCompletion

    assert isinstance(completion, ChatCompletion)
    assert completion.object == "chat.completion"
    assert completion.id
    assert completion.created
    assert completion.model
    for choice in completion.choices:
        assert choice.message.role == "assistant"
        assert choice.finish_reason is not None
        assert choice.message.content is not None or choice.message.tool_calls
    assert completion.usage is not None


async def streamed(client: openai.AsyncOpenAI, prompt: str) -> list[object]:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return [chunk async for chunk in stream]


def assert_chunks_shape(chunks: list[object]) -> None:
    from openai.types.chat import ChatCompletionChunk

    assert chunks
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}  # type: ignore[attr-defined]
    assert len({c.id for c in chunks}) == 1  # type: ignore[attr-defined]
    with_choices = [c for c in chunks if c.choices]  # type: ignore[attr-defined]
    assert with_choices[0].choices[0].delta.role == "assistant"  # type: ignore[attr-defined]
    assert with_choices[-1].choices[0].finish_reason is not None  # type: ignore[attr-defined]
    assert chunks[-1].usage is not None  # type: ignore[attr-defined]


async def test_fake_model_answers_are_openai_shaped(fake_llm) -> None:  # type: ignore[no-untyped-def]
    client = openai.AsyncOpenAI(base_url=fake_llm.base_url, api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the refund policy?"}]
    )
    assert_completion_shape(completion)
    assert_chunks_shape(await streamed(client, "What is the refund policy?"))
    raw = (
        await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    ).http_response.json()
    assert raw["choices"][0]["message"]["role"] == "assistant"


async def test_stored_and_replayed_answers_keep_the_openai_shape(client: openai.AsyncOpenAI) -> None:
    prompt = unique("Which holidays does the company observe?")
    miss = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    hit = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert_completion_shape(miss.parse())
    assert_completion_shape(hit.parse())
    assert hit.http_response.json()["choices"][0]["message"]["role"] == "assistant"

    streamed_prompt = unique("How many vacation days carry over?")
    assert_chunks_shape(await streamed(client, streamed_prompt))  # a miss, streamed through
    assert_chunks_shape(await streamed(client, streamed_prompt))  # the stored answer, replayed


async def test_an_answer_stored_through_the_cache_api_replays_as_openai_clients_read_it(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, tenant: TenantKey
) -> None:
    """An answer stored by hand may leave out what the provider always sends (a choice's index,
    its finish_reason, the model); as choice 3 of one, its streamed replay broke the SDK's
    stream helper (IndexError); several choices, a user's message or a tool call were served to
    requests that asked for one answer and offered no tools."""

    async def store(prompt: str, choices: list[dict[str, object]]) -> httpx.Response:
        return await http.post(
            "/v1/cache/entries",
            headers={"Authorization": f"Bearer {tenant.api_key}"},
            json={"model": "gpt-4o-mini", "prompt": prompt, "response": {"choices": choices}},
        )

    # One answer (the cache API's requests ask for one), choice 0, by the assistant, calling no
    # tool (they offer none).
    call = {"id": "c1", "type": "function", "function": {"name": "rm_rf", "arguments": "{}"}}
    for choices, says in (
        ([{"index": 3, "message": {"content": "x"}}], "must be 0"),
        (
            [{"index": 0, "message": {"content": "x"}}, {"index": 1, "message": {"content": "y"}}],
            "one answer",
        ),
        ([{"message": {"role": "user", "content": "x"}}], "'assistant'"),
        ([{"message": {"content": None, "tool_calls": [call]}}], "must not call tools"),
    ):
        refused = await store(unique("Where is the style guide?"), choices)
        assert refused.status_code == 422, (choices, refused.text)
        assert says in refused.json()["detail"], refused.text

    prompt = unique("Where is the style guide?")
    stored = await store(prompt, [{"message": {"content": "In the wiki, under Writing."}}])
    assert stored.status_code == 201, stored.text
    answered = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert answered.headers["x-cache"] == "HIT"
    # Every field the SDK's types require, validated strictly.
    strict = openai.types.chat.ChatCompletion.model_validate(answered.http_response.json(), strict=True)
    assert (strict.model, strict.choices[0].index, strict.choices[0].finish_reason) == (
        "gpt-4o-mini",
        0,
        "stop",
    )
    async with client.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "In the wiki, under Writing."


async def test_the_request_right_after_a_refresh_gets_the_fresh_answer(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """A refresh's answer is written after its response, and the answer it replaces retired after
    that: the same prompt sent at once was served the old answer."""
    messages = [{"role": "user", "content": unique("Which regions does the CDN serve from?")}]

    async def ask(**headers: str) -> Any:
        return await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
            extra_headers=headers,  # type: ignore[arg-type]
        )

    first = await ask()
    await deja.settle()
    refreshed = await ask(**{"Cache-Control": "no-cache"})
    right_after = await ask()  # no settling: while the refresh's answer is being written
    assert refreshed.headers["x-cache-entry"] != first.headers["x-cache-entry"]
    assert right_after.headers["x-cache-entry"] == refreshed.headers["x-cache-entry"], right_after.headers
    await deja.settle()
    later = await ask()
    assert (later.headers["x-cache"], later.headers["x-cache-entry"]) == (
        "HIT",
        refreshed.headers["x-cache-entry"],
    )


async def test_a_refresh_replaces_the_answer_its_paraphrases_were_served_too(
    client: openai.AsyncOpenAI, deja: ServerThread
) -> None:
    """A paraphrase served the first answer became its alias; after a refresh (no-cache) of the
    prompt, the paraphrase was still an alias hit on the first answer for its whole TTL."""
    # Fixed wordings (the tenant is new): the model must serve the rewording every time.
    asked, reworded = (
        "How do I reset my VPN password? (ticket SDK-733)",
        "how can I reset my VPN password (ticket SDK-733)",
    )

    async def ask(content: str, **headers: str) -> openai.types.chat.ChatCompletion:  # type: ignore[name-defined]
        response = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": content}],
            extra_headers=headers,  # type: ignore[arg-type]
        )
        await deja.settle()  # answers and aliases are written just after the response
        return response  # type: ignore[return-value]

    first = await ask(asked)
    paraphrase = await ask(reworded)
    assert paraphrase.headers["x-cache-tier"] == "semantic"
    assert (await ask(reworded)).headers["x-cache-tier"] == "alias"
    refreshed = await ask(asked, **{"Cache-Control": "no-cache"})
    assert refreshed.headers["x-cache-entry"] != first.headers["x-cache-entry"]
    again = await ask(reworded)
    assert again.headers.get("x-cache-entry") != first.headers["x-cache-entry"], again.headers
