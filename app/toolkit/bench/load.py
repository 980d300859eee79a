"""Phase 1: fill the cache.

The bulk is synthetic: vectors drawn around real prompt embeddings (so they cluster the way
prompts do), binary-COPYed into a temporary table and moved into `cache_entries` with one
INSERT ... SELECT (COPY cannot write to a table under row-level security). On a database of
its own the benchmark drops the HNSW index first and builds it afterwards, which is how a
large cache is restored; on a shared database rows go into the live index. Then, per
tenant, a few hundred real prompts are stored through `CacheService.store`, as a miss
would store them.
"""

from __future__ import annotations

import json
import random
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache.models import hnsw_index_name
from app.cache.repository import CacheRepository, NewEntry, check_embedder_name
from app.cache.responses import completion_from_text
from app.cache.scope import Scope, scope_of
from app.cache.service import CacheService
from app.db.engine import transaction
from app.tenants.repository import KeyRepository, TenantRepository
from app.toolkit.bench.prompts import PromptPair, real_prompts

MODEL = "gpt-4o-mini"
NAMESPACES = ("", "support", "engineering")
SYSTEM_PROMPT = "You are a concise assistant for an engineering organisation."
# Noise around a base embedding: cosine to the base about 0.85, like loose rephrasings.
NOISE_SIGMA = 0.032
COPY_CHUNK = 5_000

Progress = Callable[[int], None]


def messages_for(prompt: str, *, system: bool = False) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": SYSTEM_PROMPT}, *messages] if system else messages


def request_scope(prompt: str, *, system: bool = False) -> Scope:
    """The scope a `/v1/chat/completions` body {model, messages} gets: the HTTP phase sends exactly that."""
    return scope_of(MODEL, messages_for(prompt, system=system))


@dataclass(frozen=True, slots=True)
class BenchTenant:
    id: uuid.UUID
    name: str
    api_key: str


@dataclass(frozen=True, slots=True)
class Group:
    """One tenant/namespace/scope bucket of synthetic rows."""

    tenant_id: uuid.UUID
    namespace: str
    scope_hash: bytes
    rows: int


@dataclass(frozen=True, slots=True)
class RealEntry:
    tenant: BenchTenant
    pair: PromptPair
    entry_id: uuid.UUID


@dataclass
class LoadResult:
    tenants: list[BenchTenant]
    groups: list[Group]
    real: list[RealEntry]
    bases: npt.NDArray[np.float32]  # the real embeddings the synthetic rows were drawn around
    bulk_rows: int = 0
    copy_s: float = 0.0
    insert_s: float = 0.0
    index_mode: str = ""  # "rebuilt" | "live"
    index_build_s: float | None = None
    real_store_s: float = 0.0
    live_insert_rows: int = 0
    live_insert_s: float = 0.0
    table_bytes: int = 0
    index_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_entries(self) -> int:
        return self.bulk_rows + len(self.real) + self.live_insert_rows


def draw_vectors(
    bases: npt.NDArray[np.float32], count: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    picks = rng.integers(0, len(bases), size=count)
    vectors = bases[picks] + rng.normal(0.0, NOISE_SIGMA, size=(count, bases.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


async def create_tenants(
    sessionmaker: async_sessionmaker[AsyncSession], count: int, run_id: str
) -> list[BenchTenant]:
    tenants: list[BenchTenant] = []
    async with transaction(sessionmaker, system=True) as session:
        for index in range(count):
            tenant = await TenantRepository(session).create(f"bench-{run_id}-{index:02d}")
            _, new = await KeyRepository(session).issue(tenant.id, name="bench")
            tenants.append(BenchTenant(tenant.id, tenant.name, new.key))
    return tenants


def plan_groups(tenants: list[BenchTenant], entries: int) -> list[Group]:
    """Spread `entries` rows evenly over every tenant x namespace x (plain | with system prompt)."""
    buckets = [
        (tenant.id, namespace, request_scope("x", system=system).scope_hash)
        for tenant in tenants
        for namespace in NAMESPACES
        for system in (False, True)
    ]
    share, extra = divmod(entries, len(buckets))
    return [Group(t, ns, scope, share + (1 if i < extra else 0)) for i, (t, ns, scope) in enumerate(buckets)]


def _copy_records(
    groups: list[Group], vectors: npt.NDArray[np.float32], run_id: str
) -> Iterator[tuple[int, bytes]]:
    """PGCOPY binary rows for (tenant_id, namespace, scope_hash, exact_hash, prompt, embedding), in chunks."""
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    row_head = struct.pack("!h", 6)
    dim = vectors.shape[1]
    halfvec_head = struct.pack("!hh", dim, 0)
    halves = vectors.astype(">f2")
    chunk: list[bytes] = [header]
    rows = 0
    index = 0
    for group in groups:
        tenant = group.tenant_id.bytes
        namespace = group.namespace.encode()
        for _ in range(group.rows):
            prompt = f"Synthetic bench entry {run_id}-{index}: what should we do about case {index}?".encode()
            exact = uuid.uuid5(uuid.NAMESPACE_OID, f"{run_id}/{index}").bytes
            embedding = halfvec_head + halves[index].tobytes()
            chunk.append(
                b"".join(
                    (
                        row_head,
                        struct.pack("!i", 16),
                        tenant,
                        struct.pack("!i", len(namespace)),
                        namespace,
                        struct.pack("!i", len(group.scope_hash)),
                        group.scope_hash,
                        struct.pack("!i", len(exact)),
                        exact,
                        struct.pack("!i", len(prompt)),
                        prompt,
                        struct.pack("!i", len(embedding)),
                        embedding,
                    )
                )
            )
            rows += 1
            index += 1
            if rows == COPY_CHUNK:
                yield rows, b"".join(chunk)
                chunk, rows = [], 0
    chunk.append(struct.pack("!h", -1))
    yield rows, b"".join(chunk)


async def bulk_load(
    engine: AsyncEngine,
    groups: list[Group],
    vectors: npt.NDArray[np.float32],
    embedder: str,
    dimension: int,
    run_id: str,
    *,
    rebuild_index: bool,
    result: LoadResult,
    progress: Progress,
    on_step: Callable[[str], None] = lambda step: None,
) -> None:
    check_embedder_name(embedder)
    response = completion_from_text(MODEL, "A stored answer for the benchmark.")
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        # Loading and building the index take longer than a request's statement timeout.
        await raw.execute("SET statement_timeout = 0")
        async with raw.transaction():
            await raw.execute("SELECT set_config('deja.system', 'on', true)")
            await raw.execute(
                "CREATE TEMP TABLE bench_bulk (tenant_id uuid, namespace text, scope_hash bytea, "
                f"exact_hash bytea, prompt text, embedding halfvec({int(dimension)})) ON COMMIT DROP"
            )
            if rebuild_index:
                await raw.execute(f"DROP INDEX IF EXISTS {hnsw_index_name(embedder)}")
            started = time.perf_counter()

            async def source() -> AsyncIterator[bytes]:
                # Encoded chunk by chunk while asyncpg streams them.
                for rows, data in _copy_records(groups, vectors, run_id):
                    progress(rows)
                    yield data

            await raw.copy_to_table("bench_bulk", source=source(), format="binary")
            result.copy_s = time.perf_counter() - started
            on_step("INSERT ... SELECT into cache_entries")
            started = time.perf_counter()
            await raw.execute(
                "INSERT INTO cache_entries (tenant_id, namespace, model, scope_hash, exact_hash, prompt, "
                "embedder, embedding, response) "
                "SELECT tenant_id, namespace, $1, scope_hash, exact_hash, prompt, $2, embedding, $3::jsonb "
                "FROM bench_bulk",
                MODEL,
                embedder,
                _json(response),
            )
            result.insert_s = time.perf_counter() - started
        result.bulk_rows = sum(g.rows for g in groups)
        if rebuild_index:
            result.index_mode = "rebuilt"
            on_step("building the HNSW index")
            started = time.perf_counter()
            await raw.execute("SET maintenance_work_mem = '512MB'")
            async with raw.transaction():
                await raw.execute("SELECT set_config('deja.system', 'on', true)")
                await raw.execute(
                    f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(embedder)} ON cache_entries "
                    f"USING hnsw ((embedding::halfvec({int(dimension)})) halfvec_cosine_ops) "
                    f"WITH (m = 16, ef_construction = 64) WHERE embedder = '{embedder}'"
                )
            result.index_build_s = time.perf_counter() - started
            await raw.execute("RESET maintenance_work_mem")
        else:
            result.index_mode = "live"
        await raw.execute("ANALYZE cache_entries")
        await raw.execute("RESET statement_timeout")
    # The statement above repeats ensure_embedding_index's definition with a larger memory
    # budget; check that the service sees the index it expects.
    async with engine.connect() as conn:
        found: int = (
            await conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE indexname = :name"),
                {"name": hnsw_index_name(embedder)},
            )
        ).scalar_one()
        if not found:
            raise RuntimeError("the HNSW index is missing after the load")


def _json(value: object) -> str:
    return json.dumps(value)


async def store_real_prompts(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    tenants: list[BenchTenant],
    per_tenant: int,
    seed: int,
    progress: Progress,
) -> list[RealEntry]:
    """Per tenant, `per_tenant` template prompts stored as a miss stores them (embedding included)."""
    stored: list[RealEntry] = []
    for number, tenant in enumerate(tenants):
        pairs = real_prompts(per_tenant, random.Random(seed * 1000 + number))  # noqa: S311 (benchmark draws)
        async with transaction(sessionmaker, tenant_id=tenant.id) as session:
            for pair in pairs:
                answer = completion_from_text(MODEL, f"Answer to: {pair.prompt}")
                entry_id = await cache.store(
                    session, tenant.id, "", request_scope(pair.prompt), answer, ttl_s=None
                )
                if entry_id is None:
                    raise RuntimeError(f"bench tenant {tenant.id} was deleted while its prompts were stored")
                stored.append(RealEntry(tenant, pair, entry_id))
                progress(1)
    return stored


async def live_inserts(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    groups: list[Group],
    vectors: npt.NDArray[np.float32],
    run_id: str,
    progress: Progress,
) -> None:
    """Single-row inserts into the live HNSW index, through the repository (the miss path's write)."""
    response = completion_from_text(MODEL, "A stored answer for the benchmark.")
    for index, vector in enumerate(vectors):
        group = groups[index % len(groups)]
        async with transaction(sessionmaker, tenant_id=group.tenant_id) as session:
            await CacheRepository(session).insert(
                NewEntry(
                    tenant_id=group.tenant_id,
                    namespace=group.namespace,
                    model=MODEL,
                    scope_hash=group.scope_hash,
                    exact_hash=uuid.uuid5(uuid.NAMESPACE_OID, f"{run_id}/live/{index}").bytes,
                    prompt=f"Synthetic live insert {run_id}-{index}",
                    embedder=cache.embedder.name,
                    embedding=vector,
                    response=response,
                    prompt_tokens=0,
                    completion_tokens=0,
                    cost_usd=Decimal(0),
                    ttl_s=None,
                )
            )
        progress(1)


async def sizes(engine: AsyncEngine, embedder: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                # Summed over the partitions (a partitioned parent and its index hold no data).
                text(
                    "SELECT coalesce((SELECT sum(pg_table_size(relid)) FROM pg_partition_tree('cache_entries')), "
                    "pg_table_size('cache_entries')), coalesce((SELECT sum(pg_relation_size(relid)) "
                    "FROM pg_partition_tree(CAST(:index AS regclass))), pg_relation_size(CAST(:index AS regclass)))"
                ),
                {"index": hnsw_index_name(embedder)},
            )
        ).one()
    return int(row[0]), int(row[1])
