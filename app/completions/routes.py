"""POST /v1/chat/completions (OpenAI-compatible) and POST /v1/requests (the native call)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Stream

from app.cache.policy import TenantCachePolicy
from app.completions.inputs import Model
from app.completions.pipeline import Caller, ChatAnswer
from app.dependencies import TENANT_DEPENDENCIES
from app.errors import DejaError
from app.ledger.pricing import money_text
from app.observability.request_id import client_request_id_of, request_id_of
from app.services import Services
from app.tenants.auth import Principal


def cache_headers(outcome: ChatAnswer) -> dict[str, str]:
    headers = {"X-Cache": outcome.cache_status}
    if outcome.similarity is not None and outcome.cache_status == "HIT":
        headers["X-Cache-Similarity"] = f"{outcome.similarity:.4f}"
    if outcome.tier:
        headers["X-Cache-Tier"] = outcome.tier
    if outcome.entry_id is not None:
        headers["X-Cache-Entry"] = str(outcome.entry_id)
    if outcome.stale:
        headers["X-Cache-Stale"] = "true"
    if outcome.explored:
        headers["X-Cache-Explored"] = "true"
    return headers


MetadataValue = Annotated[str, msgspec.Meta(max_length=256)] | int | float | bool | None


class RequestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    input: Annotated[str, msgspec.Meta(min_length=1)]
    model: Model
    priority: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    # Flat and small: it is stored with every ledger row of the request.
    metadata: Annotated[
        dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], MetadataValue],
        msgspec.Meta(max_length=32),
    ] = msgspec.field(default_factory=dict)


class CacheInfo(msgspec.Struct):
    status: str
    similarity: float | None
    entry_id: uuid.UUID | None


class RequestOut(msgspec.Struct):
    request_id: str
    output: str | None
    model_used: str | None
    latency_ms: float
    tokens_used: int
    cost_usd: str  # dollars as decimal text
    status: Literal["COMPLETED", "FAILED"]
    cache: CacheInfo
    error: str | None = None


class CompletionsController(Controller):
    path = "/v1"
    tags = ("completions",)
    dependencies = TENANT_DEPENDENCIES

    @post(
        "/chat/completions",
        status_code=200,
        summary="OpenAI-compatible chat completion, answered from the cache when it can be",
    )
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[dict[str, Any]],
        tenant: NamedDependency[Principal],
        policy: NamedDependency[TenantCachePolicy],
        services: NamedDependency[Services],
    ) -> Response[Any]:
        caller = Caller(
            tenant_id=tenant.require_tenant(),
            key_id=tenant.key_id,
            request_id=request_id_of(request.scope),
            client_request_id=client_request_id_of(request.scope),
            policy=policy,
            receive=request.receive,
        )
        outcome = await services.pipeline.run(caller, data, request.headers)
        headers = cache_headers(outcome)
        if outcome.stream is not None:
            return Stream(
                outcome.stream,
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache"},
            )
        return Response(outcome.completion, headers=headers)

    @post(
        "/requests",
        status_code=200,
        summary="The native call: one input, one output, with cost and cache status",
    )
    async def native_request(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RequestIn],
        tenant: NamedDependency[Principal],
        policy: NamedDependency[TenantCachePolicy],
        services: NamedDependency[Services],
    ) -> Response[RequestOut]:
        request_id = request_id_of(request.scope)
        caller = Caller(
            tenant_id=tenant.require_tenant(),
            key_id=tenant.key_id,
            request_id=request_id,
            client_request_id=client_request_id_of(request.scope),
            policy=policy,
            priority=data.priority,
            metadata=data.metadata,
            receive=request.receive,
        )
        body = {"model": data.model, "messages": [{"role": "user", "content": data.input}]}
        try:
            outcome = await services.pipeline.run(caller, body, request.headers)
        except DejaError as exc:
            if exc.status_code < 500:
                raise
            failed = RequestOut(
                request_id=request_id,
                output=None,
                # What the ledger booked for it: answers a provider billed though none could be used.
                model_used=caller.failed_model,
                latency_ms=round(caller.failed_latency_ms, 3),
                tokens_used=caller.failed_tokens,
                cost_usd=money_text(caller.failed_cost_usd),
                status="FAILED",
                cache=CacheInfo(status="MISS", similarity=None, entry_id=None),
                error=exc.detail,
            )
            return Response(failed, status_code=exc.status_code)
        completion = outcome.completion or {}
        message = (completion.get("choices") or [{}])[0].get("message") or {}
        out = RequestOut(
            request_id=request_id,
            output=message.get("content"),
            model_used=outcome.model_used,
            latency_ms=round(outcome.latency_ms, 3),
            tokens_used=outcome.tokens_used,
            cost_usd=money_text(outcome.cost_usd),
            status="COMPLETED",
            cache=CacheInfo(
                status=outcome.cache_status, similarity=outcome.similarity, entry_id=outcome.entry_id
            ),
        )
        return Response(out, headers=cache_headers(outcome))
