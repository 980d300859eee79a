"""A tenant's cache policy, kept in `tenants.settings` (JSON) and documented in docs/caching.md."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from app.cache.verifier import VerifierPolicy
from app.errors import Unprocessable


class TenantCachePolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Lowest cosine a candidate may have; a request may ask for a stricter one, never a looser one.
    min_similarity: float = 0.8
    # Cheap checks on numbers, negation, entities, direction, antonyms and time.
    rules: bool = True
    # Rules to switch off for this tenant (names in docs/caching.md).
    disabled_rules: list[str] = msgspec.field(default_factory=list)
    # Lowest cross-encoder probability served; null turns the cross-encoder off.
    cross_encoder_min_score: float | None = 0.5
    # Requests with a higher temperature (or top_p below 1 with temperature above it) are
    # not cached: BYPASS. OpenAI's default temperature is 1, so plain requests are cached.
    max_temperature: float = 1.0
    # Lifetime of new entries when the request does not say; null: never expire.
    default_ttl_s: int | None = 7 * 24 * 3600
    # While Postgres is unreachable quotas cannot be checked: "open" lets requests reach the
    # model (and books them once the database is back), "closed" refuses them with a 503.
    quota_outage: Literal["open", "closed"] = "open"
    # When every upstream fails, serve an answer that expired at most this long ago (seconds),
    # marked `X-Cache-Stale: true`; null: never. A request's `stale-if-error` works too.
    stale_if_error_s: int | None = None

    def verifier_policy(self, min_similarity: float | None = None) -> VerifierPolicy:
        base = VerifierPolicy(
            min_similarity=self.min_similarity,
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
    if not 0.0 <= policy.min_similarity <= 1.0:
        raise Unprocessable("min_similarity must be between 0 and 1.")
    if policy.cross_encoder_min_score is not None and not 0.0 <= policy.cross_encoder_min_score <= 1.0:
        raise Unprocessable("cross_encoder_min_score must be between 0 and 1.")
    return policy
