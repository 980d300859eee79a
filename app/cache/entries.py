"""What a tenant or an admin does to one cache entry, from the API and the dashboard alike: each
action that changes what the cache serves is audited under its actor, as purges are."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AuditRepository
from app.cache.repository import CacheRepository, StoredEntry


class EntryActions:
    def __init__(self, session: AsyncSession, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.entries = CacheRepository(session)

    async def delete(self, entry_id: uuid.UUID) -> bool:
        """Delete the entry (`cache.delete`); False when there is none (another tenant's included:
        the session's tenant sees only its own)."""
        deleted = await self.entries.delete(entry_id)
        if deleted is None:
            return False
        tenant_id, flagged = deleted
        await AuditRepository(self.session).record(
            self.actor,
            "cache.delete",
            tenant_id=tenant_id,
            filters={"entry_id": str(entry_id), "flagged": flagged},
            rows_affected=1,
        )
        return True

    async def feedback(
        self, tenant_id: uuid.UUID, entry_id: uuid.UUID, *, correct: bool, prompt: str | None = None
    ) -> StoredEntry | None:
        """Count a hit on the entry right or wrong; a wrong one flags it, and it serves no more
        (`cache.flag`). None when there is no such entry."""
        entry = await self.entries.record_feedback(entry_id, correct=correct, prompt=prompt)
        if entry is not None and not correct:
            await AuditRepository(self.session).record(
                self.actor,
                "cache.flag",
                tenant_id=tenant_id,
                filters={"entry_id": str(entry_id)},
                rows_affected=1,
            )
        return entry
