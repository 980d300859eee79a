"""Leases: rows a replica holds while it works on them (a quota reservation, an in-flight miss).

The replica renews its leases every third of their length; any replica releases the ones that
ran out, so a replica that dies (SIGKILL, OOM, a lost node) holds nothing for longer than about
one lease and a third (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import attempt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str  # this process, as its rows name it
    seconds: float

    @classmethod
    def new(cls, seconds: float) -> Lease:
        return cls(holder=uuid.uuid4().hex, seconds=seconds)


LeaseStep = Callable[[AsyncSession, Lease], Awaitable[Any]]


async def keep_leases(
    sessionmaker: async_sessionmaker[AsyncSession], lease: Lease, steps: Sequence[LeaseStep]
) -> None:
    """Run every step (renew what this process holds, release what expired) every third of
    the lease, for the life of the process; each step in its own transaction."""
    while True:
        await asyncio.sleep(lease.seconds / 3)
        for step in steps:
            try:
                await attempt(sessionmaker, functools.partial(_run, step, lease), system=True)
            except Exception:
                log.exception("lease step failed", extra={"step": getattr(step, "__qualname__", "")})


async def _run(step: LeaseStep, lease: Lease, session: AsyncSession) -> None:
    await step(session, lease)
