"""All SQL of the ledger."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger.models import LedgerEntry


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entry_for_request(self, request_id: str) -> uuid.UUID | None:
        """The cache entry that served this request, if it was a hit."""
        stmt = select(LedgerEntry.entry_id).where(
            LedgerEntry.request_id == request_id, LedgerEntry.cache_status == "hit"
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
