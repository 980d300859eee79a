"""Nearest-neighbour latency with many tenants of mixed sizes in one HNSW index.

One partial HNSW index serves every tenant (or, with the entries partitioned by tenant, one
per partition: the figures say which); a query filters by tenant, namespace and scope, and
pgvector's iterative scan keeps walking the graph until it has k rows that pass the filter.
The planner may also choose the exact scan over the scope's btree for a small scope. This
measures the service's own query (`CacheRepository.nearest`) per tenant size class, and
recall@1 against the exact answer (index scans off), on a fresh embedded Postgres, and says
how many entries share the index each tenant searched.

    python -m app.toolkit.bench.tenants [--scale 1.0] [--queries 100] [--alone large]

docs/benchmarks.md (Many tenants) records a run; docs/scaling.md reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.models import DEFAULT_DIMENSION, DEFAULT_EMBEDDER, hnsw_index_name
from app.cache.repository import CacheRepository, StoredEntry
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.toolkit.bench.load import Group, LoadResult, bulk_load, create_tenants, draw_vectors, request_scope
from app.toolkit.bench.server_side import StatementCapture
from app.toolkit.bench.stats import SUMMARY_HEADER, Summary
from app.toolkit.scratch import scratch_database

# (size class, tenants, entries each): 100 tenants, 306,000 entries at scale 1.
CLASSES = (("large", 2, 100_000), ("medium", 3, 20_000), ("small", 15, 2_000), ("tiny", 80, 200))
CLUSTERS_PER_TENANT = 20
TOP_K = 5
EF_SEARCH = 64


async def run(url: str, scale: float, queries: int, seed: int, alone: str | None = None) -> str:
    """Load the tenants into the migrated, empty database at `url`, query them, and describe it."""
    rng = np.random.default_rng(seed)
    engine = create_engine(url, Settings(database_url=url))
    sessionmaker = create_sessionmaker(engine)
    capture = StatementCapture(engine)
    run_id = uuid.uuid4().hex[:6]
    classes = [c for c in CLASSES if alone is None or c[0] == alone]
    plan = [
        (name, max(1, int(size * scale)))
        for name, count, size in classes
        for _ in range(1 if alone is not None else count)
    ]
    tenants = await create_tenants(sessionmaker, len(plan), run_id)
    scope_hash = request_scope("x").scope_hash
    groups = [Group(t.id, "", scope_hash, rows) for t, (_, rows) in zip(tenants, plan, strict=True)]
    # Each tenant's entries cluster around prompts of its own, as real caches do.
    bases = [
        _unit(rng.normal(size=(CLUSTERS_PER_TENANT, DEFAULT_DIMENSION)).astype(np.float32)) for _ in tenants
    ]
    vectors = np.concatenate([draw_vectors(b, g.rows, rng) for b, g in zip(bases, groups, strict=True)])
    result = LoadResult(tenants=tenants, groups=groups, real=[], bases=bases[0])
    started = time.perf_counter()
    await bulk_load(
        engine,
        groups,
        vectors,
        DEFAULT_EMBEDDER,
        DEFAULT_DIMENSION,
        run_id,
        rebuild_index=True,
        result=result,
        progress=lambda rows: None,
    )
    load_s = time.perf_counter() - started
    async with engine.begin() as conn:
        # Summed over the partitions, when the entries are partitioned.
        index_bytes: int = (
            await conn.execute(
                text(
                    "SELECT coalesce((SELECT sum(pg_relation_size(relid)) "
                    "FROM pg_partition_tree(CAST(:i AS regclass))), pg_relation_size(CAST(:i AS regclass)))"
                ),
                {"i": hnsw_index_name(DEFAULT_EMBEDDER)},
            )
        ).scalar_one()
        # The entries in the index a tenant's lookup searches: its partition's, or all of them.
        await conn.execute(text("SELECT set_config('deja.system', 'on', true)"))
        placed = (
            await conn.execute(
                text(
                    "WITH placed AS (SELECT tableoid, tenant_id, count(*) AS n FROM cache_entries GROUP BY 1, 2) "
                    "SELECT tenant_id, sum(n) OVER (PARTITION BY tableoid) AS beside FROM placed"
                )
            )
        ).all()
        searched = {row.tenant_id: int(row.beside) for row in placed}
        partitions: int = (
            await conn.execute(text("SELECT count(*) FROM pg_partition_tree('cache_entries') WHERE isleaf"))
        ).scalar_one()
    lines = [
        f"{sum(g.rows for g in groups):,} entries over {len(tenants)} tenants; load and index build "
        f"{load_s:.0f} s (index build {result.index_build_s or 0:.0f} s); HNSW index {index_bytes / 2**20:.0f} MB "
        f"({index_bytes / sum(g.rows for g in groups):.0f} bytes per entry); "
        + (f"{partitions} partitions." if partitions > 1 else "one table, not partitioned."),
        "",
        "| tenant size | entries per tenant | entries in the index it searches | "
        + " | ".join(SUMMARY_HEADER)
        + " | recall@1 | plan of the first query |",
        "|---|---|---|" + "---|" * len(SUMMARY_HEADER) + "---|---|",
    ]
    for name, _, _ in classes:
        members = [i for i, (cls, _) in enumerate(plan) if cls == name]
        samples: list[float] = []
        agree = 0
        plan_text = ""
        for q in range(queries):
            index = members[q % len(members)]
            vector = draw_vectors(bases[index], 1, rng)[0]
            tenant_id = tenants[index].id
            async with transaction(sessionmaker, tenant_id=tenant_id) as session:
                began = time.perf_counter()
                found = await _nearest(session, tenant_id, scope_hash, vector)
                samples.append((time.perf_counter() - began) * 1000)
                if not plan_text:
                    plan_text = await capture.plan(session)
            async with transaction(sessionmaker, tenant_id=tenant_id) as session:
                await session.execute(text("SET LOCAL enable_indexscan = off"))
                exact = await _nearest(session, tenant_id, scope_hash, vector)
            agree += bool(found and exact and found[0].id == exact[0].id)
        summary = Summary.of(samples)
        beside = sorted(searched[tenants[i].id] for i in members)
        spread = f"{beside[0]:,}" if beside[0] == beside[-1] else f"{beside[0]:,} to {beside[-1]:,}"
        lines.append(
            f"| {name} | {plan[members[0]][1]:,} | {spread} | "
            + " | ".join(summary.cells())
            + f" | {agree / queries:.3f} | {plan_text} |"
        )
    capture.close()
    await engine.dispose()
    return "\n".join(lines)


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


async def _nearest(
    session: AsyncSession, tenant_id: uuid.UUID, scope_hash: bytes, vector: npt.NDArray[np.float32]
) -> list[StoredEntry]:
    return await CacheRepository(session).nearest(
        tenant_id, "", scope_hash, DEFAULT_EMBEDDER, DEFAULT_DIMENSION, vector, k=TOP_K, ef_search=EF_SEARCH
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Multiply every tenant's entries (1.0: 306,000)."
    )
    parser.add_argument("--queries", type=int, default=100, help="Queries per tenant size class.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--alone",
        choices=[name for name, _, _ in CLASSES],
        help="Load one tenant of this size class and nothing else: the same search in an index of its own.",
    )
    args = parser.parse_args()
    with scratch_database("deja-tenants-") as scratch:
        print(asyncio.run(run(scratch.url, args.scale, args.queries, args.seed, args.alone)))


if __name__ == "__main__":
    main()
