"""The error bound at work: the serve-or-explore decision on a candidate the verifier found,
and the label written once the model has answered an explored request.

With `max_error_rate` set, the cross-encoder still scores candidates but no longer cuts them
at a fixed score: the learned curve decides instead. A candidate is served with probability
1 - tau (`estimator.explore_probability`); otherwise the request goes to the model, is
booked as explored, and the model's answer labels the candidate through the tenant's judge.
The curve is the tenant's, fitted on all its labels, shifted for an entry by what the entry's
own labels say once it has some.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.bound.estimator import CorrectnessModel, explore_probability, fit, for_entry
from app.cache.bound.judges import (
    AnswerJudge,
    EmbeddingJudge,
    ExactJudge,
    JudgeCalls,
    LLMJudge,
    answer_text,
)
from app.cache.bound.repository import LabelRepository, NewLabel
from app.cache.embedders import Embedder
from app.cache.policy import TenantCachePolicy
from app.cache.repository import StoredEntry
from app.cache.service import LookupResult
from app.cache.verifier import CROSS_ENCODER, SIMILARITY, Verdict, VerifierPolicy
from app.db.engine import transaction
from app.db.errors import is_database_outage
from app.errors import DejaError

log = logging.getLogger(__name__)

# The tenant's curve is fitted on its latest labels (per scorer), refitted when this process
# adds a label or after REFRESH_S (labels written by other replicas).
TENANT_LABELS = 5000
REFRESH_S = 2.0
# An entry's own labels read per decision, and how far (log-odds) an entry's curve is expected
# to sit from the tenant's before its labels say (the prior sd of its offset).
ENTRY_LABELS = 200
ENTRY_SPREAD = 1.5


def scored(verdict: Verdict) -> tuple[str, float]:
    """The score the bound reads for the verdict's candidate, and its name: the cross-encoder's
    probability when it ran, named by the model that read the pair where there are two (the
    tenant's curve is fitted per name: two models' scores are not calibrated together), else the
    cosine."""
    if verdict.accepted is None:
        raise ValueError("the verdict has no candidate")
    report = next(r for r in verdict.reports if r.candidate.entry_id == verdict.accepted.entry_id)
    if CROSS_ENCODER in report.scores:
        return report.scorer or CROSS_ENCODER, report.scores[CROSS_ENCODER]
    return SIMILARITY, verdict.accepted.similarity


def graded_by_the_curve(policy: VerifierPolicy) -> VerifierPolicy:
    """The verifier policy under a bound: the cross-encoder scores every candidate it reads (no
    first pass decides for it, and it does not stop at the nearest: the curve grades its
    favourite), but its fixed cut gives way to the learned curve."""
    if policy.cross_encoder_min_score is None:
        return policy
    return replace(policy, cross_encoder_min_score=0.0, first_pass=False, nearest_first=False)


def verifier_metadata(found: LookupResult) -> dict[str, Any]:
    """What a semantic hit's ledger row keeps of the decision, so that feedback on the request
    can label it: the score the bound reads and its name."""
    if found.tier != "semantic" or found.verdict is None or found.verdict.accepted is None:
        return {}
    scorer, score = scored(found.verdict)
    return {"verifier": {"scorer": scorer, "score": round(score, 6)}}


class BoundGate:
    """One request's view of the bound: handed to the cache lookup, which asks it before serving."""

    def __init__(self, bound: ErrorBound, tenant_id: uuid.UUID, max_error_rate: float) -> None:
        self.bound = bound
        self.tenant_id = tenant_id
        self.max_error_rate = max_error_rate

    def verifier_policy(self, policy: VerifierPolicy) -> VerifierPolicy:
        return graded_by_the_curve(policy)

    async def serve(self, session: AsyncSession, entry: StoredEntry, verdict: Verdict) -> bool:
        scorer, score = scored(verdict)
        model = await self.bound.model_for(session, self.tenant_id, entry.id, scorer)
        tau = explore_probability(model, score, self.max_error_rate)
        return self.bound.rng.random() >= tau


class ErrorBound:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        calls: JudgeCalls,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.embedder = embedder
        self.calls = calls
        self.rng = rng or random.Random()  # noqa: S311 - exploration draws, not secrets
        self._tenant_models: dict[tuple[uuid.UUID, str], tuple[float, CorrectnessModel]] = {}
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()

    def gate(self, tenant_id: uuid.UUID, policy: TenantCachePolicy) -> BoundGate | None:
        """The gate for this tenant's lookups; None when it set no bound."""
        if policy.max_error_rate is None:
            return None
        return BoundGate(self, tenant_id, policy.max_error_rate)

    async def model_for(
        self, session: AsyncSession, tenant_id: uuid.UUID, entry_id: uuid.UUID, scorer: str
    ) -> CorrectnessModel:
        """The curve for this entry: the tenant's, shifted by what the entry's own labels say."""
        tenant = await self._tenant_model(session, tenant_id, scorer)
        own = await LabelRepository(session).for_entry(entry_id, scorer, ENTRY_LABELS)
        return for_entry(tenant, [s for s, _ in own], [c for _, c in own], spread=ENTRY_SPREAD)

    async def _tenant_model(
        self, session: AsyncSession, tenant_id: uuid.UUID, scorer: str
    ) -> CorrectnessModel:
        key = (tenant_id, scorer)
        cached = self._tenant_models.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        labels = await LabelRepository(session).recent(tenant_id, scorer, TENANT_LABELS)
        model = fit([s for s, _ in labels], [c for _, c in labels])
        self._tenant_models[key] = (time.monotonic() + REFRESH_S, model)
        return model

    def judge(
        self, policy: TenantCachePolicy, model: str, tenant_id: uuid.UUID, request_id: str
    ) -> AnswerJudge:
        """The tenant's judge; the `llm` judge's calls are the tenant's, after `request_id`."""
        if policy.answer_judge == "exact":
            return ExactJudge()
        if policy.answer_judge == "embedding":
            return EmbeddingJudge(self.embedder, policy.answer_min_similarity)
        ask = partial(self.calls.ask, tenant_id, request_id)
        return LLMJudge(ask, policy.judge_model or model, self._verdicts)

    async def label(
        self,
        tenant_id: uuid.UUID,
        request_id: str,
        policy: TenantCachePolicy,
        explored: LookupResult,
        question: str,
        completion: dict[str, Any],
        model: str,
    ) -> None:
        """Judge whether the withheld entry would have answered `question` as well as the model
        just did, and store the label. Runs after the response; a failure costs the label only."""
        entry, verdict = explored.withheld, explored.verdict
        if entry is None or verdict is None:
            raise ValueError("nothing was explored")
        scorer, score = scored(verdict)
        try:
            correct = await self.judge(policy, model, tenant_id, request_id).same(
                question, answer_text(entry.response), answer_text(completion)
            )
            async with transaction(self.sessionmaker, tenant_id=tenant_id) as session:
                await LabelRepository(session).add(
                    NewLabel(
                        tenant_id=tenant_id,
                        entry_id=entry.id,
                        request_id=request_id,
                        source="judge",
                        judge=policy.answer_judge,
                        correct=correct,
                        similarity=entry.similarity,
                        scorer=scorer,
                        score=score,
                    )
                )
        except DejaError as exc:
            log.warning("answer judge failed; no label: %s", exc.slug)
            return
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            log.warning("label not stored: database unreachable")
            return
        self._tenant_models.pop((tenant_id, scorer), None)  # refit at the next decision
