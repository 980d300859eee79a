"""Hit counters, batched: a hit adds to a count in memory, and one statement per interval adds
the counts to the entries. A lookup that hits then writes nothing, so its transaction commits
without a WAL flush, and a popular entry's row is not updated by every request at once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.repository import CacheRepository
from app.db.engine import DatabaseDown, attempt

log = logging.getLogger(__name__)


class HitCounter:
    def __init__(self) -> None:
        # entry id -> (hits since the last flush, time of the latest)
        self._pending: dict[uuid.UUID, tuple[int, datetime]] = {}
        # Held while counts are being written: they are then in neither `_pending` nor the rows.
        self._writing = asyncio.Lock()

    def add(self, entry_id: uuid.UUID) -> None:
        count = self._pending.get(entry_id, (0, None))[0]
        self._pending[entry_id] = (count + 1, datetime.now(UTC))

    def pending(self, entry_id: uuid.UUID) -> int:
        """Hits on this entry not yet written (this process's); read within `steady` to add them
        to a row's count."""
        return self._pending.get(entry_id, (0, None))[0]

    @asynccontextmanager
    async def steady(self) -> AsyncIterator[None]:
        """While held no count is being written, so an entry's row read inside it plus `pending`
        is every hit this process counted (a flush between the two would hide the counts it
        carries from both)."""
        async with self._writing:
            yield

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Write what was counted; kept for the next flush when the database is unreachable."""
        async with self._writing:
            return await self._flush(sessionmaker)

    async def _flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        pending, self._pending = self._pending, {}
        if not pending:
            return 0

        async def write(session: AsyncSession) -> None:
            await CacheRepository(session).add_hits(pending)

        if isinstance(await attempt(sessionmaker, write, system=True), DatabaseDown):
            for entry_id, (count, at) in pending.items():
                later = self._pending.get(entry_id, (0, at))
                self._pending[entry_id] = (count + later[0], later[1])
            return 0
        return len(pending)

    async def run(self, sessionmaker: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush(sessionmaker)
            except Exception:
                log.exception("hit counters not written; they are dropped")
