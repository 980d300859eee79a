"""An async semaphore that admits waiters by priority, then by arrival."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MIN_PRIORITY = 1
MAX_PRIORITY = 10
"""10 is the most urgent, as `AIRequest.priority` has it: a higher number is served first."""
DEFAULT_PRIORITY = 5


class PrioritySemaphore:
    """At most `limit` holders; when full, the waiter with the highest priority goes next, ties in
    arrival order. A freed slot is handed straight to that waiter, so a newcomer cannot jump it."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    async def acquire(self, priority: int = DEFAULT_PRIORITY) -> None:
        # Invariant: a free slot means nobody is waiting (release hands slots to waiters first).
        if self._free > 0:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._arrival), future))
        try:
            await future
        except asyncio.CancelledError:
            # Handed a slot just as we were cancelled: pass it on rather than leak it.
            if future.done() and not future.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():  # skip waiters that were cancelled
                future.set_result(None)
                return
        self._free += 1

    @asynccontextmanager
    async def slot(self, priority: int = DEFAULT_PRIORITY) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
