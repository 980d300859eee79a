"""Identical concurrent misses make one upstream call: within a process by a shared future,
across the replicas on one database by a leased row per key (docs/caching.md, docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Hashable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.repository import NO_ALIASES, CacheRepository, StoredEntry
from app.completions.repository import InflightRepository
from app.db.engine import DatabaseDown, attempt
from app.db.leases import Lease

# A follower on another replica looks for the leader's answer this often, backing off to the most.
POLL_FIRST_S = 0.02
POLL_MOST_S = 0.5


class LeaderGone(Exception):
    """What followers get when the leader's own client left before its answer was complete:
    the call was cut for that client's sake, not failed, so each follower asks again itself."""


class SingleFlight:
    """The first caller for a key leads; later callers wait for the leader's result.

    A stored answer stays joinable for `linger_s`, for requests that started before it was
    stored: their cache lookup may have run just before the leader's write, and they would
    otherwise miss both and call the model again. Later requests find the entry by lookup.
    """

    def __init__(self, *, linger_s: float = 2.0) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._finished_at: dict[Hashable, float] = {}
        self._linger_s = linger_s

    def join(self, key: Hashable, *, started_at: float) -> asyncio.Future[Any] | None:
        """The leader's future when a call for `key` is in flight, or was answered after this
        request started (`time.monotonic()`); else None: look up, or lead."""
        future = self._inflight.get(key)
        if future is not None and future.done() and started_at >= self._finished_at.get(key, float("inf")):
            return None
        return future

    def lead(self, key: Hashable) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # Nobody may be waiting when the leader fails: do not warn about an unread exception.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._inflight[key] = future
        # A leader before it may have left its write's time: this one's is not written yet.
        self._finished_at.pop(key, None)
        return future

    def finish(
        self,
        key: Hashable,
        future: asyncio.Future[Any],
        *,
        result: Any = None,
        error: BaseException | None = None,
        linger: bool = True,
        written: bool = True,
    ) -> None:
        """`written=False`: the answer is stored after the response (app.ledger.writer); until
        `written` is called for it, every request for the key joins it, whenever it started."""
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
        if error is None and linger:
            if written:
                self.written(key, future)
        else:
            self._forget(key, future)

    def written(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        """The leader's answer is stored: later requests find it by lookup after the linger."""
        if self._inflight.get(key) is future:
            self._finished_at[key] = time.monotonic()
            asyncio.get_running_loop().call_later(self._linger_s, self._forget, key, future)

    def _forget(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
            self._finished_at.pop(key, None)


class ReplicaCoalescer:
    """One replica leads an identical miss; the others wait for the entry it stores.

    The leader holds the key's row under its process's lease. A follower polls in one short
    transaction: try to take the key (it is free once the leader released it, or its lease ran
    out because the leader died), then look for the stored answer. The claim comes first, so a
    released key is always seen together with the entry stored before the release.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], lease: Lease) -> None:
        self.sessionmaker = sessionmaker
        self.lease = lease

    async def lead_or_wait(
        self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes, *, max_age_s: int | None
    ) -> StoredEntry | None:
        """The answer another replica stored for this key, or None: this replica leads the call
        (it holds the key, or the database is unreachable and there is nobody to agree with)."""
        delay = POLL_FIRST_S

        async def step(session: AsyncSession) -> tuple[bool, StoredEntry | None]:
            keys = InflightRepository(session)
            claimed = await keys.claim(tenant_id, namespace, exact_hash, self.lease)
            # The leader stores an entry under this very hash; aliases are not its answer.
            found = await CacheRepository(session).find_exact(
                tenant_id, namespace, exact_hash, max_age_s=max_age_s, min_alias_similarity=NO_ALIASES
            )
            entry = found[0] if found is not None else None
            if claimed and entry is not None:
                await keys.release(tenant_id, namespace, exact_hash, self.lease)
            return claimed, entry

        while True:
            outcome = await attempt(self.sessionmaker, step, tenant_id=tenant_id)
            if isinstance(outcome, DatabaseDown):
                return None
            claimed, entry = outcome
            if entry is not None or claimed:
                return entry
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_MOST_S)

    async def release(self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes) -> None:
        """Let the followers see the stored answer (or, with none, lead themselves)."""

        async def work(session: AsyncSession) -> None:
            await InflightRepository(session).release(tenant_id, namespace, exact_hash, self.lease)

        await attempt(self.sessionmaker, work, tenant_id=tenant_id)


async def renew_inflight(session: AsyncSession, lease: Lease) -> None:
    """A lease step: this process still works on its in-flight misses; forget long-dead ones."""
    keys = InflightRepository(session)
    await keys.renew(lease)
    await keys.forget_expired()
