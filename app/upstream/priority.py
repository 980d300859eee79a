"""An async semaphore that admits waiters party by party in turn, each party's by priority, then by
arrival."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

MIN_PRIORITY = 1
MAX_PRIORITY = 10
"""10 is the most urgent, as `AIRequest.priority` has it: a higher number is served first."""
DEFAULT_PRIORITY = 5


@dataclass(frozen=True, slots=True)
class Turn:
    """How a call waits for an upstream's slot: its `priority` among the calls of its `party` (a
    tenant; None: Déjà's own calls, such as the error bound's judge)."""

    priority: int = DEFAULT_PRIORITY
    party: Hashable | None = None


class PrioritySemaphore:
    """At most `limit` holders. When full, the parties with waiters take turns (round robin), and
    a party's next waiter is its highest priority, ties in arrival order: one party's flood, at
    any priority, delays another's requests by one turn each, never starves them. A freed slot is
    handed straight to that waiter, so a newcomer cannot jump it."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._free = limit
        self._waiters: dict[Hashable | None, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._turns: deque[Hashable | None] = deque()  # the parties with waiters, next first
        self._arrival = itertools.count()

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._waiters.values() for _, _, future in queue if not future.done())

    async def acquire(self, priority: int = DEFAULT_PRIORITY, party: Hashable | None = None) -> None:
        # Invariant: a free slot means nobody is waiting (release hands slots to waiters first).
        if self._free > 0:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(party)
        if queue is None:
            queue = self._waiters[party] = []
            self._turns.append(party)
        heapq.heappush(queue, (-priority, next(self._arrival), future))
        try:
            await future
        except asyncio.CancelledError:
            # Handed a slot just as we were cancelled: pass it on rather than leak it.
            if future.done() and not future.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while self._turns:
            party = self._turns.popleft()
            queue = self._waiters[party]
            while queue:
                _, _, future = heapq.heappop(queue)
                if not future.done():  # skip waiters that were cancelled
                    future.set_result(None)
                    if queue:
                        self._turns.append(party)  # its next waiter after the other parties'
                    else:
                        del self._waiters[party]
                    return
            del self._waiters[party]
        self._free += 1

    @asynccontextmanager
    async def slot(
        self, priority: int = DEFAULT_PRIORITY, party: Hashable | None = None
    ) -> AsyncIterator[None]:
        await self.acquire(priority, party)
        try:
            yield
        finally:
            self.release()
