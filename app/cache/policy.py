"""A tenant's cache policy, kept in `tenants.settings` (JSON) and documented in docs/caching.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.cache.verifier import RULES, VerifierPolicy
from app.errors import Unprocessable

_VERIFIER = VerifierPolicy()  # the measured defaults live with the verifier, once

# Lifetimes and ages in seconds, for tenants and requests alike, stay below ten years: far
# past any use, well inside what Postgres intervals and 32-bit columns hold.
MAX_SECONDS = 10 * 365 * 24 * 3600
Seconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_SECONDS)]
Unit = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class TenantCachePolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Lowest cosine a candidate may have when the cross-encoder reads it after the rules; a
    # request may ask for a stricter one, never a looser one.
    min_similarity: Unit = _VERIFIER.min_similarity
    # The floor when no cross-encoder runs (turned off, or none installed).
    min_similarity_without_cross_encoder: Unit = _VERIFIER.min_similarity_without_cross_encoder
    # Cheap checks on numbers, negation, entities, direction, antonyms and time.
    rules: bool = True
    # Rules to switch off for this tenant (names in docs/caching.md); by default `negation`. The
    # list replaces the default: [] runs every rule.
    disabled_rules: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=64)
    ] = msgspec.field(default_factory=lambda: sorted(_VERIFIER.disabled_rules))
    # Lowest cross-encoder probability served; null turns the cross-encoder off.
    cross_encoder_min_score: Unit | None = _VERIFIER.cross_encoder_min_score
    # Below this cosine the cross-encoder must reach cross_encoder_strict_min_score instead.
    cross_encoder_strict_below: Unit = _VERIFIER.cross_encoder_strict_below
    cross_encoder_strict_min_score: Unit = _VERIFIER.cross_encoder_strict_min_score
    # Below this cosine the cross-encoder must reach cross_encoder_far_min_score (and the two above).
    cross_encoder_far_below: Unit = _VERIFIER.cross_encoder_far_below
    cross_encoder_far_min_score: Unit = _VERIFIER.cross_encoder_far_min_score
    # At this cosine or more, a candidate worded apart (`word_overlap` under 0.5) needs
    # cross_encoder_reworded_margin less than cross_encoder_min_score; 1 (or a margin of 0) closes it.
    cross_encoder_reworded_above: Unit = _VERIFIER.cross_encoder_reworded_above
    cross_encoder_reworded_margin: Unit = _VERIFIER.cross_encoder_reworded_margin
    # Requests with a higher temperature are not cached: BYPASS. OpenAI's default temperature
    # is 1, so plain requests are cached.
    max_temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] = 1.0
    # Lifetime of new entries when the request does not say; null: never expire.
    default_ttl_s: Seconds | None = 7 * 24 * 3600
    # While Postgres is unreachable quotas cannot be checked: "open" lets requests reach the
    # model (and books them once the database is back), "closed" refuses them with a 503.
    quota_outage: Literal["open", "closed"] = "open"
    # When every upstream fails, serve an answer that expired at most this long ago (seconds),
    # marked `X-Cache-Stale: true`; null: never. A request's `stale-if-error` works too.
    stale_if_error_s: Seconds | None = None
    # The error bound (docs/error-bound.md): the share of semantic hits' answers that may be
    # wrong, e.g. 0.02; null keeps the verifier's fixed decision.
    max_error_rate: Annotated[float, msgspec.Meta(ge=0.001, le=0.5)] | None = None
    # How a fresh answer labels the candidate it was compared with: exact | embedding | llm.
    answer_judge: Literal["exact", "embedding", "llm"] = "embedding"
    # embedding judge: the lowest cosine between two answers that counts as the same answer.
    answer_min_similarity: Unit = 0.9
    # llm judge: the model asked (through the configured upstreams); null: the request's model.
    judge_model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None

    def verifier_policy(self, min_similarity: float | None = None) -> VerifierPolicy:
        base = VerifierPolicy(
            min_similarity=self.min_similarity,
            min_similarity_without_cross_encoder=self.min_similarity_without_cross_encoder,
            rules=self.rules,
            disabled_rules=frozenset(self.disabled_rules),
            cross_encoder_min_score=self.cross_encoder_min_score,
            cross_encoder_strict_below=self.cross_encoder_strict_below,
            cross_encoder_strict_min_score=self.cross_encoder_strict_min_score,
            cross_encoder_far_below=self.cross_encoder_far_below,
            cross_encoder_far_min_score=self.cross_encoder_far_min_score,
            cross_encoder_reworded_above=self.cross_encoder_reworded_above,
            cross_encoder_reworded_margin=self.cross_encoder_reworded_margin,
        )
        return base.stricter(min_similarity)


def parse_policy(settings: dict[str, Any] | None) -> TenantCachePolicy:
    try:
        policy = msgspec.convert(settings or {}, TenantCachePolicy)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"Invalid tenant cache settings: {exc}") from exc
    return policy


def check_policy(settings: dict[str, Any] | None) -> TenantCachePolicy:
    """Settings about to be stored (a tenant created or changed): what `parse_policy` checks, and
    that every rule `disabled_rules` names exists, since a misspelt one would switch nothing off.
    Settings already stored are read with `parse_policy` alone, so that no tenant stops serving."""
    policy = parse_policy(settings)
    unknown = sorted(set(policy.disabled_rules) - set(RULES))
    if unknown:
        raise Unprocessable(
            f"Invalid tenant cache settings: disabled_rules names no rule {', '.join(map(repr, unknown))}; "
            f"the rules are {', '.join(RULES)}.",
            extra={"known_rules": list(RULES)},
        )
    if policy.cross_encoder_far_below > policy.cross_encoder_strict_below:
        # The far band lies below the strict one; the other way round the far score would rule
        # cosines the strict band names.
        raise Unprocessable(
            "Invalid tenant cache settings: cross_encoder_far_below "
            f"({policy.cross_encoder_far_below}) is above cross_encoder_strict_below "
            f"({policy.cross_encoder_strict_below}); the far band lies below the strict one."
        )
    return policy
