"""A paraphrase the semantic tier served is an exact hit the next time (an alias of its entry):
same answer, same entry, without the embedder or the verifier; bounded per entry, gone with the
entry and when it is reported wrong. The alias is written after the response (`deja.settle()`
waits for it)."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.aliases import AliasWriter, NewAlias
from app.cache.repository import CacheRepository
from app.db.engine import transaction
from app.db.fastpath import FastConnections
from tests.conftest import ADMIN_HEADERS, ServerThread
from tests.integration.test_cache_api import answer_of, lookup, store

STORED = "How do I undo the last git commit?"
PARAPHRASE = "how can I undo my last commit in git"


async def test_a_served_paraphrase_is_an_alias_hit_next_time(
    http: httpx.AsyncClient, make_tenant, deja: ServerThread
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    first = await lookup(http, t.headers, PARAPHRASE)
    assert (first["hit"], first["tier"], first["entry_id"]) == (True, "semantic", entry_id)
    await deja.settle()
    # Runs of whitespace do not matter: the same normalised wording.
    again = await lookup(http, t.headers, "  how can I undo my   last commit in git ")
    assert (again["hit"], again["tier"], again["entry_id"]) == (True, "alias", entry_id)
    assert again["similarity"] == pytest.approx(first["similarity"], abs=1e-6)  # stored as real
    assert answer_of(again) == "git reset --soft HEAD~1"
    # Another namespace is another cache: no alias there.
    assert (await lookup(http, t.headers, PARAPHRASE, namespace="other"))["hit"] is False
    # A stricter threshold than the alias's cosine is not served by it.
    assert (await lookup(http, t.headers, PARAPHRASE, threshold=0.999))["hit"] is False


async def test_aliases_go_with_their_entry_and_when_it_is_flagged(
    http: httpx.AsyncClient, make_tenant, deja: ServerThread
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    await lookup(http, t.headers, PARAPHRASE)
    await deja.settle()
    assert (await lookup(http, t.headers, PARAPHRASE))["tier"] == "alias"
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": entry_id, "correct": False}
    )
    assert wrong.json()["flagged"] is True
    assert (await lookup(http, t.headers, PARAPHRASE))["hit"] is False

    # A new entry, aliased, then deleted: its alias no longer answers.
    entry_id = await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="n")
    await lookup(http, t.headers, PARAPHRASE, namespace="n")
    await deja.settle()
    assert (await lookup(http, t.headers, PARAPHRASE, namespace="n"))["tier"] == "alias"
    assert (await http.delete(f"/v1/cache/entries/{entry_id}", headers=t.headers)).status_code == 204
    assert (await lookup(http, t.headers, PARAPHRASE, namespace="n"))["hit"] is False


async def test_new_verifier_settings_decide_again_what_an_alias_served(
    http: httpx.AsyncClient, make_tenant, deja: ServerThread
) -> None:  # type: ignore[no-untyped-def]
    """An alias serves without the verifier: when the tenant's verifier settings change, the
    paraphrases its old settings served are looked up again under the new ones; a change that
    leaves the verifier as it was keeps them."""
    t = await make_tenant()
    entry_id = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    await lookup(http, t.headers, PARAPHRASE)
    await deja.settle()
    assert (await lookup(http, t.headers, PARAPHRASE))["tier"] == "alias"

    async def patch(settings: dict[str, object]) -> None:
        response = await http.patch(
            f"/admin/tenants/{t.tenant_id}", headers=ADMIN_HEADERS, json={"settings": settings}
        )
        assert response.status_code == 200, response.text

    await patch({"default_ttl_s": 3600})
    assert (await lookup(http, t.headers, PARAPHRASE))["tier"] == "alias"
    # No model sure enough for them, now: the alias no longer answers either.
    await patch({"default_ttl_s": 3600, "cross_encoder_min_score": 1.0, "cross_encoder_reworded_margin": 0})
    assert (await lookup(http, t.headers, PARAPHRASE))["hit"] is False
    # Back to the defaults: decided by the verifier again, then an alias again.
    await patch({})
    again = await lookup(http, t.headers, PARAPHRASE)
    assert (again["hit"], again["tier"], again["entry_id"]) == (True, "semantic", entry_id)
    audit = await http.get("/admin/audit", headers=ADMIN_HEADERS, params={"tenant_id": str(t.tenant_id)})
    updates = [row["filters"] for row in audit.json() if row["action"] == "tenant.update"]
    assert sorted(row.get("aliases_dropped") for row in updates if "aliases_dropped" in row) == [0, 1]


async def test_an_entry_keeps_a_bounded_number_of_aliases(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t = await make_tenant()
    entry_id = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    hashes = [hashlib.sha256(f"wording {i}".encode()).digest() for i in range(4)]
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        repo = CacheRepository(session)
        for exact_hash in hashes:
            await repo.add_alias(t.tenant_id, "", exact_hash, uuid.UUID(entry_id), 0.9, max_aliases=2)
        found = [await repo.find_exact(t.tenant_id, "", h, min_alias_similarity=0.8) for h in hashes]
    assert [f is not None for f in found] == [True, True, False, False]


async def test_an_alias_written_after_its_entry_was_flagged_or_deleted_is_not_written(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The alias of a served paraphrase is written after the response: by then its entry may have
    been reported wrong (its aliases dropped) or deleted. Neither gets an alias."""
    t = await make_tenant()
    flagged = await store(http, t.headers, STORED, "git reset --soft HEAD~1")
    gone = await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="n")
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": flagged, "correct": False}
    )
    assert wrong.json()["flagged"] is True
    assert (await http.delete(f"/v1/cache/entries/{gone}", headers=t.headers)).status_code == 204
    exact_hash = hashlib.sha256(b"a late wording").digest()
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        repo = CacheRepository(session)
        for namespace, entry_id in (("", flagged), ("n", gone)):
            await repo.add_alias(t.tenant_id, namespace, exact_hash, uuid.UUID(entry_id), 0.9, max_aliases=16)
        count = await session.execute(
            text("SELECT count(*) FROM cache_aliases WHERE tenant_id = :t"), {"t": t.tenant_id}
        )
        assert count.scalar_one() == 0


def _wording(number: int) -> bytes:
    return hashlib.sha256(f"wording {number}".encode()).digest()


async def _aliases_of(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> set[bytes]:
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        rows = await session.execute(
            text("SELECT exact_hash FROM cache_aliases WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return {bytes(row[0]) for row in rows}


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "transaction"])
async def test_aliases_written_in_batches_keep_every_bound(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    one_statement: bool,
) -> None:
    """A batch of aliases, in one statement (`deja_add_aliases`, given no transaction to fall back
    to) or in the transaction it falls back to, writes what one alias at a time wrote: an entry's
    aliases stay within the bound, counting the batch's own; an entry gone or flagged gets none, nor
    does another tenant's; a wording already aliased keeps its alias."""
    t, other = await make_tenant(), await make_tenant()
    kept = uuid.UUID(await store(http, t.headers, STORED, "git reset --soft HEAD~1"))
    gone = uuid.UUID(await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="n"))
    flagged = uuid.UUID(await store(http, t.headers, STORED, "git reset --soft HEAD~1", namespace="f"))
    theirs = uuid.UUID(await store(http, other.headers, STORED, "git reset --soft HEAD~1"))
    assert (await http.delete(f"/v1/cache/entries/{gone}", headers=t.headers)).status_code == 204
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": str(flagged), "correct": False}
    )
    assert wrong.json()["flagged"] is True
    fast = FastConnections(database_url, size=1)
    try:
        writer = AliasWriter(max_aliases=2)
        # Each path alone: the statement with no transaction behind it, or the transaction.
        if one_statement:
            writer.start(None, fast)
        else:
            writer.start(sessionmaker, None)
        await writer.write(
            [
                NewAlias(t.tenant_id, "", _wording(1), kept, 0.9),
                NewAlias(t.tenant_id, "", _wording(1), kept, 0.95),  # the same wording again: kept as it was
                NewAlias(t.tenant_id, "n", _wording(2), gone, 0.9),
                NewAlias(t.tenant_id, "f", _wording(3), flagged, 0.9),
                NewAlias(t.tenant_id, "", _wording(7), theirs, 0.9),  # another tenant's entry
                NewAlias(t.tenant_id, "", _wording(4), kept, 0.9),
                NewAlias(t.tenant_id, "", _wording(5), kept, 0.9),  # a third alias of `kept`: over the bound
                NewAlias(other.tenant_id, "", _wording(6), theirs, 0.9),
            ]
        )
    finally:
        await fast.aclose()
    assert await _aliases_of(sessionmaker, t.tenant_id) == {_wording(1), _wording(4)}
    assert await _aliases_of(sessionmaker, other.tenant_id) == {_wording(6)}
    async with transaction(sessionmaker, tenant_id=t.tenant_id) as session:
        similarity = await session.execute(
            text("SELECT similarity FROM cache_aliases WHERE exact_hash = :h"), {"h": _wording(1)}
        )
        assert similarity.scalar_one() == pytest.approx(0.9)


async def test_an_alias_the_database_refuses_costs_only_itself(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    """A batch the database refuses (here a namespace longer than a column allows) is written in a
    transaction instead, and, refused there too, alias by alias: the others are written. Queued
    aliases are written by `flush`; once closed, the writer drops what it is given."""
    t = await make_tenant()
    entry = uuid.UUID(await store(http, t.headers, STORED, "git reset --soft HEAD~1"))
    fast = FastConnections(database_url, size=1)
    try:
        writer = AliasWriter(max_aliases=16)
        writer.start(sessionmaker, fast)
        writer.add(NewAlias(t.tenant_id, "", _wording(1), entry, 0.9))
        writer.add(NewAlias(t.tenant_id, "x" * 300, _wording(2), entry, 0.9))
        writer.add(NewAlias(t.tenant_id, "", _wording(3), entry, 0.9))
        await writer.flush()
        assert await _aliases_of(sessionmaker, t.tenant_id) == {_wording(1), _wording(3)}
        await writer.aclose()
        writer.add(NewAlias(t.tenant_id, "", _wording(4), entry, 0.9))
        assert writer.pending == 0
        await writer.flush()  # closed: returns at once
    finally:
        await fast.aclose()
    assert await _aliases_of(sessionmaker, t.tenant_id) == {_wording(1), _wording(3)}
