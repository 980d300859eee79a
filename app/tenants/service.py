"""Admin work too big for one request transaction: cache purges and tenant deletion.

Both delete cache entries in batches, each batch its own short transaction, so that purging
a large tenant never holds locks or a snapshot long enough to slow other tenants down. The
audit entry is written in the first transaction and its row count grows in each later one,
so the log always says exactly what has been removed, even if the work stops half-way.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin.audit import AdminRepository, AuditRepository, PurgeFilter
from app.db.engine import transaction
from app.errors import NotFound
from app.ledger.repository import LedgerRepository
from app.tenants.auth import Authenticator
from app.tenants.repository import KeyRepository, TenantRepository

PURGE_BATCH = 5_000
# A breath between batches lets other transactions take the locks and I/O in between.
BATCH_PAUSE_S = 0.005


@dataclass(frozen=True, slots=True)
class TenantDeletion:
    tenant_id: uuid.UUID
    cache_entries: int
    api_keys: int
    quotas: int
    usage_counters: int
    ledger_rows_anonymised: int
    ledger_rows_deleted: int

    @property
    def rows_affected(self) -> int:
        return (
            self.cache_entries
            + self.api_keys
            + self.quotas
            + self.usage_counters
            + self.ledger_rows_anonymised
            + self.ledger_rows_deleted
        )


class AdminService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        authenticator: Authenticator,
        *,
        batch_size: int = PURGE_BATCH,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._authenticator = authenticator
        self._batch_size = batch_size

    async def purge_cache(
        self, actor: str, tenant_id: uuid.UUID, where: PurgeFilter, parameters: dict[str, Any]
    ) -> int:
        """Delete the tenant's matching cache entries; the exact number deleted."""
        async with transaction(self._sessionmaker, system=True) as session:
            if await TenantRepository(session).get_live(tenant_id) is None:
                raise NotFound(f"No tenant {tenant_id}.")
            deleted = await AdminRepository(session).purge_batch(tenant_id, where, self._batch_size)
            audit = await AuditRepository(session).record(
                actor, "cache.purge", tenant_id=tenant_id, filters=parameters, rows_affected=deleted
            )
        if deleted == self._batch_size:
            deleted += await self._purge_rest(tenant_id, where, audit.id)
        return deleted

    async def delete_tenant(
        self, actor: str, tenant_id: uuid.UUID, *, include_ledger: bool
    ) -> TenantDeletion:
        """Remove a tenant's cache, keys, quotas and usage. Its ledger rows stay, anonymised, on a
        tombstone row unless `include_ledger`, which removes them and the tenant row too.

        Deleting a tombstone again finishes whatever an interrupted deletion left."""
        async with transaction(self._sessionmaker, system=True) as session:
            tenants = TenantRepository(session)
            tenant = await tenants.get_for_update(tenant_id)
            if tenant is None:
                raise NotFound(f"No tenant {tenant_id}.")
            parameters = {"include_ledger": include_ledger, "name": tenant.name}
            # First the keys and the status, so that no new request lands while entries go.
            await tenants.tombstone(tenant)
            api_keys = await KeyRepository(session).delete_for_tenant(tenant_id)
            quotas, usage = await LedgerRepository(session).delete_quotas_and_usage(tenant_id)
            audit = await AuditRepository(session).record(
                actor,
                "tenant.delete",
                tenant_id=tenant_id,
                filters=parameters,
                rows_affected=api_keys + quotas + usage,
            )
        self._authenticator.forget()
        entries = await self._purge_rest(tenant_id, PurgeFilter(), audit.id)
        async with transaction(self._sessionmaker, system=True) as session:
            ledger = LedgerRepository(session)
            anonymised = deleted = 0
            if include_ledger:
                deleted = await ledger.delete_for_tenant(tenant_id)
                tenant = await TenantRepository(session).get_for_update(tenant_id)
                if tenant is not None:
                    await TenantRepository(session).delete(tenant)
            else:
                anonymised = await ledger.anonymise(tenant_id)
            await AuditRepository(session).add_rows(audit.id, anonymised + deleted)
        return TenantDeletion(
            tenant_id=tenant_id,
            cache_entries=entries,
            api_keys=api_keys,
            quotas=quotas,
            usage_counters=usage,
            ledger_rows_anonymised=anonymised,
            ledger_rows_deleted=deleted,
        )

    async def _purge_rest(self, tenant_id: uuid.UUID, where: PurgeFilter, audit_id: int) -> int:
        total = 0
        while True:
            await asyncio.sleep(BATCH_PAUSE_S)
            async with transaction(self._sessionmaker, system=True) as session:
                deleted = await AdminRepository(session).purge_batch(tenant_id, where, self._batch_size)
                await AuditRepository(session).add_rows(audit_id, deleted)
            total += deleted
            if deleted < self._batch_size:
                return total
