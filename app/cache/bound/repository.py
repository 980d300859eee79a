"""All SQL of the error bound's labels."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class NewLabel:
    tenant_id: uuid.UUID
    entry_id: uuid.UUID
    request_id: str
    source: str  # judge | feedback
    judge: str
    correct: bool
    similarity: float
    scorer: str
    score: float


_INSERT = text(
    "INSERT INTO cache_labels (tenant_id, entry_id, request_id, source, judge, correct, similarity, scorer, score) "
    "SELECT :tenant_id, :entry_id, :request_id, :source, :judge, :correct, :similarity, :scorer, :score "
    # The entry may have been deleted while the model answered: then there is nothing to label.
    "WHERE EXISTS (SELECT FROM cache_entries WHERE id = :entry_id AND tenant_id = :tenant_id) "
    "ON CONFLICT (request_id, tenant_id) DO NOTHING"
)
# Feedback on a semantic hit: the ledger row of the request holds the entry and the verifier's
# scores (metadata.verifier); a second word on the same request replaces the first.
_FEEDBACK = text(
    "INSERT INTO cache_labels (tenant_id, entry_id, request_id, source, judge, correct, similarity, scorer, score) "
    "SELECT l.tenant_id, l.entry_id, l.request_id, 'feedback', 'feedback', :correct, l.similarity, "
    "l.metadata -> 'verifier' ->> 'scorer', CAST(l.metadata -> 'verifier' ->> 'score' AS real) "
    "FROM ledger AS l WHERE l.request_id = :request_id AND l.cache_status = 'hit' "
    "AND l.metadata ? 'verifier' AND EXISTS (SELECT FROM cache_entries WHERE id = l.entry_id AND tenant_id = l.tenant_id) "
    "ON CONFLICT (request_id, tenant_id) DO UPDATE SET correct = EXCLUDED.correct, created_at = now()"
)
_RECENT = text(
    "SELECT score, correct FROM cache_labels WHERE tenant_id = :tenant_id AND scorer = :scorer "
    "ORDER BY created_at DESC LIMIT :limit"
)
_FOR_ENTRY = text(
    "SELECT score, correct FROM cache_labels WHERE entry_id = :entry_id AND scorer = :scorer "
    "ORDER BY created_at DESC LIMIT :limit"
)


class LabelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, label: NewLabel) -> bool:
        """Store a label; False when its entry is gone."""
        params = {
            "tenant_id": label.tenant_id,
            "entry_id": label.entry_id,
            "request_id": label.request_id,
            "source": label.source,
            "judge": label.judge,
            "correct": label.correct,
            "similarity": label.similarity,
            "scorer": label.scorer,
            "score": label.score,
        }
        result = await self.session.execute(_INSERT, params)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_feedback(self, request_id: str, *, correct: bool) -> bool:
        """Label the decision that served this request, as the client judged it; False when the
        request was no semantic hit (nothing to learn: exact hits are the same prompt)."""
        result = await self.session.execute(_FEEDBACK, {"request_id": request_id, "correct": correct})
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def recent(self, tenant_id: uuid.UUID, scorer: str, limit: int) -> list[tuple[float, bool]]:
        """The tenant's latest labels for this scorer, as (score, correct)."""
        rows = await self.session.execute(_RECENT, {"tenant_id": tenant_id, "scorer": scorer, "limit": limit})
        return [(float(row.score), bool(row.correct)) for row in rows]

    async def for_entry(self, entry_id: uuid.UUID, scorer: str, limit: int) -> list[tuple[float, bool]]:
        rows = await self.session.execute(
            _FOR_ENTRY, {"entry_id": entry_id, "scorer": scorer, "limit": limit}
        )
        return [(float(row.score), bool(row.correct)) for row in rows]
