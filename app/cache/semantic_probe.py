"""The semantic tier's nearest-neighbour search in one round trip: `deja_semantic_probe` (migration
0080) sets the tenant context and the search settings and returns the k nearest live entries of the
scope, nearest first, as `CacheRepository.nearest` does in a transaction.

It runs with the caller's rights: row-level security holds inside it as everywhere else. The vector
travels in pgvector's binary format (`FastConnections` registers the codec).
"""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt
from pgvector import HalfVector

from app.cache.exact_probe import entry_of
from app.cache.repository import StoredEntry, check_embedder_name
from app.db.fastpath import FastConnections

PROBE = "SELECT * FROM deja_semantic_probe($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"


async def probe_nearest(
    connections: FastConnections,
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
    """The k live entries of this scope nearest to `vector`, best first."""
    rows = await connections.fetch(
        PROBE,
        tenant_id,
        namespace,
        scope_hash,
        check_embedder_name(embedder),
        int(dimension),
        HalfVector(vector),
        int(k),
        int(ef_search),
        max_age_s,
        stale_s,
    )
    return [entry_of(row, 1.0 - float(row["distance"])) for row in rows]
