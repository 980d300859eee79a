"""A miss's quota reservation and its replica claim in one round trip: `deja_reserve_miss`
(migration 0090) runs the statements the lookup's transaction ran on a miss (counter rows, the
reservation in both periods under their limits, its lease row, the claim of the prompt's key) and
commits without waiting for the WAL, as that transaction did.

It runs with the caller's rights: row-level security holds inside it as everywhere else. A full
quota writes nothing (SQLSTATE DJ429): the caller reads the quotas to say which one is full.
"""

from __future__ import annotations

import uuid

import asyncpg

from app.db.fastpath import FastConnections
from app.db.leases import Lease
from app.ledger.quotas import Reservation, ReservationTerms

RESERVE = "SELECT deja_reserve_miss($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS claimed"
QUOTA_FULL = "DJ429"


class QuotaFull(Exception):
    """A period's limit did not allow the reservation; nothing was written."""


async def reserve_miss(
    connections: FastConnections,
    tenant_id: uuid.UUID,
    terms: ReservationTerms,
    lease: Lease,
    namespace: str,
    exact_hash: bytes,
    claim_lease: Lease,
) -> tuple[Reservation, bool]:
    """The reservation made, and whether this process now leads the key among the replicas."""
    reservation_id = uuid.uuid4()
    try:
        row = await connections.fetchrow(
            RESERVE,
            tenant_id,
            terms.day,
            terms.month,
            terms.tokens,
            terms.cost_usd,
            reservation_id,
            lease.holder,
            float(lease.seconds),
            namespace,
            exact_hash,
            claim_lease.holder,
            float(claim_lease.seconds),
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == QUOTA_FULL:
            raise QuotaFull from None
        raise
    return terms.reservation(tenant_id, reservation_id), bool(row is not None and row["claimed"])
