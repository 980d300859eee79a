"""A tenant's cache policy, kept in `tenants.settings` (JSON) and documented in docs/caching.md."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from app.cache.verifier import VerifierPolicy
from app.errors import Unprocessable

_VERIFIER = VerifierPolicy()  # the measured defaults live with the verifier, once


class TenantCachePolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Lowest cosine a candidate may have when the cross-encoder reads it after the rules; a
    # request may ask for a stricter one, never a looser one.
    min_similarity: float = _VERIFIER.min_similarity
    # The floor when no cross-encoder runs (turned off, or none installed).
    min_similarity_without_cross_encoder: float = _VERIFIER.min_similarity_without_cross_encoder
    # Cheap checks on numbers, negation, entities, direction, antonyms and time.
    rules: bool = True
    # Rules to switch off for this tenant (names in docs/caching.md).
    disabled_rules: list[str] = msgspec.field(default_factory=list)
    # Lowest cross-encoder probability served; null turns the cross-encoder off.
    cross_encoder_min_score: float | None = _VERIFIER.cross_encoder_min_score
    # Requests with a higher temperature are not cached: BYPASS. OpenAI's default temperature
    # is 1, so plain requests are cached.
    max_temperature: float = 1.0
    # Lifetime of new entries when the request does not say; null: never expire.
    default_ttl_s: int | None = 7 * 24 * 3600
    # While Postgres is unreachable quotas cannot be checked: "open" lets requests reach the
    # model (and books them once the database is back), "closed" refuses them with a 503.
    quota_outage: Literal["open", "closed"] = "open"
    # When every upstream fails, serve an answer that expired at most this long ago (seconds),
    # marked `X-Cache-Stale: true`; null: never. A request's `stale-if-error` works too.
    stale_if_error_s: int | None = None
    # The error bound (docs/error-bound.md): the share of semantic hits' answers that may be
    # wrong, e.g. 0.02; null keeps the verifier's fixed decision.
    max_error_rate: float | None = None
    # How a fresh answer labels the candidate it was compared with: exact | embedding | llm.
    answer_judge: Literal["exact", "embedding", "llm"] = "embedding"
    # embedding judge: the lowest cosine between two answers that counts as the same answer.
    answer_min_similarity: float = 0.9
    # llm judge: the model asked (through the configured upstreams); null: the request's model.
    judge_model: str | None = None

    def verifier_policy(self, min_similarity: float | None = None) -> VerifierPolicy:
        base = VerifierPolicy(
            min_similarity=self.min_similarity,
            min_similarity_without_cross_encoder=self.min_similarity_without_cross_encoder,
            rules=self.rules,
            disabled_rules=frozenset(self.disabled_rules),
            cross_encoder_min_score=self.cross_encoder_min_score,
        )
        return base.stricter(min_similarity)


def parse_policy(settings: dict[str, Any] | None) -> TenantCachePolicy:
    try:
        policy = msgspec.convert(settings or {}, TenantCachePolicy)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"Invalid tenant cache settings: {exc}") from exc
    for name in ("min_similarity", "min_similarity_without_cross_encoder"):
        if not 0.0 <= getattr(policy, name) <= 1.0:
            raise Unprocessable(f"{name} must be between 0 and 1.")
    if policy.cross_encoder_min_score is not None and not 0.0 <= policy.cross_encoder_min_score <= 1.0:
        raise Unprocessable("cross_encoder_min_score must be between 0 and 1.")
    if policy.max_error_rate is not None and not 0.001 <= policy.max_error_rate <= 0.5:
        raise Unprocessable("max_error_rate must be between 0.001 and 0.5, or null.")
    if not 0.0 <= policy.answer_min_similarity <= 1.0:
        raise Unprocessable("answer_min_similarity must be between 0 and 1.")
    if policy.judge_model is not None and not 0 < len(policy.judge_model) <= 200:
        raise Unprocessable("judge_model must be a model name of at most 200 characters.")
    return policy
