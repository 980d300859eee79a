"""Tenant quotas, enforced atomically in Postgres (docs/quotas.md).

Before an upstream call the request reserves an estimate (prompt tokens from a tokenizer plus
`max_tokens` or a default, priced at the model's current price) against every quota period
of its tenant. The check and the reservation are one UPDATE per period, guarded by the
counter row's lock, so concurrent requests cannot together reserve past a limit; after the
call the reservation is settled to the real usage in the same transaction as the ledger row.
The most a quota can be overspent by is what the requests in flight together cost beyond
their estimates.

A reservation is also a row, leased by the replica that made it: the replica renews it while the
call runs, and once the lease runs out unrenewed (the replica died) any replica gives the
request and its reservation back to the counters. A booking that arrives after that (from a
spool) counts its request and use anew.

Every tenant has usage counters, with or without a quota: a quota set in the middle of a day
counts that day's earlier spend, and `/v1/usage` shows what was used either way.

Cache hits are free: they neither consume nor need quota.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import logging
import math
import re
import unicodedata
import uuid
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar, Final

from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.leases import Lease
from app.errors import QuotaExceeded, Unauthorized, Unprocessable
from app.ledger.pricing import PriceBook, most_cost_of
from app.ledger.repository import LedgerRow
from app.upstream.usage import Usage

# The rows of requests that called a model: counted in the periods they happened in when they
# reserved nothing (made while the database was down and the quotas open).
UPSTREAM_CALLS = ("miss", "bypass")


def counted_request(row: LedgerRow) -> bool:
    """Whether the request of `row`, once settled, counts against the quota: not a hit, nor a
    request that waited on an identical request's call (`coalesced`: answered by it, or failed
    with it), which made no call of its own."""
    return row.cache_status != "hit" and not row.metadata.get("coalesced")


log = logging.getLogger(__name__)

PERIODS = ("day", "month")
# The most a model may answer, as its provider documents it (longest matching name prefix wins):
# what a request without max_tokens reserves (other models: the setting
# `limits.default_output_tokens`), and the most a request's own max_tokens counts at (other
# models: all of it).
MODEL_OUTPUT_LIMITS = {
    "gpt-5": 128_000,
    "gpt-4.1": 32_768,
    "gpt-4o": 16_384,
    "chatgpt-4o": 16_384,
    "gpt-4.5": 16_384,
    "gpt-4-turbo": 4_096,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 4_096,
    "o1": 100_000,
    "o3": 100_000,
    "o4-mini": 100_000,
}


def output_limit(model: str) -> int | None:
    """The most tokens `model` can answer with (None: not known here)."""
    best = max((prefix for prefix in MODEL_OUTPUT_LIMITS if model.startswith(prefix)), key=len, default=None)
    return MODEL_OUTPUT_LIMITS[best] if best is not None else None


def most_output_tokens(model: str) -> int:
    """The most tokens `model` can answer with, or any model listed, when it is not."""
    return output_limit(model) or max(MODEL_OUTPUT_LIMITS.values())


def period_start(period: str, at: datetime) -> datetime:
    at = at.astimezone(UTC)
    if period == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_end(period: str, at: datetime) -> datetime:
    start = period_start(period, at)
    if period == "day":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Reservation:
    tenant_id: uuid.UUID
    periods: tuple[str, ...]  # the periods that hold the reservation
    starts: tuple[datetime, ...]
    tokens: int
    cost_usd: Decimal
    id: uuid.UUID | None = None  # its lease row; None in a spool written before reservations had rows


@dataclass(frozen=True, slots=True)
class ReservationTerms:
    """What one request reserves in both periods, and when (which day and month it counts in)."""

    tokens: int
    cost_usd: Decimal
    at: datetime
    # Models of the route with no price: their cost would be booked as 0.
    unpriced: tuple[str, ...] = ()

    @property
    def day(self) -> date:
        return period_start("day", self.at).date()

    @property
    def month(self) -> date:
        return period_start("month", self.at).date()

    def reservation(self, tenant_id: uuid.UUID, reservation_id: uuid.UUID) -> Reservation:
        """The reservation these terms make once both periods took them."""
        return Reservation(
            tenant_id=tenant_id,
            periods=PERIODS,
            starts=tuple(period_start(p, self.at) for p in PERIODS),
            tokens=self.tokens,
            cost_usd=self.cost_usd,
            id=reservation_id,
        )


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    period: str
    period_start: datetime
    requests: int
    tokens: int
    cost_usd: Decimal
    reserved_tokens: int
    reserved_cost_usd: Decimal
    max_requests: int | None
    max_tokens: int | None
    max_cost_usd: Decimal | None


_ENSURE_COUNTERS = text(
    """
    INSERT INTO usage_counters (tenant_id, period, period_start)
    VALUES (:tenant_id, 'day', CAST(:day AS date)), (:tenant_id, 'month', CAST(:month AS date))
    ON CONFLICT DO NOTHING
    """
)
# A tenant's day and month counter rows, locked day before month: the order every writer takes
# them in (settling goes period by period in that order, reclaiming tenant by tenant); without
# it two writers could lock them in opposite orders and deadlock.
_LOCK_COUNTERS = """
    WITH locked AS (
        SELECT period FROM usage_counters
        WHERE tenant_id = :tenant_id
          AND ((period = 'day' AND period_start = CAST(:day AS date))
               OR (period = 'month' AND period_start = CAST(:month AS date)))
        ORDER BY period
        FOR UPDATE
    )
"""
# One statement per request: both periods take the reservation where their limits (if any) fit.
_RESERVE = text(
    _LOCK_COUNTERS  # noqa: S608 - two constant strings, no input
    + """
    UPDATE usage_counters AS u
    SET requests = u.requests + 1,
        reserved_tokens = u.reserved_tokens + :tokens,
        reserved_cost_usd = u.reserved_cost_usd + :cost
    FROM (VALUES ('day', CAST(:day AS date)), ('month', CAST(:month AS date))) AS p(period, start)
    LEFT JOIN quotas AS q ON q.tenant_id = :tenant_id AND q.period = p.period
    WHERE u.tenant_id = :tenant_id AND u.period = p.period AND u.period_start = p.start
      AND u.period IN (SELECT period FROM locked)
      AND (q.max_requests IS NULL OR u.requests + 1 <= q.max_requests)
      AND (q.max_tokens IS NULL OR u.tokens + u.reserved_tokens + :tokens <= q.max_tokens)
      AND (q.max_cost_usd IS NULL OR u.cost_usd + u.reserved_cost_usd + :cost <= q.max_cost_usd)
    RETURNING u.period
    """
)
_CAPS_COST = text(
    "SELECT EXISTS (SELECT 1 FROM quotas WHERE tenant_id = :tenant_id AND max_cost_usd IS NOT NULL)"
)
_QUOTAS = text(
    """
    SELECT q.period, q.max_requests, q.max_tokens, q.max_cost_usd,
           coalesce(u.requests, 0) AS requests, coalesce(u.tokens, 0) AS tokens,
           coalesce(u.cost_usd, 0) AS cost_usd, coalesce(u.reserved_tokens, 0) AS reserved_tokens,
           coalesce(u.reserved_cost_usd, 0) AS reserved_cost_usd
    FROM quotas q
    LEFT JOIN usage_counters u ON u.tenant_id = q.tenant_id AND u.period = q.period
      AND u.period_start = CASE q.period WHEN 'day' THEN CAST(:day AS date) ELSE CAST(:month AS date) END
    WHERE q.tenant_id = :tenant_id
    ORDER BY q.period
    """
)
_SETTLE = text(
    """
    UPDATE usage_counters
    SET requests = greatest(requests - :uncounted, 0), tokens = tokens + :tokens, cost_usd = cost_usd + :cost,
        reserved_tokens = greatest(reserved_tokens - :reserved_tokens, 0),
        reserved_cost_usd = greatest(reserved_cost_usd - :reserved_cost, 0)
    WHERE tenant_id = :tenant_id AND period = :period AND period_start = CAST(:start AS date)
    """
)
_HOLD = text(
    """
    INSERT INTO quota_reservations (tenant_id, id, holder, day_start, month_start, tokens, cost_usd, expires_at)
    VALUES (:tenant_id, :id, :holder, CAST(:day AS date), CAST(:month AS date), :tokens, :cost,
            now() + make_interval(secs => :lease_s))
    """
)
_RELEASE = text("DELETE FROM quota_reservations WHERE tenant_id = :tenant_id AND id = :id RETURNING id")
_RENEW = text(
    "UPDATE quota_reservations SET expires_at = now() + make_interval(secs => :lease_s) WHERE holder = :holder"
)
# Reservations whose replica stopped renewing them: the request and what it reserved go back.
# The counter rows are locked tenant by tenant, day before month, as a reservation locks them.
_RECLAIM = text(
    """
    WITH gone AS (
        DELETE FROM quota_reservations WHERE expires_at < now()
        RETURNING tenant_id, day_start, month_start, tokens, cost_usd
    ), per_period AS (
        SELECT tenant_id, p.period, p.start, count(*) AS requests, sum(tokens) AS tokens, sum(cost_usd) AS cost
        FROM gone CROSS JOIN LATERAL (VALUES ('day', day_start), ('month', month_start)) AS p(period, start)
        GROUP BY tenant_id, p.period, p.start
    ), locked AS (
        SELECT u.tenant_id, u.period, u.period_start FROM usage_counters AS u
        JOIN per_period AS r ON u.tenant_id = r.tenant_id AND u.period = r.period AND u.period_start = r.start
        ORDER BY u.tenant_id, u.period
        FOR UPDATE OF u
    ), released AS (
        UPDATE usage_counters AS u
        SET requests = greatest(u.requests - r.requests, 0),
            reserved_tokens = greatest(u.reserved_tokens - r.tokens, 0),
            reserved_cost_usd = greatest(u.reserved_cost_usd - r.cost, 0)
        FROM per_period AS r
        WHERE u.tenant_id = r.tenant_id AND u.period = r.period AND u.period_start = r.start
          AND (u.tenant_id, u.period) IN (SELECT tenant_id, period FROM locked)
        RETURNING 1
    )
    SELECT count(*) FROM gone
    """
)
# A call booked without a reservation: made while quotas could not be checked (the database was
# down when it started), or whose reservation was reclaimed before its booking arrived.
_COUNT = text(
    _LOCK_COUNTERS  # noqa: S608 - two constant strings, no input
    + """
    UPDATE usage_counters
    SET requests = requests + 1, tokens = tokens + :tokens, cost_usd = cost_usd + :cost
    WHERE tenant_id = :tenant_id
      AND ((period = 'day' AND period_start = CAST(:day AS date))
           OR (period = 'month' AND period_start = CAST(:month AS date)))
      AND period IN (SELECT period FROM locked)
    """
)
_USAGE = text(
    """
    SELECT p.period, coalesce(u.requests, 0) AS requests, coalesce(u.tokens, 0) AS tokens,
           coalesce(u.cost_usd, 0) AS cost_usd, coalesce(u.reserved_tokens, 0) AS reserved_tokens,
           coalesce(u.reserved_cost_usd, 0) AS reserved_cost_usd,
           q.max_requests, q.max_tokens, q.max_cost_usd
    FROM (VALUES ('day', CAST(:day AS date)), ('month', CAST(:month AS date))) AS p(period, start)
    LEFT JOIN usage_counters u ON u.tenant_id = :tenant_id AND u.period = p.period AND u.period_start = p.start
    LEFT JOIN quotas q ON q.tenant_id = :tenant_id AND q.period = p.period
    ORDER BY p.period
    """
)


def _starts(at: datetime) -> dict[str, Any]:
    return {"day": period_start("day", at).date(), "month": period_start("month", at).date()}


class QuotaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve(
        self, tenant_id: uuid.UUID, tokens: int, cost: Decimal, at: datetime, lease: Lease
    ) -> Reservation:
        """Count the request and reserve in both periods under `lease`, or raise QuotaExceeded
        naming the quota that is full."""
        params = {"tenant_id": tenant_id, "tokens": tokens, "cost": cost, **_starts(at)}
        await self.session.execute(_ENSURE_COUNTERS, params)
        reserved = {row.period for row in (await self.session.execute(_RESERVE, params)).all()}
        if reserved != set(PERIODS):
            for quota in (await self.session.execute(_QUOTAS, params)).all():
                if quota.period not in reserved:
                    raise _exceeded(quota, tokens, cost, at)
            # No quota refused, yet a period has no counter to reserve in: the tenant was deleted
            # (migration 0160 writes none of its rows) while its key was still remembered.
            raise Unauthorized("This key's tenant was deleted.")
        reservation_id = uuid.uuid4()
        await self.session.execute(
            _HOLD, {**params, "id": reservation_id, "holder": lease.holder, "lease_s": lease.seconds}
        )
        held = tuple(sorted(reserved))
        return Reservation(
            tenant_id=tenant_id,
            periods=held,
            starts=tuple(period_start(p, at) for p in held),
            tokens=tokens,
            cost_usd=cost,
            id=reservation_id,
        )

    async def caps_cost(self, tenant_id: uuid.UUID) -> bool:
        """Whether a quota of the tenant limits its spend in dollars."""
        return bool((await self.session.execute(_CAPS_COST, {"tenant_id": tenant_id})).scalar_one())

    async def exceeded(self, tenant_id: uuid.UUID, terms: ReservationTerms) -> QuotaExceeded:
        """The refusal of a reservation a period's limit did not allow (made outside this
        session): the first quota these terms do not fit, as it reads now."""
        params = {"tenant_id": tenant_id, **_starts(terms.at)}
        quotas = (await self.session.execute(_QUOTAS, params)).all()
        full = [q for q in quotas if _full(q, terms.tokens, terms.cost_usd)] or quotas
        if not full:  # the quota was removed meanwhile: refuse as the reservation did
            return unnamed_refusal()
        return _exceeded(full[0], terms.tokens, terms.cost_usd, terms.at)

    async def settle(
        self, reservation: Reservation, usage: Usage, cost: Decimal, *, counted: bool = True
    ) -> None:
        """Settle to what was used. `counted=False`: the request made no upstream call after all
        (it was answered by an identical request's call), so its request is given back too."""
        if reservation.id is not None:
            released = await self.session.execute(
                _RELEASE, {"tenant_id": reservation.tenant_id, "id": reservation.id}
            )
            if released.first() is None:  # reclaimed: its request was given back, count it again
                if counted:
                    await self._count(reservation.tenant_id, reservation.starts[0], usage, cost)
                return
        # One round trip (executemany), the periods in their order: day before month, as every
        # writer locks them.
        amounts = {
            "tenant_id": reservation.tenant_id,
            "tokens": usage.total,
            "cost": cost,
            "reserved_tokens": reservation.tokens,
            "reserved_cost": reservation.cost_usd,
            "uncounted": 0 if counted else 1,
        }
        rows = [
            {**amounts, "period": period, "start": start.date()}
            for period, start in zip(reservation.periods, reservation.starts, strict=True)
        ]
        if rows:
            await self.session.execute(_SETTLE, rows)

    async def settle_row(self, row: LedgerRow, reservation: Reservation | None) -> None:
        """The counters for a booked `row`, settled from the row itself (a booking replayed from
        the spool, or one that reserved nothing): its reservation settled to the row's tokens and
        cost (else it would hold quota until the period ends; a request that made no call of its
        own, `counted_request`, is given back, as when it is booked at once), or, for an upstream
        call made while quotas could not be checked, its use counted in the periods it happened in."""
        usage = Usage(row.prompt_tokens, row.completion_tokens)
        if reservation is not None:
            await self.settle(reservation, usage, row.cost_usd, counted=counted_request(row))
        elif row.cache_status in UPSTREAM_CALLS:
            await self._count(row.tenant_id, row.created_at, usage, row.cost_usd)

    async def _count(self, tenant_id: uuid.UUID, at: datetime, usage: Usage, cost: Decimal) -> None:
        params = {"tenant_id": tenant_id, "tokens": usage.total, "cost": cost, **_starts(at)}
        await self.session.execute(_ENSURE_COUNTERS, params)
        await self.session.execute(_COUNT, params)

    async def renew(self, lease: Lease) -> None:
        """Extend every reservation this process holds by another lease."""
        await self.session.execute(_RENEW, {"holder": lease.holder, "lease_s": lease.seconds})

    async def reclaim_expired(self) -> int:
        """Give back the requests and reservations whose lease ran out; how many (system context)."""
        return int((await self.session.execute(_RECLAIM)).scalar_one())

    async def usage(self, tenant_id: uuid.UUID, at: datetime) -> list[PeriodUsage]:
        rows = (await self.session.execute(_USAGE, {"tenant_id": tenant_id, **_starts(at)})).all()
        return [
            PeriodUsage(
                period=row.period,
                period_start=period_start(row.period, at),
                requests=row.requests,
                tokens=row.tokens,
                cost_usd=Decimal(row.cost_usd),
                reserved_tokens=row.reserved_tokens,
                reserved_cost_usd=Decimal(row.reserved_cost_usd),
                max_requests=row.max_requests,
                max_tokens=row.max_tokens,
                max_cost_usd=row.max_cost_usd,
            )
            for row in rows
        ]


_ADJECTIVES = {"day": "daily", "month": "monthly"}


def unnamed_refusal() -> QuotaExceeded:
    """A reservation's refusal when which quota refused cannot be read (removed meanwhile, or the
    database gone between the refusal and the read)."""
    return QuotaExceeded("The tenant's quota is exhausted.", retry_after_s=1)


def _fullness(quota: Any, tokens: int, cost: Decimal) -> tuple[bool, bool, bool]:
    """Whether one more request, `tokens` more or `cost` more would pass the quota's limits."""
    used_tokens = quota.tokens + quota.reserved_tokens
    used_cost = Decimal(quota.cost_usd) + Decimal(quota.reserved_cost_usd)
    return (
        quota.max_requests is not None and quota.requests + 1 > quota.max_requests,
        quota.max_tokens is not None and used_tokens + tokens > quota.max_tokens,
        quota.max_cost_usd is not None and used_cost + cost > Decimal(quota.max_cost_usd),
    )


def _full(quota: Any, tokens: int, cost: Decimal) -> bool:
    return any(_fullness(quota, tokens, cost))


def _exceeded(quota: Any, tokens: int, cost: Decimal, at: datetime) -> QuotaExceeded:
    used_tokens = quota.tokens + quota.reserved_tokens
    used_cost = Decimal(quota.cost_usd) + Decimal(quota.reserved_cost_usd)
    requests_full, tokens_full, cost_full = _fullness(quota, tokens, cost)
    if not (requests_full or tokens_full or cost_full):
        # The counters moved between the refusal and this read (another process booked or
        # released): name the first limit the period has, as the refusal stands.
        requests_full = quota.max_requests is not None
        tokens_full = not requests_full and quota.max_tokens is not None
    if requests_full:
        limit, detail = "requests", f"{quota.requests} of {quota.max_requests} requests used"
        spent = True
    elif tokens_full:
        limit = "tokens"
        detail = f"{used_tokens} of {quota.max_tokens} tokens used or reserved, {tokens} more needed"
        spent = used_tokens >= quota.max_tokens
    else:
        limit = "cost"
        detail = f"${used_cost:.6f} of ${Decimal(quota.max_cost_usd):.6f} used or reserved, ${cost:.6f} more needed"
        spent = used_cost >= Decimal(quota.max_cost_usd)
    retry_after = int((period_end(quota.period, at) - at).total_seconds()) + 1
    # A request that needs more than is left of a quota not used up is told so, not that it is.
    state = "is exhausted" if spent else "has too little left for this request"
    return QuotaExceeded(
        f"The tenant's {_ADJECTIVES[quota.period]} {limit} quota {state}: {detail}.",
        retry_after_s=retry_after,
        extra={"quota": {"period": quota.period, "limit": limit}},
    )


class TokenEstimator:
    """Prompt tokens before the call, from the shipped WordPiece tokenizer: within a few percent
    of OpenAI's BPE counts on English prose and somewhat above them on code (a safe side for a
    reservation). The real counts always come from the provider's usage.

    WordPiece reads a word of over 100 characters (or one it has no pieces for) as one unknown
    token, where a BPE tokenizer takes one token for every few characters of it: such a word
    counts a token per UNKNOWN_CHARS_PER_TOKEN characters, so that a prompt of one 400,000-character
    word is not estimated at a few tokens and let past the quota and the prompt limit. And it
    reads as nothing what reaches the model all the same (`hidden_tokens`)."""

    UNKNOWN_CHARS_PER_TOKEN: ClassVar[int] = 2
    INLINE_CHARS: ClassVar[int] = 16_384
    PIECE_CHARS: ClassVar[int] = 4096
    BATCH_PIECES: ClassVar[int] = 64

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR

        tokenizer = Tokenizer.from_file(str(DEFAULT_EMBEDDER_DIR / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def _unknown(self) -> int:
        return int(self._tokenizer.token_to_id("[UNK]"))

    async def prompt_tokens(
        self,
        messages: list[dict[str, Any]],
        tooling: Iterable[Any] = (),
        *,
        models: tuple[str, ...] = (),
        most: int | None = None,
    ) -> int:
        """The messages' tokens (their content, and the rest of each but its role as JSON: tool
        calls and their arguments), and those of what else the model reads of the request
        (`tooling`: its tool and function definitions, its response format), as JSON; an image,
        audio or a file as `models` (the ones that may answer) may count it. Texts of
        over INLINE_CHARS in all are counted on a worker thread, in pieces of PIECE_CHARS (the
        tokenizer takes a second a megabyte, and holds the interpreter but in a batch), a few
        batches at a time, and no further once past `most` when given (the prompt is refused
        then, whatever the rest holds): a MiB of prompt is never held as tokens all at once."""
        texts: list[str] = []
        media = 0
        sized = [MOST_IMAGES_SIZED]  # the image headers this request may still have read
        files: list[Any] = []  # each file part's data (None: sent by id)
        for message in messages:
            media += _read_content(message.get("content"), texts, models, sized, files)
            _read_rest(message, texts)
        if files:
            # A PDF's pages are found in its bytes, on a worker thread: a few milliseconds a
            # megabyte, and up to FILE_INFLATE_BYTES of object streams read and inflated.
            budget = [FILE_INFLATE_BYTES]
            pages = await asyncio.to_thread(lambda: [file_pages(data, budget) for data in files])
            media += sum(file_tokens(models, count) for count in pages)
        texts += [json.dumps(part, ensure_ascii=False) for part in tooling if part is not None]
        # About 4 tokens of framing per message, as OpenAI counts chat messages.
        counted = media + 4 * len(messages) + 3
        if sum(map(len, texts)) <= self.INLINE_CHARS:
            return counted + sum(map(self._tokens, texts))
        left = None if most is None else most - counted
        return counted + await asyncio.to_thread(self._in_pieces, texts, left)

    def text_tokens(self, text: str) -> int:
        """Tokens of an answer's text (for an answer the upstream sent without usage)."""
        return self._tokens(text)

    def _tokens(self, text: str) -> int:
        # One text at a time: a batch would run on the tokenizer's thread pool, which costs a
        # short chat more CPU than it saves.
        return self._counted(text, self._tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def _in_pieces(self, texts: list[str], most: int | None = None) -> int:
        """The tokens of `texts`, read BATCH_PIECES pieces at a time; once past `most`, what was
        counted so far."""
        pieces = (
            text[at : at + self.PIECE_CHARS] for text in texts for at in range(0, len(text), self.PIECE_CHARS)
        )
        tokens = 0
        while batch := list(itertools.islice(pieces, self.BATCH_PIECES)):
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
            tokens += sum(map(self._counted, batch, encodings))
            if most is not None and tokens > most:
                break
        return tokens

    def _counted(self, text: str, encoding: Any) -> int:
        ids = encoding.ids
        if self._unknown not in ids:
            return len(ids) + hidden_tokens(text)
        return hidden_tokens(text) + sum(
            max(1, -(-(end - start) // self.UNKNOWN_CHARS_PER_TOKEN)) if id_ == self._unknown else 1
            for id_, (start, end) in zip(ids, encoding.offsets, strict=True)
        )


# What WordPiece's normaliser keeps of ASCII: the printable characters, tab and line breaks.
_VISIBLE_ASCII: Final = re.compile(r"[\t\n\r\x20-\x7e]+")
# Unicode categories it drops: controls, format characters (zero-width spaces and joiners, the
# soft hyphen, tags), private-use, unassigned and surrogate code points.
_DROPPED_CATEGORIES: Final = ("Cc", "Cf", "Co", "Cn", "Cs")
# Whitespace past the first piece of a run: up to 16 of one ASCII character ("\n\n\n", eight
# spaces of indentation), a change of character ("\t " alternating) or any other whitespace
# character (a line separator, a no-break space), each a token to a BPE tokenizer.
_MORE_WHITESPACE: Final = re.compile(r"(?<=\s)(?:([\t\n\r\f\v])\1{0,15}| {1,16}|[^\S\t\n\r\f\v ])")


def hidden_tokens(text: str) -> int:
    """Tokens for what WordPiece reads as nothing but a provider's tokenizer reads.

    - Whitespace: WordPiece counts none, OpenAI's o200k a token for a line break, an indentation
      or up to 16 repeats of one character, one for every two characters of a tab and a space
      alternating, and one for each line separator. A run's first piece goes with the word
      beside it; each piece past it counts a token (`_MORE_WHITESPACE`): prose between single
      spaces adds nothing, code a token for each indented line.
    - Characters its normaliser drops: a token for each of the categories it drops (and U+FFFD),
      and for each combining mark past one per other character. Marks are counted only past one
      per character, so that Thai, Hindi or vowelled Arabic, whose marks a provider's tokenizer
      merges into their words, count as before, while a letter under 10,000 stacked accents
      does not count as one.

    Without them, 300,000 zero-width spaces, or 300,000 characters of tabs and spaces, counted as
    no token at all, past the prompt limit and any token quota. Printable ASCII is set aside
    before the categories are looked up."""
    spaced = len(_MORE_WHITESPACE.findall(text))
    rest = _VISIBLE_ASCII.sub("", text)
    if not rest:
        return spaced
    categories = Counter(map(unicodedata.category, rest))
    marks = categories["Mn"]
    hidden = sum(categories[c] for c in _DROPPED_CATEGORIES) + rest.count("\ufffd")
    return spaced + hidden + max(0, marks - (len(text) - marks))


@dataclass(frozen=True, slots=True)
class TileRule:
    """A family that counts 512-pixel tiles: `base` for any image, plus `tile` for each tile of
    the image scaled down to fit 2048 x 2048 and then to 768 pixels on its short side (at most
    2 x 4 tiles); at `"detail": "low"` the base alone."""

    base: int
    tile: int

    def tokens(self, detail: Any, size: tuple[int, int] | None) -> int:
        if detail == "low":
            return self.base
        if size is None:
            return self.base + self.tile * 8
        width, height = size
        fit = min(1.0, 2048 / max(width, height))
        short = min(1.0, 768 / (min(width, height) * fit))
        tiles = math.ceil(width * fit * short / 512) * math.ceil(height * fit * short / 512)
        return self.base + self.tile * tiles


@dataclass(frozen=True, slots=True)
class PatchRule:
    """A family that counts 32-pixel patches, at most 1,536 (a larger image is scaled down to
    fit), times its `multiplier`, whatever the detail."""

    multiplier: float

    def tokens(self, detail: Any, size: tuple[int, int] | None) -> int:
        patches = MOST_PATCHES
        if size is not None:
            patches = min(MOST_PATCHES, math.ceil(size[0] / 32) * math.ceil(size[1] / 32))
        return math.ceil(patches * self.multiplier)


MOST_PATCHES: Final = 1536
# What OpenAI counts for one image, by model family (its vision guide). Longest prefix wins; a
# model of another family counts as gpt-4o does.
IMAGE_TOKENS: Final[dict[str, TileRule | PatchRule]] = {
    "gpt-4o": TileRule(85, 170),
    "gpt-4o-mini": TileRule(2833, 5667),
    "gpt-4.1": TileRule(85, 170),
    "gpt-4.1-mini": PatchRule(1.62),
    "gpt-4.1-nano": PatchRule(2.46),
    "gpt-4.5": TileRule(85, 170),
    "gpt-5": TileRule(70, 140),
    "gpt-5-mini": PatchRule(1.62),
    "gpt-5-nano": PatchRule(2.46),
    "o1": TileRule(75, 150),
    "o3": TileRule(75, 150),
    "o4-mini": PatchRule(1.72),
}
OTHER_IMAGE_TOKENS: Final = IMAGE_TOKENS["gpt-4o"]
# The formats OpenAI reads, and how much of an image a data URL's header is read from: the size
# of a JPEG comes after its metadata (EXIF, a colour profile), almost always within this.
IMAGE_FORMATS: Final = ("PNG", "JPEG", "GIF", "WEBP")
IMAGE_HEADER_BYTES: Final = 256 * 1024
# The images of one request whose size is read, on the event loop (about 25 µs each, and the
# decoding of their headers); any further one counts the most. A body of 5,700 one-pixel
# images took 0.3 s of the loop when every one was read.
MOST_IMAGES_SIZED: Final = 32


def image_size(url: Any) -> tuple[int, int] | None:
    """The width and height of the image in a base64 data URL, read from its header (Pillow, the
    formats OpenAI reads); None for another URL, or a header that does not say within
    IMAGE_HEADER_BYTES: such an image counts the most its family may."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    head, comma, data = url[: IMAGE_HEADER_BYTES * 4 // 3 + 64].partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            raw = base64.b64decode(data[: len(data) // 4 * 4])
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as image:
                width, height = image.size
    except Exception:  # any header Pillow cannot read counts the most
        return None
    return (width, height) if width > 0 and height > 0 else None


def image_tokens(models: Iterable[str], detail: Any, size: tuple[int, int] | None = None) -> int:
    """The most tokens OpenAI may count for one image of `size` (None: unknown) at `detail` sent to
    any of `models` (the route's: whichever answers)."""
    rules = [_image_rule(model) for model in models] or [OTHER_IMAGE_TOKENS]
    return max(rule.tokens(detail, size) for rule in rules)


def _image_rule(model: str) -> TileRule | PatchRule:
    family = max((prefix for prefix in IMAGE_TOKENS if model.startswith(prefix)), key=len, default=None)
    return IMAGE_TOKENS[family] if family is not None else OTHER_IMAGE_TOKENS


# What OpenAI counts for a second of input audio (its audio models: $100 a million tokens is about
# $0.06 a minute), and the fewest bytes a second of audio takes in a format it reads (MP3 at
# 8 kbit/s; WAV takes far more): an audio part counts at most its decoded bytes over
# AUDIO_LEAST_BYTES_PER_SECOND seconds, never the characters of its base64.
AUDIO_TOKENS_PER_SECOND: Final = 10
AUDIO_LEAST_BYTES_PER_SECOND: Final = 1000
# A file (a PDF) is read by the model page by page, as the page's text and an image of it: each
# page counts an image at the route's most and FILE_PAGE_TEXT_TOKENS of text. Its pages are its
# page objects, plain or in compressed object streams (of which at most FILE_INFLATE_BYTES are
# read in one request, in and out); a file whose pages cannot be found (one sent by id, an
# encrypted one) counts one.
FILE_PAGE_TEXT_TOKENS: Final = 1000
FILE_INFLATE_BYTES: Final = 4 * 1024 * 1024
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z])")
_PDF_STREAM_START = re.compile(rb"(?<!end)stream\r?\n")


def audio_tokens(audio: Any) -> int | None:
    """The most tokens an `input_audio` part's base64 `data` may hold (None: no such data)."""
    data = audio.get("data") if isinstance(audio, dict) else None
    if not isinstance(data, str):
        return None
    seconds = len(data) * 3 / 4 / AUDIO_LEAST_BYTES_PER_SECOND
    return math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)


def file_tokens(models: Iterable[str], pages: int) -> int:
    """What a file of `pages` pages counts, as the route's models may count it."""
    return pages * (image_tokens(models, None) + FILE_PAGE_TEXT_TOKENS)


def file_pages(data: Any, budget: list[int]) -> int:
    """The pages of a PDF sent as base64 `file_data` (a data URL or bare), from its page objects,
    plain or in compressed object streams, reading and inflating at most what is left of `budget`
    (the request's, shared by its files, charged for the bytes read and those inflated); 1 when
    none are found."""
    if not isinstance(data, str):
        return 1
    encoded = data.partition(",")[2] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(encoded)
    except ValueError:  # binascii.Error: not base64
        return 1
    pages = len(_PDF_PAGE.findall(raw))
    for found in _PDF_OBJECT_STREAM.finditer(raw):
        start = _PDF_STREAM_START.search(raw, found.end(), found.end() + 4096)
        if start is None:
            continue
        # Read up to its end, but no further than the budget: a file of stream starts without
        # ends searched the rest of itself from each of them, its CPU the square of its length.
        end = raw.find(b"endstream", start.end(), start.end() + budget[0])
        stream = raw[start.end() : end if end >= 0 else start.end() + budget[0]]
        budget[0] -= len(stream)
        if budget[0] <= 0:  # never inflate with no limit (0 is none to zlib)
            break
        try:
            objects = zlib.decompressobj().decompress(stream, budget[0])
        except zlib.error:
            continue
        budget[0] -= len(objects)
        pages += len(_PDF_PAGE.findall(objects))
    return max(1, pages)


# A tool call's id as providers make them ("call_" and 24 characters): the model is not shown it.
# A longer one is a client's own, and counts.
SHORT_CALL_ID: Final = 64


def _read_rest(message: dict[str, Any], texts: list[str]) -> None:
    """Add what else the model reads of a message to `texts`: the names and arguments of an
    assistant's tool calls and of a legacy function call as they are (JSON already: escaped once
    more, they would count a third more), and everything else as its JSON: arguments sent as an
    object, a call id of over SHORT_CALL_ID characters, any key the client added; a call's
    `"type": "function"` and a short id, which the model is not shown, not at all."""
    rest = {key: value for key, value in message.items() if key not in ("role", "content")}
    if isinstance(calls := rest.get("tool_calls"), list):
        rest["tool_calls"] = [left for call in calls if (left := _read_call(call, texts))]
        if not rest["tool_calls"]:
            del rest["tool_calls"]
    if "function_call" in rest and not (left := _read_function(rest["function_call"], texts)):
        del rest["function_call"]
    elif "function_call" in rest:
        rest["function_call"] = left
    if rest:
        texts.append(json.dumps(rest, ensure_ascii=False, default=str))


def _read_call(call: Any, texts: list[str]) -> Any:
    """Add a tool call's function name and arguments to `texts`; return what else of it counts."""
    if not isinstance(call, dict):
        return call
    rest = dict(call)
    if rest.get("type") == "function":
        del rest["type"]
    if isinstance(rest.get("id"), str) and len(rest["id"]) <= SHORT_CALL_ID:
        del rest["id"]
    if "function" in rest and not (function := _read_function(rest["function"], texts)):
        del rest["function"]
    elif "function" in rest:
        rest["function"] = function
    return rest


def _read_function(function: Any, texts: list[str]) -> Any:
    """Add a called function's name and arguments to `texts` when they are strings; return the
    rest of it, for its message's JSON (arguments sent as an object, any other key)."""
    if not isinstance(function, dict):
        return function
    rest = dict(function)
    texts.extend(rest.pop(key) for key in ("name", "arguments") if isinstance(rest.get(key), str))
    return rest


def _rest_of(part: dict[str, Any], inner: str, read: tuple[str, ...]) -> dict[str, Any]:
    """What a media part holds besides what its count read: its keys but `type` and `inner`, and
    the keys of its `inner` object but `read`."""
    rest = {key: value for key, value in part.items() if key not in ("type", inner)}
    left = {key: value for key, value in part[inner].items() if key not in read}
    return {**rest, inner: left} if left else rest


def _read_content(
    content: Any, texts: list[str], models: tuple[str, ...], sized: list[int], files: list[Any]
) -> int:
    """Add what the tokenizer should count of one message's content to `texts`; return the tokens
    of its images, audio and files, counted as the provider counts them for `models`, never as
    the characters of their base64 (a data URL of 300 KB is 400,000 characters); anything else a
    media part holds, and any other part, as its JSON."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    if not isinstance(content, list):
        if content is not None:
            texts.append(json.dumps(content, ensure_ascii=False, default=str))
        return 0
    media = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        rest: Any = part
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
            rest = {key: value for key, value in part.items() if key not in ("type", "text")}
        elif kind == "image_url" and isinstance(image := part.get("image_url"), dict):
            size = None
            if sized[0] > 0:
                sized[0] -= 1
                size = image_size(image.get("url"))
            media += image_tokens(models, image.get("detail"), size)
            rest = _rest_of(part, "image_url", ("url", "detail"))
        elif kind == "input_audio" and (audio := audio_tokens(part.get("input_audio"))) is not None:
            media += audio
            rest = _rest_of(part, "input_audio", ("data", "format"))
        elif kind == "file" and isinstance(file := part.get("file"), dict):
            files.append(file.get("file_data"))  # its pages are counted by the caller
            rest = _rest_of(part, "file", ("file_data",))
        if rest:
            texts.append(json.dumps(rest, ensure_ascii=False, default=str))
    return media


class Quotas:
    """Reservation estimates and the reserve/settle calls the pipeline makes."""

    def __init__(self, prices: PriceBook, lease: Lease, *, default_output_tokens: int) -> None:
        self.prices = prices
        self.lease = lease
        self.default_output_tokens = default_output_tokens
        self.estimator = TokenEstimator()

    async def reserve(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        models: tuple[str, ...],
        prompt_tokens: int,
        *,
        max_output_tokens: int | None,
        choices: int,
    ) -> Reservation:
        """Reserve the prompt's (estimated) tokens plus the most the answers may take: the request's
        own limit (already checked positive at the edge), else the model's, never above the model's;
        at the most any of `models` (the route's, primary and fallbacks) may cost."""
        terms = await self.terms(models, prompt_tokens, max_output_tokens=max_output_tokens, choices=choices)
        repository = QuotaRepository(session)
        if terms.unpriced and await repository.caps_cost(tenant_id):
            # Booked at $0, the call would pass any cost quota, however dear the model.
            # Not naming the models: a fallback's is the route's business, not the tenant's.
            raise Unprocessable(
                "No price is known for the model this request asks for, or for one its route may "
                "fall back to, and this tenant's spend is capped by a cost quota, which could not "
                "bound it: an admin adds the price (POST /admin/prices)."
            )
        return await repository.reserve(tenant_id, terms.tokens, terms.cost_usd, terms.at, self.lease)

    async def terms(
        self, models: tuple[str, ...], prompt_tokens: int, *, max_output_tokens: int | None, choices: int
    ) -> ReservationTerms:
        """What a request reserves (see `reserve`), priced now: whichever of `models` answers, the
        booking stays within it (a fallback that costs more than the primary included)."""
        at = datetime.now(UTC)
        tokens, cost, unpriced = 0, Decimal(0), []
        primary_most = output_limit(models[0]) or self.default_output_tokens
        for model in dict.fromkeys(models):
            # With the request's own limit every model's answer keeps to it (and to the model's
            # own, where it is known). Without one, an answer is estimated at the primary's own
            # limit whichever model gives it: a fallback's may be far larger (gpt-5: 128,000), and
            # such a request has no bound to keep anyway.
            most = output_limit(model)
            if max_output_tokens is None:
                per_choice = primary_most
            else:
                per_choice = max_output_tokens if most is None else min(max_output_tokens, most)
            usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=per_choice * choices)
            price = await self.prices.price(model, at)
            if price is None:
                unpriced.append(model)
            tokens, cost = max(tokens, usage.total), max(cost, most_cost_of(price, usage))
        return ReservationTerms(tokens, cost, at, tuple(unpriced))

    async def settle(
        self,
        session: AsyncSession,
        reservation: Reservation | None,
        usage: Usage,
        cost: Decimal,
        *,
        counted: bool = True,
        row: LedgerRow | None = None,
    ) -> None:
        """Settle `reservation` to what was used. None: the request reserved nothing, refused
        before it could, a hit, or a call made while the database was down and the quotas open:
        such a call (`row`, a miss or a bypass) is counted in the periods it happened in, as its
        row would be replayed from the spool (it was not counted at all when the database was
        back by the time it was booked)."""
        repository = QuotaRepository(session)
        if reservation is not None:
            await repository.settle(reservation, usage, cost, counted=counted)
        elif row is not None:
            await repository.settle_row(row, None)


async def renew_reservations(session: AsyncSession, lease: Lease) -> None:
    """A lease step: this process still holds its reservations."""
    await QuotaRepository(session).renew(lease)


async def reclaim_reservations(session: AsyncSession, lease: Lease) -> None:
    """A lease step: release what replicas that died held."""
    if released := await QuotaRepository(session).reclaim_expired():
        log.warning("quota reservations of a lost replica released", extra={"reservations": released})
