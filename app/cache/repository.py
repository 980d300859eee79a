"""All SQL of the cache. The lookups are plain SQL on the hot path (measured: the ORM's
statement building costs more than the queries themselves)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from pgvector import HalfVector
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.models import CacheAlias, CacheEntry, hnsw_index_name

_EMBEDDER_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")


@dataclass(frozen=True, slots=True)
class StoredEntry:
    id: uuid.UUID
    prompt: str
    model: str
    namespace: str
    response: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime
    expires_at: datetime | None
    hit_count: int
    flagged: bool
    similarity: float = 1.0


@dataclass(frozen=True, slots=True)
class NewEntry:
    tenant_id: uuid.UUID
    namespace: str
    model: str
    scope_hash: bytes
    exact_hash: bytes
    prompt: str
    embedder: str | None
    embedding: npt.NDArray[np.float32] | None
    response: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    ttl_s: int | None
    id: uuid.UUID | None = None  # chosen before the write (a miss answered before it is stored)


_COLUMNS = (
    "id, prompt, model, namespace, response, prompt_tokens, completion_tokens, created_at, expires_at, "
    "hit_count, flagged"
)
# Servable: not flagged, not expired (or expired less than :stale_s ago, when every upstream
# failed and stale answers are allowed), and young enough when the request set a max-age.
_LIVE = (
    "NOT flagged AND (expires_at IS NULL OR expires_at > now() - make_interval(secs => :stale_s)) "
    "AND (CAST(:max_age_s AS integer) IS NULL OR created_at > now() - make_interval(secs => :max_age_s))"
)

# The entry stored under this exact hash, else the entry an alias with this hash points to
# (served at a cosine the request accepts): one round trip; the alias branch runs only when
# the first finds nothing.
# A cosine no alias reaches: an exact probe with it reads entries only.
NO_ALIASES = 2.0
_EXACT = text(
    f"(SELECT {_COLUMNS}, false AS alias, 1.0::real AS similarity FROM cache_entries "  # noqa: S608 (constants only)
    f"WHERE tenant_id = :tenant_id AND namespace = :namespace AND exact_hash = :exact_hash AND {_LIVE} "
    "ORDER BY created_at DESC LIMIT 1) "
    f"UNION ALL (SELECT {_COLUMNS}, true, aliased.alias_similarity FROM (SELECT entry_id, "
    "similarity AS alias_similarity FROM cache_aliases WHERE tenant_id = :tenant_id AND namespace = :namespace "
    "AND exact_hash = :exact_hash AND similarity >= :min_alias_similarity) aliased "
    # The tenant named again: the entries are partitioned by it, and this prunes to its partition.
    f"JOIN cache_entries ON cache_entries.id = aliased.entry_id AND cache_entries.tenant_id = :tenant_id "
    f"WHERE {_LIVE}) LIMIT 1"
)
# A served paraphrase becomes an alias, unless its entry already has `max_aliases` of them
# (concurrent inserts may pass that bound by a few rows), its wording is an alias already, or the
# entry is gone or flagged since it was served (the alias is written after the response).
_ADD_ALIAS = text(
    "INSERT INTO cache_aliases (tenant_id, namespace, exact_hash, entry_id, similarity) "
    "SELECT :tenant_id, :namespace, :exact_hash, :entry_id, :similarity "
    "WHERE (SELECT count(*) FROM cache_aliases WHERE entry_id = :entry_id) < :max_aliases "
    "AND EXISTS (SELECT FROM cache_entries WHERE id = :entry_id AND tenant_id = :tenant_id AND NOT flagged) "
    "ON CONFLICT DO NOTHING"
)
_DROP_ALIASES = text("DELETE FROM cache_aliases WHERE entry_id = :entry_id")
_DROP_TENANT_ALIASES = text("DELETE FROM cache_aliases WHERE tenant_id = :tenant_id")


# Transaction-local, in one round trip. Custom plans only: a cached generic plan does not know
# the tenant, and the one Postgres builds (the scope's rows sorted by distance) is exact search,
# which costs a 100,000-entry tenant 150 ms where its HNSW scan takes about 1 ms.
_SEARCH_SETTINGS = text(
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', :ef_search, true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)

_BY_ID = text(f"SELECT {_COLUMNS} FROM cache_entries WHERE id = :id")  # noqa: S608 (constants only)
# Hot-path writes as prepared text: building ORM statements per request cost more than running them.
_ADD_HITS = text(
    "UPDATE cache_entries SET hit_count = hit_count + hits.count, "
    "last_hit_at = GREATEST(last_hit_at, hits.at) FROM unnest(CAST(:ids AS uuid[]), "
    "CAST(:counts AS bigint[]), CAST(:ats AS timestamptz[])) AS hits(id, count, at) WHERE cache_entries.id = hits.id"
)
_INSERT = text(
    "INSERT INTO cache_entries (id, tenant_id, namespace, model, scope_hash, exact_hash, prompt, embedder, embedding, "
    "response, prompt_tokens, completion_tokens, cost_usd, expires_at) VALUES (:id, :tenant_id, :namespace, :model, "
    ":scope_hash, :exact_hash, :prompt, :embedder, CAST(:embedding AS halfvec), CAST(:response AS jsonb), "
    ":prompt_tokens, :completion_tokens, :cost_usd, "
    "now() + make_interval(secs => CAST(:ttl_s AS integer))) RETURNING id"
)


def _row(row: Any, similarity: float = 1.0) -> StoredEntry:
    return StoredEntry(
        id=row.id,
        prompt=row.prompt,
        model=row.model,
        namespace=row.namespace,
        response=row.response,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        created_at=row.created_at,
        expires_at=row.expires_at,
        hit_count=row.hit_count,
        flagged=row.flagged,
        similarity=similarity,
    )


def check_embedder_name(name: str) -> str:
    # The name is spelled into the SQL text (a partial index needs a literal predicate).
    if not _EMBEDDER_NAME.match(name):
        raise ValueError(f"embedder name {name!r} must match {_EMBEDDER_NAME.pattern}")
    return name


class CacheRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find_exact(
        self,
        tenant_id: uuid.UUID,
        namespace: str,
        exact_hash: bytes,
        *,
        max_age_s: int | None = None,
        stale_s: int = 0,
        min_alias_similarity: float,
    ) -> tuple[StoredEntry, bool] | None:
        """The entry for this exact hash, and whether it was found through an alias (one
        served at `min_alias_similarity` or above)."""
        params = {
            "tenant_id": tenant_id,
            "namespace": namespace,
            "exact_hash": exact_hash,
            "max_age_s": max_age_s,
            "stale_s": stale_s,
            "min_alias_similarity": min_alias_similarity,
        }
        row = (await self.session.execute(_EXACT, params)).first()
        return (_row(row, similarity=float(row.similarity)), bool(row.alias)) if row is not None else None

    async def add_alias(
        self,
        tenant_id: uuid.UUID,
        namespace: str,
        exact_hash: bytes,
        entry_id: uuid.UUID,
        similarity: float,
        *,
        max_aliases: int,
    ) -> None:
        params = {
            "tenant_id": tenant_id,
            "namespace": namespace,
            "exact_hash": exact_hash,
            "entry_id": entry_id,
            "similarity": similarity,
            "max_aliases": max_aliases,
        }
        await self.session.execute(_ADD_ALIAS, params)

    async def nearest(
        self,
        tenant_id: uuid.UUID,
        namespace: str,
        scope_hash: bytes,
        embedder: str,
        dimension: int,
        vector: npt.NDArray[np.float32],
        *,
        k: int,
        ef_search: int,
        max_age_s: int | None = None,
        stale_s: int = 0,
    ) -> list[StoredEntry]:
        """The k live entries of this scope nearest to `vector`, best first.

        The HNSW index is partial per embedder and cast to its dimension; the query repeats
        that expression and predicate literally so the planner can use it. Iterative scan
        (pgvector 0.8) keeps walking the graph until k rows pass the tenant/scope filter,
        so a small tenant among large ones still gets its neighbours.
        """
        check_embedder_name(embedder)
        await self.session.execute(_SEARCH_SETTINGS, {"ef_search": str(int(ef_search))})
        distance = f"(embedding::halfvec({int(dimension)}) <=> CAST(:vector AS halfvec({int(dimension)})))"
        # relaxed_order may return rows slightly out of order: the outer query re-sorts.
        sql = text(
            f"SELECT * FROM (SELECT {_COLUMNS}, {distance} AS distance FROM cache_entries "  # noqa: S608 (validated name, ints)
            f"WHERE embedder = '{embedder}' AND tenant_id = :tenant_id AND namespace = :namespace "
            f"AND scope_hash = :scope_hash AND {_LIVE} "
            f"ORDER BY {distance} LIMIT :k) nearest ORDER BY distance"
        )
        rows = (
            await self.session.execute(
                sql,
                {
                    "tenant_id": tenant_id,
                    "namespace": namespace,
                    "scope_hash": scope_hash,
                    "vector": HalfVector(vector),
                    "k": k,
                    "max_age_s": max_age_s,
                    "stale_s": stale_s,
                },
            )
        ).all()
        return [_row(row, similarity=1.0 - float(row.distance)) for row in rows]

    async def insert(self, entry: NewEntry) -> uuid.UUID | None:
        """Store an entry; its id, or None when its tenant was deleted meanwhile (migration 0160's
        trigger stores nothing for a deleted tenant)."""
        entry_id = entry.id or uuid.uuid4()
        params = {
            "id": entry_id,
            "tenant_id": entry.tenant_id,
            "namespace": entry.namespace,
            "model": entry.model,
            "scope_hash": entry.scope_hash,
            "exact_hash": entry.exact_hash,
            "prompt": entry.prompt,
            "embedder": entry.embedder,
            "embedding": HalfVector(entry.embedding) if entry.embedding is not None else None,
            "response": json.dumps(entry.response, separators=(",", ":")),
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
            "cost_usd": entry.cost_usd,
            "ttl_s": entry.ttl_s,
        }
        stored = (await self.session.execute(_INSERT, params)).scalar_one_or_none()
        return entry_id if stored is not None else None

    async def get(self, entry_id: uuid.UUID) -> StoredEntry | None:
        row = (await self.session.execute(_BY_ID, {"id": entry_id})).first()
        return _row(row) if row is not None else None

    async def retire_older(
        self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes, keep: uuid.UUID
    ) -> int:
        """Expire the entries for this exact prompt other than `keep` (a refresh replaced them)
        and drop their aliases; how many. Expired, not deleted: a flagged one stays for review,
        and the error bound keeps the labels their hits earned."""
        older = select(CacheEntry.id).where(
            CacheEntry.tenant_id == tenant_id,
            CacheEntry.namespace == namespace,
            CacheEntry.exact_hash == exact_hash,
            CacheEntry.id != keep,
            or_(CacheEntry.expires_at.is_(None), CacheEntry.expires_at > func.now()),
        )
        ids = list((await self.session.scalars(older)).all())
        if not ids:
            return 0
        await self.session.execute(
            update(CacheEntry).where(CacheEntry.id.in_(ids)).values(expires_at=func.now())
        )
        await self.session.execute(
            delete(CacheAlias).where(CacheAlias.tenant_id == tenant_id, CacheAlias.entry_id.in_(ids))
        )
        return len(ids)

    async def delete(self, entry_id: uuid.UUID) -> tuple[uuid.UUID, bool] | None:
        """Delete the entry: its tenant and whether it was flagged, or None when there was none."""
        result = await self.session.execute(
            delete(CacheEntry)
            .where(CacheEntry.id == entry_id)
            .returning(CacheEntry.tenant_id, CacheEntry.flagged)
        )
        row = result.first()
        return None if row is None else (row[0], bool(row[1]))

    async def add_hits(self, hits: Mapping[uuid.UUID, tuple[int, datetime]]) -> None:
        """Add counted hits to their entries (id -> count, time of the latest), in one statement."""
        ids = list(hits)
        params = {"ids": ids, "counts": [hits[i][0] for i in ids], "ats": [hits[i][1] for i in ids]}
        await self.session.execute(_ADD_HITS, params)

    async def record_feedback(
        self, entry_id: uuid.UUID, *, correct: bool, prompt: str | None = None
    ) -> StoredEntry | None:
        """A wrong hit flags the entry: it never serves again. `prompt`, the one that got the
        wrong answer, is kept for review (the latest report's)."""
        values: dict[str, Any] = (
            {"feedback_correct": CacheEntry.feedback_correct + 1}
            if correct
            else {"feedback_wrong": CacheEntry.feedback_wrong + 1, "flagged": True}
        )
        if prompt is not None and not correct:
            values["wrong_hit_prompt"] = prompt
        result = await self.session.execute(
            update(CacheEntry).where(CacheEntry.id == entry_id).values(**values).returning(CacheEntry.id)
        )
        if result.first() is None:
            return None
        if not correct:  # its paraphrases no longer find it either
            await self.session.execute(_DROP_ALIASES, {"entry_id": entry_id})
        return await self.get(entry_id)

    async def drop_tenant_aliases(self, tenant_id: uuid.UUID) -> int:
        """Every alias of the tenant: the wordings its verifier served under settings it no longer has."""
        result = await self.session.execute(_DROP_TENANT_ALIASES, {"tenant_id": tenant_id})
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def clear_flag(self, entry_id: uuid.UUID) -> bool:
        """A reviewer judged a flagged entry right after all: it serves again (its counts stay)."""
        result = await self.session.execute(
            update(CacheEntry).where(CacheEntry.id == entry_id, CacheEntry.flagged).values(flagged=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def ensure_embedding_index(self, embedder: str, dimension: int) -> None:
        """A partial HNSW index for this embedder's vectors, at its dimension (idempotent).

        An index that exists is found in the catalog: CREATE INDEX, even IF NOT EXISTS, first
        takes a lock that waits for every write in progress on the table, and makes later ones
        wait, at each worker's start."""
        check_embedder_name(embedder)
        found = await self.session.execute(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": hnsw_index_name(embedder)}
        )
        if found.scalar_one():
            return
        await self.session.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(embedder)} ON cache_entries "
                f"USING hnsw ((embedding::halfvec({int(dimension)})) halfvec_cosine_ops) "
                f"WITH (m = 16, ef_construction = 64) WHERE embedder = '{embedder}'"
            )
        )
