"""Request and response bodies of the quota and price admin routes (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, overload

import msgspec

from app.bounds import MAX_BIGINT, utc_time
from app.errors import Unprocessable
from app.ledger.models import Price, Quota
from app.ledger.pricing import decimal_text

Model = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_BIGINT)]

# Upper bounds of the NUMERIC columns, so that a typo is a 4xx and not a database error, and the
# decimal places they keep: an amount with more would be rounded by Postgres, a small one to 0.
MAX_PRICE = Decimal("1000000")  # NUMERIC(12, 6)
PRICE_PLACES = 6
IsoTime = Annotated[str, msgspec.Meta(max_length=64, extra_json_schema={"format": "date-time"})]
# A price's rates, dollars per million tokens (the first two required).
PRICE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "audio_input_per_mtok",
    "audio_output_per_mtok",
)
MAX_MONEY = Decimal("10000000000")  # NUMERIC(20, 10)
MONEY_PLACES = 10


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


def check_money(name: str, value: Decimal | None, bound: Decimal) -> None:
    if value is not None and not (value.is_finite() and 0 <= value < bound):
        raise ValueError(f"{name} must be a number from 0 to below {bound}")


@overload
def check_places(name: str, value: Decimal, places: int) -> Decimal: ...
@overload
def check_places(name: str, value: None, places: int) -> None: ...
@overload
def check_places(name: str, value: Decimal | None, places: int) -> Decimal | None: ...
def check_places(name: str, value: Decimal | None, places: int) -> Decimal | None:
    """An amount the column keeps exactly (trailing zeros aside), or a 422: never rounded silently.
    The amount is given back at the column's scale: trailing zeros past it ("1." and 16,384 zeros)
    are more digits than Postgres takes in a numeric, and worth nothing."""
    if value is None:
        return None
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN and infinities: check_money's
        return value
    # Read from the digits themselves, with no decimal context (whose normalize() turns 1E-50000000
    # into 0): trailing zeros do not count, and no amount is written out with a million zeros.
    significant = "".join(map(str, digits)).rstrip("0")
    places_used = -(exponent + len(digits) - len(significant)) if significant else -exponent
    # A zero may carry zeros past the ledger's places, but not an exponent no column can hold.
    if places_used > places and (significant or places_used > places + 40):
        raise Unprocessable(
            f"{name} has more than {places} decimal places; the ledger keeps {places}, and would round it."
        )
    return value.quantize(Decimal(1).scaleb(-places))


class QuotaIn(msgspec.Struct, forbid_unknown_fields=True):
    """Limits for one period; null (or absent) means unlimited."""

    max_requests: Count | None = None
    max_tokens: Count | None = None
    max_cost_usd: Decimal | None = None

    def __post_init__(self) -> None:
        check_money("max_cost_usd", self.max_cost_usd, MAX_MONEY)

    def check_places(self) -> None:
        """422 for an amount the ledger would round (called by the service, for the API and the CLI)."""
        self.max_cost_usd = check_places("max_cost_usd", self.max_cost_usd, MONEY_PLACES)


class QuotaOut(msgspec.Struct):
    """Money as decimal text at the column's scale ("2.5000000000"), never in exponent form."""

    tenant_id: uuid.UUID
    period: Period
    max_requests: int | None
    max_tokens: int | None
    max_cost_usd: str | None

    @classmethod
    def of(cls, quota: Quota) -> QuotaOut:
        return cls(
            tenant_id=quota.tenant_id,
            period=Period(quota.period),
            max_requests=quota.max_requests,
            max_tokens=quota.max_tokens,
            max_cost_usd=None if quota.max_cost_usd is None else decimal_text(quota.max_cost_usd),
        )


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    model: Model
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    # Absent: now. A price in the future takes over when its time comes. Text, not a datetime:
    # the decoder would read a bare number (`5`) as seconds since 1970, which nobody means.
    effective_from: IsoTime | None = None
    # Audio tokens, in and out (absent: the model's audio tokens are priced as text).
    audio_input_per_mtok: Decimal | None = None
    audio_output_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in PRICE_FIELDS:
            check_money(name, getattr(self, name), MAX_PRICE)
        self.starts_at()  # a ValueError (400) for a time that is not one

    def starts_at(self) -> datetime | None:
        """`effective_from` as a time in UTC (None: now)."""
        if self.effective_from is None:
            return None
        try:
            at = datetime.fromisoformat(self.effective_from)
        except ValueError:
            raise ValueError(
                f"effective_from must be an ISO 8601 time (2026-01-01T00:00:00Z), not {self.effective_from!r}"
            ) from None
        if at.tzinfo is None:
            raise ValueError("effective_from needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return utc_time(at, "effective_from")

    def check_places(self) -> None:
        """422 for a price the column would round (called by the service, for the API and the CLI)."""
        for name in PRICE_FIELDS:
            setattr(self, name, check_places(name, getattr(self, name), PRICE_PLACES))


class PriceOut(msgspec.Struct):
    """Prices as decimal text at the column's scale ("0.150000"), never in exponent form."""

    id: uuid.UUID
    model: str
    input_per_mtok: str
    output_per_mtok: str
    cached_input_per_mtok: str | None
    effective_from: datetime
    audio_input_per_mtok: str | None
    audio_output_per_mtok: str | None

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        def rate(value: Decimal | None) -> str | None:
            return None if value is None else decimal_text(value)

        return cls(
            id=price.id,
            model=price.model,
            input_per_mtok=decimal_text(price.input_per_mtok),
            output_per_mtok=decimal_text(price.output_per_mtok),
            cached_input_per_mtok=rate(price.cached_input_per_mtok),
            effective_from=price.effective_from,
            audio_input_per_mtok=rate(price.audio_input_per_mtok),
            audio_output_per_mtok=rate(price.audio_output_per_mtok),
        )
