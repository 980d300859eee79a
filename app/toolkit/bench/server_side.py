"""Phase 2: the cache's own figures, in-process, on the loaded database.

Every timing here is one `CacheService.lookup` (or one of its parts) run alone, one after
the other: the cost of a lookup without queueing. The parts are timed in separate calls of
the same code the lookup runs: the embedder, `CacheRepository.nearest` and `Verifier.decide`.

Recall@1 compares what the service's query returns with the exact answer of the same SQL
when the planner may not use an index scan (`SET LOCAL enable_indexscan = off`: the HNSW
index cannot serve it, a bitmap or sequential scan sorts every row of the scope). On a
small scope the planner may itself prefer that exact plan to the HNSW index, so the same
query is also run with every plan but the HNSW index scan disabled, to measure the index.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache.policy import TenantCachePolicy
from app.cache.repository import CacheRepository, StoredEntry
from app.cache.service import CacheService
from app.cache.verifier import Candidate, VerifierPolicy
from app.db.engine import transaction
from app.db.fastpath import FastConnections
from app.toolkit.bench.load import Group, LoadResult, RealEntry, draw_vectors, request_scope

Progress = Callable[[int], None]


@dataclass
class RecallSet:
    name: str
    queries: int = 0
    agree: int = 0
    agree_hnsw: int = 0
    empty: int = 0
    plan_service: str = ""
    plan_hnsw: str = ""
    plan_exact: str = ""
    service_sql_ms: list[float] = field(default_factory=list)
    hnsw_sql_ms: list[float] = field(default_factory=list)
    exact_sql_ms: list[float] = field(default_factory=list)
    # The HNSW index alone at other hnsw.ef_search values: agreements and SQL times.
    sweep_agree: dict[int, int] = field(default_factory=dict)
    sweep_ms: dict[int, list[float]] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        """The service's query (whatever plan the planner picks) against exact search."""
        return self.agree / self.queries if self.queries else float("nan")

    @property
    def recall_hnsw(self) -> float:
        """The HNSW index alone (every other plan disabled) against exact search."""
        return self.agree_hnsw / self.queries if self.queries else float("nan")


@dataclass
class ServerSideResult:
    exact_ms: list[float] = field(default_factory=list)
    exact_tx_ms: list[float] = field(default_factory=list)
    exact_probe_ms: list[float] = field(default_factory=list)
    semantic_ms: list[float] = field(default_factory=list)
    semantic_tx_ms: list[float] = field(default_factory=list)
    semantic_probe_ms: list[float] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    verify_ms: list[float] = field(default_factory=list)
    semantic_queries: int = 0
    semantic_hits: int = 0
    semantic_intended: int = 0
    # Paraphrases the service answered: the HTTP phase's semantic-hit traffic.
    hit_paraphrases: list[RealEntry] = field(default_factory=list)
    recall_sets: list[RecallSet] = field(default_factory=list)
    verifier_stages: list[str] = field(default_factory=list)


class StatementCapture:
    """Keeps the last nearest-neighbour statement sent, to EXPLAIN it with the same parameters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statement: str | None = None
        self.parameters: Any = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._capture)
        self._engine = engine

    def _capture(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if "<=>" in statement and not statement.startswith("EXPLAIN"):
            self.statement, self.parameters = statement, parameters

    async def plan(self, session: AsyncSession) -> str:
        if self.statement is None:
            return "?"
        conn = await session.connection()
        rows = (await conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + self.statement, self.parameters)).all()
        return describe_plan([r[0] for r in rows])

    def close(self) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._capture)


def describe_plan(lines: list[str]) -> str:
    joined = "\n".join(lines)
    for line in lines:
        # An index scan ordered by distance: the HNSW index (a partition's copy of it has a name
        # Postgres chose).
        if "ix_cache_entries_hnsw" in line or (line.strip().startswith("Order By:") and "<=>" in line):
            return "HNSW index scan"
    for line in lines:
        stripped = line.strip().lstrip("->").strip()
        if stripped.startswith(("Bitmap Heap Scan", "Seq Scan", "Index Scan", "Parallel Seq Scan")):
            index = f" ({stripped.split(' using ')[1].split(' on ')[0]})" if " using " in stripped else ""
            return stripped.split(" on ")[0] + index + " + sort"
    return joined.splitlines()[0] if joined else "?"


async def _timed_lookup(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    tenant_id: uuid.UUID,
    prompt: str,
    policy: VerifierPolicy,
) -> tuple[float, float, Any]:
    scope = request_scope(prompt)
    started = time.perf_counter()
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        inner = time.perf_counter()
        found = await cache.lookup(session, tenant_id, "", scope, policy)
        lookup_ms = (time.perf_counter() - inner) * 1000
    return lookup_ms, (time.perf_counter() - started) * 1000, found


async def _nearest(
    session: AsyncSession,
    cache: CacheService,
    group: Group | None,
    tenant_id: uuid.UUID,
    scope_hash: bytes,
    namespace: str,
    vector: npt.NDArray[np.float32],
    ef_search: int | None = None,
) -> list[StoredEntry]:
    return await CacheRepository(session).nearest(
        tenant_id,
        namespace,
        scope_hash,
        cache.embedder.name,
        cache.embedder.dimension,
        vector,
        k=cache.settings.top_k,
        ef_search=ef_search or cache.settings.ef_search,
    )


async def run_server_side(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    load: LoadResult,
    *,
    exact_queries: int,
    semantic_queries: int,
    recall_queries: int,
    seed: int,
    progress: Progress,
) -> ServerSideResult:
    rng = random.Random(seed)  # noqa: S311 (benchmark draws, not security)
    policy = TenantCachePolicy().verifier_policy()
    result = ServerSideResult(verifier_stages=[stage.name for stage in cache.verifier.stages])
    real = load.real

    # Warm-up: the model sessions, the connection pool, the index pages.
    for entry in rng.sample(real, min(50, exact_queries // 2, len(real))):
        await _timed_lookup(sessionmaker, cache, entry.tenant.id, entry.pair.prompt, policy)
        await _timed_lookup(sessionmaker, cache, entry.tenant.id, entry.pair.paraphrase, policy)

    # Exact hits: stored prompts, sent again as they were.
    for entry in (rng.choice(real) for _ in range(exact_queries)):
        lookup_ms, tx_ms, found = await _timed_lookup(
            sessionmaker, cache, entry.tenant.id, entry.pair.prompt, policy
        )
        if found.tier == "exact":
            result.exact_ms.append(lookup_ms)
            result.exact_tx_ms.append(tx_ms)
        progress(1)

    # The same exact hits through the request path's probe: one statement, one round trip, no
    # transaction (the probe sets the tenant context itself).
    fast = FastConnections(engine.url.render_as_string(hide_password=False), size=1)
    try:
        for entry in (rng.choice(real) for _ in range(exact_queries)):
            scope = request_scope(entry.pair.prompt)
            started = time.perf_counter()
            probed = await cache.probe_exact(fast, entry.tenant.id, "", scope, policy)
            if probed is not None:
                result.exact_probe_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await fast.aclose()

    # Semantic lookups: paraphrases of stored prompts, whole and in parts; and through the request
    # path's probe (one round trip for the search, no transaction; aliases are off here).
    fast = FastConnections(engine.url.render_as_string(hide_password=False), size=1)
    sample = rng.sample(real, min(semantic_queries, len(real)))
    for entry in sample:
        tenant_id = entry.tenant.id
        lookup_ms, tx_ms, found = await _timed_lookup(
            sessionmaker, cache, tenant_id, entry.pair.paraphrase, policy
        )
        started = time.perf_counter()
        await cache.probe_semantic(fast, tenant_id, "", request_scope(entry.pair.paraphrase), policy)
        result.semantic_probe_ms.append((time.perf_counter() - started) * 1000)
        result.semantic_queries += 1
        result.semantic_ms.append(lookup_ms)
        result.semantic_tx_ms.append(tx_ms)
        if found.tier == "semantic":
            result.semantic_hits += 1
            if found.entry is not None and found.entry.id == entry.entry_id:
                result.semantic_intended += 1
                result.hit_paraphrases.append(entry)

        scope = request_scope(entry.pair.paraphrase)
        started = time.perf_counter()
        vector = (await cache.embedder.embed([scope.read_prompt]))[0]
        result.embed_ms.append((time.perf_counter() - started) * 1000)
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            started = time.perf_counter()
            neighbours = await _nearest(session, cache, None, tenant_id, scope.scope_hash, "", vector)
            result.sql_ms.append((time.perf_counter() - started) * 1000)
        candidates = [Candidate(entry_id=n.id, prompt=n.prompt, similarity=n.similarity) for n in neighbours]
        started = time.perf_counter()
        cache.verifier.decide(scope.read_prompt, candidates, policy)
        result.verify_ms.append((time.perf_counter() - started) * 1000)
        progress(1)
    await fast.aclose()

    # Recall@1: the service's query against the exact answer, on real paraphrases and on
    # synthetic queries into the bulk's scopes.
    capture = StatementCapture(engine)
    try:
        paraphrases = RecallSet("paraphrases of stored prompts")
        queries = rng.sample(real, min(recall_queries, len(real)))
        vectors = await cache.embedder.embed([request_scope(e.pair.paraphrase).read_prompt for e in queries])
        for entry, vector in zip(queries, vectors, strict=True):
            scope_hash = request_scope(entry.pair.paraphrase).scope_hash
            await _compare(sessionmaker, cache, capture, paraphrases, entry.tenant.id, scope_hash, "", vector)
            progress(1)
        synthetic = RecallSet("synthetic queries in the bulk's scopes")
        np_rng = np.random.default_rng(seed + 1)
        vectors = draw_vectors(load.bases, recall_queries, np_rng)
        groups = [g for g in load.groups if g.rows > 0]
        for vector in vectors:
            group = rng.choice(groups)
            await _compare(
                sessionmaker,
                cache,
                capture,
                synthetic,
                group.tenant_id,
                group.scope_hash,
                group.namespace,
                vector,
            )
            progress(1)
        result.recall_sets = [paraphrases, synthetic]
    finally:
        capture.close()
    return result


async def _compare(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    capture: StatementCapture,
    into: RecallSet,
    tenant_id: uuid.UUID,
    scope_hash: bytes,
    namespace: str,
    vector: npt.NDArray[np.float32],
) -> None:
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        started = time.perf_counter()
        served = await _nearest(session, cache, None, tenant_id, scope_hash, namespace, vector)
        into.service_sql_ms.append((time.perf_counter() - started) * 1000)
        if not into.plan_service:
            into.plan_service = await capture.plan(session)
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        # Only an ordered index scan is left, and only the HNSW index yields this order.
        await session.execute(_ONLY_HNSW)
        started = time.perf_counter()
        hnsw = await _nearest(session, cache, None, tenant_id, scope_hash, namespace, vector)
        into.hnsw_sql_ms.append((time.perf_counter() - started) * 1000)
        if not into.plan_hnsw:
            into.plan_hnsw = await capture.plan(session)
    async with transaction(sessionmaker, tenant_id=tenant_id) as session:
        await session.execute(text("SET LOCAL enable_indexscan = off"))
        started = time.perf_counter()
        exact = await _nearest(session, cache, None, tenant_id, scope_hash, namespace, vector)
        into.exact_sql_ms.append((time.perf_counter() - started) * 1000)
        if not into.plan_exact:
            into.plan_exact = await capture.plan(session)
    if not exact:
        into.empty += 1
        return
    into.queries += 1
    into.agree += _same_top(served, exact)
    into.agree_hnsw += _same_top(hnsw, exact)
    for ef_search in EF_SEARCH_SWEEP:
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            await session.execute(_ONLY_HNSW)
            started = time.perf_counter()
            found = await _nearest(session, cache, None, tenant_id, scope_hash, namespace, vector, ef_search)
            into.sweep_ms.setdefault(ef_search, []).append((time.perf_counter() - started) * 1000)
        into.sweep_agree[ef_search] = into.sweep_agree.get(ef_search, 0) + _same_top(found, exact)


def _same_top(found: list[StoredEntry], exact: list[StoredEntry]) -> int:
    # Ties at the same distance may come in either order: a tie counts as agreement.
    same = bool(found) and (
        found[0].id == exact[0].id or abs(found[0].similarity - exact[0].similarity) < 1e-6
    )
    return int(same)


# hnsw.ef_search values tried besides the configured one (DEJA_CACHE__EF_SEARCH).
EF_SEARCH_SWEEP = (32, 100, 200, 400)

_ONLY_HNSW = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), "
    "set_config('enable_sort', 'off', true)"
)
