"""Read-side SQL of the dashboard: activity over time, entries, flagged entries, requests.

These queries read the cache, the ledger and the tenants together, for pages only; the domains'
own repositories keep the SQL the service runs. Writes never happen here: the dashboard's
actions go through the same services and repositories as the admin and cache APIs. The caller
chooses the row-level security context (a tenant's, or system for an admin), so a tenant's
page cannot read another tenant's rows even where a filter were missing.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Text,
    TextClause,
    cast,
    delete,
    func,
    literal_column,
    null,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.models import CacheEntry
from app.ledger.models import LedgerEntry
from app.ledger.rollup import LedgerRollup
from app.tenants.models import ApiKey, Tenant
from app.ui.models import SignedOut

Bucket = Literal["hour", "day"]
PAGE_SIZE = 50
# What a page reads of a stored text (prompt, answer, the prompt a wrong hit was reported with):
# a list or the review page an excerpt, an entry's own page more; never the whole of it, whatever
# was stored (a 1 MB answer, a 200 KB reported prompt). Postgres cuts it (`left`), so neither the
# connection nor this process nor the HTML ever carries more (docs/dashboard.md).
EXCERPT_CHARS = 300
DETAIL_CHARS = 20_000
ELLIPSIS = "…"

# The answer as the pages show it: the text of every choice's message, in order. Stored
# completions are JSON from clients too: choices that are not a list, or a choice without a
# message, show nothing rather than fail.
ANSWER: ColumnElement[str] = literal_column(
    """(SELECT coalesce(string_agg(coalesce(choice #>> '{message,content}', ''), '' ORDER BY position), '')
          FROM jsonb_array_elements(CASE jsonb_typeof(cache_entries.response -> 'choices')
                                    WHEN 'array' THEN cache_entries.response -> 'choices' ELSE '[]'::jsonb END)
               WITH ORDINALITY AS choices(choice, position))"""
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One hour or day of requests."""

    start: datetime
    requests: int
    exact_hits: int
    semantic_hits: int
    misses: int
    bypasses: int
    errors: int
    cost_usd: Decimal
    avoided_cost_usd: Decimal
    hit_latency_ms: float | None  # mean
    miss_latency_ms: float | None

    @property
    def hits(self) -> int:
        return self.exact_hits + self.semantic_hits

    @classmethod
    def none(cls, start: datetime) -> Activity:
        """A bucket without requests."""
        return cls(start, 0, 0, 0, 0, 0, 0, Decimal(0), Decimal(0), None, None)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    cache_status: str
    requests: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    namespace: str
    model: str
    prompt: str
    created_at: datetime
    expires_at: datetime | None
    hit_count: int
    last_hit_at: datetime | None
    flagged: bool
    feedback_correct: int
    feedback_wrong: int
    # Texts are excerpts (`EXCERPT_CHARS` or `DETAIL_CHARS`), ending in ELLIPSIS where cut.
    wrong_hit_prompt: str | None = None
    answer: str | None = None  # on the review and entry pages
    completion: str | None = None  # the stored completion's JSON, on the entry's page


@dataclass(frozen=True, slots=True)
class EntrySearch:
    tenant_id: uuid.UUID | None
    text: str | None = None
    namespace: str | None = None
    model: str | None = None
    created_before: datetime | None = None
    flagged_only: bool = False


@dataclass(frozen=True, slots=True)
class RequestRow:
    id: int
    request_id: str
    tenant_id: uuid.UUID
    tenant_name: str
    created_at: datetime
    requested_model: str
    used_model: str | None
    namespace: str
    cache_status: str
    similarity: float | None
    entry_id: uuid.UUID | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    avoided_cost_usd: Decimal
    latency_ms: float
    upstream_latency_ms: float | None
    http_status: int
    priority: int
    error: str | None
    metadata: dict[str, Any]


# The expression of ix_cache_entries_prompt_words, written out so that the planner uses it.
PROMPT_WORDS = text(
    "to_tsvector('simple'::regconfig, cache_entries.prompt) @@ websearch_to_tsquery('simple'::regconfig, :words)"
)


# In a web search's syntax a hyphen that does not follow a letter or digit negates what follows,
# and each more one negates again: nested past 32 deep, Postgres gives up ("tsquery stack too
# small", an error, a 500). No one searches with that many: past it, hyphens are read as spaces.
_NEGATION = re.compile(r"(?<![^\W_])-")
MOST_NEGATIONS = 32


def search_words(text: str) -> str:
    """A search as `websearch_to_tsquery` reads it, with at most MOST_NEGATIONS negations."""
    if len(_NEGATION.findall(text)) <= MOST_NEGATIONS:
        return text
    return _NEGATION.sub(" ", text)


def excerpt(text: str | None, chars: int) -> str | None:
    """A text read `chars` + 1 characters long (`_entry_select`) as at most `chars` of it, with an
    ellipsis where it went on."""
    if text is None or len(text) <= chars:
        return text
    return text[:chars] + ELLIPSIS


def completion_text(text: str | None, chars: int) -> str | None:
    """A stored completion's JSON as read: indented when it came whole, cut as it is otherwise."""
    if text is None or len(text) > chars:
        return excerpt(text, chars)
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)


class DashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def activity(self, tenant_id: uuid.UUID | None, since: datetime, bucket: Bucket) -> list[Activity]:
        """Requests by hour or day (UTC) from `since`, oldest first; buckets without requests are left out."""
        source = (await LedgerRollup(self.session).hourly(tenant_id, since)).subquery()
        start = func.date_trunc(bucket, source.c.hour, "UTC").label("start")
        hits_ms, misses_ms = func.sum(source.c.hit_latency_ms), func.sum(source.c.miss_latency_ms)
        hits = func.sum(source.c.exact_hits + source.c.semantic_hits)
        stmt = (
            select(
                start,
                func.sum(source.c.requests).label("requests"),
                func.sum(source.c.exact_hits).label("exact_hits"),
                func.sum(source.c.semantic_hits).label("semantic_hits"),
                func.sum(source.c.misses).label("misses"),
                func.sum(source.c.bypasses).label("bypasses"),
                func.sum(source.c.errors).label("errors"),
                func.sum(source.c.cost_usd).label("cost_usd"),
                func.sum(source.c.avoided_cost_usd).label("avoided_cost_usd"),
                (hits_ms / func.nullif(hits, 0)).label("hit_ms"),
                (misses_ms / func.nullif(func.sum(source.c.misses), 0)).label("miss_ms"),
            )
            .group_by(literal_column("start"))
            .order_by(literal_column("start"))
        )
        return [
            Activity(
                start=row.start,
                requests=int(row.requests),
                exact_hits=int(row.exact_hits),
                semantic_hits=int(row.semantic_hits),
                misses=int(row.misses),
                bypasses=int(row.bypasses),
                errors=int(row.errors),
                cost_usd=Decimal(row.cost_usd),
                avoided_cost_usd=Decimal(row.avoided_cost_usd),
                hit_latency_ms=None if row.hit_ms is None else float(row.hit_ms),
                miss_latency_ms=None if row.miss_ms is None else float(row.miss_ms),
            )
            for row in (await self.session.execute(stmt)).all()
        ]

    async def key_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Per tenant: its live and its revoked keys."""
        stmt = select(
            ApiKey.tenant_id,
            func.count().filter(ApiKey.revoked_at.is_(None)),
            func.count().filter(ApiKey.revoked_at.is_not(None)),
        ).group_by(ApiKey.tenant_id)
        rows = (await self.session.execute(stmt)).all()
        return {row[0]: (int(row[1]), int(row[2])) for row in rows if row[0] is not None}  # admin keys: none

    async def latency(self, tenant_id: uuid.UUID | None, since: datetime) -> list[LatencySummary]:
        """Median and 95th percentile latency of hits and misses since `since`."""
        stmt = (
            select(
                LedgerEntry.cache_status,
                func.count().label("requests"),
                func.percentile_cont(0.5).within_group(LedgerEntry.latency_ms).label("p50"),
                func.percentile_cont(0.95).within_group(LedgerEntry.latency_ms).label("p95"),
            )
            .where(*self._ledger_window(tenant_id, since), LedgerEntry.cache_status.in_(("hit", "miss")))
            .group_by(LedgerEntry.cache_status)
            .order_by(LedgerEntry.cache_status)
        )
        return [
            LatencySummary(row.cache_status, row.requests, float(row.p50), float(row.p95))
            for row in (await self.session.execute(stmt)).all()
        ]

    async def entries(self, search: EntrySearch, *, limit: int = PAGE_SIZE) -> list[EntryRow]:
        """Newest first, texts cut to an excerpt; the answers too for flagged entries (the review)."""
        # The page's ids first (down an index on created_at), then their rows and tenants.
        page = (
            select(CacheEntry.id)
            .where(*self._entry_conditions(search))
            .order_by(CacheEntry.created_at.desc())
            .limit(limit)
        )
        stmt = (
            self._entry_select(EXCERPT_CHARS, with_answer=search.flagged_only)
            .where(CacheEntry.id.in_(page.scalar_subquery()))
            .order_by(CacheEntry.created_at.desc())
        )
        return [self._entry(row, EXCERPT_CHARS) for row in (await self.session.execute(stmt)).all()]

    async def entry(self, entry_id: uuid.UUID) -> EntryRow | None:
        """One entry for its page: its texts and stored completion up to `DETAIL_CHARS` each."""
        stmt = self._entry_select(DETAIL_CHARS, with_answer=True, with_completion=True).where(
            CacheEntry.id == entry_id
        )
        row = (await self.session.execute(stmt)).first()
        return self._entry(row, DETAIL_CHARS) if row is not None else None

    async def hits_of(self, entry_id: uuid.UUID, *, limit: int = 10) -> list[RequestRow]:
        """The latest requests this entry answered."""
        stmt = (
            self._request_select()
            .where(LedgerEntry.entry_id == entry_id, LedgerEntry.cache_status == "hit")
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
        return [self._request(row) for row in (await self.session.execute(stmt)).all()]

    async def requests(
        self,
        tenant_id: uuid.UUID | None,
        *,
        cache_status: str | None = None,
        before_id: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> list[RequestRow]:
        """Newest first (by booking order), `before_id` for the next page."""
        page = select(LedgerEntry.id).order_by(LedgerEntry.id.desc()).limit(limit)
        if tenant_id is not None:
            page = page.where(LedgerEntry.tenant_id == tenant_id)
        if cache_status is not None:
            page = page.where(LedgerEntry.cache_status == cache_status)
        if before_id is not None:
            page = page.where(LedgerEntry.id < before_id)
        # The page's ids first (a walk down the primary key), then their rows and tenants.
        stmt = (
            self._request_select()
            .where(LedgerEntry.id.in_(page.scalar_subquery()))
            .order_by(LedgerEntry.id.desc())
        )
        return [self._request(row) for row in (await self.session.execute(stmt)).all()]

    async def request(self, request_id: str) -> RequestRow | None:
        row = (
            await self.session.execute(self._request_select().where(LedgerEntry.request_id == request_id))
        ).first()
        return self._request(row) if row is not None else None

    @staticmethod
    def _ledger_window(tenant_id: uuid.UUID | None, since: datetime) -> list[ColumnElement[bool]]:
        conditions = [LedgerEntry.created_at >= since]
        if tenant_id is not None:
            conditions.append(LedgerEntry.tenant_id == tenant_id)
        return conditions

    @staticmethod
    def _entry_conditions(search: EntrySearch) -> list[ColumnElement[bool] | TextClause]:
        conditions: list[ColumnElement[bool] | TextClause] = []
        if search.tenant_id is not None:
            conditions.append(CacheEntry.tenant_id == search.tenant_id)
        if search.text:
            # Words, not substrings: the GIN index on the prompt's words answers it (docs/dashboard.md).
            conditions.append(PROMPT_WORDS.bindparams(words=search_words(search.text)))
        if search.namespace is not None:
            conditions.append(CacheEntry.namespace == search.namespace)
        if search.model is not None:
            conditions.append(CacheEntry.model == search.model)
        if search.created_before is not None:
            conditions.append(CacheEntry.created_at < search.created_before)
        if search.flagged_only:
            conditions.append(CacheEntry.flagged == true())
        return conditions

    @staticmethod
    def _entry_select(chars: int, *, with_answer: bool, with_completion: bool = False) -> Any:
        """An entry's columns with its texts cut by Postgres to `chars` and one more character
        (which tells `_entry` that the text goes on)."""

        def head(text: Any) -> Any:
            return func.left(text, chars + 1)

        return select(
            CacheEntry.id,
            CacheEntry.tenant_id,
            Tenant.name.label("tenant_name"),
            CacheEntry.namespace,
            CacheEntry.model,
            head(CacheEntry.prompt).label("prompt"),
            CacheEntry.created_at,
            CacheEntry.expires_at,
            CacheEntry.hit_count,
            CacheEntry.last_hit_at,
            CacheEntry.flagged,
            CacheEntry.feedback_correct,
            CacheEntry.feedback_wrong,
            head(CacheEntry.wrong_hit_prompt).label("wrong_hit_prompt"),
            (head(ANSWER) if with_answer else null()).label("answer"),
            (head(cast(CacheEntry.response, Text)) if with_completion else null()).label("completion"),
        ).join(Tenant, Tenant.id == CacheEntry.tenant_id)

    @staticmethod
    def _entry(row: Any, chars: int) -> EntryRow:
        return EntryRow(
            id=row.id,
            tenant_id=row.tenant_id,
            tenant_name=row.tenant_name,
            namespace=row.namespace,
            model=row.model,
            prompt=excerpt(row.prompt, chars) or "",
            created_at=row.created_at,
            expires_at=row.expires_at,
            hit_count=row.hit_count,
            last_hit_at=row.last_hit_at,
            flagged=row.flagged,
            feedback_correct=row.feedback_correct,
            feedback_wrong=row.feedback_wrong,
            wrong_hit_prompt=excerpt(row.wrong_hit_prompt, chars),
            answer=excerpt(row.answer, chars),
            completion=completion_text(row.completion, chars),
        )

    @staticmethod
    def _request_select() -> Any:
        return select(LedgerEntry, Tenant.name.label("tenant_name")).join(
            Tenant, Tenant.id == LedgerEntry.tenant_id
        )

    @staticmethod
    def _request(row: Any) -> RequestRow:
        entry: LedgerEntry = row[0]
        return RequestRow(
            id=entry.id,
            request_id=entry.request_id,
            tenant_id=entry.tenant_id,
            tenant_name=row.tenant_name,
            created_at=entry.created_at,
            requested_model=entry.requested_model,
            used_model=entry.used_model,
            namespace=entry.namespace,
            cache_status=entry.cache_status,
            similarity=entry.similarity,
            entry_id=entry.entry_id,
            prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens,
            cost_usd=entry.cost_usd,
            avoided_cost_usd=entry.avoided_cost_usd,
            latency_ms=entry.latency_ms,
            upstream_latency_ms=entry.upstream_latency_ms,
            http_status=entry.http_status,
            priority=entry.priority,
            error=entry.error,
            metadata=entry.metadata_,
        )


class SignedOutRepository:
    """The sessions signed out before they expired (`SignedOut`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sign_out(self, session_id: str, expires_at: datetime) -> None:
        """Record a session signed out, and forget those that have expired since."""
        await self.session.execute(
            pg_insert(SignedOut).values(session_id=session_id, expires_at=expires_at).on_conflict_do_nothing()
        )
        await self.session.execute(delete(SignedOut).where(SignedOut.expires_at < func.now()))

    async def signed_out(self, session_id: str) -> bool:
        found = await self.session.scalar(
            select(SignedOut.session_id).where(SignedOut.session_id == session_id)
        )
        return found is not None
