"""The cross-encoder stage: a model reads both prompts together and scores "same answer?"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from app.cache.verifier.base import Candidate, StageResult, VerifierPolicy, word_overlap

CROSS_ENCODER: Final = "cross_encoder"


class PairScorer(Protocol):
    """Anything that scores prompt pairs in [0, 1]: the ONNX cross-encoder, a
    sentence-transformers CrossEncoder with a sigmoid head, a stub in tests."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.floating] | Sequence[float]: ...


# The cross-encoder reads at most this many surviving candidates per lookup (the nearest ones).
MAX_SCORED = 2


def _folded(text: str) -> str:
    """The prompt without the differences no reader would call a change: case, spacing, the
    closing punctuation."""
    return re.sub(r"[\s?.!]+$", "", " ".join(text.casefold().split()))


class CrossEncoderStage:
    """Scores every surviving candidate in one batch call; rejects those below the policy's
    threshold for their cosine (`VerifierPolicy.cross_encoder_threshold`).

    Pairs are (new prompt, stored prompt), the order the model is trained on.
    """

    name: str = CROSS_ENCODER

    def __init__(self, scorer: PairScorer) -> None:
        self.scorer = scorer

    def enabled(self, policy: VerifierPolicy) -> bool:
        return policy.cross_encoder_min_score is not None

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        if policy.cross_encoder_min_score is None or not candidates:
            return [StageResult() for _ in candidates]
        # The same prompt but for case or spacing needs no model: it is served with full confidence,
        # and the other candidates are left unscored (they cannot outrank it).
        query_folded = _folded(query)
        if any(_folded(c.prompt) == query_folded for c in candidates):
            return [
                StageResult(score=1.0) if _folded(c.prompt) == query_folded else StageResult()
                for c in candidates
            ]
        # Candidates come best cosine first; the model's cost grows with every pair it reads, and a
        # prompt's true paraphrase is almost always among the nearest two survivors. Those below
        # the strict cosine are read only when no survivor is above it: they are served only when
        # the model is very sure, and would cost a pair on most hits.
        above = [c for c in candidates if c.similarity >= policy.cross_encoder_strict_below]
        scored = (above or list(candidates))[:MAX_SCORED]
        scores = np.asarray(self.scorer.score([(query, c.prompt) for c in scored]), dtype=np.float64)
        if scores.shape != (len(scored),):
            raise ValueError(f"cross-encoder returned shape {scores.shape} for {len(scored)} pairs")
        results = []
        for candidate, score in zip(scored, scores, strict=True):
            # Surer below the strict cosine, less so for a rewording near cosine 1:
            # `VerifierPolicy.cross_encoder_threshold`.
            reworded_range = candidate.similarity >= policy.cross_encoder_reworded_above
            overlap = word_overlap(query, candidate.prompt) if reworded_range else 1.0
            threshold = policy.cross_encoder_threshold(candidate.similarity, overlap)
            served = threshold is not None and score >= threshold
            results.append(StageResult(score=float(score), rejection=None if served else CROSS_ENCODER))
        by_id = {c.entry_id: r for c, r in zip(scored, results, strict=True)}
        return [by_id.get(c.entry_id, StageResult(rejection=CROSS_ENCODER)) for c in candidates]
