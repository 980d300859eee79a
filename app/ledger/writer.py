"""Bookings written after the response: a bounded queue and one task that drains it
(`app.db.after_response.BatchDrain`).

A hit's ledger row and a miss's stored answer, settled quota and ledger row are written here,
once the client has its answer. Rows that are only a booking (hits) are written in batches, one
statement per tenant (`deja_book_hits`, migration 0170), or one transaction per tenant when that
statement cannot run; the others one at a time: as one statement when the booking can be one (a
miss: `app.completions.miss_booking`), else one `Bookkeeper.book` each (its answer stored in the
same transaction), which is also where a failed statement goes. Whatever the database refuses or
cannot take goes where `Bookkeeper` sends it (the durable spool), so nothing is lost; a full queue
makes the request write its booking itself (the queue bounds memory, never drops). Closing drains
the queue.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.db.after_response import BatchDrain
from app.db.fastpath import FastConnections, connection_failed, missing_function
from app.ledger.booking import Bookkeeper, Work
from app.ledger.quotas import Reservation
from app.ledger.repository import LedgerRow
from app.upstream.usage import Usage

log = logging.getLogger(__name__)

# Called once the booking is written (True) or was booked without its `also` (False).
After = Callable[[bool], Awaitable[None]]
BATCH = 256
BOOK_HITS = "SELECT deja_book_hits($1, $2)"


def hits_json(rows: Sequence[LedgerRow]) -> str:
    """One tenant's rows as `deja_book_hits` reads them: a JSON array of their `storable` values,
    each row's metadata (JSON text there, already cut to its bound) spliced in as an object."""
    parts = []
    for row in rows:
        values = row.storable()
        metadata = values.pop("metadata")
        encoded = json.dumps(values, separators=(",", ":"), default=str)
        parts.append(f'{encoded[:-1]},"metadata":{metadata}}}')
    return f"[{','.join(parts)}]"


class OneStatement(Protocol):
    """A booking that can also be written as one statement on the fast connections (a miss:
    `app.completions.miss_booking`); the same booking as `Bookkeeper.book` would write it."""

    async def write(self, connections: FastConnections) -> None: ...


@dataclass(slots=True)
class _Booking:
    row: LedgerRow
    reservation: Reservation | None = None
    usage: Usage | None = None
    also: Work | None = None
    after: After | None = None
    fast: OneStatement | None = None

    @property
    def plain(self) -> bool:
        return self.also is None and self.reservation is None and self.after is None


class BookingWriter:
    def __init__(
        self, books: Bookkeeper, *, fast: FastConnections | None = None, max_pending: int = 10_000
    ) -> None:
        self.books = books
        # Where a booking that can be one statement is written first (None: always a transaction).
        self.fast = fast
        self._hits_in_one_statement = fast is not None
        self._drain: BatchDrain[_Booking] = BatchDrain(
            self._write,
            name="booking-writer",
            batch=BATCH,
            max_pending=max_pending,
            failure="bookings not written by the writer",
        )

    async def submit(
        self,
        row: LedgerRow,
        *,
        reservation: Reservation | None = None,
        usage: Usage | None = None,
        also: Work | None = None,
        after: After | None = None,
        fast: OneStatement | None = None,
    ) -> None:
        """Book `row` (with `also`, settling `reservation`) after this request; `after` runs once it
        is written. `fast`, the same booking as one statement, is tried first."""
        booking = _Booking(row, reservation, usage, also, after, fast)
        if not self._drain.put(booking):
            await self._write([booking])  # closed, or the queue is full: written by the request itself

    @property
    def pending(self) -> int:
        return self._drain.pending

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (or spooled)."""
        await self._drain.flush()

    async def aclose(self) -> None:
        """Write what is queued, then stop; later submissions are written by their requests."""
        await self._drain.aclose()

    async def _write(self, batch: list[_Booking]) -> None:
        plain = [booking.row for booking in batch if booking.plain]
        if plain and self._hits_in_one_statement:
            plain = await self._book_hits(plain)
        if plain:
            await self.books.book_many(plain)
        for booking in batch:
            if booking.plain:
                continue
            written = False
            try:
                written = await self._book(booking)
            except Exception:
                # book() spools what the database refuses; this is the spool itself failing.
                log.exception("booking lost", extra={"request_id": booking.row.request_id})
            finally:
                if booking.after is not None:
                    try:
                        await booking.after(written)
                    except Exception:
                        log.exception(
                            "after-booking step failed", extra={"request_id": booking.row.request_id}
                        )

    async def _book_hits(self, rows: list[LedgerRow]) -> list[LedgerRow]:
        """Book plain rows with `deja_book_hits`, one statement per tenant; the rows left to book
        in a transaction. A statement that failed wrote nothing, or, when the connection broke
        after its commit, its rows: the transaction then leaves them as they are (the ledger's
        key is the request id) and hits settle no quota, so nothing is booked twice."""
        fast = self.fast
        if fast is None:
            return rows
        by_tenant: dict[uuid.UUID, list[LedgerRow]] = {}
        for row in rows:
            by_tenant.setdefault(row.tenant_id, []).append(row)
        left: list[LedgerRow] = []
        tenants = list(by_tenant.items())
        for index, (tenant_id, own) in enumerate(tenants):
            try:
                await fast.fetchrow(BOOK_HITS, tenant_id, hits_json(own))
            except Exception as exc:
                if missing_function(exc):
                    log.warning(
                        "deja_book_hits is missing (migrations not applied): hits booked in a transaction"
                    )
                    self._hits_in_one_statement = False
                elif connection_failed(exc):
                    log.warning("hits' booking in one statement could not reach the database")
                else:
                    log.warning(
                        "hits' booking in one statement failed; booking them in a transaction",
                        extra={"rows": len(own), "error": type(exc).__name__},
                    )
                    left.extend(own)
                    continue
                # The function is missing, or the database is out of reach: the other tenants'
                # rows go the transaction's way too (which spools them), without waiting again.
                for _, rest in tenants[index:]:
                    left.extend(rest)
                break
        return left

    async def _book(self, booking: _Booking) -> bool:
        if booking.fast is not None and self.fast is not None:
            try:
                await booking.fast.write(self.fast)
            except Exception as exc:
                # The statement did not commit (unless the connection broke after its commit: then
                # the row is not booked twice, its ledger key is unique, but its usage may be
                # counted twice, as for a transaction in the same doubt). The transaction below
                # books it, or spools it.
                if missing_function(exc):
                    log.warning(
                        "deja_book_miss is missing (migrations not applied): bookings in a transaction"
                    )
                    self.fast = None
                else:
                    log.warning(
                        "booking in one statement failed; booking in a transaction",
                        extra={"request_id": booking.row.request_id, "error": type(exc).__name__},
                    )
            else:
                return True
        return await self.books.book(
            booking.row, reservation=booking.reservation, usage=booking.usage, also=booking.also
        )
