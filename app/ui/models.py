"""The dashboard's own table: the sessions signed out before they expired."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class SignedOut(Base):
    """A session signed out: its cookie, copied before, no longer signs anyone in. Kept until the
    session would have expired anyway. No tenant's data (an id, a time): not under row-level
    security."""

    __tablename__ = "ui_signed_out"
    __table_args__ = (Index("ix_ui_signed_out_expires_at", "expires_at"),)

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
