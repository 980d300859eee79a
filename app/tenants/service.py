"""Tenants and their API keys: the one service behind the admin API and the `deja` CLI.

Every change writes its audit entry in the transaction that makes it, whoever asks: the
admin API (actor `key:<id>` or `admin-token`) or the CLI (actor `cli:<user>`). `TenantService`
works inside the caller's transaction and only flushes; the caller (the request's session,
the CLI's `transaction()`) commits. Tenant deletion is the exception: it is too big for one
transaction and commits batch by batch itself (docs/architecture.md).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin.audit import AuditRepository
from app.bounds import JOINERS, hidden_characters
from app.cache.policy import check_policy, parse_policy
from app.cache.purge import CachePurge, PurgeFilter
from app.cache.repository import CacheRepository
from app.cache.verifier import VerifierPolicy
from app.db.engine import transaction
from app.errors import NotFound, Unprocessable
from app.ledger.repository import LedgerBatch, LedgerRepository
from app.ledger.rollup import LedgerRollup
from app.tenants.keys import NewKey
from app.tenants.models import ApiKey, KeyRole, Tenant, TenantStatus
from app.tenants.repository import KeyRepository, TenantRepository, reserved_name
from app.tenants.schemas import TenantPatch

# Ledger rows a tenant deletion anonymises or deletes per transaction.
LEDGER_BATCH = 5_000

FIRST_KEY_NAME = "first key"
MAX_NAME = 200  # tenants.name and api_keys.name are VARCHAR(200)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    # The key itself, shown once.
    new: NewKey


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant: Tenant
    first_key: IssuedKey


@dataclass(frozen=True, slots=True)
class TenantDeletion:
    tenant_id: uuid.UUID
    cache_entries: int
    api_keys: int
    quotas: int
    usage_counters: int
    ledger_rows_anonymised: int
    ledger_rows_deleted: int


def shown_name(name: str, what: str) -> str:
    """`name` stripped and composed (NFC: "e" and a combining acute accent are "é", so that two
    names that read alike are one name to the database's uniqueness too), or a 422 when it holds a
    character that does not show (a name that reads as blank, or as another's in the dashboard
    and the CLI)."""
    name = unicodedata.normalize("NFC", name.strip())
    if hidden := hidden_characters(name):
        raise Unprocessable(
            f"A {what} holds only characters that show: no control, format, separator or private "
            f"ones ({', '.join(hidden)})."
        )
    if name and not any(not c.isspace() and c not in JOINERS for c in name):
        raise Unprocessable(f"A {what} must hold a character that shows.")
    if len(name) > MAX_NAME:  # composing can lengthen a name: U+1D160 is three code points
        raise Unprocessable(f"A {what} is at most {MAX_NAME} characters once composed (NFC).")
    return name


def check_name(name: str) -> str:
    """A tenant's name as given on create or rename, stripped; 422 when blank, too long, of
    characters that do not show (`shown_name`), or of the form deleted tenants are renamed to
    (`deleted-<id>…`): deleting a tenant must never find its tombstone's name taken."""
    name = shown_name(name, "tenant name")
    if not name or len(name) > MAX_NAME:
        raise Unprocessable(f"A tenant name is 1 to {MAX_NAME} characters, not only spaces.")
    if reserved_name(name):
        raise Unprocessable(
            f"Tenant names of the form 'deleted-<id>' are reserved for deleted tenants; {name!r} is one."
        )
    return name


def _verifier_of(settings: dict[str, Any] | None) -> VerifierPolicy | None:
    """The verifier policy stored settings give; None when they no longer parse."""
    try:
        return parse_policy(settings).verifier_policy()
    except Unprocessable:
        return None


class TenantService:
    def __init__(self, session: AsyncSession, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.tenants = TenantRepository(session)
        self.keys = KeyRepository(session)
        self.audit = AuditRepository(session)

    # Tenants

    async def create(self, name: str, settings: dict[str, Any] | None = None) -> CreatedTenant:
        """A tenant and its first key. Settings the cache could not use are refused (422)."""
        name = check_name(name)
        check_policy(settings)
        tenant = await self.tenants.create(name, settings)
        key, new = await self.keys.issue(tenant.id, name=FIRST_KEY_NAME)
        await self.audit.record(
            self.actor,
            "tenant.create",
            tenant_id=tenant.id,
            filters={"name": tenant.name, "settings": tenant.settings, "key_id": str(key.id)},
            rows_affected=2,
        )
        return CreatedTenant(tenant, IssuedKey(key, new))

    async def list(self, *, include_deleted: bool = False) -> Sequence[Tenant]:
        return await self.tenants.list(include_deleted=include_deleted)

    async def get(self, tenant_id: uuid.UUID) -> Tenant:
        """A live tenant; 404 when unknown or deleted."""
        tenant = await self.tenants.get_live(tenant_id)
        if tenant is None:
            raise NotFound(f"No tenant {tenant_id}.")
        return tenant

    async def update(self, tenant_id: uuid.UUID, patch: TenantPatch) -> Tenant:
        """Rename, suspend or resume, or replace the settings (checked as on create)."""
        tenant = await self.get(tenant_id)
        changes = patch.changes()
        if "name" in changes:
            changes["name"] = check_name(changes["name"])
        verifier_changed = False
        if "settings" in changes:
            verifier = check_policy(changes["settings"]).verifier_policy()
            verifier_changed = verifier != _verifier_of(tenant.settings)
        tenant = await self.tenants.update(tenant, **changes)
        audited = dict(changes)
        if verifier_changed:
            # An alias serves a paraphrase without the verifier: those its old settings served go,
            # and the new settings decide each of them again on its next lookup.
            audited["aliases_dropped"] = await CacheRepository(self.session).drop_tenant_aliases(tenant_id)
        await self.audit.record(
            self.actor, "tenant.update", tenant_id=tenant_id, filters=audited, rows_affected=1
        )
        return tenant

    # Keys

    async def issue_key(
        self, tenant_id: uuid.UUID | None, *, role: KeyRole = KeyRole.TENANT, name: str | None = None
    ) -> IssuedKey:
        """A tenant key (the tenant must exist and not be deleted) or an admin key (no tenant)."""
        if (role == KeyRole.ADMIN) != (tenant_id is None):
            raise ValueError("an admin key has no tenant; a tenant key needs one")
        if tenant_id is not None:
            tenant = await self.tenants.get(tenant_id)
            if tenant is None:
                raise NotFound(f"No tenant {tenant_id}.")
            if tenant.status == TenantStatus.DELETED:
                raise NotFound(f"Tenant {tenant_id} is deleted; it cannot have keys.")
        if name is not None:
            name = shown_name(name, "key name")
        key, new = await self.keys.issue(tenant_id, role=role, name=name)
        await self.audit.record(
            self.actor,
            "key.issue",
            tenant_id=tenant_id,
            filters={"key_id": str(key.id), "name": key.name, "prefix": key.prefix, "role": role.value},
            rows_affected=1,
        )
        return IssuedKey(key, new)

    async def list_keys(self, tenant_id: uuid.UUID) -> Sequence[ApiKey]:
        await self.get(tenant_id)
        return await self.keys.list_for_tenant(tenant_id)

    async def list_admin_keys(self) -> Sequence[ApiKey]:
        """The admin keys, revoked ones included (whoever may act on every tenant)."""
        return await self.keys.list_admins()

    async def revoke_key(self, key_id: uuid.UUID) -> ApiKey:
        """Revoke a key; revoking it again changes nothing (and is audited with 0 rows)."""
        key = await self.keys.get(key_id)
        if key is None:
            raise NotFound(f"No API key {key_id}.")
        already = key.revoked_at is not None
        key = await self.keys.revoke(key)
        await self.audit.record(
            self.actor,
            "key.revoke",
            tenant_id=key.tenant_id,
            filters={"key_id": str(key_id), "prefix": key.prefix},
            rows_affected=0 if already else 1,
        )
        return key


LedgerStep = Callable[[LedgerRepository, uuid.UUID, tuple[datetime, int] | None, int], Awaitable[LedgerBatch]]


async def _ledger_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    audit_id: int,
    batch: int,
    step: LedgerStep,
) -> int:
    """`step` (`LedgerRepository.delete_batch` or `anonymise_batch`) over the tenant's ledger until a
    batch comes back short, each batch in its own transaction with the rows it changed added to
    the audit entry; how many it changed."""
    total, after = 0, None
    while True:
        async with transaction(sessionmaker, system=True) as session:
            done = await step(LedgerRepository(session), tenant_id, after, batch)
            await AuditRepository(session).add_rows(audit_id, done.changed)
        total += done.changed
        if done.taken < batch:
            return total
        after = done.last


async def delete_tenant(
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: str,
    tenant_id: uuid.UUID,
    *,
    include_ledger: bool,
    purge: CachePurge | None = None,
    keys_removed: Callable[[], None] | None = None,
    ledger_batch: int = LEDGER_BATCH,
) -> TenantDeletion:
    """Remove a tenant's cache, keys, quotas and usage. Its ledger rows stay, anonymised, on a
    tombstone row unless `include_ledger`, which removes them and the tenant row too.

    Four steps, each committed: keys and status first (no new request lands while the rest goes;
    `keys_removed` is called then), quotas and usage counters, the cache entries in batches, the
    ledger last, in batches of `ledger_batch` rows. Every step adds its rows to the audit entry.
    Deleting a tombstone again finishes whatever an interrupted deletion left.

    The counters go in a transaction of their own, after the tenant's row is let go: a booking in
    progress locks its counters, then (its ledger row) the tenant's row, so a transaction holding
    the tenant's row while it waits for the counters would deadlock with it."""
    purge = purge or CachePurge(sessionmaker)
    async with transaction(sessionmaker, system=True) as session:
        tenants = TenantRepository(session)
        # FOR UPDATE, not a plain update of the status: it conflicts with the FOR KEY SHARE lock the
        # late-write triggers take (migration 0160), so a write in progress finishes first and is
        # then purged or anonymised, and a later one sees the tombstone.
        tenant = await tenants.get_for_update(tenant_id)
        if tenant is None:
            raise NotFound(f"No tenant {tenant_id}.")
        parameters = {"include_ledger": include_ledger, "name": tenant.name}
        await tenants.tombstone(tenant)
        api_keys = await KeyRepository(session).delete_for_tenant(tenant_id)
        if include_ledger:  # its all-time figures go with the rows, not when the tombstone does
            await LedgerRollup(session).forget(tenant_id)
        audit = await AuditRepository(session).record(
            actor,
            "tenant.delete",
            tenant_id=tenant_id,
            filters=parameters,
            rows_affected=api_keys,
        )
    if keys_removed is not None:
        keys_removed()
    async with transaction(sessionmaker, system=True) as session:
        quotas, usage = await LedgerRepository(session).delete_quotas_and_usage(tenant_id)
        await AuditRepository(session).add_rows(audit.id, quotas + usage)
    entries = await purge.purge_rest(tenant_id, PurgeFilter(), audit.id)
    anonymised = deleted = 0
    if include_ledger:
        deleted = await _ledger_in_batches(
            sessionmaker, tenant_id, audit.id, ledger_batch, LedgerRepository.delete_batch
        )
        async with transaction(sessionmaker, system=True) as session:
            tombstone = await TenantRepository(session).get_for_update(tenant_id)
            if tombstone is not None:
                await TenantRepository(session).delete(tombstone)
    else:
        anonymised = await _ledger_in_batches(
            sessionmaker, tenant_id, audit.id, ledger_batch, LedgerRepository.anonymise_batch
        )
    return TenantDeletion(
        tenant_id=tenant_id,
        cache_entries=entries,
        api_keys=api_keys,
        quotas=quotas,
        usage_counters=usage,
        ledger_rows_anonymised=anonymised,
        ledger_rows_deleted=deleted,
    )
