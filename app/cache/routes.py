"""The native cache API: look up, store, read, delete entries, and report wrong hits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.bound.repository import LabelRepository
from app.cache.entries import EntryActions
from app.cache.policy import Seconds, TenantCachePolicy
from app.cache.repository import CacheRepository, StoredEntry
from app.cache.responses import check_completion, completion_from_text
from app.cache.scope import MAX_NAMESPACE_INPUT, Scope, namespace_name, scope_of_request
from app.cache.service import CacheService, LookupResult
from app.cache.verifier import VerifierPolicy
from app.completions.inputs import check_content_parts
from app.db.engine import transaction
from app.db.fastpath import connection_failed
from app.dependencies import TENANT_DEPENDENCIES
from app.errors import NotFound, Unauthorized, Unprocessable
from app.ledger.quotas import most_output_tokens
from app.ledger.repository import LedgerRepository
from app.services import Services
from app.tenants.auth import Principal

Namespace = Annotated[str, msgspec.Meta(max_length=MAX_NAMESPACE_INPUT)]
Threshold = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Model = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MAX_MESSAGES = 1000


class PromptIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Either a bare `prompt` (one user turn) or the whole `messages` list of a chat request. A
    field it does not know is a 400 (a misspelt `ttl` for `ttl_seconds` would be dropped unseen)."""

    model: Model
    prompt: str | None = None
    messages: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=MAX_MESSAGES)] | None = None
    namespace: Namespace = ""

    def __post_init__(self) -> None:
        self.namespace = namespace_name(self.namespace)

    async def scope(self) -> Scope:
        if (self.prompt is None) == (self.messages is None):
            raise Unprocessable("Give exactly one of 'prompt' or 'messages'.")
        messages = self.messages if self.messages is not None else [{"role": "user", "content": self.prompt}]
        check_content_parts(message.get("content") for message in messages if isinstance(message, dict))
        return await scope_of_request(self.model, messages)


class LookupIn(PromptIn, kw_only=True):
    # Only stricter than the tenant's own minimum similarity; a looser one is ignored.
    threshold: Threshold | None = None


class LookupOut(msgspec.Struct):
    hit: bool
    entry_id: uuid.UUID | None
    similarity: float | None
    response: dict[str, Any] | None
    tier: str | None


class EntryIn(PromptIn, kw_only=True):
    # A chat completion object, or plain text (stored as one).
    response: dict[str, Any] | str
    ttl_seconds: Seconds | None = None


class CreatedOut(msgspec.Struct):
    id: uuid.UUID


class EntryOut(msgspec.Struct):
    id: uuid.UUID
    namespace: str
    model: str
    prompt: str
    response: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    hit_count: int
    flagged: bool

    @classmethod
    def of(cls, entry: StoredEntry) -> EntryOut:
        return cls(
            id=entry.id,
            namespace=entry.namespace,
            model=entry.model,
            prompt=entry.prompt,
            response=entry.response,
            created_at=entry.created_at,
            expires_at=entry.expires_at,
            hit_count=entry.hit_count,
            flagged=entry.flagged,
        )


class FeedbackIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    correct: bool
    entry_id: uuid.UUID | None = None
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    # With `correct: false`, the prompt that got the wrong answer: reviewers read it beside the
    # stored one (the ledger never keeps prompts).
    prompt: Annotated[str, msgspec.Meta(max_length=200_000)] | None = None


class FeedbackOut(msgspec.Struct):
    entry_id: uuid.UUID
    flagged: bool


async def _probe_exact(
    services: Services,
    cache: CacheService,
    tenant_id: uuid.UUID,
    namespace: str,
    scope: Scope,
    policy: VerifierPolicy,
) -> tuple[LookupResult | None, bool]:
    """An exact hit through the one-round-trip probe; (None, whether the probe ran) otherwise."""
    fast = services.pipeline.fast
    if fast is None:
        return None, False
    try:
        return await cache.probe_exact(fast, tenant_id, namespace, scope, policy), True
    except Exception as exc:
        if connection_failed(exc):
            return None, False
        raise


class CacheController(Controller):
    path = "/v1/cache"
    tags = ("cache",)
    dependencies = TENANT_DEPENDENCIES

    @post("/lookup", status_code=200, summary="Look up a prompt; a hit returns the stored response")
    async def lookup(
        self,
        data: JSONBody[LookupIn],
        tenant: NamedDependency[Principal],
        policy: NamedDependency[TenantCachePolicy],
        services: NamedDependency[Services],
    ) -> LookupOut:
        cache = services.cache
        tenant_id, verifier_policy = tenant.require_tenant(), policy.verifier_policy(data.threshold)
        scope = await data.scope()
        # The exact tier first, in one round trip, then the semantic tier in one more (its alias
        # written after the response); a transaction only when the probes could not run.
        result, probed = await _probe_exact(
            services, cache, tenant_id, data.namespace, scope, verifier_policy
        )
        fast = services.pipeline.fast
        if result is None and probed and fast is not None:
            result = await cache.probe_semantic(fast, tenant_id, data.namespace, scope, verifier_policy)
        if result is None:
            async with transaction(services.sessionmaker, tenant_id=tenant_id) as session:
                result = await cache.lookup(
                    session, tenant_id, data.namespace, scope, verifier_policy, exact_probed=probed
                )
        return LookupOut(
            hit=result.hit,
            entry_id=result.entry.id if result.entry else None,
            similarity=result.similarity,
            response=result.entry.response if result.entry else None,
            tier=result.tier,
        )

    @post("/entries", status_code=HTTP_201_CREATED, summary="Store a response for a prompt")
    async def create_entry(
        self,
        data: JSONBody[EntryIn],
        tenant: NamedDependency[Principal],
        policy: NamedDependency[TenantCachePolicy],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> CreatedOut:
        if isinstance(data.response, str):
            if not data.response.strip():
                raise Unprocessable("'response' holds no answer: it is empty.")
            response = completion_from_text(data.model, data.response)
        else:
            response = check_completion(
                data.response,
                model=data.model,
                most_prompt_tokens=services.settings.limits.max_prompt_tokens,
                most_completion_tokens_each=most_output_tokens(services.router.models_for(data.model)[0]),
            )
        entry_id = await services.cache.store(
            session,
            tenant.require_tenant(),
            data.namespace,
            await data.scope(),
            response,
            ttl_s=data.ttl_seconds or policy.default_ttl_s,
        )
        if entry_id is None:  # deleted since its key was checked (keys are remembered a few seconds)
            raise Unauthorized("Unknown or revoked API key.")
        return CreatedOut(id=entry_id)

    @get("/entries/{entry_id:uuid}", summary="Read an entry")
    async def get_entry(
        self,
        entry_id: FromPath[uuid.UUID],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> EntryOut:
        async with services.cache.hits.steady():  # no count half written while both are read
            entry = await CacheRepository(session).get(entry_id)
            if entry is None:
                raise NotFound(f"No cache entry {entry_id}.")
            out = EntryOut.of(entry)
            out.hit_count += services.cache.hits.pending(entry_id)  # counted here, not written yet
        return out

    @delete("/entries/{entry_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete an entry")
    async def delete_entry(
        self,
        entry_id: FromPath[uuid.UUID],
        tenant: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> None:
        entries = EntryActions(session, tenant.actor)
        deleted = await entries.delete(entry_id)
        if not deleted:
            # The entry a miss just named (X-Cache-Entry) is written after its response: this
            # process's pending writes go first, and it is looked for once more.
            await services.pipeline.writer.flush()
            deleted = await entries.delete(entry_id)
        if not deleted:
            raise NotFound(f"No cache entry {entry_id}.")

    @post("/feedback", status_code=200, summary="Report whether a hit was right; a wrong one stops serving")
    async def feedback(
        self,
        data: JSONBody[FeedbackIn],
        tenant: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> FeedbackOut:
        if (data.entry_id is None) == (data.request_id is None):
            raise Unprocessable("Give exactly one of 'entry_id' or 'request_id'.")
        if data.request_id is not None:
            await services.pipeline.writer.flush()  # this process's bookings, written after their responses
        entry_id = data.entry_id or await LedgerRepository(session).entry_for_request(str(data.request_id))
        if entry_id is None:
            raise NotFound(f"Request {data.request_id} was not served from the cache.")
        entries = EntryActions(session, tenant.actor)
        tenant_id = tenant.require_tenant()
        entry = await entries.feedback(tenant_id, entry_id, correct=data.correct, prompt=data.prompt)
        if entry is None and data.entry_id is not None:
            # The entry a miss just named is written after its response: this process's first.
            await services.pipeline.writer.flush()
            entry = await entries.feedback(tenant_id, entry_id, correct=data.correct, prompt=data.prompt)
        if entry is None:
            raise NotFound(f"No cache entry {entry_id}.")
        if data.request_id is not None:  # the request's scores make it a label for the error bound
            await LabelRepository(session).add_feedback(data.request_id, correct=data.correct)
        return FeedbackOut(entry_id=entry.id, flagged=entry.flagged)
