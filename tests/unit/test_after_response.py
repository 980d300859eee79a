"""The queue behind the writes made after a response (`app.db.after_response.BatchDrain`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.db.after_response import BatchDrain


class Recorder:
    """Writes batches into a list; a batch holding `fail_on` raises; each write waits for `gate`."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, items: list[int]) -> None:
        await self.gate.wait()
        if self.fail_on in items:
            raise RuntimeError("refused")
        self.batches.append(items)


async def test_what_queues_up_during_a_write_goes_in_the_next_batch_at_most_batch_at_a_time() -> None:
    recorder = Recorder()
    drain = BatchDrain(recorder.write, name="test", batch=3, max_pending=100, failure="not written")
    recorder.gate.clear()
    assert drain.put(0)
    await asyncio.sleep(0)  # the task takes 0 and waits at the gate
    for item in range(1, 6):
        assert drain.put(item)
    assert drain.pending == 5
    recorder.gate.set()
    await drain.flush()
    assert recorder.batches == [[0], [1, 2, 3], [4, 5]]
    assert drain.pending == 0


async def test_a_full_queue_or_a_closed_drain_refuses_and_closing_writes_what_is_queued() -> None:
    recorder = Recorder()
    drain = BatchDrain(recorder.write, name="test", batch=10, max_pending=2, failure="not written")
    recorder.gate.clear()
    assert drain.put(1)
    await asyncio.sleep(0)
    assert drain.put(2)
    assert drain.put(3)
    assert not drain.put(4)  # two waiting: full
    recorder.gate.set()
    await drain.aclose()
    assert recorder.batches == [[1], [2, 3]]
    assert not drain.put(5)
    await drain.flush()  # nothing left to wait for
    assert recorder.batches == [[1], [2, 3]]


async def test_a_failed_batch_is_logged_and_the_next_one_is_written(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(fail_on=2)
    drain = BatchDrain(recorder.write, name="test", batch=1, max_pending=10, failure="items not written")
    with caplog.at_level(logging.ERROR, logger="app.db.after_response"):
        for item in (1, 2, 3):
            drain.put(item)
        await drain.flush()
    assert recorder.batches == [[1], [3]]
    assert [r.getMessage() for r in caplog.records] == ["items not written"]


async def test_flush_waits_for_the_batch_being_written_when_nothing_else_is_queued() -> None:
    recorder = Recorder()
    drain = BatchDrain(recorder.write, name="test", batch=10, max_pending=10, failure="not written")
    recorder.gate.clear()
    drain.put(1)
    await asyncio.sleep(0)  # taken from the queue, held at the gate: the queue is empty
    assert drain.pending == 0
    flushed = asyncio.create_task(drain.flush())
    await asyncio.sleep(0.01)
    assert not flushed.done()
    recorder.gate.set()
    await flushed
    assert recorder.batches == [[1]]
