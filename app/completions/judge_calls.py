"""The `llm` answer judge's calls to the model, made on a tenant's behalf like any of its
requests: quota reserved first (a full quota asks nothing, and the explored request goes
unlabelled), the call booked in the ledger after, at the answering model's price, whether it
answered or failed.

A judge call's ledger row is a `bypass` (a model call that did not look in the cache) with
`metadata.answer_judge` naming the request whose answer was judged, and its own request id:
that request's id with JUDGE_SUFFIX.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.bound.judges import JUDGE_MAX_TOKENS, answer_text
from app.db.engine import DatabaseDown, attempt
from app.errors import Billed, DejaError, ServiceUnavailable
from app.ledger.booking import Bookkeeper
from app.ledger.quotas import Reservation
from app.ledger.repository import ERROR_CHARS, LedgerRow
from app.observability import metrics
from app.upstream.router import Attempt, ModelRouter, billed_attempts
from app.upstream.usage import Usage

JUDGE_SUFFIX = "-judge"


class BookedJudgeCalls:
    """The error bound's `JudgeCalls` (app.cache.bound.judges), reserved and booked as the tenant's."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        router: ModelRouter,
        books: Bookkeeper,
        *,
        max_prompt_tokens: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.router = router
        self.books = books
        self.max_prompt_tokens = max_prompt_tokens

    async def ask(self, tenant_id: uuid.UUID, request_id: str, model: str, prompt: str) -> str:
        """The model's reply to `prompt`, asked for the tenant after its request `request_id`;
        raises a DejaError when the quota is full, the database is down or the model failed."""
        started = time.monotonic()
        messages = [{"role": "user", "content": prompt}]
        models = self.router.models_for(model)
        prompt_tokens = await self.books.quotas.estimator.prompt_tokens(messages, models=models)
        reservation = await self._reserve(tenant_id, models, prompt_tokens)
        row = LedgerRow(
            tenant_id=tenant_id,
            request_id=request_id + JUDGE_SUFFIX,
            requested_model=model,
            cache_status="bypass",
            http_status=200,
            latency_ms=0.0,
            metadata={"answer_judge": request_id},
        )
        body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": JUDGE_MAX_TOKENS}
        trail: list[Attempt] = []
        try:
            result = await self.router.complete(body, trail=trail)
        except BaseException as exc:
            # Booked for what a provider counted though its answer could not be used.
            spent = exc.billed if isinstance(exc, Billed) else billed_attempts(trail)
            usage, cost = await self._priced(Usage(), Decimal(0), spent, prompt_tokens)
            row.cache_status = "error"
            row.http_status = exc.status_code if isinstance(exc, DejaError) else 500
            row.error = (exc.booked if isinstance(exc, DejaError) else type(exc).__name__)[:ERROR_CHARS]
            if spent:
                row.used_model = spent[-1][0]
            await self._book(row, reservation, usage, cost, started)
            raise
        completion = result.completion
        answered = self.books.usage(completion.get("usage"), completion, prompt_tokens)
        answered = answered.within(*self._most(prompt_tokens))
        cost = await self.books.cost(result.model, answered)
        usage, cost = await self._priced(answered, cost, billed_attempts(result.trail), prompt_tokens)
        row.used_model = result.model
        row.upstream_latency_ms = result.latency_ms
        await self._book(row, reservation, usage, cost, started)
        return answer_text(completion)

    async def _reserve(
        self, tenant_id: uuid.UUID, models: tuple[str, ...], prompt_tokens: int
    ) -> Reservation:
        async def reserve(session: AsyncSession) -> Reservation:
            return await self.books.quotas.reserve(
                session, tenant_id, models, prompt_tokens, max_output_tokens=JUDGE_MAX_TOKENS, choices=1
            )

        reserved = await attempt(self.sessionmaker, reserve, tenant_id=tenant_id)
        if isinstance(reserved, DatabaseDown):
            # Nothing to learn from is worth a call the quota cannot account for.
            raise ServiceUnavailable("The judge's call cannot be reserved while the database is unreachable.")
        return reserved

    def _most(self, prompt_tokens: int) -> tuple[int, int]:
        """The most tokens a judge call can count (as a request's call, app.completions.pipeline)."""
        return max(self.max_prompt_tokens, 4 * prompt_tokens), JUDGE_MAX_TOKENS

    async def _priced(
        self, usage: Usage, cost: Decimal, billed: Sequence[tuple[str, Any]], prompt_tokens: int
    ) -> tuple[Usage, Decimal]:
        """`usage` and `cost` with those of the attempts a provider counted tokens for, and of
        those given up on while it worked (at the prompt's estimate)."""
        return await self.books.with_billed(
            usage, cost, billed, lambda _: self._most(prompt_tokens), prompt_tokens
        )

    async def _book(
        self, row: LedgerRow, reservation: Reservation, usage: Usage, cost: Decimal, started: float
    ) -> None:
        row.prompt_tokens, row.completion_tokens, row.cost_usd = (
            usage.prompt_tokens,
            usage.completion_tokens,
            cost,
        )
        row.latency_ms = (time.monotonic() - started) * 1000
        await self.books.book(row, reservation=reservation, usage=usage)
        metrics.add_cost(row.used_model or row.requested_model, cost)
