"""What tokens cost: the price in force at request time, per model, as NUMERIC (Decimal)."""

from __future__ import annotations

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
    if price is None:
        return Decimal(0)
    cached = min(usage.cached_tokens, usage.prompt_tokens) if price.cached_input_per_mtok is not None else 0
    uncached = usage.prompt_tokens - cached
    total = (
        uncached * price.input_per_mtok
        + cached * (price.cached_input_per_mtok or Decimal(0))
        + usage.completion_tokens * price.output_per_mtok
    ) / MILLION
    return total.quantize(QUANTUM)


async def _read_prices(session: AsyncSession) -> list[ModelPrice]:
    return await LedgerRepository(session).prices()


class PriceBook:
    """Prices read from the `prices` table, remembered for a minute per process.

    A model is priced by its longest listed prefix, so a dated snapshot name
    (gpt-4o-mini-2024-07-18) takes its family's price unless listed itself.
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
            if price.effective_from > at or not model.startswith(price.model):
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
