"""The audit log: one entry per change made through the admin API or the CLI.

Domain services write it in the transaction that makes the change (tenants and keys, quotas
and prices, cache purges); the admin API reads it (`GET /admin/audit`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.models import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        actor: str,
        action: str,
        *,
        tenant_id: uuid.UUID | None = None,
        filters: dict[str, Any] | None = None,
        rows_affected: int | None = None,
    ) -> AuditLog:
        row = AuditLog(
            actor=actor,
            action=action,
            tenant_id=tenant_id,
            filters=filters or {},
            rows_affected=rows_affected,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def add_rows(self, audit_id: int, rows: int) -> None:
        """Count more affected rows into an entry (work done in several transactions)."""
        stmt = (
            update(AuditLog)
            .where(AuditLog.id == audit_id)
            .values(rows_affected=func.coalesce(AuditLog.rows_affected, 0) + rows)
        )
        await self.session.execute(stmt)

    async def list(
        self,
        *,
        tenant_id: uuid.UUID | None,
        limit: int,
        before: int | None = None,
        action: str | None = None,
    ) -> Sequence[AuditLog]:
        """The newest `limit` entries, of one tenant or action, older than the entry `before`
        (the id the previous page ended at: every entry can be reached, however many came after)."""
        stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if tenant_id is not None:
            stmt = stmt.where(AuditLog.tenant_id == tenant_id)
        if before is not None:
            stmt = stmt.where(AuditLog.id < before)
        if action is not None:
            stmt = stmt.where(AuditLog.action == action)
        return (await self.session.scalars(stmt)).all()
