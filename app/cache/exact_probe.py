"""The exact tier in one round trip: `deja_exact_probe` (migration 0070) sets the tenant context and
returns the entry stored under the exact hash, else the entry an alias with that hash points to.

It runs with the caller's rights: row-level security holds inside it as everywhere else.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.cache.repository import StoredEntry
from app.db.fastpath import FastConnections

PROBE = "SELECT * FROM deja_exact_probe($1, $2, $3, $4, $5, $6)"


async def probe_exact(
    connections: FastConnections,
    tenant_id: uuid.UUID,
    namespace: str,
    exact_hash: bytes,
    *,
    max_age_s: int | None,
    min_alias_similarity: float,
) -> tuple[StoredEntry, bool] | None:
    """The servable entry for this exact hash and whether an alias found it; None: not cached."""
    row = await connections.fetchrow(
        PROBE, tenant_id, namespace, exact_hash, max_age_s, 0, min_alias_similarity
    )
    if row is None:
        return None
    return entry_of(row, float(row["similarity"])), bool(row["alias"])


def entry_of(row: Any, similarity: float) -> StoredEntry:
    """An entry from a probe function's row (its columns are StoredEntry's)."""
    response = row["response"]
    return StoredEntry(
        id=row["id"],
        prompt=row["prompt"],
        model=row["model"],
        namespace=row["namespace"],
        response=json.loads(response) if isinstance(response, str) else response,
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        hit_count=row["hit_count"],
        flagged=row["flagged"],
        similarity=similarity,
    )
