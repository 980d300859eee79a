"""A miss's booking in one round trip: `deja_book_miss` (migration 0100) writes what the booking
transaction of a miss wrote (the answer's entry, the release of the replicas' claim on its key,
the reservation settled to what the call used, the ledger row) as one durable statement.

It runs with the caller's rights: row-level security holds inside it as everywhere else. When it
fails (an outage, the function missing, anything the database refuses) nothing of it was written,
and the booking writer books the same request in a transaction instead (`Bookkeeper.book`), which
spools what the database cannot take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pgvector import HalfVector

from app.cache.repository import NewEntry
from app.db.fastpath import FastConnections
from app.ledger.quotas import PERIODS, Reservation
from app.ledger.repository import LedgerRow
from app.upstream.usage import Usage

BOOK = (
    "SELECT deja_book_miss($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
    "$18, $19, $20, $21, $22, $23)"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """The replicas' claim on a prompt's key, held by this process until the answer is stored."""

    namespace: str
    exact_hash: bytes
    holder: str


@dataclass(frozen=True, slots=True)
class MissBooking:
    """Everything a miss's booking writes, for the one-statement path."""

    row: LedgerRow
    reservation: Reservation
    usage: Usage
    entry: NewEntry | None = None
    claim: Claim | None = None

    @staticmethod
    def possible(reservation: Reservation | None, entry: NewEntry | None) -> bool:
        """Whether the function can write it: a reservation with its lease row in both periods
        (not one replayed from an old spool), and an entry with its embedding."""
        return (
            reservation is not None
            and reservation.id is not None
            and reservation.periods == PERIODS
            and (entry is None or entry.embedding is not None)
        )

    async def write(self, connections: FastConnections) -> None:
        row, reservation, entry, claim = self.row, self.reservation, self.entry, self.claim
        if reservation.id is None or (entry is not None and entry.embedding is None):
            raise ValueError("not a booking deja_book_miss can write")
        values = row.storable()
        metadata = values.pop("metadata")
        ledger = json.dumps(values, separators=(",", ":"), default=str)
        place = entry or claim
        await connections.fetchrow(
            BOOK,
            row.tenant_id,
            ledger,
            metadata,
            reservation.id,
            reservation.starts[0].date(),
            reservation.starts[1].date(),
            reservation.tokens,
            reservation.cost_usd,
            self.usage.total,
            row.cost_usd,
            entry.id if entry is not None else None,
            place.namespace if place is not None else None,
            entry.model if entry is not None else None,
            entry.scope_hash if entry is not None else None,
            place.exact_hash if place is not None else None,
            entry.prompt if entry is not None else None,
            entry.embedder if entry is not None else None,
            HalfVector(entry.embedding) if entry is not None and entry.embedding is not None else None,
            json.dumps(entry.response, separators=(",", ":")) if entry is not None else None,
            entry.prompt_tokens if entry is not None else None,
            entry.completion_tokens if entry is not None else None,
            entry.ttl_s if entry is not None else None,
            claim.holder if claim is not None else None,
        )
