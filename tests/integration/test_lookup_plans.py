"""A nearest-neighbour lookup is planned for its own tenant every time: a cached generic plan
would not know the tenant, and the one Postgres makes sorts every row of the tenant by distance."""

from __future__ import annotations

import uuid
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.models import DEFAULT_DIMENSION, DEFAULT_EMBEDDER
from app.cache.repository import CacheRepository, NewEntry
from app.db.engine import enter_tenant, transaction

SCOPE = b"plan-test-scope"


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


async def test_lookups_are_planned_for_their_tenant_every_time(
    sessionmaker: async_sessionmaker[AsyncSession], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """After five runs of a prepared statement Postgres may switch to a generic plan, which does
    not know the tenant and sorts all its rows by distance (exact search: 150 ms for a
    100,000-entry tenant). Lookups keep to plans made for their own parameters."""
    tenant = await make_tenant("plans")
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
