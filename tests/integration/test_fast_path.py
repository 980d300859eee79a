"""The cheap paths: an exact hit in one database round trip (still under row-level security), and
a miss answered before its answer is stored and its request booked (written right after, exactly
once, and spooled when the database refuses the write)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.repository import CacheRepository, NewEntry
from app.cache.scope import scope_of
from app.cache.service import CacheService
from app.completions.miss_booking import Claim, MissBooking
from app.completions.miss_reservation import reserve_miss
from app.completions.repository import InflightRepository
from app.db.engine import transaction
from app.db.fastpath import FastConnections
from app.db.leases import Lease
from app.ledger.booking import Bookkeeper
from app.ledger.pricing import PriceBook
from app.ledger.quotas import QuotaRepository, ReservationTerms
from app.ledger.repository import LedgerRow
from app.ledger.spool import LedgerSpool
from app.ledger.writer import BookingWriter
from app.settings import CacheSettings, Settings
from app.upstream.usage import Usage
from tests.conftest import ServerThread, eventually
from tests.integration.test_cache_api import answer_of, lookup, store

LEASE = Lease.new(60)
PROBE = text("SELECT id, alias FROM deja_exact_probe(:t, :ns, :h, NULL, 0, 2.0)")


def chat(content: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


async def claimed_keys(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> int:
    """The tenant's prompt keys some replica still leads (a miss claims its key until it is answered)."""
    async with transaction(sessionmaker, system=True) as session:
        rows = await session.execute(
            text("SELECT count(*) FROM inflight_misses WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return int(rows.scalar_one())


def bookkeeper(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> Bookkeeper:
    """The transaction path a one-statement booking is compared with (its spool in `tmp_path`)."""
    return Bookkeeper(
        sessionmaker,
        LedgerSpool(tmp_path / "spool"),
        PriceBook(sessionmaker),
        LEASE,
        default_output_tokens=50,
    )


async def _released(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> bool:
    return await claimed_keys(sessionmaker, tenant_id) == 0


async def test_a_tenant_cannot_read_another_tenants_entry_through_the_fast_path(
    http: httpx.AsyncClient, make_tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant("fast-a"), await make_tenant("fast-b")
    prompt = f"What is tenant B's door code? {uuid.uuid4().hex[:6]}"
    b_entry = await store(http, b.headers, prompt, "B's secret: 4711")
    hit = await lookup(http, b.headers, prompt)
    assert (hit["hit"], hit["tier"], hit["entry_id"]) == (True, "exact", b_entry)

    # Tenant A sends B's very prompt: the exact probe finds nothing of B's.
    assert (await lookup(http, a.headers, prompt))["hit"] is False

    exact_hash = scope_of("gpt-4o-mini", [{"role": "user", "content": prompt}]).exact_hash
    async with sessionmaker() as session:
        # The function runs with the caller's rights: not SECURITY DEFINER, and the role it runs
        # as is subject to row-level security.
        definer, bypass = (
            await session.execute(
                text(
                    "SELECT p.prosecdef, r.rolbypassrls OR r.rolsuper FROM pg_proc p, pg_roles r "
                    "WHERE p.proname = 'deja_exact_probe' AND r.rolname = current_user"
                )
            )
        ).one()
        assert (definer, bypass) == (False, False)
        # Asked for B's hash as tenant A: nothing. As B: B's entry.
        args = {"ns": "", "h": exact_hash}
        assert (await session.execute(PROBE, {**args, "t": a.tenant_id})).first() is None
        assert str((await session.execute(PROBE, {**args, "t": b.tenant_id})).one().id) == b_entry
        await session.rollback()
    async with sessionmaker() as session, session.begin():
        # The context the function sets is the one row-level security reads: inside A's, B's rows
        # are invisible even to a query that asks for them by tenant.
        assert (await session.execute(PROBE, {**args, "t": a.tenant_id})).first() is None
        visible = await session.execute(
            text("SELECT count(*) FROM cache_entries WHERE tenant_id = :b"), {"b": b.tenant_id}
        )
        assert visible.scalar_one() == 0

    # By chat too: a miss (the model answers, not B's entry).
    response = await http.post("/v1/chat/completions", headers=a.headers, json=chat(prompt))
    assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
    assert "4711" not in response.text


async def test_an_exact_hit_by_chat_is_served_and_booked_once(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("fast-hit")
    prompt = f"How long is the onboarding? {uuid.uuid4().hex[:6]}"
    await store(http, t.headers, prompt, "Two weeks.")
    response = await http.post("/v1/chat/completions", headers=t.headers, json=chat(prompt))
    assert response.headers["x-cache"] == "HIT"
    assert response.json()["choices"][0]["message"]["content"] == "Two weeks."
    request_id = response.headers["x-request-id"]

    async def booked() -> list[Any]:
        async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
            rows = await session.execute(
                text("SELECT cache_status, entry_id FROM ledger WHERE request_id = :r"), {"r": request_id}
            )
            return list(rows)

    rows = await eventually(booked)
    assert [(status, str(entry)) for status, entry in rows] == [("hit", response.headers["x-cache-entry"])]


async def test_a_miss_is_stored_and_booked_after_its_response(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("fast-miss")
    prompt = f"Where is the VPN guide? {uuid.uuid4().hex[:6]}"
    response = await http.post("/v1/chat/completions", headers=t.headers, json=chat(prompt))
    assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
    request_id = response.headers["x-request-id"]

    async def booked() -> list[Any]:
        async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
            rows = await session.execute(
                text("SELECT cache_status, entry_id, cost_usd FROM ledger WHERE request_id = :r"),
                {"r": request_id},
            )
            return list(rows)

    rows = await eventually(booked)
    assert len(rows) == 1
    status, entry_id, cost = rows[0]
    assert (status, cost > 0) == ("miss", True)
    # The stored answer is the one the client got, under the entry its booking names.
    again = await lookup(http, t.headers, prompt)
    assert (again["hit"], again["entry_id"]) == (True, str(entry_id))
    assert answer_of(again) == response.json()["choices"][0]["message"]["content"]
    # Its quota reservation was settled: nothing is held any more.
    await deja.settle()
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        held = await session.execute(
            text("SELECT count(*) FROM quota_reservations WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert held.scalar_one() == 0
    assert len(await booked()) == 1
    # Its key was released with the stored answer: no replica waits on it any more.
    assert await claimed_keys(sessionmaker, t.tenant_id) == 0


async def test_a_refused_background_write_goes_to_the_spool_and_is_booked_later(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant("fast-refused")
    name = f"refuse_{t.tenant_id.hex}"
    async with transaction(sessionmaker, system=True) as session:
        # The database refuses this tenant's bookings as it does while it shuts down (57P03).
        await session.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'not now' USING ERRCODE = '57P03'; END $$"
            )
        )
        await session.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON ledger FOR EACH ROW "
                f"WHEN (NEW.tenant_id = '{t.tenant_id}') EXECUTE FUNCTION {name}()"
            )
        )
    try:
        prompt = f"Who approves travel? {uuid.uuid4().hex[:6]}"
        response = await http.post("/v1/chat/completions", headers=t.headers, json=chat(prompt))
        assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
        request_id = response.headers["x-request-id"]
        await deja.settle()
        spooled = "".join(p.read_text() for p in (settings.data_dir / "spool").glob("*.jsonl"))
        assert request_id in spooled
        # The answer's transaction did not commit, so its key was released on its own.
        assert await eventually(lambda: _released(sessionmaker, t.tenant_id))
    finally:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text(f"DROP TRIGGER {name} ON ledger"))
            await session.execute(text(f"DROP FUNCTION {name}()"))

    async def booked() -> list[Any]:
        async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
            rows = await session.execute(
                text("SELECT cache_status FROM ledger WHERE request_id = :r"), {"r": request_id}
            )
            return list(rows)

    # The spool replays it once the database takes it again: exactly one row.
    assert [row[0] for row in await eventually(booked, within_s=15)] == ["miss"]
    await asyncio.sleep(2.5)  # another drain: still one
    assert len(await booked()) == 1


@pytest.mark.parametrize("reclaimed", [False, True], ids=["settled", "reclaimed-meanwhile"])
async def test_a_miss_booked_in_one_statement_writes_what_its_transaction_writes(
    make_tenant,
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    reclaimed: bool,
) -> None:  # type: ignore[no-untyped-def]
    """`deja_book_miss` against `Bookkeeper.book` on the same miss: the same ledger row, entry,
    counters and released claim, whichever wrote it; also when its reservation's lease ran out
    and the reservation was given back before the booking (the call then counts again)."""
    t = await make_tenant("fast-book")
    fast = FastConnections(database_url, size=1)
    books = bookkeeper(sessionmaker, tmp_path)
    cache = CacheService.create(CacheSettings())
    terms = ReservationTerms(tokens=120, cost_usd=Decimal("0.004"), at=datetime.now(UTC))
    usage = Usage(prompt_tokens=30, completion_tokens=12)
    completion = {"choices": [{"message": {"role": "assistant", "content": "Ask IT."}}], "usage": {}}
    try:
        for one_statement in (True, False):
            prompt = f"Where is the VPN guide? {one_statement}"
            scope = scope_of("gpt-4o-mini", [{"role": "user", "content": prompt}])
            reservation, claimed = await reserve_miss(
                fast, t.tenant_id, terms, LEASE, "ns", scope.exact_hash, LEASE
            )
            assert claimed
            if reclaimed:
                async with transaction(sessionmaker, system=True) as session:
                    await session.execute(
                        text(
                            "UPDATE quota_reservations SET expires_at = now() - interval '1 second' WHERE id = :id"
                        ),
                        {"id": reservation.id},
                    )
                    assert await QuotaRepository(session).reclaim_expired() >= 1
            row = LedgerRow(
                tenant_id=t.tenant_id,
                request_id=f"req-{one_statement}",
                requested_model="gpt-4o-mini",
                cache_status="miss",
                http_status=200,
                latency_ms=55.5,
                used_model="gpt-4o-mini",
                namespace="ns",
                entry_id=uuid.uuid4(),
                prompt_tokens=30,
                completion_tokens=12,
                cost_usd=Decimal("0.00123"),
                upstream_latency_ms=50.25,
                metadata={"fallback": True},
                client_request_id="client-1",
            )
            embedding = np.full(384, 1 / np.sqrt(384), dtype=np.float32)
            entry = cache.new_entry(
                t.tenant_id,
                "ns",
                scope,
                completion,
                ttl_s=600,
                embedding=embedding,
                cost_usd=row.cost_usd,
                entry_id=row.entry_id,
            )
            if one_statement:
                await MissBooking(
                    row, reservation, usage, entry, Claim("ns", scope.exact_hash, LEASE.holder)
                ).write(fast)
            else:

                async def also(
                    session: AsyncSession, entry: NewEntry = entry, key: bytes = scope.exact_hash
                ) -> None:
                    await CacheRepository(session).insert(entry)
                    await InflightRepository(session).release(t.tenant_id, "ns", key, LEASE)

                assert await books.book(row, reservation=reservation, usage=usage, also=also)
    finally:
        await fast.aclose()

    skipped = ("request_id", "entry_id", "created_at")
    columns = [f.name for f in dataclasses.fields(LedgerRow) if f.name not in skipped]
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        ledger = (
            await session.execute(text(f"SELECT {', '.join(columns)} FROM ledger ORDER BY request_id"))  # noqa: S608
        ).all()
        entries = (
            await session.execute(
                text(
                    "SELECT namespace, model, prompt_tokens, completion_tokens, cost_usd, response, "
                    "expires_at - created_at AS ttl, embedding IS NOT NULL FROM cache_entries "
                    "ORDER BY prompt"
                )
            )
        ).all()
        counters = (
            await session.execute(
                text(
                    "SELECT period, requests, tokens, cost_usd, reserved_tokens, reserved_cost_usd "
                    "FROM usage_counters ORDER BY period"
                )
            )
        ).all()
        held: int = (await session.execute(text("SELECT count(*) FROM quota_reservations"))).scalar_one()
    assert len(ledger) == 2
    assert ledger[0] == ledger[1]
    assert len(entries) == 2
    assert entries[0] == entries[1]
    # Both misses counted at what they used; nothing is reserved or held any more.
    assert [tuple(c) for c in counters] == [
        (period, 2, 84, Decimal("0.00246"), 0, Decimal(0)) for period in ("day", "month")
    ]
    assert held == 0
    assert await claimed_keys(sessionmaker, t.tenant_id) == 0


async def test_hits_booked_in_one_statement_are_the_rows_their_transaction_writes(
    make_tenant,
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:  # type: ignore[no-untyped-def]
    """`deja_book_hits` (through the booking writer) against `Bookkeeper.book_many` on the same
    hits: the same ledger rows, values cut to the columns' bounds as `storable` cuts them, and a
    request id already booked left as it was."""
    t = await make_tenant("fast-hits")
    fast = FastConnections(database_url, size=1)
    books = bookkeeper(sessionmaker, tmp_path)
    writer = BookingWriter(books, fast=fast)

    def hits(way: str) -> list[LedgerRow]:
        return [
            LedgerRow(
                tenant_id=t.tenant_id,
                request_id=f"{way}-{i}",
                requested_model="gpt-4o-mini",
                cache_status="hit",
                http_status=200,
                latency_ms=float("inf") if i == 0 else 1.25 * i,
                api_key_id=uuid.uuid4() if i == 0 else None,
                used_model="gpt-4o-mini",
                namespace="ns" * 150,  # over the column's 200 characters
                similarity=0.9375,
                entry_id=uuid.UUID(int=i),
                prompt_tokens=12,
                completion_tokens=2**40,  # over int4
                avoided_cost_usd=Decimal("0.000123456789"),
                metadata={"tier": "semantic", "verifier": {"score": 0.5, "note": 'quote " and \\'}},
                client_request_id=f"client-{i}",
                created_at=datetime(2026, 11, 30, 12, i, tzinfo=UTC),
                explored=i == 1,
            )
            for i in range(3)
        ]

    try:
        await books.book_many(hits("transaction"))
        caplog.set_level(logging.WARNING, logger="app.ledger.writer")
        for row in hits("statement"):
            await writer.submit(row)
        await writer.flush()
        # Booked again (a replay): left as it was.
        again = dataclasses.replace(hits("statement")[0], latency_ms=99.0, metadata={"again": True})
        await writer.submit(again)
        await writer.flush()
        # The statement wrote them: the writer fell back to no transaction.
        assert not [r.getMessage() for r in caplog.records if r.name == "app.ledger.writer"]
    finally:
        await writer.aclose()
        await fast.aclose()

    columns = [f.name for f in dataclasses.fields(LedgerRow) if f.name not in ("request_id", "api_key_id")]
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        ledger = (
            await session.execute(
                text(f"SELECT request_id, {', '.join(columns)} FROM ledger ORDER BY request_id")  # noqa: S608
            )
        ).all()
    by_way = {
        way: [tuple(r)[1:] for r in ledger if r[0].startswith(way)] for way in ("statement", "transaction")
    }
    assert len(by_way["statement"]) == 3
    assert by_way["statement"] == by_way["transaction"]
    first = dict(zip(["request_id", *columns], ledger[0], strict=True))
    assert first["metadata"] == {"tier": "semantic", "verifier": {"score": 0.5, "note": 'quote " and \\'}}
    assert (len(first["namespace"]), first["completion_tokens"], first["latency_ms"]) == (200, 2**31 - 1, 0.0)
