"""Writes made after the response: a bounded queue that one task drains in batches.

What queues up while a batch is being written goes in the next one, so a busy process writes in
batches and an idle one at once. `flush` waits until everything put so far is written; `aclose`
writes what is queued, then stops. The booking writer (`app.ledger.writer`) and the alias writer
(`app.cache.aliases`) are built on it; what to do with an item the queue cannot take (write it in
the request, drop it) is theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Flush:
    """A marker in the queue: done once everything put before it is written."""

    __slots__ = ("done",)

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done

    def release(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class BatchDrain(Generic[T]):
    """`put` items; one task (started by the first `put`) hands them to `write` in batches of at
    most `batch`. A batch `write` raises on is logged with `failure` and dropped: `write` keeps
    what must not be lost (the bookings' spool)."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        name: str,
        batch: int,
        max_pending: int,
        failure: str,
    ) -> None:
        self._write = write
        self._name = name
        self._batch = batch
        self._failure = failure
        self._queue: asyncio.Queue[T | _Flush] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self.closed = False

    def put(self, item: T) -> bool:
        """Queue `item`; False when the drain is closed or its queue full (nothing queued)."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        if self._task is None or self._task.done():
            # A context of its own: not the request's that happened to start it (log fields).
            self._task = asyncio.create_task(self._run(), name=self._name, context=contextvars.Context())
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until every item put so far is written (or its batch failed)."""
        if self._task is None or self._task.done() or (self._queue.empty() and not self._busy):
            return
        marker = _Flush(asyncio.get_running_loop().create_future())
        await self._queue.put(marker)
        await marker.done

    async def aclose(self) -> None:
        """Write what is queued, then stop; `put` refuses from now on."""
        self.closed = True
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Nothing is put once closed, so the flush above wrote everything; a waiter whose marker
        # was still queued is let go.
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Flush):
                item.release()

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            batch = cast(list[T], [item for item in items if not isinstance(item, _Flush)])
            self._busy = True
            try:
                if batch:
                    await self._write(batch)
            except Exception:
                log.exception(self._failure)
            finally:
                self._busy = False
                for item in items:
                    if isinstance(item, _Flush):
                        item.release()
