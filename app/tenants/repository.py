"""SQL for tenants and keys. Callers choose the RLS context (tenant or system)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict
from app.tenants.keys import NewKey, generate_key
from app.tenants.models import ApiKey, KeyRole, Tenant, TenantStatus


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: uuid.UUID
    role: KeyRole
    tenant_id: uuid.UUID | None
    tenant_name: str | None
    tenant_status: TenantStatus | None
    tenant_settings: dict[str, Any] | None


# What a deleted tenant is renamed to (`TenantRepository.tombstone`), and so what no tenant may be
# named: `deleted-` and an id, in any case, whatever follows.
_TOMBSTONE_NAME = re.compile(
    r"deleted-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def tombstone_name(tenant_id: uuid.UUID) -> str:
    return f"deleted-{tenant_id}"


def reserved_name(name: str) -> bool:
    """A name of the form deleted tenants take (`deleted-<id>…`), which no tenant may choose."""
    return _TOMBSTONE_NAME.match(name) is not None


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str, settings: dict[str, Any] | None = None) -> Tenant:
        tenant = Tenant(name=name, settings=settings or {})
        self.session.add(tenant)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"A tenant named {name!r} already exists, or one whose name differs only in case."
            ) from exc
        await self.session.refresh(tenant)
        return tenant

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def list(self, *, include_deleted: bool = False) -> Sequence[Tenant]:
        """Every tenant, by creation; deleted ones (kept as tombstones for their ledger) only if asked."""
        stmt = select(Tenant).order_by(Tenant.created_at, Tenant.name)
        if not include_deleted:
            stmt = stmt.where(Tenant.status != TenantStatus.DELETED)
        return (await self.session.scalars(stmt)).all()

    async def update(self, tenant: Tenant, **changes: Any) -> Tenant:
        for field, value in changes.items():
            setattr(tenant, field, value)
        tenant.updated_at = func.now()
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "A tenant with that name already exists, or one whose name differs only in case."
            ) from exc
        await self.session.refresh(tenant)
        return tenant

    async def get_live(self, tenant_id: uuid.UUID) -> Tenant | None:
        tenant = await self.session.get(Tenant, tenant_id)
        return tenant if tenant is not None and tenant.status != TenantStatus.DELETED else None

    async def get_for_update(self, tenant_id: uuid.UUID) -> Tenant | None:
        """The tenant, tombstone or not, locked until the transaction ends."""
        stmt = select(Tenant).where(Tenant.id == tenant_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def tombstone(self, tenant: Tenant) -> Tenant:
        """Keep only the row, so anonymised ledger rows keep their owner; free the name.

        The tombstone's name, `deleted-<id>`, is of the form no tenant may take (`reserved_name`),
        so deleting never fails on a name. A tenant named so before that rule (in any case: names
        are unique whatever their case) keeps its name, and the tombstone takes
        `deleted-<id>-<n>`, the first one free."""
        base = tombstone_name(tenant.id)
        stmt = select(Tenant.name).where(
            Tenant.name.istartswith(base, autoescape=True), Tenant.id != tenant.id
        )
        taken = {taken.casefold() for taken in (await self.session.scalars(stmt)).all()}
        name, n = base, 0
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        return await self.update(tenant, status=TenantStatus.DELETED, name=name, settings={})

    async def delete(self, tenant: Tenant) -> None:
        await self.session.delete(tenant)
        await self.session.flush()


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def issue(
        self, tenant_id: uuid.UUID | None, *, role: KeyRole = KeyRole.TENANT, name: str | None = None
    ) -> tuple[ApiKey, NewKey]:
        new = generate_key()
        key = ApiKey(tenant_id=tenant_id, role=role, name=name, key_hash=new.key_hash, prefix=new.prefix)
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key, new

    async def list_for_tenant(self, tenant_id: uuid.UUID) -> Sequence[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
        return (await self.session.scalars(stmt)).all()

    async def list_admins(self) -> Sequence[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.role == KeyRole.ADMIN).order_by(ApiKey.created_at)
        return (await self.session.scalars(stmt)).all()

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def revoke(self, key: ApiKey) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = func.now()
            await self.session.flush()
            await self.session.refresh(key)
        return key

    async def find_owner(self, key_hash: bytes) -> KeyOwner | None:
        """The live key with this hash and its tenant; needs system context (no tenant known yet)."""
        stmt = (
            select(ApiKey.id, ApiKey.role, ApiKey.tenant_id, Tenant.name, Tenant.status, Tenant.settings)
            .outerjoin(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        return KeyOwner(
            key_id=row[0],
            role=KeyRole(row[1]),
            tenant_id=row[2],
            tenant_name=row[3],
            tenant_status=TenantStatus(row[4]) if row[4] is not None else None,
            tenant_settings=row[5],
        )

    async def touch(self, key_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))

    async def delete_for_tenant(self, tenant_id: uuid.UUID) -> int:
        result = await self.session.execute(delete(ApiKey).where(ApiKey.tenant_id == tenant_id))
        return int(result.rowcount)  # type: ignore[attr-defined]
