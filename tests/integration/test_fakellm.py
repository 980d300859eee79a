"""The fake model server, over real HTTP, through the real openai client."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from app.toolkit.fakellm import FakeLLMConfig, FakeLLMServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    config = FakeLLMConfig(
        fail_models={"gpt-broken": "500", "gpt-flaky": "429*2"}, retry_after_s=7, timeout_sleep_s=1.0
    )
    with FakeLLMServer(config) as fake:
        yield fake


@pytest.fixture(scope="module")
async def control(server: FakeLLMServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for the fake's own endpoints."""
    async with httpx.AsyncClient(base_url=server.root_url) as http:
        yield http


@pytest.fixture(scope="module")
async def client(server: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="any", max_retries=0, timeout=5) as sdk:
        yield sdk


@pytest.fixture(autouse=True)
async def _reset(control: httpx.AsyncClient) -> None:
    (await control.post("/_fake/reset")).raise_for_status()


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_answers_are_deterministic_and_depend_on_the_prompt(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=user("What is 2+2?"))
    again = await client.chat.completions.create(model="gpt-4o-mini", messages=user("What is 2+2?"))
    other = await client.chat.completions.create(model="gpt-4o-mini", messages=user("What is 3+3?"))

    content = first.choices[0].message.content
    assert content is not None
    assert content.startswith("Answer to: What is 2+2?")
    assert content == again.choices[0].message.content
    assert content != other.choices[0].message.content
    assert first.model == "gpt-4o-mini"
    assert first.choices[0].finish_reason == "stop"
    usage = first.usage
    assert usage is not None
    assert usage.completion_tokens == math.ceil(len(content) / 4)  # ~4 characters per token
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_max_tokens_cuts_the_answer(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model="m", messages=user("Tell me more"), max_tokens=3)

    assert result.choices[0].finish_reason == "length"
    assert len(result.choices[0].message.content or "") == 12


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(model="m", messages=user("Stream this"))
    stream = await client.chat.completions.create(
        model="m", messages=user("Stream this"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == (plain.usage.completion_tokens if plain.usage else None)


async def test_tool_call_to_the_first_tool(client: openai.AsyncOpenAI) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "days": {"type": "integer"},
                        "unit": {"type": "string", "enum": ["c", "f"]},
                    },
                },
            },
        },
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
    ]
    result = await client.chat.completions.create(model="m", messages=user("Paris"), tools=tools)

    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris", "days": 42, "unit": "c"}'

    streamed = await client.chat.completions.create(
        model="m", messages=user("Paris"), tools=tools, stream=True
    )
    arguments = ""
    async for chunk in streamed:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            arguments += delta_call.function.arguments or "" if delta_call.function else ""
    assert arguments == call.function.arguments


async def test_after_a_tool_result_it_answers_in_text(client: openai.AsyncOpenAI) -> None:
    tools: list[Any] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    messages: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    result = await client.chat.completions.create(model="m", messages=messages, tools=tools)

    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.content


async def test_embeddings(client: openai.AsyncOpenAI) -> None:
    # The SDK asks for base64 by default; encoding_format="float" exercises the other path.
    small = await client.embeddings.create(model="text-embedding-3-small", input=["a cat sat", "a cat sat"])
    default = await client.embeddings.create(
        model="local-embedder", input="a cat sat", encoding_format="float"
    )
    sized = await client.embeddings.create(model="text-embedding-3-small", input="a cat sat", dimensions=64)

    first, second = small.data[0].embedding, small.data[1].embedding
    assert len(first) == 1536
    assert len(default.data[0].embedding) == 384
    assert len(sized.data[0].embedding) == 64
    assert first == second
    assert math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-5)
    assert small.usage.prompt_tokens == 2 * math.ceil(len("a cat sat") / 4)


async def test_similar_texts_embed_closer(client: openai.AsyncOpenAI) -> None:
    texts = ["how do I reset my password", "how can I reset my password", "best pizza in naples"]
    result = await client.embeddings.create(model="e", input=texts, encoding_format="float")
    vectors = [item.embedding for item in result.data]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > 0.6 > cosine(vectors[0], vectors[2])


async def test_models_are_free_form(client: openai.AsyncOpenAI) -> None:
    listed = [model.id async for model in client.models.list()]
    retrieved = await client.models.retrieve("anything-at-all")

    assert "gpt-4o-mini" in listed
    assert "gpt-broken" in listed
    assert retrieved.id == "anything-at-all"


async def test_configured_model_faults(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-broken", messages=user("hi"))
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="gpt-flaky", messages=user("hi"))
        assert caught.value.response.headers["retry-after"] == "7"
    third = await client.chat.completions.create(model="gpt-flaky", messages=user("hi"))

    assert third.choices[0].message.content


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("400", openai.BadRequestError),
        ("401", openai.AuthenticationError),
    ],
)
async def test_fault_header_targets_one_call(
    client: openai.AsyncOpenAI, header: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.chat.completions.create(
            model="m", messages=user("hi"), extra_headers={"X-Fake-Fail": header}
        )

    assert (await client.chat.completions.create(model="m", messages=user("hi"))).choices


async def test_timeout_and_empty_faults(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model="m", messages=user("hi"), timeout=0.2, extra_headers={"X-Fake-Fail": "timeout"}
        )
    empty = await client.chat.completions.create(
        model="m", messages=user("hi"), extra_headers={"X-Fake-Fail": "empty"}
    )

    assert empty.choices[0].message.content == ""


async def test_mid_stream_fault(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=user("a longer question here"),
        stream=True,
        extra_headers={"X-Fake-Fail": "midstream"},
    )
    received: list[str] = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match="broke off"):
        await read_all()
    assert len(received) == 3  # the role chunk and two pieces


async def test_bad_requests_are_400(client: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        await client.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.BadRequestError, match="x-fake-fail"):
        await client.chat.completions.create(
            model="m", messages=user("hi"), extra_headers={"X-Fake-Fail": "nonsense"}
        )
    response = await control.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_stats_count_calls_per_model(client: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    await client.chat.completions.create(model="a", messages=user("hi"))
    await client.chat.completions.create(model="a", messages=user("hi again"))
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-broken", messages=user("hi"))
    await client.embeddings.create(model="e", input="x")

    stats: dict[str, Any] = (await control.get("/_fake/stats")).json()
    assert stats["chat"] == {"a": 2, "gpt-broken": 1}
    assert stats["embeddings"] == {"e": 1}
    assert stats["total"] == 4

    (await control.post("/_fake/reset")).raise_for_status()
    assert (await control.get("/_fake/stats")).json()["total"] == 0


async def test_runtime_faults(client: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    fault = {"model": "z", "kind": "503", "times": 1}
    (await control.post("/_fake/faults", json=fault)).raise_for_status()

    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="z", messages=user("hi"))
    assert (await client.chat.completions.create(model="z", messages=user("hi"))).choices


def test_fail_rate_is_seeded() -> None:
    config = FakeLLMConfig(fail_rate=0.5, seed=7, fail_kinds=("500", "429"), retry_after_s=0)
    with FakeLLMServer(config) as fake, httpx.Client(base_url=fake.root_url) as http:
        body = {"model": "m", "messages": user("hi")}

        def outcomes() -> list[int]:
            return [http.post("/v1/chat/completions", json=body).status_code for _ in range(12)]

        first = outcomes()
        http.post("/_fake/reset").raise_for_status()  # re-seeds
        assert first == outcomes()
    assert {200, 500, 429} <= set(first)


def test_api_key_is_enforced_when_configured() -> None:
    with FakeLLMServer(FakeLLMConfig(api_key="sekrit")) as fake:
        body: dict[str, Any] = {"model": "m", "messages": user("hi")}
        url = f"{fake.base_url}/chat/completions"
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer sekrit"}).status_code == 200


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FakeLLMConfig(fail_models={"m": "418"})
    with pytest.raises(ValueError, match="fail_rate"):
        FakeLLMConfig(fail_rate=2.0)


def test_command_serves_with_its_options() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.toolkit.fakellm.cli",
            "--port",
            str(port),
            "--fail-model",
            "gpt-down=503",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get("/v1/models")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "the command did not start serving"
                    time.sleep(0.1)
            down = http.post("/v1/chat/completions", json={"model": "gpt-down", "messages": user("hi")})
            up = http.post("/v1/chat/completions", json={"model": "gpt-up", "messages": user("hi")})
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()

    assert down.status_code == 503
    assert up.status_code == 200


def test_command_refuses_bad_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.toolkit.fakellm.cli", "--fail-model", "gpt-x=418"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown fault" in result.stderr
