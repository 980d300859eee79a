"""Request and response bodies of the quota and price admin routes (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import msgspec

Model = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

# Upper bounds of the NUMERIC columns, so that a typo is a 4xx and not a database error.
MAX_PRICE = Decimal("1000000")  # NUMERIC(12, 6)
MAX_MONEY = Decimal("10000000000")  # NUMERIC(20, 10)


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


def check_money(name: str, value: Decimal | None, bound: Decimal) -> None:
    if value is not None and not (value.is_finite() and 0 <= value < bound):
        raise ValueError(f"{name} must be a number from 0 to below {bound}")


class QuotaIn(msgspec.Struct, forbid_unknown_fields=True):
    """Limits for one period; null (or absent) means unlimited."""

    max_requests: Count | None = None
    max_tokens: Count | None = None
    max_cost_usd: Decimal | None = None

    def __post_init__(self) -> None:
        check_money("max_cost_usd", self.max_cost_usd, MAX_MONEY)


class QuotaOut(msgspec.Struct):
    tenant_id: uuid.UUID
    period: Period
    max_requests: int | None
    max_tokens: int | None
    max_cost_usd: Decimal | None


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    model: Model
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    # Absent: now. A price in the future takes over when its time comes.
    effective_from: datetime | None = None

    def __post_init__(self) -> None:
        check_money("input_per_mtok", self.input_per_mtok, MAX_PRICE)
        check_money("output_per_mtok", self.output_per_mtok, MAX_PRICE)
        check_money("cached_input_per_mtok", self.cached_input_per_mtok, MAX_PRICE)
        if self.effective_from is not None and self.effective_from.tzinfo is None:
            raise ValueError("effective_from needs a time zone (e.g. 2026-01-01T00:00:00Z)")


class PriceOut(msgspec.Struct):
    id: uuid.UUID
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: datetime
