"""Hostile input against a running `deja serve` (a process of its own, so its memory can be read):
for every public endpoint, field and header, out-of-range numbers, huge and deeply nested
values, invalid UTF-8, invisible and confusable characters, wrong types. Every answer is a
problem detail below 500, every chat request leaves exactly one ledger row, and the server's
memory stays bounded."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import time
import unicodedata
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.toolkit.fakellm.config import FakeLLMConfig
from app.toolkit.fakellm.server import FakeLLMServer
from tests.conftest import ADMIN_HEADERS, ADMIN_TOKEN, TenantKey, start_deja_serve

PROBLEM = "application/problem+json"
METRICS_TOKEN = "scrape-me"
# Models the fake server breaks on purpose; priced as gpt-4o-mini (`served`) so delivered text has a cost.
MIDSTREAM = "gpt-4o-mini-midstream"
UNFINISHED = "gpt-4o-mini-unfinished"  # a stream whose body ends before it says why
MISSHAPEN = "gpt-4o-mini-misshapen"  # a stream piece that is JSON, but no chunk
OVERCOUNTED = "gpt-4o-mini-overcounted"  # usage: 10**12 tokens each way
HALFCOUNTED = "gpt-4o-mini-halfcounted"  # usage: the prompt only
REASONING = "gpt-4o-mini-reasoning"  # usage: 2,000 hidden reasoning tokens beside the answer's
LONG = "gpt-4o-mini-long"
HANG = "gpt-4o-mini-hang"
EMPTY = "gpt-4o-mini-empty"  # answers 200 with no content, and counts its prompt's tokens
EMPTY_THEN_ANSWER = "gpt-4o-mini-empty-then-answer"  # that, then a fallback that answers
EMPTY_THEN_REJECTED = "gpt-4o-mini-empty-then-rejected"  # that, then a fallback that answers 400
REJECTING = "gpt-4o-mini-rejecting"
EMPTY_THEN_HANG = "gpt-4o-mini-empty-then-hang"  # an empty answer, then a fallback that outlasts the deadline
FAILING_THEN_4O = "gpt-4o-mini-then-4o"  # priced as gpt-4o-mini; its primary fails and gpt-4o answers
HANG_THEN_ANSWER = "gpt-4o-mini-hang-then-answer"  # a primary given up on after 1 s, then a fallback
HANG_ALONE = "gpt-4o-mini-hang-alone"  # a primary given up on after 1 s, and no fallback
TEAM_CHAT = "team-chat"  # a route's own name, with no price: gpt-4o-mini answers it
DEADLINE_S = 4
BODY_TIMEOUT_S = 2
MAX_CONNECTIONS = 48


@dataclass
class Served:
    url: str
    pid: int


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeLLMServer]:
    config = FakeLLMConfig(
        token_latency_ms=250,  # a long answer (20 pieces) outlasts the deadline
        fail_models={
            MIDSTREAM: "midstream",
            UNFINISHED: "unfinished",
            MISSHAPEN: "misshapen",
            OVERCOUNTED: "overcounted",
            HALFCOUNTED: "halfcounted",
            REASONING: "reasoning",
            LONG: "long",
            HANG: "timeout",
            EMPTY: "empty",
            REJECTING: "400",
        },
        long_answer_chars=20_000,
    )
    with FakeLLMServer(config) as server:
        yield server


BROKEN_MODELS = (
    MIDSTREAM,
    UNFINISHED,
    MISSHAPEN,
    OVERCOUNTED,
    HALFCOUNTED,
    REASONING,
    LONG,
    HANG,
    EMPTY,
    EMPTY_THEN_ANSWER,
    EMPTY_THEN_REJECTED,
    REJECTING,
    EMPTY_THEN_HANG,
    FAILING_THEN_4O,
    HANG_THEN_ANSWER,
)


@pytest.fixture(scope="module")
async def served(
    database_url: str,
    fake_model: FakeLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Served]:
    # A price applies to its model's dated snapshots, not to every name that starts alike.
    async with transaction(sessionmaker, system=True) as session:
        for model in BROKEN_MODELS:
            await session.execute(
                text(
                    "INSERT INTO prices (model, input_per_mtok, cached_input_per_mtok, output_per_mtok, "
                    "effective_from) SELECT :model, input_per_mtok, cached_input_per_mtok, output_per_mtok, "
                    "effective_from FROM prices WHERE model = 'gpt-4o-mini' ON CONFLICT DO NOTHING"
                ),
                {"model": model},
            )
    state = tmp_path_factory.mktemp("hostile")
    config = state / "deja.toml"
    config.write_text(
        f'[[upstreams]]\nname = "fake"\nbase_url = "{fake_model.base_url}"\ntimeout_s = 10\nmax_retries = 0\n'
        f'[[routes]]\nmodel = "gpt-4o-mini"\nprimary = "fake"\n'
        f'[[routes]]\nmodel = "{EMPTY_THEN_ANSWER}"\nprimary = "fake"\nprimary_model = "{EMPTY}"\n'
        f'fallbacks = [{{ upstream = "fake", model = "gpt-4o-mini" }}]\n'
        f'[[routes]]\nmodel = "{EMPTY_THEN_REJECTED}"\nprimary = "fake"\nprimary_model = "{EMPTY}"\n'
        f'fallbacks = [{{ upstream = "fake", model = "{REJECTING}" }}]\n'
        f'[[routes]]\nmodel = "{EMPTY_THEN_HANG}"\nprimary = "fake"\nprimary_model = "{EMPTY}"\n'
        f'fallbacks = [{{ upstream = "fake", model = "{HANG}" }}]\n'
        f'[[routes]]\nmodel = "{FAILING_THEN_4O}"\nprimary = "fake"\nprimary_model = "{MIDSTREAM}"\n'
        f'fallbacks = [{{ upstream = "fake", model = "gpt-4o" }}]\n'
        f'[[upstreams]]\nname = "impatient"\nbase_url = "{fake_model.base_url}"\ntimeout_s = 1\nmax_retries = 0\n'
        f'[[routes]]\nmodel = "{HANG_THEN_ANSWER}"\nprimary = "impatient"\nprimary_model = "{HANG}"\n'
        f'fallbacks = [{{ upstream = "fake", model = "gpt-4o-mini" }}]\n'
        f'[[routes]]\nmodel = "{HANG_ALONE}"\nprimary = "impatient"\nprimary_model = "{HANG}"\n'
        f'[[routes]]\nmodel = "{TEAM_CHAT}"\nprimary = "fake"\nprimary_model = "gpt-4o-mini"\n'
    )
    process, url = await start_deja_serve(
        {
            "DEJA_DATABASE_URL": database_url,
            "DEJA_DATA_DIR": str(state / "data"),
            "DEJA_CONFIG": str(config),
            "DEJA_LOG_LEVEL": "ERROR",
            "DEJA_ADMIN_TOKEN": ADMIN_TOKEN,
            "DEJA_METRICS_TOKEN": METRICS_TOKEN,
            "DEJA_LIMITS__TIMEOUT_S": str(DEADLINE_S),
            "DEJA_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
            "DEJA_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        }
    )
    try:
        yield Served(url=url, pid=process.pid)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        yield http


def rss_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_s(pid: int) -> float:
    """The CPU time the process has used, user and system, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ledger_rows(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> list[dict[str, Any]]:
    async with transaction(sessionmaker, system=True) as session:
        result = await session.execute(
            text(
                "SELECT request_id, cache_status, http_status, prompt_tokens, completion_tokens, cost_usd "
                "FROM ledger WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return [dict(row._mapping) for row in result]


async def booked_soon(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The tenant's rows once there are any (a stream left by its client is booked in the background)."""
    for _ in range(75):
        if rows := await ledger_rows(sessionmaker, tenant_id):
            return rows
        await asyncio.sleep(0.2)
    return []


def assert_problem(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.text[:300]
        body = response.json()
        assert body["status"] == response.status_code
        assert body["detail"]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": [value]}
    return value


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    -(10**12),
    10**30,
    1e30,
    -1e30,
    2**63,
    1.5,
    "",
    "x" * 300,
    "x" * 200_000,
    "\u200b\u200c\u2060\ufeff\u00ad",
    "раураl",  # Cyrillic look-alikes of Latin letters
    "\u202eevil",
    [],
    ["a"] * 5000,
    {},
    {"nested": nested(40)},
]


def mutations(base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in list(base):
        for value in HOSTILE_VALUES:
            yield f"{field}={str(value)[:20]!r}", {**base, field: value}
    for value in HOSTILE_VALUES[:12]:
        yield f"extra={str(value)[:20]!r}", {**base, "zz_unknown": value}


CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 50,
    "temperature": 0.5,
    "n": 1,
    "stream": False,
    "stream_options": {"include_usage": True},
    "cache": {"ttl": 60},
    "top_p": 1,
    "seed": 1,
    "stop": ["\n\n"],
}
NATIVE = {
    "input": "What is the capital of Spain?",
    "model": "gpt-4o-mini",
    "priority": 5,
    "metadata": {"k": "v"},
}
LOOKUP = {
    "prompt": "What is the capital of Italy?",
    "model": "gpt-4o-mini",
    "namespace": "",
    "threshold": 0.9,
}
ENTRY = {
    "prompt": "What is the capital of Peru?",
    "model": "gpt-4o-mini",
    "response": "Lima.",
    "namespace": "",
    "ttl_seconds": 60,
}
FEEDBACK = {"entry_id": str(uuid.uuid4()), "correct": False}


async def test_every_field_of_every_body_answers_a_problem_never_a_5xx_and_books_every_chat_request(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant: TenantKey = await make_tenant("hostile")
    chat_ids: list[str] = []
    for path, base in [
        ("/v1/chat/completions", CHAT),
        ("/v1/requests", NATIVE),
        ("/v1/cache/lookup", LOOKUP),
        ("/v1/cache/entries", ENTRY),
        ("/v1/cache/feedback", FEEDBACK),
    ]:
        for name, body in mutations(base):
            response = await client.post(path, headers=tenant.headers, json=body)
            assert response.status_code < 500, (path, name, response.status_code, response.text[:300])
            assert_problem(response)
            # A body refused at the door (400: unreadable, too deep, off the native schema) never
            # reached the pipeline; every other chat request did, and is booked.
            if path in ("/v1/chat/completions", "/v1/requests") and response.status_code != 400:
                chat_ids.append(response.headers["x-request-id"])
    # Messages themselves: wrong shapes, roles, contents.
    for messages in [
        [],
        [{"role": "user"}],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": [{"type": "text", "text": nested(50)}]}],
        [{"role": "user", "content": "hi"}] * 1001,
        "hello",
    ]:
        response = await client.post(
            "/v1/chat/completions", headers=tenant.headers, json={**CHAT, "messages": messages}
        )
        assert 400 <= response.status_code < 500, (
            messages if len(str(messages)) < 200 else "...",
            response.text,
        )
        assert_problem(response)
        if response.status_code != 400:
            chat_ids.append(response.headers["x-request-id"])

    # Exactly one row per chat request that reached the tenant's pipeline, whatever it said.
    booked = [row["request_id"] for row in await ledger_rows(sessionmaker, tenant.tenant_id)]
    assert sorted(booked) == sorted(chat_ids)


async def test_bodies_no_decoder_can_take_are_problems(client: httpx.AsyncClient, make_tenant) -> None:
    tenant: TenantKey = await make_tenant("hostile")
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for path in (
        "/v1/chat/completions",
        "/v1/requests",
        "/v1/cache/lookup",
        "/v1/cache/entries",
        "/admin/tenants",
    ):
        for raw in [
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caf\xe9"}]}',  # Latin-1, not UTF-8
            b"\xff\xfe{}",
            b"[" * 1000 + b"]" * 1000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "nul \\u0000 and \\ud800"}]}',
            b'{"model": 1e999}',
            b"not json at all",
            b"",
        ]:
            auth = ADMIN_HEADERS if path.startswith("/admin") else headers
            response = await client.post(
                path, headers={**auth, "Content-Type": "application/json"}, content=raw
            )
            assert 400 <= response.status_code < 500, (
                path,
                raw[:40],
                response.status_code,
                response.text[:200],
            )
            assert_problem(response)
    # A compressed body is named as such (it was "not valid UTF-8 (byte 1)").
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}
    for encoding, packed in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        response = await client.post(
            "/v1/chat/completions",
            headers={**headers, "Content-Encoding": encoding},
            content=packed(json.dumps(body).encode()),
        )
        assert response.status_code == 415, response.text[:200]
        assert encoding in response.json()["detail"]
    # An unpaired surrogate is named as such, wherever it is, not as a truncated body.
    for escaped in ("\\ud800", "\\udc00x", "x\\ud83d", "\\udfff\\ud800"):
        raw = f'{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "a {escaped}"}}]}}'
        response = await client.post("/v1/chat/completions", headers=headers, content=raw.encode())
        assert response.status_code == 422, (escaped, response.text[:200])
        assert "surrogates" in response.json()["detail"]


async def test_every_header_with_hostile_bytes_is_a_problem_never_a_5xx(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant: TenantKey = await make_tenant("hostile")
    chat_ids: list[str] = []
    bad_values = [
        b"\xff\xfe\x80",
        b"x" * 8000,
        b"-1",
        b"1e12",
        b"1000000000000",
        b"\xe2\x80\x8b",
        b"NaN",
        b"9" * 5000,
        b"\xb2\xb3",  # superscript digits in Latin-1: digits to str.isdigit(), not to int()
        b"\xef\xbc\x91",  # a full-width "1" in UTF-8
    ]
    header_names = [
        "X-Request-Id",
        "X-Client-Request-Id",
        "X-Cache-TTL",
        "X-Cache-Namespace",
        "X-Cache-Threshold",
        "Cache-Control",
        "X-Priority",
        "Authorization",
    ]
    for name in header_names:
        for value in bad_values:
            headers = [
                (k.encode(), v.encode()) for k, v in tenant.headers.items() if k.lower() != name.lower()
            ]
            headers.append((name.encode(), value))
            for method, path, body in [
                ("POST", "/v1/chat/completions", CHAT),
                ("POST", "/v1/requests", NATIVE),
                ("GET", "/v1/usage", None),
                ("GET", "/health", None),
            ]:
                response = await client.request(
                    method, path, headers=headers, content=json.dumps(body).encode() if body else None
                )
                assert response.status_code < 500, (
                    name,
                    value[:20],
                    path,
                    response.status_code,
                    response.text[:200],
                )
                assert_problem(response)
                assert len(response.headers["x-request-id"]) == 32
                if path.startswith("/v1/") and method == "POST" and response.status_code != 401:
                    chat_ids.append(response.headers["x-request-id"])
    # Every chat request its tenant sent is booked once, whatever its headers said.
    booked = [row["request_id"] for row in await ledger_rows(sessionmaker, tenant.tenant_id)]
    assert sorted(booked) == sorted(chat_ids)
    # Query strings and path parameters too.
    for path in [
        "/v1/cache/entries/not-a-uuid",
        "/v1/cache/entries/" + "9" * 5000,
        "/v1/usage?period=%ff%fe",
        "/v1/cache/entries/%00",
        "/admin/tenants?limit=-1",
        "/admin/tenants?limit=1e30",
    ]:
        auth = ADMIN_HEADERS if path.startswith("/admin") else tenant.headers
        response = await client.get(path, headers=auth)
        assert_problem(response)


@pytest.mark.parametrize("model", [MIDSTREAM, UNFINISHED, MISSHAPEN])
async def test_a_stream_cut_by_the_upstream_is_booked_for_what_it_delivered_and_never_served_again(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession], model: str
) -> None:
    """A stream that breaks off with an error event, whose body just ends before any choice
    says why (no finish_reason), or that sends a piece of another shape: the client gets an
    error event, not a made-up [DONE]; the request is booked as a 502 at what was delivered;
    and the cut answer is not stored, so the same request asks the model again. The clean end
    used to be stored and served whole; the piece of another shape crashed the relay, the
    connection cut with no event and the row blaming the client (499)."""
    tenant: TenantKey = await make_tenant("stream")
    received: list[str] = []
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me a story"}]}
    async with client.stream(
        "POST", "/v1/chat/completions", headers=tenant.headers, json=body | {"stream": True}
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received.append(line[6:])
    delivered = [json.loads(r) for r in received if r != "[DONE]"]
    assert any(
        (c.get("choices") or [{}])[0].get("delta", {}).get("content") for c in delivered if "choices" in c
    )
    assert "error" in delivered[-1]
    assert "[DONE]" not in received
    [row] = await ledger_rows(sessionmaker, tenant.tenant_id)
    assert row["request_id"] == request_id
    assert row["completion_tokens"] > 0, row  # never free: counted from the delivered text
    assert row["cost_usd"] > 0, row
    assert row["http_status"] == 502
    again = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert again.headers.get("x-cache") != "HIT", again.text[:300]


async def test_what_a_provider_counts_is_booked_within_what_the_request_can_use(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A provider that says a 50-token answer used 10**12 tokens each way used to be booked at
    2**31 - 1 tokens ($1,610 on gpt-4o-mini), and every hit on the stored answer booked as much
    saved; one that counts the prompt only had its answer booked free."""
    tenant: TenantKey = await make_tenant("counts")
    body = {
        "model": OVERCOUNTED,
        "messages": [{"role": "user", "content": "Name three rivers"}],
        "max_tokens": 50,
    }
    for _ in range(2):  # a miss, then a hit on what it stored
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
        assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "HIT"
    half = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": HALFCOUNTED, "messages": [{"role": "user", "content": "Name three lakes"}]},
    )
    assert half.status_code == 200, half.text
    await asyncio.sleep(0.5)  # hits are booked just after the response
    async with transaction(sessionmaker, system=True) as session:
        rows = {
            (row.requested_model, row.cache_status): row
            for row in await session.execute(
                text(
                    "SELECT requested_model, cache_status, prompt_tokens, completion_tokens, cost_usd, "
                    "avoided_cost_usd, metadata FROM ledger WHERE tenant_id = :t"
                ),
                {"t": tenant.tenant_id},
            )
        }
    miss, hit = rows[(OVERCOUNTED, "miss")], rows[(OVERCOUNTED, "hit")]
    assert miss.completion_tokens == 50  # its max_tokens
    assert miss.prompt_tokens <= 200_000  # the prompt limit
    assert miss.cost_usd < Decimal("0.05"), miss.cost_usd
    assert miss.metadata["usage_capped"] == {"prompt_tokens": 2**31 - 1, "completion_tokens": 2**31 - 1}
    assert hit.avoided_cost_usd <= miss.cost_usd
    halfcounted = rows[(HALFCOUNTED, "miss")]
    assert halfcounted.prompt_tokens > 0
    assert halfcounted.completion_tokens > 0  # counted from the text it delivered


async def test_a_stream_the_client_abandons_is_booked_and_its_reservation_released(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant: TenantKey = await make_tenant("stream")
    async with client.stream(
        "POST",
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": LONG, "messages": [{"role": "user", "content": "Write at length"}], "stream": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = 0
        async for line in response.aiter_lines():
            chunks += line.startswith("data: ")
            if chunks >= 5:
                break  # the client goes away mid-answer
    [row] = await booked_soon(sessionmaker, tenant.tenant_id)
    assert row["request_id"] == request_id
    assert row["http_status"] == 499
    assert row["completion_tokens"] > 0, row
    assert row["cost_usd"] > 0, row
    usage = (await client.get("/v1/usage", headers=tenant.headers)).json()
    day = next(p for p in usage["periods"] if p["period"] == "day")
    assert day["reserved_tokens"] == 0
    assert day["tokens"] == row["prompt_tokens"] + row["completion_tokens"]


async def test_a_stream_left_after_its_visible_answer_is_booked_for_what_the_provider_counted(
    client: httpx.AsyncClient,
    fake_model: FakeLLMServer,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A reasoning model bills thousands of tokens the stream never shows; only its last chunk
    counts them. A client that read the first piece and left was booked for that piece, and a
    cost quota saw a sliver of what the provider billed, as often as the client liked. The rest
    is now read without the client, booked at the provider's count, and stored."""
    tenant: TenantKey = await make_tenant("reasoning-left")
    question = [{"role": "user", "content": "Say hi"}]
    async with client.stream(
        "POST",
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": REASONING, "messages": question, "stream": True},
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"content"' in line:
                break  # the visible answer has begun: the client goes away
    [row] = await booked_soon(sessionmaker, tenant.tenant_id)
    async with httpx.AsyncClient(base_url=fake_model.base_url) as model:
        counted = (
            await model.post("/chat/completions", json={"model": REASONING, "messages": question})
        ).json()
    assert counted["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2000
    assert (row["http_status"], row["cache_status"]) == (499, "miss")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        counted["usage"]["prompt_tokens"],
        counted["usage"]["completion_tokens"],
    )
    assert row["cost_usd"] >= Decimal("0.0012"), row  # 2,000 tokens of gpt-4o-mini's output at least
    usage = (await client.get("/v1/usage", headers=tenant.headers)).json()
    day = next(p for p in usage["periods"] if p["period"] == "day")
    assert Decimal(day["cost_usd"]) == row["cost_usd"]
    assert day["reserved_tokens"] == 0
    again = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": REASONING, "messages": question}
    )
    assert again.headers["x-cache"] == "HIT"


async def test_a_request_waiting_on_a_stream_whose_client_leaves_asks_the_model_itself(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """An identical request that arrives while a streamed miss is in flight waits for that call
    instead of making its own. When the stream's client leaves, the call is cut for it, not
    failed: the waiting request makes its own call, where it got a 502 before."""
    tenant: TenantKey = await make_tenant("coalesced-left")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Explain request coalescing."}]}
    async with client.stream(
        "POST", "/v1/chat/completions", headers=tenant.headers, json=body | {"stream": True}
    ) as leader:
        assert leader.headers["x-cache"] == "MISS"
        follower = asyncio.create_task(client.post("/v1/chat/completions", headers=tenant.headers, json=body))
        await asyncio.sleep(0.3)  # it joins the call in flight (the stream sends a piece every 250 ms)
        pieces = 0
        async for line in leader.aiter_lines():
            pieces += line.startswith("data: ")
            if pieces >= 2:
                break  # the stream's client goes away mid-answer
        assert not follower.done()  # it waits on the stream's call (its own would be done by now)
    answered = await follower
    assert answered.status_code == 200, answered.text[:300]
    assert answered.json()["choices"][0]["message"]["content"].startswith(
        "Answer to: Explain request coalescing."
    )
    for _ in range(75):
        rows = {row["request_id"]: row for row in await ledger_rows(sessionmaker, tenant.tenant_id)}
        if len(rows) == 2:
            break
        await asyncio.sleep(0.2)
    assert rows[leader.headers["x-request-id"]]["http_status"] == 499
    own = rows[answered.headers["x-request-id"]]
    assert (own["cache_status"], own["http_status"]) == ("miss", 200)
    assert own["cost_usd"] > 0


async def test_cache_controls_out_of_range_are_refused_before_the_model_is_called(
    client: httpx.AsyncClient, make_tenant, fake_model: FakeLLMServer
) -> None:
    tenant: TenantKey = await make_tenant("stream")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Refuse me"}], "stream": True}

    def calls() -> int:
        return int(httpx.get(f"{fake_model.root_url}/_fake/stats").json()["total"])

    before = calls()
    for headers in [
        {"X-Cache-TTL": "1000000000000"},
        {"X-Cache-TTL": "-5"},
        {"Cache-Control": "max-age=1e9"},
    ]:
        response = await client.post("/v1/chat/completions", headers={**tenant.headers, **headers}, json=body)
        assert response.status_code == 422, response.text
        assert_problem(response)
    for model in ["m" * 201, "m" * 10_000]:
        response = await client.post(
            "/v1/chat/completions", headers=tenant.headers, json={**body, "model": model}
        )
        assert response.status_code == 422
    # A namespace is text: 0, false or [] used to be taken as the default namespace.
    for namespace in [0, False, []]:
        response = await client.post(
            "/v1/chat/completions", headers=tenant.headers, json={**body, "cache": {"namespace": namespace}}
        )
        assert response.status_code == 422, (namespace, response.text)
    assert calls() == before


async def test_metrics_need_the_token_and_name_only_configured_models(
    client: httpx.AsyncClient, make_tenant
) -> None:
    tenant: TenantKey = await make_tenant("metrics")
    secret = f"secret-model-{uuid.uuid4().hex[:8]}"
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": secret, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20},
    )
    assert response.status_code == 200
    refused = await client.get("/metrics")
    assert refused.status_code == 401
    assert_problem(refused)
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert secret not in scraped.text
    assert 'model="other"' in scraped.text
    assert 'model="gpt-4o-mini"' in scraped.text


async def test_memory_stays_bounded_for_long_prompts_stored_and_looked_up(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    tenant: TenantKey = await make_tenant("memory")

    def ask(prompt: str) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "max_tokens": 20}

    # Warm up every model once, so their one-time allocations are not counted as growth.
    for prompt in ["warm up the models", "warm up the models, please"]:
        await client.post("/v1/chat/completions", headers=tenant.headers, json=ask(prompt))
    baseline, _ = rss_mb(served.pid)
    stored = "lorem ipsum dolor sit amet " * 2000
    asked = [
        "other lorem ipsum dolor sit amet " * 1700,
        "yet another lorem ipsum dolor sit " * 4000,
        "\u200b".join("ipsum lorem sit dolor amet " * 3000),  # long and invisible-laden
    ]
    for prompt in [stored, *asked]:
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json=ask(prompt))
        assert response.status_code in (200, 413), response.text[:300]
        lookup = await client.post(
            "/v1/cache/lookup", headers=tenant.headers, json={"prompt": prompt, "model": "gpt-4o-mini"}
        )
        assert lookup.status_code == 200
    now, peak = rss_mb(served.pid)
    print(f"server RSS: baseline {baseline:.0f} MB, after {now:.0f} MB, peak {peak:.0f} MB")
    assert peak - baseline < 400, (baseline, now, peak)


async def test_a_body_of_tiny_content_parts_is_refused_before_its_parts_are_read(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    """Sixty-nine thousand parts of a few bytes fit in a MiB; each was estimated and sized on its
    own before the prompt was found too long, and one such request held the server for seconds
    of CPU and hundreds of MB before its 413. Now refused before its parts are read."""
    tenant: TenantKey = await make_tenant("parts")
    tiny = [{"type": "text", "text": "q"}] + [{"a": [[[[]]]]}] * 69_000
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": tiny}]}, separators=(",", ":")
    )
    assert len(body) < 1_048_576
    headers = {**tenant.headers, "Content-Type": "application/json"}
    before = cpu_s(served.pid)
    chat = await client.post("/v1/chat/completions", headers=headers, content=body)
    lookup = await client.post("/v1/cache/lookup", headers=headers, content=body)
    used = cpu_s(served.pid) - before
    for refused in (chat, lookup):
        assert refused.status_code == 422, refused.text[:300]
        assert_problem(refused)
        assert "At most 1000 content parts" in refused.json()["detail"]
    print(f"server CPU for two bodies of 69,000 content parts: {used:.2f} s")
    assert used < 1.0, used
    # A thousand parts, spread over the messages, are still a request like any other.
    messages = [
        {"role": "user", "content": [{"type": "text", "text": f"part {i} of a long conversation"}] * 100}
        for i in range(10)
    ]
    answered = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": "gpt-4o-mini", "messages": messages}
    )
    assert answered.status_code == 200, answered.text[:300]


async def test_a_body_that_trickles_in_is_cut_off_at_its_deadline(served: Served, make_tenant) -> None:
    """Headers, then a tenth of the body, then nothing: the server held the connection, and what
    had come of the body, for as long as the client liked (hundreds of such clients, a MiB each)."""
    tenant: TenantKey = await make_tenant("trickle")
    host, port = served.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 10_000}]})
    writer.write(
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {tenant.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body[:1000]}"
        ).encode()
    )
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), timeout=BODY_TIMEOUT_S + 10)  # to the connection's end
    waited = time.monotonic() - started
    writer.close()
    head, _, payload = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 408"), answer[:300]
    assert PROBLEM in head.lower()
    assert "did not arrive within 2 s" in json.loads(payload)["detail"]
    assert BODY_TIMEOUT_S - 0.5 < waited < BODY_TIMEOUT_S + 5, waited


async def test_connections_past_the_limit_are_turned_away_at_once(served: Served) -> None:
    """Each connection a client opens and leaves idle is held; past DEJA_MAX_CONNECTIONS the next
    request is answered 503 at once, and served again once they close."""
    host, port = served.url.removeprefix("http://").split(":")
    idle = [await asyncio.open_connection(host, int(port)) for _ in range(MAX_CONNECTIONS)]
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as other:
            turned_away = await other.get("/health")
        assert turned_away.status_code == 503, turned_away.text[:200]
    finally:
        for _, writer in idle:
            writer.close()
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as other:
        assert (await other.get("/health")).status_code == 200


async def test_prompts_of_combining_marks_cost_the_server_what_their_length_does(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    # Unicode orders each run of combining marks, and CPython's NFKC does it in quadratic time:
    # this prompt (240 KB) held the server's event loop for 15 s of CPU, every tenant waiting.
    tenant: TenantKey = await make_tenant("marks")
    before = cpu_s(served.pid)
    for prompt in ["Explain this: a" + "\u0301\u0316" * 60_000, "\u0f73" * 80_000 + " what is this?"]:
        response = await client.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "max_tokens": 5},
        )
        assert response.status_code == 200, response.text[:300]
        lookup = await client.post(
            "/v1/cache/lookup", headers=tenant.headers, json={"prompt": prompt, "model": "gpt-4o-mini"}
        )
        assert lookup.status_code == 200, lookup.text[:300]
    used = cpu_s(served.pid) - before
    print(f"server CPU for two such prompts, each sent and looked up: {used:.2f} s")
    assert used < 6, used


async def test_a_prompt_that_compatibility_forms_blow_up_is_refused_before_it_is_folded(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    # U+FDFA is 18 characters once NFKC spells it out: 1 MB of it took 1.8 s of the event loop's
    # CPU to match. Ligatures in ordinary text ("ﬁne") still match as ever.
    tenant: TenantKey = await make_tenant("ligatures")
    before = cpu_s(served.pid)
    for path, body in [
        (
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\ufdfa" * 300_000}]},
        ),
        ("/v1/cache/lookup", {"model": "gpt-4o-mini", "prompt": "\ufdfa" * 300_000}),
    ]:
        refused = await client.post(path, headers=tenant.headers, json=body)
        assert refused.status_code == 413, refused.text[:300]
        assert_problem(refused)
        assert "NFKC" in refused.json()["detail"]
    used = cpu_s(served.pid) - before
    print(f"server CPU for two such requests: {used:.2f} s")
    assert used < 1.5, used
    fine = await client.post(
        "/v1/cache/lookup",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "prompt": "Is the \ufb01ne print \ufdfa on the \ufb02yer?"},
    )
    assert fine.status_code == 200


async def test_a_file_of_stream_starts_without_ends_costs_the_server_what_its_length_does(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    """A "PDF" of 760 KB repeating `/Type/ObjStm stream` without an `endstream` made the page
    count search the rest of the file from every start: 6 to 9 s of CPU for one request, four
    times as much for each doubling of its size. Its object streams are read and inflated within
    the request's budget whatever they hold."""
    tenant: TenantKey = await make_tenant("pdf-starts")
    starts = b"/Type/ObjStm stream\nxx" * (760_000 // 22)
    # Object streams that inflate to 300 MB, past the 4 MiB a request may inflate: the first
    # spends the budget, the second would inflate without a limit at a budget of exactly 0.
    spent = zlib.compress(b"\0" * (4 * 1024 * 1024 - 300_000), 9)
    zeros = zlib.compressobj(9)
    unended = b"".join(zeros.compress(b"\0" * (1 << 20)) for _ in range(300))[: 300_000 + 1000]
    bomb = (
        b"%PDF-1.5\n1 0 obj\n<< /Type /ObjStm /Filter /FlateDecode >>\nstream\n" + spent + b"\nendstream\n"
        b"2 0 obj\n<< /Type /ObjStm /Filter /FlateDecode >>\nstream\n" + unended
    )
    peak = rss_mb(served.pid)[1]
    for raw in (starts, bomb):
        data = "data:application/pdf;base64," + base64.b64encode(raw).decode()
        part = {"type": "file", "file": {"filename": "a.pdf", "file_data": data}}
        before = cpu_s(served.pid)
        response = await client.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [part]}], "max_tokens": 5},
        )
        used = cpu_s(served.pid) - before
        assert_problem(response)
        print(f"server CPU for one such request: {used:.2f} s; peak memory {rss_mb(served.pid)[1]:.0f} MB")
        assert used < 2.0, used
    assert rss_mb(served.pid)[1] - peak < 200  # inflated without a limit, it was 600 MB more


async def test_a_namespace_in_a_header_is_the_namespace_of_that_name_in_the_body(
    client: httpx.AsyncClient, make_tenant
) -> None:
    """Header bytes are read as Latin-1: "café" sent as UTF-8 was the namespace "cafÃ©", apart
    from the body's "café" and out of reach of a purge that names it."""
    tenant: TenantKey = await make_tenant("namespaces")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Which rooms are free today?"}]}
    stored = await client.post(
        "/v1/chat/completions",
        headers={**tenant.headers, "X-Cache-Namespace": "café".encode()},
        json=body,
    )
    assert stored.headers["x-cache"] == "MISS"
    await asyncio.sleep(0.3)  # stored just after the answer is sent
    again = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json={**body, "cache": {"namespace": "café"}}
    )
    assert (again.headers["x-cache"], again.headers["x-cache-entry"]) == (
        "HIT",
        stored.headers["x-cache-entry"],
    )
    purged = await client.delete(
        f"/admin/tenants/{tenant.tenant_id}/cache", params={"namespace": "café"}, headers=ADMIN_HEADERS
    )
    assert purged.json()["deleted"] == 1
    garbled = await client.post(
        "/v1/chat/completions",
        headers={**tenant.headers, "X-Cache-Namespace": b"caf\xe9"},  # Latin-1, not UTF-8
        json=body,
    )
    assert garbled.status_code == 422
    assert "UTF-8" in garbled.json()["detail"]


async def test_a_namespace_is_one_namespace_whatever_its_spaces_and_unicode_form(
    client: httpx.AsyncClient, make_tenant
) -> None:
    """ "café " typed with a trailing space, or with its accent as a separate mark, was a namespace
    of its own: no lookup under "café" found its entries and no purge of "café" removed them."""
    tenant: TenantKey = await make_tenant("namespace-forms")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Who approves travel?"}]}
    decomposed = unicodedata.normalize("NFD", "café")
    stored = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={**body, "cache": {"namespace": f"{decomposed} "}},
    )
    assert stored.headers["x-cache"] == "MISS"
    await asyncio.sleep(0.3)  # stored just after the answer is sent
    again = await client.post(
        "/v1/chat/completions", headers={**tenant.headers, "X-Cache-Namespace": "café".encode()}, json=body
    )
    assert again.headers["x-cache"] == "HIT"
    looked_up = await client.post(
        "/v1/cache/lookup",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "prompt": "Who approves travel?", "namespace": " café"},
    )
    assert looked_up.json()["hit"] is True, looked_up.text
    purged = await client.delete(
        f"/admin/tenants/{tenant.tenant_id}/cache", params={"namespace": "café  "}, headers=ADMIN_HEADERS
    )
    assert purged.json()["deleted"] == 1
    # A name that NFC makes longer than a namespace may be ("\u0958" composes to two characters) is
    # refused on every path, before it reaches a column of 200 characters; so is one that reads
    # as blank, or as another namespace, in the dashboard (controls, a right-to-left override).
    for grown in ("\u0958" * 150, "\x01\x02", "team-\u202eb"):
        for response in (
            await client.post(
                "/v1/cache/entries",
                headers=tenant.headers,
                json={
                    "model": "gpt-4o-mini",
                    "prompt": "Who approves travel?",
                    "response": "Ana",
                    "namespace": grown,
                },
            ),
            await client.post(
                "/v1/chat/completions", headers=tenant.headers, json={**body, "cache": {"namespace": grown}}
            ),
            await client.delete(
                f"/admin/tenants/{tenant.tenant_id}/cache", params={"namespace": grown}, headers=ADMIN_HEADERS
            ),
        ):
            assert response.status_code == 422, response.text
            assert_problem(response)


async def test_a_body_of_unclosed_escaped_quotes_costs_the_server_what_its_length_does(
    client: httpx.AsyncClient, served: Served
) -> None:
    # Checked before authentication on every route with a body: a string that never closes,
    # made of escaped quotes, was scanned again from each of them (32 KB held the loop for 3 s,
    # 1 MiB would hold it for most of an hour).
    before = cpu_s(served.pid)
    for path in ("/v1/chat/completions", "/v1/cache/lookup", "/admin/prices"):
        for body in [
            b"[" * 65 + b'"' + b'\\"' * 400_000,
            b'{"model": "m", "messages": "' + b'[\\"' * 250_000 + b"\\",
        ]:
            response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (path, response.text[:200])
            assert_problem(response)
    used = cpu_s(served.pid) - before
    print(f"server CPU for six bodies of 0.8 MB of escaped quotes: {used:.2f} s")
    assert used < 3, used


async def test_a_null_max_completion_tokens_leaves_max_tokens_the_limit(
    client: httpx.AsyncClient, make_tenant
) -> None:
    """An answer cut at five tokens is never served to a request that allows a long one."""
    tenant: TenantKey = await make_tenant("null-limit")

    async def ask(**limits: int | None) -> httpx.Response:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write an essay on Rome."}]}
        return await client.post("/v1/chat/completions", headers=tenant.headers, json=body | limits)

    cut = await ask(max_tokens=5, max_completion_tokens=None)
    assert cut.status_code == 200
    assert cut.json()["choices"][0]["finish_reason"] == "length"
    unlimited = await ask()
    assert unlimited.headers["x-cache"].startswith("MISS"), unlimited.headers["x-cache"]
    assert (await ask(max_tokens=5)).headers["x-cache"].startswith("HIT")


async def test_usage_is_counted_for_every_tenant_and_a_quota_set_later_sees_it(
    client: httpx.AsyncClient, make_tenant
) -> None:
    tenant: TenantKey = await make_tenant("usage")
    for i in range(2):
        response = await client.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Count me {i}"}],
                "max_tokens": 30,
            },
        )
        assert response.status_code == 200
    day = next(
        p
        for p in (await client.get("/v1/usage", headers=tenant.headers)).json()["periods"]
        if p["period"] == "day"
    )
    assert day["requests"] == 2
    assert day["tokens"] > 0
    assert "E" not in day["cost_usd"]
    assert Decimal(day["cost_usd"]) > 0
    assert day["limits"] == {"requests": None, "tokens": None, "cost_usd": None}
    put = await client.put(
        f"/admin/tenants/{tenant.tenant_id}/quotas/day", headers=ADMIN_HEADERS, json={"max_requests": 2}
    )
    assert put.status_code in (200, 201), put.text
    refused = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "One more"}],
            "max_tokens": 30,
        },
    )
    assert refused.status_code == 429
    assert "daily requests quota" in refused.json()["detail"]


async def test_a_request_past_its_deadline_is_a_504_booked_for_the_call_it_gave_up_on(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The call in flight at the deadline may be answered, and billed, all the same: booked at
    its prompt's estimate (it was booked at $0), its reservation given back."""
    tenant: TenantKey = await make_tenant("deadline")
    started = time.monotonic()
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": HANG, "messages": [{"role": "user", "content": "Never mind"}], "max_tokens": 10},
    )
    assert response.status_code == 504
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "deadline" in response.json()["detail"]
    assert time.monotonic() - started < DEADLINE_S + 3
    [row] = await ledger_rows(sessionmaker, tenant.tenant_id)
    assert (row["request_id"], row["cache_status"], row["http_status"]) == (
        response.headers["x-request-id"],
        "error",
        504,
    )
    day = next(
        p
        for p in (await client.get("/v1/usage", headers=tenant.headers)).json()["periods"]
        if p["period"] == "day"
    )
    # Given back, and counted once: the booking at the deadline is the request's only one.
    assert (day["reserved_tokens"], day["requests"]) == (0, 1)
    assert row["prompt_tokens"] > 0, row
    assert row["completion_tokens"] == 0, row
    assert row["cost_usd"] > 0, row
    assert day["tokens"] == row["prompt_tokens"]


async def test_a_call_given_up_on_before_a_fallback_answered_is_booked_beside_the_answer(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The primary took longer than its upstream's timeout (1 s) and the fallback answered: the
    provider may finish the first call and bill it, so its prompt's estimate is booked with the
    answer (the row carried the fallback's answer alone), and a tenant's quota counts it."""
    tenant: TenantKey = await make_tenant("gave-up-on-primary")
    question = {"model": HANG_THEN_ANSWER, "messages": [{"role": "user", "content": "Name a prime"}]}
    answered = await client.post("/v1/chat/completions", headers=tenant.headers, json=question)
    assert answered.status_code == 200, answered.text[:300]
    answer_usage = answered.json()["usage"]
    [row] = await booked_soon(sessionmaker, tenant.tenant_id)
    assert (row["cache_status"], row["http_status"]) == ("miss", 200)
    # The answer's own tokens, and the first call's prompt again.
    assert row["completion_tokens"] == answer_usage["completion_tokens"]
    assert row["prompt_tokens"] > answer_usage["prompt_tokens"], (row, answer_usage)


async def test_a_request_waiting_on_one_past_its_deadline_keeps_its_own_deadline(
    client: httpx.AsyncClient, make_tenant, fake_model: FakeLLMServer
) -> None:
    """An identical request that arrives while a call is in flight waits on it. The first
    request's deadline is its own: when it passes, the one waiting asks the model itself and
    answers by its own deadline, where it got the first one's 504 at that moment before."""
    tenant: TenantKey = await make_tenant("deadline-follower")
    body = {"model": HANG, "messages": [{"role": "user", "content": "Wait for me"}], "max_tokens": 10}

    def calls() -> int:
        return int(httpx.get(f"{fake_model.root_url}/_fake/stats").json()["total"])

    async def ask() -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
        return response, time.monotonic() - started

    before = calls()
    first = asyncio.create_task(ask())
    await asyncio.sleep(1.5)
    (leader, _), (follower, waited) = await asyncio.gather(first, ask())
    assert (leader.status_code, follower.status_code) == (504, 504)
    assert waited >= DEADLINE_S - 0.5, waited  # its own deadline, not the first request's (2.5 s)
    assert calls() - before == 2


async def test_a_stream_past_its_deadline_is_ended_and_booked_for_what_it_delivered(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant: TenantKey = await make_tenant("deadline")
    events: list[dict[str, Any]] = []
    async with client.stream(
        "POST",
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": LONG, "messages": [{"role": "user", "content": "Go on and on"}], "stream": True},
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    assert events[-1]["error"]["code"] == "upstream-timeout"  # a slug, as every other error's code
    assert events[-1]["error"]["status"] == 504
    [row] = await ledger_rows(sessionmaker, tenant.tenant_id)
    assert row["http_status"] == 504
    assert row["completion_tokens"] > 0
    assert row["cost_usd"] > 0


async def test_a_stored_answer_that_cannot_be_replayed_is_refused_when_stored(
    client: httpx.AsyncClient, make_tenant
) -> None:
    tenant: TenantKey = await make_tenant("entries")
    prompt = "What does the stored answer say?"
    for response in [
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"index": "first", "message": {"content": "x"}}]},
        {"choices": [{"message": {"content": "x", "tool_calls": [1, 2]}}]},
        {"choices": [{"message": {"content": "x"}}], "model": 5},
        {"choices": []},
    ]:
        stored = await client.post(
            "/v1/cache/entries",
            headers=tenant.headers,
            json={"prompt": prompt, "model": "gpt-4o-mini", "response": response},
        )
        assert stored.status_code == 422, (response, stored.text)
        assert_problem(stored)

    # Usage no request could count is refused (a hit books it as savings), and so are counts that
    # are not whole numbers from 0 (a float, a negative count, a string); a stored answer replays,
    # streamed and not.
    def entry(usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": prompt,
            "model": "gpt-4o-mini",
            "response": {"choices": [{"message": {"content": "Yes."}}], "usage": usage},
        }

    refused = await client.post(
        "/v1/cache/entries", headers=tenant.headers, json=entry({"prompt_tokens": 1e30})
    )
    assert refused.status_code == 422, refused.text
    for odd in ({"prompt_tokens": 12.0}, {"completion_tokens": -3}, {"total_tokens": "many"}):
        refused = await client.post("/v1/cache/entries", headers=tenant.headers, json=entry(odd))
        assert refused.status_code == 422, (odd, refused.text)
    stored = await client.post(
        "/v1/cache/entries", headers=tenant.headers, json=entry({"prompt_tokens": 12, "completion_tokens": 3})
    )
    assert stored.status_code == 201, stored.text
    for stream in (False, True):
        replayed = await client.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": prompt}],
                "stream": stream,
            },
        )
        assert replayed.status_code == 200
        assert replayed.headers["x-cache"] == "HIT"


async def test_a_long_stored_answer_streams_whole_in_a_bounded_number_of_events(
    client: httpx.AsyncClient, served: Served, make_tenant
) -> None:
    # Replayed word by word, an answer of 520,000 words was 520,000 events and 114 MB of
    # stream: 12 s of the event loop's CPU for one free hit, repeatable at will.
    tenant: TenantKey = await make_tenant("long-answer")

    async def replayed(prompt: str, response: str | dict[str, Any]) -> tuple[httpx.Response, float]:
        """`response` stored for `prompt`, then a streamed hit on it, and the server's CPU for it."""
        stored = await client.post(
            "/v1/cache/entries",
            headers=tenant.headers,
            json={"prompt": prompt, "model": "gpt-4o-mini", "response": response},
        )
        assert stored.status_code == 201, stored.text[:300]
        before = cpu_s(served.pid)
        streamed = await client.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "stream": True},
        )
        return streamed, cpu_s(served.pid) - before

    answer = "a " * 300_000
    streamed, used = await replayed("Repeat the long answer, please.", answer)
    assert streamed.headers["x-cache"].startswith("HIT")
    events = [line[6:] for line in streamed.text.split("\n\n") if line.startswith("data: {")]
    content = "".join(json.loads(event)["choices"][0]["delta"].get("content") or "" for event in events)
    print(f"{len(events)} events, {len(streamed.content) / 1e6:.1f} MB, server CPU {used:.2f} s")
    assert content == answer
    assert len(events) <= 520
    # A short answer still streams a word at a time, as a model sends it.
    short, _ = await replayed("Say hello.", "Hello there, friend.")
    pieces = [
        json.loads(line[6:])["choices"][0]["delta"].get("content")
        for line in short.text.split("\n\n")
        if line.startswith("data: {")
    ]
    assert [piece for piece in pieces if piece] == ["Hello ", "there, ", "friend."]
    # Many choices (an upstream's answer to n=128): tests/unit/test_streaming.py.


async def test_an_empty_answer_the_provider_counted_is_booked_for_its_tokens(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A provider bills the prompt of an answer it sent empty (a content filter's, say): the
    request that got it is booked for those tokens, not at $0, whether it then failed or a
    fallback answered."""
    tenant: TenantKey = await make_tenant("empty-answers")

    async def ask(model: str, content: str, *, stream: bool = False) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 20}
        return await client.post(
            "/v1/chat/completions", headers=tenant.headers, json=body | {"stream": stream}
        )

    failed = await ask(EMPTY, "Describe the weather on Mars in detail.")
    assert failed.status_code == 502
    streamed = await ask(EMPTY, "Describe the weather on Mercury in detail.", stream=True)
    assert streamed.status_code == 502
    answered = await ask(EMPTY_THEN_ANSWER, "Describe the weather on Venus in detail.")
    assert answered.status_code == 200
    alone = await ask("gpt-4o-mini", "Describe the weather on Jupiter in detail.")
    assert alone.status_code == 200
    rejected = await ask(EMPTY_THEN_REJECTED, "Describe the weather on Saturn in detail.")
    assert rejected.status_code == 400
    for _ in range(75):  # misses are booked just after their answers
        rows = {row["request_id"]: row for row in await ledger_rows(sessionmaker, tenant.tenant_id)}
        if len(rows) == 5:
            break
        await asyncio.sleep(0.2)
    empty, empty_stream, both, one, then_rejected = (
        rows[response.headers["x-request-id"]] for response in (failed, streamed, answered, alone, rejected)
    )
    assert [row["cache_status"] for row in (empty, empty_stream, both, one, then_rejected)] == [
        "error",
        "error",
        "miss",
        "miss",
        "error",
    ]
    for row in (empty, empty_stream, then_rejected):
        assert row["prompt_tokens"] > 0
        assert row["cost_usd"] > 0
    # The fallback's answer, and the empty answer's prompt before it.
    assert both["prompt_tokens"] > one["prompt_tokens"]
    assert both["cost_usd"] > one["cost_usd"]
    # The answer's usage is its own; the row holds both.
    assert both["prompt_tokens"] > answered.json()["usage"]["prompt_tokens"]


async def test_the_native_call_that_failed_reports_what_the_provider_billed(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`POST /v1/requests` that fails after a provider billed an empty answer says, in its
    FAILED body, the tokens, cost and model the ledger booked for it, not 0."""
    tenant: TenantKey = await make_tenant("native-empty")
    failed = await client.post(
        "/v1/requests",
        headers=tenant.headers,
        json={"model": EMPTY, "input": "Describe the weather on Titan in detail."},
    )
    assert failed.status_code == 502, failed.text[:300]
    body = failed.json()
    assert body["status"] == "FAILED"
    [row] = [row for row in await ledger_rows(sessionmaker, tenant.tenant_id)]
    assert row["request_id"] == body["request_id"]
    assert (body["model_used"], body["tokens_used"]) == (
        EMPTY,
        row["prompt_tokens"] + row["completion_tokens"],
    )
    assert body["tokens_used"] > 0
    assert Decimal(body["cost_usd"]) == row["cost_usd"] > 0
    assert body["latency_ms"] > 0


async def test_an_empty_answer_the_provider_counted_is_booked_when_the_deadline_or_a_stale_answer_ends_the_request(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The billed empty answer of the primary is booked when the fallback then outlasts the
    request's deadline (504), streamed or not, and when an expired answer is served instead
    (stale-if-error): the provider's bill does not vanish with the request."""
    tenant: TenantKey = await make_tenant("empty-then-late")
    prompt = "Describe the weather on Neptune in detail."
    stored = await client.post(
        "/v1/cache/entries",
        headers=tenant.headers,
        json={"model": EMPTY, "prompt": prompt, "response": "Cold and windy.", "ttl_seconds": 1},
    )
    assert stored.status_code == 201, stored.text[:300]
    await asyncio.sleep(1.2)  # the entry has expired

    async def ask(model: str, content: str, *, stream: bool = False, stale: bool = False) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
        # A stored entry's scope has no output limit: the request for it sets none either.
        limit = {} if stale else {"max_tokens": 20}
        headers = tenant.headers | ({"Cache-Control": "stale-if-error=600"} if stale else {})
        return await client.post("/v1/chat/completions", headers=headers, json=body | limit)

    late, late_stream, stale = await asyncio.gather(
        ask(EMPTY_THEN_HANG, "Describe the weather on Uranus in detail."),
        ask(EMPTY_THEN_HANG, "Describe the weather on Pluto in detail.", stream=True),
        ask(EMPTY, prompt, stale=True),
    )
    assert (late.status_code, late_stream.status_code) == (504, 504)
    assert (stale.status_code, stale.headers.get("x-cache-stale")) == (200, "true"), stale.text[:300]
    assert stale.json()["choices"][0]["message"]["content"] == "Cold and windy."
    for _ in range(75):
        rows = {row["request_id"]: row for row in await ledger_rows(sessionmaker, tenant.tenant_id)}
        if len(rows) == 3:
            break
        await asyncio.sleep(0.2)
    booked = [rows[response.headers["x-request-id"]] for response in (late, late_stream, stale)]
    assert [row["cache_status"] for row in booked] == ["error", "error", "hit"]
    for row in booked:
        assert row["prompt_tokens"] > 0, row
        assert row["cost_usd"] > 0, row
    day = next(
        p
        for p in (await client.get("/v1/usage", headers=tenant.headers)).json()["periods"]
        if p["period"] == "day"
    )
    assert (day["reserved_tokens"], day["requests"]) == (0, 3)
    assert day["tokens"] == sum(row["prompt_tokens"] + row["completion_tokens"] for row in booked)


async def test_identical_requests_waiting_on_a_call_that_failed_are_served_the_stale_answer_too(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Three identical requests allowing stale-if-error while the model fails (given up on after
    1 s): the one that called was served the expired answer, the two that waited on its call got
    its 504. Each is served the expired answer; the call given up on is booked once."""
    tenant: TenantKey = await make_tenant("stale-followers")
    prompt = f"Which regions does the status page cover? {uuid.uuid4().hex}"
    stored = await client.post(
        "/v1/cache/entries",
        headers=tenant.headers,
        json={"model": HANG_ALONE, "prompt": prompt, "response": "EU and US.", "ttl_seconds": 1},
    )
    assert stored.status_code == 201, stored.text[:300]
    await asyncio.sleep(1.2)  # the entry has expired
    body = {"model": HANG_ALONE, "messages": [{"role": "user", "content": prompt}]}
    headers = tenant.headers | {"Cache-Control": "stale-if-error=600"}
    answers = await asyncio.gather(
        *(client.post("/v1/chat/completions", headers=headers, json=body) for _ in range(3))
    )
    for answer in answers:
        assert (answer.status_code, answer.headers.get("x-cache-stale")) == (200, "true"), answer.text[:300]
        assert answer.json()["choices"][0]["message"]["content"] == "EU and US."
    for _ in range(75):
        rows = await ledger_rows(sessionmaker, tenant.tenant_id)
        if len(rows) == 3:
            break
        await asyncio.sleep(0.2)
    assert sorted(row["cache_status"] for row in rows) == ["hit"] * 3
    # The call given up on is booked once, at its prompt's estimate, on the row of the request
    # that made it.
    assert sorted(row["prompt_tokens"] > 0 for row in rows) == [False, False, True], rows
    day = next(
        p
        for p in (await client.get("/v1/usage", headers=tenant.headers)).json()["periods"]
        if p["period"] == "day"
    )
    assert day["reserved_tokens"] == 0


async def test_a_hit_on_an_answer_a_route_got_saves_what_the_model_that_answered_costs(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Asked by a route's name ("team-chat", no price of its own), answered by gpt-4o-mini: the
    miss costs gpt-4o-mini's price, and each hit on its answer saved $0 in the ledger, which
    understated what the cache saves (analytics' savings, /admin/stats)."""
    tenant: TenantKey = await make_tenant("route-savings")
    body = {"model": TEAM_CHAT, "messages": [{"role": "user", "content": "Who runs payroll?"}]}
    first = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert first.headers["x-cache"] == "MISS", first.text[:300]
    [miss] = await booked_soon(sessionmaker, tenant.tenant_id)
    assert miss["cost_usd"] > 0, miss
    again = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert again.headers["x-cache"] == "HIT"
    for _ in range(50):
        rows = {row["request_id"]: row for row in await ledger_rows(sessionmaker, tenant.tenant_id)}
        if len(rows) == 2:
            break
        await asyncio.sleep(0.1)
    async with transaction(sessionmaker, system=True) as session:
        avoided = (
            await session.execute(
                text("SELECT avoided_cost_usd FROM ledger WHERE request_id = :r"),
                {"r": again.headers["x-request-id"]},
            )
        ).scalar_one()
    assert avoided == miss["cost_usd"]


async def test_a_cost_quota_reserves_what_the_dearest_model_of_the_route_may_cost(
    client: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A request for a cheap model whose route falls back to a dear one is reserved at the dear
    one's price: with `max_tokens` set, a cost quota is never overrun, whichever model answers.
    Reserved at the cheap model's price, such requests were served past the quota; a model with no
    price passed any cost quota at $0."""
    tenant: TenantKey = await make_tenant("dear-fallback")
    limit = await client.put(
        f"/admin/tenants/{tenant.tenant_id}/quotas/day",
        headers=ADMIN_HEADERS,
        json={"max_cost_usd": "0.0005"},
    )
    assert limit.status_code in (200, 201), limit.text[:300]
    body = {"messages": [{"role": "user", "content": "Summarise the incident report."}], "max_tokens": 100}
    # 100 answer tokens of gpt-4o cost $0.001: more than the quota, so it is refused up front.
    dear = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json=body | {"model": FAILING_THEN_4O}
    )
    assert dear.status_code == 429, dear.text[:300]
    assert dear.json()["quota"] == {"period": "day", "limit": "cost"}
    # The same request for a route of cheap models only is served.
    cheap = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json=body | {"model": "gpt-4o-mini"}
    )
    assert cheap.status_code == 200, cheap.text[:300]
    # A model without a price would be booked at $0, past any cost quota: refused, saying why.
    unpriced = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json=body | {"model": "local-llm"}
    )
    assert unpriced.status_code == 422, unpriced.text[:300]
    assert "No price is known" in unpriced.json()["detail"]
    # Without a cost quota it is served, and booked at $0 as documented.
    free: TenantKey = await make_tenant("no-cost-quota")
    served = await client.post(
        "/v1/chat/completions", headers=free.headers, json=body | {"model": "local-llm"}
    )
    assert served.status_code == 200, served.text[:300]


async def test_a_quota_counts_the_tool_calls_a_conversation_sends_back_and_a_limit_it_cannot_cap(
    client: httpx.AsyncClient, make_tenant
) -> None:
    """The estimate read each message's content only, so the arguments of an assistant's tool call
    sent back in the conversation (here 270 KB of notes, about 80,000 tokens) passed a 50,000-token
    quota and the prompt limit unreserved. And a request's own `max_tokens` was counted at most at
    4,096 for a model whose output limit Déjà does not know: 16,000 tokens of a priced model passed
    a cost quota worth 4,096 of them."""
    tenant: TenantKey = await make_tenant("tool-call-arguments")
    limit = await client.put(
        f"/admin/tenants/{tenant.tenant_id}/quotas/day",
        headers=ADMIN_HEADERS,
        json={"max_tokens": 50_000, "max_cost_usd": "0.05"},
    )
    assert limit.status_code in (200, 201), limit.text[:300]
    arguments = json.dumps({"notes": "lorem ipsum dolor sit amet " * 10_000})
    conversation = [
        {"role": "user", "content": "Save my notes."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "save", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "saved"},
        {"role": "user", "content": "What did I save?"},
    ]
    body = {"model": "gpt-4o-mini", "messages": conversation, "max_tokens": 10}
    refused = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert refused.status_code == 429, refused.text[:300]
    assert refused.json()["quota"] == {"period": "day", "limit": "tokens"}
    # A model of its own, priced at $3 an answer's million tokens: 16,000 of them cost $0.048,
    # within the $0.05; 17,000 ($0.051) are not, though 4,096 ($0.012) would have been.
    model = f"house-model-{uuid.uuid4().hex[:8]}"
    price = await client.post(
        "/admin/prices",
        headers=ADMIN_HEADERS,
        json={"model": model, "input_per_mtok": "0", "output_per_mtok": "3"},
    )
    assert price.status_code == 201, price.text[:300]
    ask = {"model": model, "messages": [{"role": "user", "content": "Write an essay about rivers."}]}
    over = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json=ask | {"max_tokens": 17_000}
    )
    assert over.status_code == 429, over.text[:300]
    assert over.json()["quota"] == {"period": "day", "limit": "cost"}
    within = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json=ask | {"max_tokens": 16_000}
    )
    assert within.status_code == 200, within.text[:300]
