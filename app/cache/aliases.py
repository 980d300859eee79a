"""Aliases written after the response, in batches: a served paraphrase becomes an alias of its entry
(the same wording is an exact hit next time), written once the client has its answer.

A bounded queue and one task that drains it (`app.db.after_response.BatchDrain`): what queued up
while the last batch was written goes in the next, one statement per tenant (`deja_add_aliases`,
migration 0120) on the fast connections. When that statement cannot run (the function missing,
the connections down) or the database refuses it, the batch is written in a transaction of the
tenant's instead, and a batch refused there is retried alias by alias, so that one bad alias (its
entry deleted meanwhile) is the only one lost. Aliases may be lost: a full queue drops them, and
so does an outage. Closing writes what is queued.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.repository import CacheRepository
from app.db.after_response import BatchDrain
from app.db.engine import DatabaseDown, attempt
from app.db.fastpath import FastConnections, missing_function

log = logging.getLogger(__name__)

ADD = "SELECT deja_add_aliases($1, $2, $3, $4, $5, $6)"
# Aliases written in one statement at most (a batch holds one of the fast connections the lookups
# use while it runs: a few milliseconds); the queue holds at most MAX_PENDING.
BATCH = 64
MAX_PENDING = 10_000
# A full queue drops aliases: said in the log at the first drop and every DROPS_LOGGED after.
DROPS_LOGGED = 1000


@dataclass(frozen=True, slots=True)
class NewAlias:
    """The wording of a served paraphrase (its exact hash) and the entry it was served."""

    tenant_id: uuid.UUID
    namespace: str
    exact_hash: bytes
    entry_id: uuid.UUID
    similarity: float


class AliasWriter:
    """Writes aliases after their responses; `start` gives it the database (until then, and after
    `aclose`, `add` drops)."""

    def __init__(self, max_aliases: int) -> None:
        self.max_aliases = max_aliases
        self.fast: FastConnections | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._drain: BatchDrain[NewAlias] | None = None
        # Aliases dropped because the queue was full.
        self.dropped = 0

    def start(
        self, sessionmaker: async_sessionmaker[AsyncSession] | None, fast: FastConnections | None
    ) -> None:
        """Where to write: one statement on `fast`, else (or when it fails) a transaction made by
        `sessionmaker`; with neither, aliases are dropped."""
        self.sessionmaker, self.fast = sessionmaker, fast
        self._drain = BatchDrain(
            self.write,
            name="alias-writer",
            batch=BATCH,
            max_pending=MAX_PENDING,
            failure="aliases not written",
        )

    def add(self, alias: NewAlias) -> None:
        """Queue `alias`; dropped when aliases are off, the writer is not running or the queue is full."""
        if self._drain is None or self._drain.closed or self.max_aliases <= 0:
            return
        if not self._drain.put(alias):
            self.dropped += 1
            if self.dropped % DROPS_LOGGED == 1:
                log.warning("alias queue full: aliases dropped", extra={"dropped": self.dropped})

    @property
    def pending(self) -> int:
        return self._drain.pending if self._drain is not None else 0

    async def flush(self) -> None:
        """Wait until every alias added so far is written (or dropped)."""
        if self._drain is not None:
            await self._drain.flush()

    async def aclose(self) -> None:
        """Write what is queued, then stop; aliases added from now on are dropped."""
        if self._drain is not None:
            await self._drain.aclose()

    async def write(self, aliases: list[NewAlias]) -> None:
        """Write `aliases` now: one statement per tenant, a transaction where it cannot run."""
        by_tenant: dict[uuid.UUID, list[NewAlias]] = {}
        for alias in aliases:
            by_tenant.setdefault(alias.tenant_id, []).append(alias)
        for tenant_id, batch in by_tenant.items():
            if not await self._write_fast(tenant_id, batch) and not await self._write_in_transaction(
                tenant_id, batch
            ):
                for alias in batch if len(batch) > 1 else ():
                    await self._write_in_transaction(tenant_id, [alias])

    async def _write_fast(self, tenant_id: uuid.UUID, batch: list[NewAlias]) -> bool:
        if self.fast is None:
            return False
        try:
            await self.fast.fetchrow(
                ADD,
                tenant_id,
                [a.namespace for a in batch],
                [a.exact_hash for a in batch],
                [a.entry_id for a in batch],
                [a.similarity for a in batch],
                self.max_aliases,
            )
        except Exception as exc:
            # Nothing of it was written (or, if the connection broke after the commit, all of it:
            # writing it again changes nothing, a wording already aliased keeps its alias). The
            # transaction below writes the batch.
            if missing_function(exc):
                log.warning("deja_add_aliases is missing (migrations not applied): aliases in transactions")
                self.fast = None
            else:
                log.warning(
                    "aliases in one statement failed; writing them in a transaction",
                    extra={"count": len(batch), "error": type(exc).__name__},
                )
            return False
        return True

    async def _write_in_transaction(self, tenant_id: uuid.UUID, batch: list[NewAlias]) -> bool:
        """False when the database refused the transaction (an outage drops the batch: True)."""
        if self.sessionmaker is None:
            return True

        async def write(session: AsyncSession) -> None:
            repository = CacheRepository(session)
            for a in batch:
                await repository.add_alias(
                    tenant_id,
                    a.namespace,
                    a.exact_hash,
                    a.entry_id,
                    a.similarity,
                    max_aliases=self.max_aliases,
                )

        try:
            written = await attempt(self.sessionmaker, write, tenant_id=tenant_id, durable=False)
        except Exception as exc:
            log.warning("aliases refused", extra={"count": len(batch), "error": type(exc).__name__})
            return False
        if isinstance(written, DatabaseDown):
            log.warning("aliases lost: database unreachable", extra={"count": len(batch)})
        return True
