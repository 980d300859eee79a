"""The semantic tier's nearest-neighbour search in one round trip: an SQL function sets the tenant
context and the search settings and returns the k nearest live entries of the scope, nearest
first, as `CacheRepository.nearest` does in a transaction.

Each embedder has its own function (migration 0140): the query spells the embedder's name and
dimension as literals, as its partial HNSW index requires, so it is static SQL that Postgres keeps
parsed. The migrations make the default embedder's; `SemanticProbe.ensure` (at start-up, beside
the index) makes another's if need be, and names it. The generic `deja_semantic_probe` takes the
embedder as arguments and calls the same function.

The functions run with the caller's rights: row-level security holds inside them as everywhere
else. The vector travels in pgvector's binary format (`FastConnections` registers the codec).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pgvector import HalfVector
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.exact_probe import entry_of
from app.cache.repository import StoredEntry, check_embedder_name
from app.db.errors import describe_database_error
from app.db.fastpath import FastConnections

log = logging.getLogger(__name__)

# For any embedder, by name and dimension (scripts, psql): one more call inside.
PROBE = "SELECT * FROM deja_semantic_probe($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"

_ENSURE_SIGNATURE = "deja_ensure_semantic_probe(text, integer)"
ENSURE = "SELECT deja_ensure_semantic_probe($1, $2)"
_FUNCTION = re.compile(r"deja_semantic_probe_[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class SemanticProbe:
    """One embedder's probe function."""

    function: str

    def __post_init__(self) -> None:
        # The name is spelled into the statement's text.
        if not _FUNCTION.fullmatch(self.function):
            raise ValueError(f"not a semantic probe function: {self.function!r}")

    @property
    def statement(self) -> str:
        return f"SELECT * FROM {self.function}($1, $2, $3, $4, $5, $6, $7, $8)"  # noqa: S608 (validated name)

    @classmethod
    async def ensure(cls, session: AsyncSession, embedder: str, dimension: int) -> SemanticProbe | None:
        """The embedder's function, created if it is not there yet (idempotent). None, logged, when
        the database cannot give it (migration 0140 not applied, a role that may not create it):
        semantic lookups then use transactions, as before the function existed."""
        if not await session.scalar(text("SELECT to_regprocedure(:f) IS NOT NULL"), {"f": _ENSURE_SIGNATURE}):
            log.warning(
                "deja_ensure_semantic_probe is missing (migrations not applied): semantic lookups use transactions"
            )
            return None
        try:
            async with session.begin_nested():
                name = await session.scalar(
                    text("SELECT deja_ensure_semantic_probe(:embedder, :dimension)"),
                    {"embedder": check_embedder_name(embedder), "dimension": int(dimension)},
                )
        except DBAPIError as exc:
            log.warning(
                "the semantic probe function could not be created: semantic lookups use transactions",
                extra={"error": describe_database_error(exc)},
            )
            return None
        return cls(str(name))

    @classmethod
    async def recreate(cls, connections: FastConnections, embedder: str, dimension: int) -> SemanticProbe:
        """The embedder's function made again (it was dropped while the service ran)."""
        row = await connections.fetchrow(ENSURE, check_embedder_name(embedder), int(dimension))
        assert row is not None
        return cls(str(row[0]))

    async def nearest(
        self,
        connections: FastConnections,
        tenant_id: uuid.UUID,
        namespace: str,
        scope_hash: bytes,
        vector: npt.NDArray[np.float32],
        *,
        k: int,
        ef_search: int,
        max_age_s: int | None = None,
        stale_s: int = 0,
    ) -> list[StoredEntry]:
        """The k live entries of this scope nearest to `vector`, best first."""
        rows = await connections.fetch(
            self.statement,
            tenant_id,
            namespace,
            scope_hash,
            HalfVector(vector),
            int(k),
            int(ef_search),
            max_age_s,
            stale_s,
        )
        return [entry_of(row, 1.0 - float(row["distance"])) for row in rows]
