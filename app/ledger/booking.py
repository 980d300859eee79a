"""Booking a request: its ledger row, its quota settled to what it really used, and whatever
else belongs in the same transaction (the answer stored, a hit counted). While Postgres is
unreachable the row waits in the durable spool; nothing a request did goes unbooked.

What a request was (hit, miss, bypass, error; its tokens and cost) is the pipeline's to say;
how it is written down is decided here, once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import DatabaseDown, attempt
from app.db.leases import Lease
from app.ledger.pricing import PriceBook
from app.ledger.quotas import Quotas, Reservation, counted_request
from app.ledger.repository import LedgerRepository, LedgerRow
from app.ledger.spool import LedgerSpool
from app.observability import metrics
from app.upstream.usage import Usage

log = logging.getLogger(__name__)

Work = Callable[[AsyncSession], Awaitable[Any]]


def answer_text(completion: dict[str, Any]) -> str:
    """Everything an answer says, for counting its tokens: every text field of its messages
    (content, refusals, reasoning), content in parts, tool calls and a legacy function call
    (names and arguments), a spoken answer's transcript."""
    parts: list[str] = []
    for choice in completion.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        parts.extend(value for key, value in message.items() if key != "role" and isinstance(value, str))
        if isinstance(message.get("content"), list):
            parts.extend(
                p["text"]
                for p in message["content"]
                if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        calls = message["tool_calls"] if isinstance(message.get("tool_calls"), list) else []
        functions = [call.get("function") for call in calls if isinstance(call, dict)]
        for function in [*functions, message.get("function_call")]:
            if isinstance(function, dict):
                parts.extend(str(function.get(key) or "") for key in ("name", "arguments"))
        if isinstance(message.get("audio"), dict) and isinstance(message["audio"].get("transcript"), str):
            parts.append(message["audio"]["transcript"])
    return "\n".join(parts)


class Bookkeeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        spool: LedgerSpool,
        prices: PriceBook,
        lease: Lease,
        *,
        default_output_tokens: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.spool = spool
        self.prices = prices
        self.quotas = Quotas(prices, lease, default_output_tokens=default_output_tokens)

    def usage(self, reported: Any, completion: dict[str, Any], prompt_tokens: int) -> Usage:
        """What an answer used: the upstream's usage; what it does not count (a stream cut short,
        a provider that does not count, or counts one side only), the delivered text's tokens
        and the prompt's estimate. Content delivered is never booked as free."""
        usage = Usage.of(reported)
        if usage.completion_tokens and usage.prompt_tokens:
            return usage
        return Usage(
            prompt_tokens=usage.prompt_tokens or prompt_tokens,
            completion_tokens=usage.completion_tokens
            or self.quotas.estimator.text_tokens(answer_text(completion)),
            cached_tokens=usage.cached_tokens,
            audio_prompt_tokens=usage.audio_prompt_tokens,
            audio_completion_tokens=usage.audio_completion_tokens,
        )

    async def cost(self, model: str, usage: Usage) -> Decimal:
        return await self.prices.cost(model, usage, datetime.now(UTC))

    async def priced(self, model: str) -> bool:
        """Whether `model` has a price today."""
        return await self.prices.price(model, datetime.now(UTC)) is not None

    async def with_billed(
        self,
        usage: Usage,
        cost: Decimal,
        billed: Sequence[tuple[str, Any]],
        most: Callable[[str], tuple[int, int]],
        prompt_tokens: int = 0,
    ) -> tuple[Usage, Decimal]:
        """`usage` and `cost` with those of the answers a provider counted tokens for though they
        could not be used (model, its `usage` object), each at its model's price, none counted
        beyond what one call of that model could use (`most(model)`: prompt, completion). A usage
        that counts nothing is a call given up on while the provider worked (app.upstream.router,
        `Attempt.billed`): booked as `prompt_tokens`, the prompt's estimate, which the provider
        bills at least once it has read it; what it went on to write is not known."""
        for model, reported in billed:
            counted = Usage.of(reported)
            if not counted.total:
                counted = Usage(prompt_tokens=prompt_tokens)
            spent = counted.within(*most(model))
            usage += spent
            cost += await self.cost(model, spent)
        return usage, cost

    async def book(
        self,
        row: LedgerRow,
        *,
        reservation: Reservation | None = None,
        usage: Usage | None = None,
        also: Work | None = None,
    ) -> bool:
        """Book `row`, settle `reservation` to `usage` (nothing used: released) at the row's cost,
        and run `also` (store the answer, count a hit), all in one transaction.

        True when all of it was written. False when `also` was not: Postgres was unreachable (the
        row waits in the spool) or `also` itself failed (the row is booked without it).
        """

        async def write(session: AsyncSession) -> None:
            if also is not None:
                await also(session)
            # A hit that reserved (a lookup that missed, then followed an identical call) gives
            # its request back: hits are free and take no quota; so does a request that failed
            # with the identical call it waited on.
            await self.quotas.settle(
                session,
                reservation,
                usage or Usage(),
                row.cost_usd,
                counted=counted_request(row),
                row=row,
            )
            await LedgerRepository(session).append(row)

        try:
            written = await attempt(self.sessionmaker, write, tenant_id=row.tenant_id)
        except Exception as exc:
            if also is not None:
                row.entry_id = None  # whatever `also` stored was rolled back with it
            # Not an outage. Without parameters (the engine hides them), so no prompt text here.
            log.error(
                "booking failed; %s",
                "booking again without the write that went with it" if also else "spooled",
                extra={"request_id": row.request_id, "error": type(exc).__name__},
            )
            if also is not None:
                await self.book(row, reservation=reservation, usage=usage)
            else:
                # Replayed later; refused again, it goes to the dead letters.
                await self.spool.append(row, reservation)
            return False
        if isinstance(written, DatabaseDown):
            if also is not None:
                row.entry_id = None
            await self.spool.append(row, reservation)  # settled when it is replayed
            return False
        return True

    async def book_many(self, rows: list[LedgerRow]) -> None:
        """Book rows that settle nothing (hits), one transaction per tenant; not durable (as a
        hit's booking always was: docs/reliability.md). What the database cannot take goes to the
        spool, and a batch it refuses is booked row by row, so one bad row spools alone."""
        by_tenant: dict[uuid.UUID, list[LedgerRow]] = {}
        for row in rows:
            by_tenant.setdefault(row.tenant_id, []).append(row)
        for tenant_id, own in by_tenant.items():

            async def write(session: AsyncSession, own: list[LedgerRow] = own) -> None:
                await LedgerRepository(session).append_many(own)

            try:
                written = await attempt(self.sessionmaker, write, tenant_id=tenant_id, durable=False)
            except Exception:
                for row in own:
                    await self.book(row)
                continue
            if isinstance(written, DatabaseDown):
                for row in own:
                    await self.spool.append(row, None)

    async def book_hit(self, session: AsyncSession, row: LedgerRow) -> None:
        """Book a hit inside the lookup's own transaction (it writes the entry's hit count too)."""
        metrics.add_avoided_cost(row.used_model, row.avoided_cost_usd)
        await LedgerRepository(session).append(row)
