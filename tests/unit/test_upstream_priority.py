"""The priority semaphore and the router's small pure helpers."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from app.errors import BadRequest
from app.upstream import PrioritySemaphore
from app.upstream.router import _check_priority, _retry_after_s, _truncate_completion


async def test_admits_by_priority_then_arrival() -> None:
    semaphore = PrioritySemaphore(1)
    await semaphore.acquire()
    admitted: list[str] = []

    async def wait(name: str, priority: int) -> None:
        async with semaphore.slot(priority):
            admitted.append(name)

    tasks = []
    for name, priority in [("low", 1), ("mid-1", 5), ("urgent", 10), ("mid-2", 5)]:
        tasks.append(asyncio.create_task(wait(name, priority)))
        await asyncio.sleep(0)
    assert semaphore.waiting == 4

    semaphore.release()
    await asyncio.gather(*tasks)

    assert admitted == ["urgent", "mid-1", "mid-2", "low"]
    assert (semaphore.in_use, semaphore.waiting) == (0, 0)


async def test_free_slots_admit_at_once_up_to_the_limit() -> None:
    semaphore = PrioritySemaphore(2)
    await semaphore.acquire(1)
    await semaphore.acquire(1)
    blocked = asyncio.create_task(semaphore.acquire(10))
    await asyncio.sleep(0)

    assert not blocked.done()
    semaphore.release()
    await blocked
    assert semaphore.in_use == 2


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    semaphore = PrioritySemaphore(1)
    await semaphore.acquire()
    cancelled = asyncio.create_task(semaphore.acquire(10))
    later = asyncio.create_task(semaphore.acquire(1))
    await asyncio.sleep(0)

    cancelled.cancel()
    await asyncio.sleep(0)
    semaphore.release()
    await asyncio.wait_for(later, timeout=1)

    assert cancelled.cancelled()
    assert semaphore.in_use == 1
    semaphore.release()
    assert semaphore.in_use == 0


def test_priority_range() -> None:
    _check_priority(1)
    _check_priority(10)
    with pytest.raises(BadRequest):
        _check_priority(0)
    with pytest.raises(BadRequest):
        _check_priority(11)


def test_retry_after_forms() -> None:
    assert _retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert _retry_after_s({"retry-after": "2"}) == 2.0
    assert _retry_after_s({}) is None
    assert _retry_after_s({"retry-after": "soon"}) is None
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 < (_retry_after_s({"retry-after": in_five}) or 0) <= 5.0


def test_truncation_marks_length() -> None:
    completion = {
        "choices": [
            {"index": 0, "message": {"content": "x" * 12}, "finish_reason": "stop"},
            {"index": 1, "message": {"content": "short"}, "finish_reason": "stop"},
        ]
    }

    assert _truncate_completion(completion, 10)
    assert completion["choices"][0] == {
        "index": 0,
        "message": {"content": "x" * 10},
        "finish_reason": "length",
    }
    assert completion["choices"][1]["finish_reason"] == "stop"
