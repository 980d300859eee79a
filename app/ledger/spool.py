"""A durable local spool for ledger rows written while Postgres is unreachable.

Rows are appended as JSON lines and fsync'd before the response leaves, so a crash loses
none. A background task drains the spool when Postgres answers again; the ledger's unique
`request_id` makes every replay exactly-once (a row already booked is skipped).

Each process appends to a file of its own; a drain first renames a file (atomic), so two
processes never replay the same file, and a drain interrupted by a crash is picked up again.

A row the database refuses for good (not an outage: a constraint it breaks, a line that no
longer decodes) moves to `dead-letter/ledger.jsonl` with the reason, a warning and
`deja_ledger_dead_letters_total`; the drain goes on with the next row. A row of a tenant erased
with its ledger meanwhile is not kept anywhere (migration 0160).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import uuid
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.db.errors import describe_database_error, is_database_outage
from app.ledger.quotas import QuotaRepository, Reservation
from app.ledger.repository import LedgerRepository, LedgerRow
from app.observability import metrics

log = logging.getLogger(__name__)
_RESERVATION = "_reservation"  # beside a spooled row: the quota reservation it still holds


def _encode(row: LedgerRow, reservation: Reservation | None) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal | uuid.UUID):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    data = asdict(row)
    if reservation is not None:
        held = asdict(reservation)
        del held["tenant_id"]  # the row's
        data[_RESERVATION] = held
    return json.dumps(data, default=default, separators=(",", ":"))


def _decode(line: str) -> tuple[LedgerRow, Reservation | None]:
    data = json.loads(line)
    held = data.pop(_RESERVATION, None)
    for name in ("tenant_id", "api_key_id", "entry_id"):
        if data.get(name) is not None:
            data[name] = uuid.UUID(data[name])
    for name in ("cost_usd", "avoided_cost_usd"):
        data[name] = Decimal(data[name])
    if "created_at" in data:  # rows spooled before the field existed are booked at replay time
        data["created_at"] = datetime.fromisoformat(data["created_at"])
    row = LedgerRow(**data)
    if held is None:
        return row, None
    reservation = Reservation(
        tenant_id=row.tenant_id,
        periods=tuple(held["periods"]),
        starts=tuple(datetime.fromisoformat(start) for start in held["starts"]),
        tokens=int(held["tokens"]),
        cost_usd=Decimal(held["cost_usd"]),
        id=uuid.UUID(held["id"]) if held.get("id") else None,
    )
    return row, reservation


def _append_line(path: Path, line: str) -> None:
    """Append `line` to the file at `path`, durably. Under the file's lock, and to the file the
    path still names: a drain in another process claims a spool by renaming it under that lock,
    then reads it, and a line written after that read (to the renamed file, opened before the
    rename) would be deleted with it, never booked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if not _names(path, handle.fileno()):
                continue  # claimed meanwhile: the path now names a new file
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            return


def _names(path: Path, descriptor: int) -> bool:
    """Whether `path` still names the file open as `descriptor`."""
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _claim(path: Path, claimed: Path) -> bool:
    """Rename the live spool `path` to `claimed` under its lock (no append is half-way through
    it then, and every later one goes to a new file); False when another drain claimed it first."""
    try:
        handle = path.open("rb")  # a lock needs no write access, and no file is created
    except FileNotFoundError:
        return False
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if not _names(path, handle.fileno()):
            return False
        path.rename(claimed)
        return True


class LedgerSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = self.directory / f"ledger-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.dead_letters = self.directory / "dead-letter" / "ledger.jsonl"
        self._lock = asyncio.Lock()

    def pending_files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.suffix in (".jsonl", ".draining"))

    @property
    def pending(self) -> bool:
        return any(p.stat().st_size for p in self.pending_files())

    async def append(self, row: LedgerRow, reservation: Reservation | None = None) -> None:
        """Keep `row` until it can be booked, with the quota reservation it still holds."""
        line = _encode(row, reservation) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._write, line)

    def _write(self, line: str) -> None:
        _append_line(self._file, line)

    async def drain(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Book every spooled row; returns how many were new. Stops at the first outage."""
        booked = 0
        for path in self.pending_files():
            claimed = path if path.suffix == ".draining" else path.with_suffix(f".{os.getpid()}.draining")
            if claimed != path:
                async with self._lock:  # our own appends wait; another process's, the file's lock
                    if not await asyncio.to_thread(_claim, path, claimed):
                        continue  # another process claimed it
            lines = [
                line
                for line in claimed.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()
            ]
            try:
                async with transaction(sessionmaker, system=True) as session:
                    ledger = LedgerRepository(session)
                    for line in lines:
                        booked += await self._replay(ledger, line)
            except Exception as exc:
                if is_database_outage(exc):
                    return booked  # still down: the claimed file is retried next time
                raise
            claimed.unlink(missing_ok=True)
        return booked

    async def _replay(self, ledger: LedgerRepository, line: str) -> int:
        """Book one spooled line in a savepoint of its own; a refused one goes to the dead letters."""
        try:
            row, reservation = _decode(line)
        except (ValueError, TypeError, KeyError) as exc:
            await self._dead_letter(line, f"undecodable: {type(exc).__name__}")
            return 0
        try:
            async with ledger.session.begin_nested():
                if not await ledger.append(row):
                    return 0  # booked before (a drain interrupted after its commit): counted then too
                await QuotaRepository(ledger.session).settle_row(row, reservation)
                return 1
        except Exception as exc:
            if is_database_outage(exc):
                raise
            await self._dead_letter(line, describe_database_error(exc), request_id=row.request_id)
            return 0

    async def _dead_letter(self, line: str, reason: str, *, request_id: str | None = None) -> None:
        log.warning(
            "ledger row refused for good; moved to the dead letters",
            extra={"request_id": request_id, "reason": reason},
        )
        metrics.ledger_dead_letter()
        record = json.dumps({"reason": reason, "row": line}, separators=(",", ":"))
        async with self._lock:
            await asyncio.to_thread(_append_line, self.dead_letters, record + "\n")

    async def run(self, sessionmaker: async_sessionmaker[AsyncSession], *, every_s: float = 2.0) -> None:
        """Drain in the background for the life of the process."""
        while True:
            await asyncio.sleep(every_s)
            if not self.pending_files():
                continue
            try:
                booked = await self.drain(sessionmaker)
                if booked:
                    log.info("ledger spool drained", extra={"rows": booked})
            except Exception:
                log.exception("ledger spool drain failed")
