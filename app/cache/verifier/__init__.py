"""The hit decision: which stored prompt, if any, deserves to answer a new one.

`build_verifier` gives the default chain: cosine floor, then the rules, then (when a scorer
is given) the cross-encoder, optionally after a distilled first pass that settles the pairs it
is sure of. Stages run in that order, cheapest first.
"""

from __future__ import annotations

from app.cache.verifier.base import (
    REWORDED_MAX_OVERLAP,
    Candidate,
    CandidateReport,
    Stage,
    StageResult,
    Verdict,
    Verifier,
    VerifierPolicy,
    word_overlap,
)
from app.cache.verifier.cross_encoder import (
    CROSS_ENCODER,
    FIRST_PASS,
    CrossEncoderStage,
    FirstPassBand,
    FirstPassStage,
    PairScorer,
    folded,
    read_band,
    same_request,
)
from app.cache.verifier.rules import RULES
from app.cache.verifier.stages import SIMILARITY, RulesStage, SimilarityStage

__all__ = [
    "CROSS_ENCODER",
    "FIRST_PASS",
    "REWORDED_MAX_OVERLAP",
    "RULES",
    "SIMILARITY",
    "Candidate",
    "CandidateReport",
    "CrossEncoderStage",
    "FirstPassBand",
    "FirstPassStage",
    "PairScorer",
    "RulesStage",
    "SimilarityStage",
    "Stage",
    "StageResult",
    "Verdict",
    "Verifier",
    "VerifierPolicy",
    "build_verifier",
    "folded",
    "read_band",
    "same_request",
    "word_overlap",
]


def build_verifier(
    cross_encoder: PairScorer | None = None, *, first_pass: FirstPassStage | None = None
) -> Verifier:
    """The default chain. Without a scorer the cross-encoder stage is absent whatever the policy
    says, and the stricter cosine floor for a decision without a model applies; the first pass
    runs only before a cross-encoder."""
    stages: list[Stage] = [SimilarityStage(cross_encoder_follows=cross_encoder is not None), RulesStage()]
    if cross_encoder is not None:
        if first_pass is not None:
            stages.append(first_pass)
        stages.append(CrossEncoderStage(cross_encoder))
    return Verifier(stages)
