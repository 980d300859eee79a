"""In-flight misses: the rows through which replicas coalesce identical misses."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.leases import Lease

# Claim the key, or take it over from a holder whose lease ran out. A key this process holds
# already is left over (a release the database missed while it was down): within a process one
# request leads at a time (SingleFlight), so it is claimed again.
_CLAIM = text(
    """
    INSERT INTO inflight_misses (tenant_id, namespace, exact_hash, holder, expires_at)
    VALUES (:tenant_id, :namespace, :exact_hash, :holder, now() + make_interval(secs => :lease_s))
    ON CONFLICT (tenant_id, namespace, exact_hash) DO UPDATE
    SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE inflight_misses.expires_at < now() OR inflight_misses.holder = excluded.holder
    RETURNING holder
    """
)
_RELEASE = text(
    """
    DELETE FROM inflight_misses
    WHERE tenant_id = :tenant_id AND namespace = :namespace AND exact_hash = :exact_hash AND holder = :holder
    """
)
_RENEW = text(
    "UPDATE inflight_misses SET expires_at = now() + make_interval(secs => :lease_s) WHERE holder = :holder"
)
# Left behind by replicas that died and by keys nobody asked for again.
_FORGET_EXPIRED = text("DELETE FROM inflight_misses WHERE expires_at < now() - interval '1 minute'")


class InflightRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes, lease: Lease) -> bool:
        """True when this process now holds the key (it was free, or its holder's lease ran out)."""
        params = {
            "tenant_id": tenant_id,
            "namespace": namespace,
            "exact_hash": exact_hash,
            "holder": lease.holder,
            "lease_s": lease.seconds,
        }
        return (await self.session.execute(_CLAIM, params)).first() is not None

    async def release(self, tenant_id: uuid.UUID, namespace: str, exact_hash: bytes, lease: Lease) -> None:
        params = {
            "tenant_id": tenant_id,
            "namespace": namespace,
            "exact_hash": exact_hash,
            "holder": lease.holder,
        }
        await self.session.execute(_RELEASE, params)

    async def renew(self, lease: Lease) -> None:
        await self.session.execute(_RENEW, {"holder": lease.holder, "lease_s": lease.seconds})

    async def forget_expired(self) -> None:
        await self.session.execute(_FORGET_EXPIRED)
