"""The cheap stages: the similarity floor and the rules."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Final

from app.cache.verifier.base import Candidate, StageResult, VerifierPolicy
from app.cache.verifier.rules import RULES, first_rejection, one_decision

SIMILARITY: Final = "similarity"


class SimilarityStage:
    """Rejects candidates below the policy's cosine floor; records the cosine as its score.

    The floor is lower when a cross-encoder follows (`VerifierPolicy.similarity_floor`).
    """

    name: str = SIMILARITY

    def __init__(self, *, cross_encoder_follows: bool) -> None:
        self.cross_encoder_follows = cross_encoder_follows

    def enabled(self, policy: VerifierPolicy) -> bool:
        return True

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        floor = policy.similarity_floor(self.cross_encoder_follows)
        return [
            StageResult(score=c.similarity, rejection=None if c.similarity >= floor else SIMILARITY)
            for c in candidates
        ]


class RulesStage:
    """Runs the rules in `app.cache.verifier.rules` on each candidate; the first that fires rejects.

    A candidate's finding never depends on the others (a `Screen`): before the cross-encoder the
    chain asks about each candidate only when the model comes to read it."""

    name: str = "rules"

    def enabled(self, policy: VerifierPolicy) -> bool:
        return policy.rules

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        # One decision: the prompt is analysed once for all its candidates, however long.
        with one_decision():
            return [self.check_one(query, c, policy) for c in candidates]

    def check_one(self, query: str, candidate: Candidate, policy: VerifierPolicy) -> StageResult:
        names = [name for name in RULES if name not in policy.disabled_rules]
        return StageResult(rejection=first_rejection(candidate.beside(query), candidate.prompt, names))

    def deciding(self) -> AbstractContextManager[None]:
        return one_decision()
