"""Labelled hit decisions: was a stored answer right for a prompt it was compared with?"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at


class CacheLabel(Base):
    """One label: the decision's scores and whether the entry's answer served the prompt.
    Rows are kept in Postgres so that every replica learns from every other."""

    __tablename__ = "cache_labels"
    __table_args__ = (
        CheckConstraint("source IN ('judge', 'feedback')", name="source"),
        Index("ix_cache_labels_tenant_scorer_created", "tenant_id", "scorer", "created_at"),
        Index("ix_cache_labels_entry_id", "entry_id"),
        # One label per request: feedback given twice on a request counts once (the last word).
        UniqueConstraint("request_id", "tenant_id"),
        ForeignKeyConstraint(
            ["entry_id", "tenant_id"], ["cache_entries.id", "cache_entries.tenant_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    created_at: Mapped[datetime] = created_at()
    # The request whose decision was labelled (the explored one, or the hit the feedback is about).
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # judge: an answer judge compared the model's fresh answer with the entry's; feedback: a client said.
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    # The judge that labelled it (exact | embedding | llm), or "feedback".
    judge: Mapped[str] = mapped_column(String(20), nullable=False)
    correct: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # The verifier's scores for the pair: the cosine, and the score the bound reads, named by `scorer`.
    similarity: Mapped[float] = mapped_column(REAL, nullable=False)
    scorer: Mapped[str] = mapped_column(String(30), nullable=False)
    score: Mapped[float] = mapped_column(REAL, nullable=False)
