"""What tokens cost: the price in force at request time, per model, as NUMERIC (Decimal)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import DatabaseDown, attempt, transaction
from app.ledger.repository import LedgerRepository, ModelPrice
from app.upstream.usage import Usage

MILLION = Decimal(1_000_000)
# Cost precision: the ledger keeps 10 decimal places.
QUANTUM = Decimal("0.0000000001")


def money_text(amount: Decimal) -> str:
    """Dollars as plain decimal text ("0", "0.00042"), never in exponent form ("0E-10")."""
    return f"{amount.normalize():f}"


def decimal_text(amount: Decimal) -> str:
    """A NUMERIC as plain decimal text at its own scale ("2.5000000000", "0.0000000000", "0"), never
    in exponent form: what the admin API answers for money and prices. `str()` would write
    "0E-10" for a zero read from a NUMERIC(20, 10) column, "1.000E-7" for a tenth of a micro-dollar."""
    return f"{amount:f}"


def cost_of(price: ModelPrice | None, usage: Usage) -> Decimal:
    """What `usage` costs at `price`: audio tokens at the audio rates and cached prompt tokens at
    the cached rate where the price has them, every other token at the text rates."""
    if price is None:
        return Decimal(0)
    audio_in = usage.audio_prompt_tokens if price.audio_input_per_mtok is not None else 0
    audio_out = usage.audio_completion_tokens if price.audio_output_per_mtok is not None else 0
    text_in = max(usage.prompt_tokens - audio_in, 0)
    cached = min(usage.cached_tokens, text_in) if price.cached_input_per_mtok is not None else 0
    total = (
        (text_in - cached) * price.input_per_mtok
        + cached * (price.cached_input_per_mtok or Decimal(0))
        + audio_in * (price.audio_input_per_mtok or Decimal(0))
        + max(usage.completion_tokens - audio_out, 0) * price.output_per_mtok
        + audio_out * (price.audio_output_per_mtok or Decimal(0))
    ) / MILLION
    return total.quantize(QUANTUM)


def most_cost_of(price: ModelPrice | None, usage: Usage) -> Decimal:
    """The most `usage` may cost at `price`, whatever share of it is audio: each side at its
    dearer rate (what a reservation holds, so that the booking stays within it)."""
    if price is None:
        return Decimal(0)
    dearer_in = (price.audio_input_per_mtok or Decimal(0)) > price.input_per_mtok
    dearer_out = (price.audio_output_per_mtok or Decimal(0)) > price.output_per_mtok
    return cost_of(
        price,
        Usage(
            usage.prompt_tokens,
            usage.completion_tokens,
            audio_prompt_tokens=usage.prompt_tokens if dearer_in else 0,
            audio_completion_tokens=usage.completion_tokens if dearer_out else 0,
        ),
    )


# What follows a model's name in the name of one of its dated snapshots: gpt-4o-2024-08-06,
# claude-3-5-sonnet-20241022, gpt-4-0613.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})")


def prices_model(listed: str, model: str) -> bool:
    """Whether a price listed for `listed` applies to `model`: the model itself or one of its
    dated snapshots. Another model whose name starts alike (gpt-4o-audio-preview, gpt-4o-mini,
    gpt-3.5-turbo-16k) is not priced as it: it has prices of its own, or none."""
    return model == listed or (
        model.startswith(listed) and _SNAPSHOT.fullmatch(model, len(listed)) is not None
    )


async def _read_prices(session: AsyncSession) -> list[ModelPrice]:
    return await LedgerRepository(session).prices()


class PriceBook:
    """Prices read from the `prices` table, remembered for a minute per process.

    A model is priced as listed, and a dated snapshot (gpt-4o-mini-2024-07-18) as its model
    unless listed itself (`prices_model`); any other model has no price.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, ttl_s: float = 60.0) -> None:
        self._sessionmaker = sessionmaker
        self._ttl_s = ttl_s
        self._loaded_at = float("-inf")
        self._prices: list[ModelPrice] = []

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def load(self) -> None:
        async with transaction(self._sessionmaker) as session:
            self._prices = await _read_prices(session)
        self._loaded_at = time.monotonic()

    def models(self) -> set[str]:
        """The models with a price (as loaded last)."""
        return {price.model for price in self._prices}

    async def price(self, model: str, at: datetime) -> ModelPrice | None:
        if time.monotonic() - self._loaded_at > self._ttl_s:
            loaded = await attempt(self._sessionmaker, _read_prices)
            if not isinstance(loaded, DatabaseDown):
                self._prices = loaded
            # Unreachable: keep pricing with what we know; refresh once the database answers again.
            self._loaded_at = time.monotonic()
        best: ModelPrice | None = None
        for price in self._prices:  # ordered by effective_from
            if price.effective_from > at or not prices_model(price.model, model):
                continue
            if (
                best is None
                or len(price.model) > len(best.model)
                or (len(price.model) == len(best.model) and price.effective_from >= best.effective_from)
            ):
                best = price
        return best

    async def cost(self, model: str, usage: Usage, at: datetime) -> Decimal:
        return cost_of(await self.price(model, at), usage)
