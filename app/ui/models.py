"""The dashboard's hourly rollup of the ledger, so that its pages read thousands of rows, not millions.

Closed hours are rolled up by the dashboard itself (app.ui.repository.DashboardRepository.roll_up),
incrementally, up to a watermark; pages add the ledger's own rows from the watermark on. The
ledger stays the truth: the rollup can be emptied and rebuilt at any time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Double, ForeignKey, SmallInteger, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.ledger.models import Money


class LedgerHourly(Base):
    """One tenant's requests in one UTC hour."""

    __tablename__ = "ledger_hourly"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)
    exact_hits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    semantic_hits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    misses: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bypasses: Mapped[int] = mapped_column(BigInteger, nullable=False)
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False)
    avoided_cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False)
    # Sums, so that means add up across hours (mean = sum / hits or misses).
    hit_latency_ms: Mapped[float] = mapped_column(Double, nullable=False)
    miss_latency_ms: Mapped[float] = mapped_column(Double, nullable=False)


class LedgerRollupMark(Base):
    """The one row saying up to when (exclusive) the ledger is in ledger_hourly."""

    __tablename__ = "ledger_rollup_mark"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    rolled_up_until: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("'1970-01-01 00:00:00+00'::timestamptz")
    )
