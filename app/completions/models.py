"""Identical misses in flight, shared by every replica on the database."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class InflightMiss(Base):
    """One upstream call in flight for a (tenant, namespace, exact hash): identical misses on
    other replicas wait for its entry; when `expires_at` passes without renewal (its replica
    died), one of them takes over."""

    __tablename__ = "inflight_misses"
    __table_args__ = (Index("ix_inflight_misses_holder", "holder"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    exact_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
