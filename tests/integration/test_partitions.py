"""Cache entries are partitioned by tenant: a tenant's lookup reads its own partition, and
row-level security holds on every partition, read through the parent or directly."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.models import DEFAULT_DIMENSION, DEFAULT_EMBEDDER
from app.cache.repository import CacheRepository, NewEntry
from app.db.engine import enter_tenant, transaction
from app.toolkit.bench.server_side import StatementCapture
from tests.conftest import TenantKey

SCOPE = b"partition-test-scope"


def _vectors(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, DEFAULT_DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def _store(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, vectors: np.ndarray
) -> list[uuid.UUID]:
    ids = []
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        for number, vector in enumerate(vectors):
            ids.append(
                await CacheRepository(session).insert(
                    NewEntry(
                        tenant_id=tenant_id,
                        namespace="",
                        model="gpt-4o-mini",
                        scope_hash=SCOPE,
                        exact_hash=uuid.uuid4().bytes,
                        prompt=f"question {number}",
                        embedder=DEFAULT_EMBEDDER,
                        embedding=vector,
                        response={"choices": []},
                        prompt_tokens=1,
                        completion_tokens=1,
                        cost_usd=Decimal(0),
                        ttl_s=None,
                    )
                )
            )
    return ids


async def _partition_of(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> str:
    async with transaction(sessionmaker, system=True) as session:
        return str(
            (
                await session.execute(
                    text("SELECT DISTINCT tableoid::regclass::text FROM cache_entries WHERE tenant_id = :t"),
                    {"t": tenant_id},
                )
            ).scalar_one()
        )


async def _remainder(sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> int:
    """The partition Postgres's hash partitioning sends the tenant's rows to."""
    async with transaction(sessionmaker, system=True) as session:
        for remainder in range(16):
            if (
                await session.execute(
                    text(
                        "SELECT satisfies_hash_partition('cache_entries'::regclass, 16, :r, CAST(:t AS uuid))"
                    ),
                    {"r": remainder, "t": str(tenant_id)},
                )
            ).scalar_one():
                return remainder
    raise AssertionError("no partition takes the tenant")


async def _two_tenants_in_two_partitions(
    sessionmaker: async_sessionmaker[AsyncSession], make_tenant
) -> tuple[TenantKey, TenantKey]:  # type: ignore[no-untyped-def]
    a = await make_tenant("part-a")
    b = await make_tenant("part-b")
    # Two tenants share one of the 16 partitions once in 16: take another until they differ.
    while await _remainder(sessionmaker, a.tenant_id) == await _remainder(sessionmaker, b.tenant_id):
        b = await make_tenant("part-b")
    return a, b


async def test_a_lookup_reads_one_partition_and_finds_only_its_tenants_entries(
    sessionmaker: async_sessionmaker[AsyncSession], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    a, b = await _two_tenants_in_two_partitions(sessionmaker, make_tenant)
    vectors = _vectors(7, 8)
    # The same vectors for both tenants: b's entries are exactly as near as a's.
    a_ids = await _store(sessionmaker, a.tenant_id, vectors)
    b_ids = await _store(sessionmaker, b.tenant_id, vectors)
    partition_a = await _partition_of(sessionmaker, a.tenant_id)
    assert partition_a != await _partition_of(sessionmaker, b.tenant_id)

    engine = sessionmaker.kw["bind"]
    capture = StatementCapture(engine)
    try:
        async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
            found = await CacheRepository(session).nearest(
                a.tenant_id, "", SCOPE, DEFAULT_EMBEDDER, DEFAULT_DIMENSION, vectors[0], k=5, ef_search=64
            )
            assert capture.statement is not None
            conn = await session.connection()
            plan = "\n".join(
                row[0]
                for row in await conn.exec_driver_sql(
                    "EXPLAIN (COSTS OFF) " + capture.statement, capture.parameters
                )
            )
    finally:
        capture.close()
    assert found[0].id == a_ids[0]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert {entry.id for entry in found} <= set(a_ids)
    assert not {entry.id for entry in found} & set(b_ids)
    # Pruned to a's partition: no other partition appears in the plan.
    # Partitions, and the partitions whose indexes (named after them) are read.
    scanned = set(re.findall(r"cache_entries_p\d+", plan))
    assert scanned == {partition_a}, plan


async def test_row_level_security_holds_on_every_partition_read_directly(
    sessionmaker: async_sessionmaker[AsyncSession], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    a, b = await _two_tenants_in_two_partitions(sessionmaker, make_tenant)
    await _store(sessionmaker, a.tenant_id, _vectors(1, 3))
    await _store(sessionmaker, b.tenant_id, _vectors(2, 3))
    partition_b = await _partition_of(sessionmaker, b.tenant_id)
    async with transaction(sessionmaker, system=True) as session:
        partitions = list(
            (
                await session.execute(
                    text(
                        "SELECT inhrelid::regclass::text FROM pg_inherits "
                        "WHERE inhparent = 'cache_entries'::regclass ORDER BY 1"
                    )
                )
            ).scalars()
        )
        assert len(partitions) == 16
        count_b = text(f"SELECT count(*) FROM {partition_b}")  # noqa: S608 (a partition's name)
        assert (await session.execute(count_b)).scalar_one() >= 3
    async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
        for partition in partitions:
            owners = set(
                (await session.execute(text(f"SELECT DISTINCT tenant_id FROM {partition}"))).scalars()  # noqa: S608
            )
            assert owners <= {a.tenant_id}, partition
        assert (await session.execute(count_b)).scalar_one() == 0
    # Nor can a write b's rows into b's partition directly.
    with pytest.raises(DBAPIError, match="row-level security"):
        async with transaction(sessionmaker, tenant_id=a.tenant_id) as session:
            await session.execute(
                text(
                    f"INSERT INTO {partition_b} (tenant_id, model, scope_hash, exact_hash, prompt, response) "  # noqa: S608
                    "VALUES (:t, 'm', '\\x00', '\\x00', 'p', '{}')"
                ),
                {"t": b.tenant_id},
            )


async def test_lookups_are_planned_for_their_tenant_every_time(
    sessionmaker: async_sessionmaker[AsyncSession], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """After five runs of a prepared statement Postgres may switch to a generic plan, which does
    not know the tenant and sorts all its rows by distance (exact search: 150 ms for a
    100,000-entry tenant). Lookups keep to plans made for their own parameters."""
    tenant = await make_tenant("part-plans")
    vectors = _vectors(3, 4)
    await _store(sessionmaker, tenant.tenant_id, vectors)
    engine = sessionmaker.kw["bind"]
    async with engine.connect() as conn:  # one connection: prepared statements are per connection
        session = AsyncSession(bind=conn)
        for _ in range(8):
            async with session.begin():
                await enter_tenant(session, tenant.tenant_id)
                found = await CacheRepository(session).nearest(
                    tenant.tenant_id,
                    "",
                    SCOPE,
                    DEFAULT_EMBEDDER,
                    DEFAULT_DIMENSION,
                    vectors[1],
                    k=2,
                    ef_search=64,
                )
                assert found[0].similarity == pytest.approx(1.0, abs=1e-3)
        async with session.begin():
            plans = (
                await session.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                        "WHERE statement LIKE '%<=>%' AND statement NOT LIKE '%pg_prepared_statements%'"
                    )
                )
            ).all()
        await session.close()
    assert plans, "the lookup was not a prepared statement"
    assert sum(row.generic_plans for row in plans) == 0
    assert sum(row.custom_plans for row in plans) >= 8
