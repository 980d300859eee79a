"""Identical concurrent misses make one upstream call (in one process; see docs/caching.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Any


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
        return future

    def finish(
        self,
        key: Hashable,
        future: asyncio.Future[Any],
        *,
        result: Any = None,
        error: BaseException | None = None,
        linger: bool = True,
    ) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
        if error is None and linger:
            self._finished_at[key] = time.monotonic()
            asyncio.get_running_loop().call_later(self._linger_s, self._forget, key, future)
        else:
            self._forget(key, future)

    def _forget(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
            self._finished_at.pop(key, None)
