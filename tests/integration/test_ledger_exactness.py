"""Exactly one ledger row per request, whatever the client sends as its id, and a spool that a
refused row cannot block."""

from __future__ import annotations

import asyncio
import fcntl
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.db.leases import Lease
from app.ledger.booking import Bookkeeper
from app.ledger.pricing import PriceBook
from app.ledger.quotas import QuotaRepository
from app.ledger.repository import LedgerRow
from app.ledger.spool import LedgerSpool, _encode
from app.observability.metrics import METRICS
from app.toolkit.fakellm import FakeLLMServer
from tests.conftest import ServerThread, TenantKey


async def _rows(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> list[tuple[str, str | None]]:
    async with transaction(sessionmaker, system=True) as session:
        result = await session.execute(
            text("SELECT request_id, client_request_id FROM ledger WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return [(r[0], r[1]) for r in result]


async def test_a_reused_client_request_id_still_books_every_request(
    http: httpx.AsyncClient, make_tenant, deja: ServerThread, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first, second = await make_tenant("rid"), await make_tenant("rid")
    shared = f"same-{uuid.uuid4().hex[:8]}"
    answered = []
    for i in range(5):
        response = await http.post(
            "/v1/chat/completions",
            headers={**first.headers, "X-Request-Id": shared},
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Distinct question {i} {shared}"}],
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-client-request-id"] == shared
        answered.append(response.headers["x-request-id"])
    # Another tenant sending the same id is booked too, and cannot touch the first tenant's rows.
    other = await http.post(
        "/v1/chat/completions",
        headers={**second.headers, "X-Client-Request-Id": shared},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Another tenant asks"}]},
    )
    assert other.status_code == 200

    await deja.settle()  # booked just after the answers
    rows = await _rows(sessionmaker, first.tenant_id)
    assert sorted(r[0] for r in rows) == sorted(answered)
    assert {r[1] for r in rows} == {shared}
    assert [r[1] for r in await _rows(sessionmaker, second.tenant_id)] == [shared]


async def test_a_row_the_database_refuses_goes_to_the_dead_letters_and_the_drain_goes_on(
    tmp_path: Path, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant("spool")
    spool = LedgerSpool(tmp_path / "spool")

    def row(tenant_id: uuid.UUID) -> LedgerRow:
        return LedgerRow(
            tenant_id=tenant_id,
            request_id=uuid.uuid4().hex,
            requested_model="m" * 500,  # wider than the column: cut, not refused
            cache_status="miss",
            http_status=200,
            latency_ms=float("inf"),
            prompt_tokens=10**12,
            cost_usd=Decimal("0.5"),
        )

    refused = row(tenant.tenant_id)
    refused.cache_status = "cached"  # not a status the ledger knows: refused for good
    erased = row(uuid.uuid4())  # a tenant erased with its ledger meanwhile: nothing of it is kept
    kept = [row(tenant.tenant_id), row(tenant.tenant_id)]
    kept[0].created_at = datetime.now(UTC) - timedelta(days=2)  # answered during a long outage
    await spool.append(kept[0])
    await spool.append(refused)
    await spool.append(erased)
    await spool.append(kept[1])
    (spool.directory / "ledger-0-broken.jsonl").write_text("{not json\n")
    before = METRICS.ledger_dead_letters._value.get()

    assert await spool.drain(sessionmaker) == 2
    assert not spool.pending
    assert sorted(r[0] for r in await _rows(sessionmaker, tenant.tenant_id)) == sorted(
        r.request_id for r in kept
    )
    dead = [json.loads(line) for line in spool.dead_letters.read_text().splitlines()]
    assert len(dead) == 2
    assert [json.loads(d["row"])["request_id"] for d in dead if d["row"].startswith('{"')] == [
        refused.request_id
    ]
    assert await _rows(sessionmaker, erased.tenant_id) == []
    assert all("SQLSTATE" in d["reason"] or "undecodable" in d["reason"] for d in dead)
    assert METRICS.ledger_dead_letters._value.get() == before + 2
    async with transaction(sessionmaker, system=True) as session:
        booked_at = (
            await session.execute(
                text("SELECT created_at FROM ledger WHERE request_id = :r"), {"r": kept[0].request_id}
            )
        ).scalar_one()
    assert booked_at == kept[0].created_at  # the day it was answered, not the day it was replayed


def ledger_row(tenant_id: uuid.UUID, status: str = "miss", tokens: int = 0) -> LedgerRow:
    """A request's row as the pipeline books it: `tokens` in and out, a new request id."""
    return LedgerRow(
        tenant_id=tenant_id,
        request_id=uuid.uuid4().hex,
        requested_model="gpt-4o-mini",
        cache_status=status,
        http_status=422 if status == "error" else 200,
        latency_ms=5.0,
        prompt_tokens=tokens,
        completion_tokens=tokens,
    )


async def _day(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> dict[str, object]:
    async with transaction(sessionmaker, system=True) as session:
        [usage] = [
            u for u in await QuotaRepository(session).usage(tenant_id, datetime.now(UTC)) if u.period == "day"
        ]
    return {"requests": usage.requests, "tokens": usage.tokens, "reserved_tokens": usage.reserved_tokens}


async def test_rows_replayed_from_the_spool_settle_their_quota_and_count_their_use(
    tmp_path: Path, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant("spool")
    spool = LedgerSpool(tmp_path / "spool")
    # A call that reserved before the database went away, and one that started while it was away.
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        reservation = await QuotaRepository(session).reserve(
            tenant.tenant_id, 1000, Decimal("0.01"), datetime.now(UTC), Lease.new(60)
        )
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 1, "tokens": 0, "reserved_tokens": 1000}

    await spool.append(ledger_row(tenant.tenant_id, tokens=100), reservation)
    await spool.append(ledger_row(tenant.tenant_id, tokens=50))
    assert await spool.drain(sessionmaker) == 2
    # The reservation no longer holds quota; both calls count, each once.
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 2, "tokens": 300, "reserved_tokens": 0}

    # A call whose replica stopped renewing its reservation (the outage outlasted the lease): any
    # replica gives the reservation back; its booking, replayed later, counts the call anew.
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        lapsed = await QuotaRepository(session).reserve(
            tenant.tenant_id, 700, Decimal("0.01"), datetime.now(UTC), Lease.new(0.2)
        )
    assert await _day(sessionmaker, tenant.tenant_id) == {
        "requests": 3,
        "tokens": 300,
        "reserved_tokens": 700,
    }
    await asyncio.sleep(0.3)
    # This sweep, or a running server's own on the same database, gives it back: either way, once.
    async with transaction(sessionmaker, system=True) as session:
        await QuotaRepository(session).reclaim_expired()
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 2, "tokens": 300, "reserved_tokens": 0}
    await spool.append(ledger_row(tenant.tenant_id, tokens=20), lapsed)
    assert await spool.drain(sessionmaker) == 1
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 3, "tokens": 340, "reserved_tokens": 0}

    # A request that reserved, then was answered by an identical request's call (a coalesced
    # hit): replayed, it gives its request back, as when it is booked at once (it stayed counted).
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        followed = await QuotaRepository(session).reserve(
            tenant.tenant_id, 300, Decimal("0.01"), datetime.now(UTC), Lease.new(60)
        )
    assert await _day(sessionmaker, tenant.tenant_id) == {
        "requests": 4,
        "tokens": 340,
        "reserved_tokens": 300,
    }
    await spool.append(ledger_row(tenant.tenant_id, "hit"), followed)
    assert await spool.drain(sessionmaker) == 1
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 3, "tokens": 340, "reserved_tokens": 0}


async def test_a_call_made_while_the_database_was_down_counts_when_booked_after_it_is_back(
    tmp_path: Path, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """With the quotas open during an outage a request calls the model without a reservation;
    when the database is back by the time its answer is booked, the row goes straight to the
    ledger, and the counters never saw it. Booked
    now as its row would be replayed from the spool: counted once; a hit or a refused request,
    which called no model, is not."""
    tenant = await make_tenant("outage-call")
    books = Bookkeeper(
        sessionmaker,
        LedgerSpool(tmp_path / "spool"),
        PriceBook(sessionmaker),
        Lease.new(60),
        default_output_tokens=50,
    )

    for status, tokens in (("miss", 40), ("bypass", 10), ("hit", 0), ("error", 0)):
        booked = ledger_row(tenant.tenant_id, status, tokens)
        assert await books.book(booked)
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 2, "tokens": 100, "reserved_tokens": 0}


async def test_a_drain_in_another_process_loses_no_row_appended_while_it_reads(
    tmp_path: Path, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two workers share the spool's folder; one drains while the other is appending. The drain
    claimed the other's live file by renaming it, read it and deleted it: the line the other was
    writing to the file it had opened before the rename went with it, never booked. The drain
    now claims a file under the lock each append holds, and an append finds the file its path
    names."""
    tenant = await make_tenant("spool-race")
    writer, drainer = LedgerSpool(tmp_path / "spool"), LedgerSpool(tmp_path / "spool")

    first, second = ledger_row(tenant.tenant_id, tokens=1), ledger_row(tenant.tenant_id, tokens=1)
    await writer.append(first)
    # The other worker's next append, half-way: its file open and locked, the line not written.
    live = next(p for p in writer.pending_files())
    with live.open("a", encoding="utf-8") as appending:
        fcntl.flock(appending.fileno(), fcntl.LOCK_EX)
        draining = asyncio.create_task(drainer.drain(sessionmaker))
        await asyncio.sleep(1.0)  # the drain had claimed, read and deleted the file by now
        appending.write(_encode(second, None) + "\n")
        appending.flush()
        fcntl.flock(appending.fileno(), fcntl.LOCK_UN)
    await draining
    await drainer.drain(sessionmaker)
    async with transaction(sessionmaker, system=True) as session:
        booked = set(
            (
                await session.execute(
                    text("SELECT request_id FROM ledger WHERE tenant_id = :t"), {"t": tenant.tenant_id}
                )
            )
            .scalars()
            .all()
        )
    assert booked == {first.request_id, second.request_id}


async def booked_soon(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, columns: str
) -> list[Any]:
    """The tenant's ledger rows (`columns`), once there are any: a request its client left is
    booked in the background (within 5 s, or none)."""
    rows: list[Any] = []
    for _ in range(50):
        async with transaction(sessionmaker, system=True) as session:
            rows = list(
                (
                    await session.execute(
                        text(f"SELECT {columns} FROM ledger WHERE tenant_id = :t"),  # noqa: S608 - the tests' own columns
                        {"t": tenant_id},
                    )
                ).all()
            )
        if rows:
            break
        await asyncio.sleep(0.1)
    return rows


async def give_up_waiting(
    deja: ServerThread, tenant: TenantKey, *, stream: bool = False
) -> list[dict[str, str]]:
    """Ask the slow model (400 ms) a new question through the openai SDK, giving up after 0.15 s
    (before the answer, or a stream's first byte); the question asked."""
    question = [{"role": "user", "content": f"Summarise the quarter {uuid.uuid4().hex[:8]}"}]
    async with openai.AsyncOpenAI(
        base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0, timeout=0.15
    ) as impatient:
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="gpt-slow", messages=question, stream=stream)  # type: ignore[call-overload]
    return question


async def test_an_answer_whose_client_gave_up_waiting_is_paid_stored_and_booked_as_left(
    deja: ServerThread, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The openai SDK timed out (0.15 s) while the model took its time (400 ms): the answer,
    billed all the same, went to a closed connection, and the row said 200, delivered."""
    tenant = await make_tenant("gave-up")
    question = await give_up_waiting(deja, tenant)
    rows = await booked_soon(
        sessionmaker, tenant.tenant_id, "cache_status, http_status, completion_tokens, metadata"
    )
    [(status, http_status, completion_tokens, metadata)] = rows
    assert (status, http_status) == ("miss", 499), rows
    # Booked for the whole answer the provider billed (this fake model has no price).
    assert completion_tokens > 0
    assert metadata["client_left"] is True
    # And kept: the client's retry is served from the cache.
    async with openai.AsyncOpenAI(
        base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0
    ) as patient:
        retried = await patient.chat.completions.with_raw_response.create(model="gpt-slow", messages=question)  # type: ignore[arg-type]
    assert retried.headers["x-cache"] == "HIT"


async def fail_the_slow_model_three_times(
    deja: ServerThread, slow_llm: FakeLLMServer, other: TenantKey
) -> None:
    """Make the slow model's next three attempts (one request's) fail, after one answer for
    `other`: the model's breaker opens after five failures in a row, and tests that fail it in
    turn would otherwise open it for the tests after them."""
    async with httpx.AsyncClient(base_url=deja.url, timeout=5) as client:
        answered = await client.post(
            "/v1/chat/completions",
            headers=other.headers,
            json={"model": "gpt-slow", "messages": [{"role": "user", "content": f"Ping {uuid.uuid4().hex}"}]},
        )
        assert answered.status_code == 200, answered.text
    async with httpx.AsyncClient(base_url=slow_llm.root_url) as fake:
        planted = await fake.post("/_fake/faults", json={"model": "gpt-slow", "kind": "500", "times": 3})
        assert planted.status_code == 200, planted.text


async def test_requests_that_failed_with_the_call_they_waited_on_are_not_counted(
    deja: ServerThread,
    slow_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Three identical requests sent together: one led the call, which failed every attempt, the
    others waited on it. All three were answered 502 and booked, and each was counted against the
    tenant's requests, where only one called the model (a follower answered by the call is a
    hit, and is not counted)."""
    tenant = await make_tenant("followers-failed")
    await fail_the_slow_model_three_times(deja, slow_llm, await make_tenant("followers-failed-before"))
    body = {"model": "gpt-slow", "messages": [{"role": "user", "content": f"Plan {uuid.uuid4().hex}"}]}
    async with httpx.AsyncClient(base_url=deja.url, headers=tenant.headers, timeout=30) as client:
        # Sent together: each looks up (and reserves) before the first of them leads the call.
        answers = await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(3)))
    assert [a.status_code for a in answers] == [502, 502, 502], [a.text[:200] for a in answers]
    for _ in range(50):
        rows = await booked_soon(sessionmaker, tenant.tenant_id, "http_status, metadata")
        if len(rows) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(rows) == 3, rows
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 1, "tokens": 0, "reserved_tokens": 0}


async def test_a_failure_whose_client_had_left_is_booked_as_left(
    deja: ServerThread,
    slow_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The client gave up (0.15 s) while the model took its time and then failed every attempt
    (400 ms and a 500, three times): nobody saw the 502, and the row said 502, delivered."""
    tenant = await make_tenant("left-failed")
    await fail_the_slow_model_three_times(deja, slow_llm, await make_tenant("left-failed-before"))
    await give_up_waiting(deja, tenant)
    rows = await booked_soon(sessionmaker, tenant.tenant_id, "cache_status, http_status, error, metadata")
    [(status, http_status, error, metadata)] = rows
    assert (status, http_status) == ("error", 499), rows
    assert metadata["client_left"] is True
    assert "500" in error  # what the model said is kept
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 1, "tokens": 0, "reserved_tokens": 0}


async def test_a_stream_that_failed_after_its_client_had_left_is_booked_as_left(
    deja: ServerThread,
    slow_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The same with `stream: true`: the model failed every attempt before its first byte, after
    the client had given up; the row said 502."""
    tenant = await make_tenant("left-failed-stream")
    await fail_the_slow_model_three_times(deja, slow_llm, await make_tenant("left-failed-stream-before"))
    await give_up_waiting(deja, tenant, stream=True)
    rows = await booked_soon(sessionmaker, tenant.tenant_id, "cache_status, http_status, error, metadata")
    [(status, http_status, error, metadata)] = rows
    assert (status, http_status) == ("error", 499), rows
    assert metadata["client_left"] is True
    assert "500" in error
    assert await _day(sessionmaker, tenant.tenant_id) == {"requests": 1, "tokens": 0, "reserved_tokens": 0}


async def test_a_stream_whose_client_left_before_the_answer_started_is_paid_stored_and_booked_as_left(
    deja: ServerThread,
    slow_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The client gave up while the model took its time (400 ms), then the model streamed the
    answer: read to its end without the client, booked for what the provider counted (the row
    said the prompt and no answer before, whatever the model went on to bill) and stored, as a
    request without a stream whose client left."""
    tenant = await make_tenant("left-early")
    client_id = f"left-{uuid.uuid4().hex[:8]}"
    question = [{"role": "user", "content": f"Summarise the quarter {client_id}"}]
    async with httpx.AsyncClient(base_url=deja.url, timeout=0.15) as impatient:
        try:
            await impatient.post(
                "/v1/chat/completions",
                headers={**tenant.headers, "X-Client-Request-Id": client_id},
                json={"model": "gpt-slow", "messages": question, "stream": True},
            )
        except httpx.TimeoutException:
            pass
        else:
            raise AssertionError("the answer came before the client gave up")
    rows = await booked_soon(
        sessionmaker,
        tenant.tenant_id,
        "cache_status, http_status, prompt_tokens, completion_tokens, metadata",
    )
    [(status, http_status, prompt_tokens, completion_tokens, metadata)] = rows
    assert (status, http_status) == ("miss", 499), rows
    assert metadata["client_left"] is True
    # What the model counts for that answer, asked directly.
    async with openai.AsyncOpenAI(base_url=slow_llm.base_url, api_key="unused", max_retries=0) as model:
        counted = (await model.chat.completions.create(model="gpt-slow", messages=question)).usage  # type: ignore[arg-type]
    assert counted is not None
    assert counted.completion_tokens > 0
    assert (prompt_tokens, completion_tokens) == (counted.prompt_tokens, counted.completion_tokens)
    # And kept: the client's retry is served from the cache.
    async with openai.AsyncOpenAI(
        base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0
    ) as patient:
        retried = await patient.chat.completions.with_raw_response.create(model="gpt-slow", messages=question)  # type: ignore[arg-type]
    assert retried.headers["x-cache"] == "HIT"


async def test_a_spoken_answer_is_booked_at_its_models_audio_rates_and_a_look_alike_name_at_none(
    http: httpx.AsyncClient, deja: ServerThread, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`gpt-4o-audio-preview` was priced as gpt-4o, the longest listed prefix of its name: its
    spoken answer's tokens at gpt-4o's text rate, an eighth of their list price. A price now
    applies to its model and that model's dated snapshots only, and audio tokens are booked at
    the model's audio rates (migration 0240's list prices)."""
    tenant = await make_tenant("spoken-bill")
    spoken = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={
            "model": "gpt-4o-audio-preview-2024-12-17",  # a snapshot of a listed model
            "messages": [{"role": "user", "content": f"Read out the release notes {uuid.uuid4().hex}"}],
            "modalities": ["text", "audio"],
            "audio": {"voice": "alloy", "format": "wav"},
        },
    )
    assert spoken.status_code == 200, spoken.text
    usage = spoken.json()["usage"]
    audio = usage["completion_tokens_details"]["audio_tokens"]
    assert audio == usage["completion_tokens"] > 0
    # A name that only starts like a listed model's is not that model.
    look_alike = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "gpt-4o-experimental", "messages": [{"role": "user", "content": "Say hi"}]},
    )
    assert look_alike.status_code == 200, look_alike.text
    await deja.settle()
    rows = await booked_soon(sessionmaker, tenant.tenant_id, "used_model, prompt_tokens, cost_usd")
    cost = {model: (prompt_tokens, cost_usd) for model, prompt_tokens, cost_usd in rows}
    prompt_tokens, booked = cost["gpt-4o-audio-preview-2024-12-17"]
    assert prompt_tokens == usage["prompt_tokens"]
    # The text prompt at $2.50 a million tokens, the spoken answer at $80.
    assert booked == (prompt_tokens * Decimal("2.50") + audio * Decimal("80.00")) / 1_000_000
    assert cost["gpt-4o-experimental"][1] == 0


async def test_a_providers_message_shows_tenants_nothing_of_the_account_and_the_ledger_none_of_it(
    http: httpx.AsyncClient,
    deja: ServerThread,
    fake_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """OpenAI's 401 quotes the last characters of the operator's key and its 429 the organisation
    and its use: both reached every tenant word for word, and the ledger (shown on the dashboard)
    kept every provider message, which may quote the request itself."""
    tenant = await make_tenant("provider-words")
    models = {kind: f"words-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("401", "429", "400")}
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as fake:
        for kind, model in models.items():
            planted = await fake.post("/_fake/faults", json={"model": model, "kind": kind, "times": None})
            assert planted.status_code == 200, planted.text
    answers = {}
    for kind, model in models.items():
        body = {"model": model, "messages": [{"role": "user", "content": f"Secret plan {uuid.uuid4().hex}"}]}
        answers[kind] = await http.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert [answers[kind].status_code for kind in models] == [502, 429, 400]
    for kind in ("401", "429"):
        shown = answers[kind].text
        assert "sk-proj" not in shown
        assert "org-FAKE0001" not in shown
        assert "Used 3" not in shown
    assert "rate_limit_exceeded" in answers["429"].json()["detail"]
    assert "rejected" in answers["400"].json()["detail"]  # the provider's message, for the client
    await deja.settle()
    rows = await booked_soon(sessionmaker, tenant.tenant_id, "error")
    assert len(rows) == 3
    for (error,) in rows:
        assert "Injected fault" not in error, error  # no provider's message
    assert any("context_length_exceeded" in error for (error,) in rows)
