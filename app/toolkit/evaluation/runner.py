"""`deja eval`: the hit decision on labelled pairs, through the code the service runs.

For each pair the first prompt is stored and the second looked up, in a namespace of its
own, under a throw-away tenant: the same normalisation, embedder, HNSW query and verifier
chain as a live lookup. The tenant and its entries are removed afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.policy import TenantCachePolicy
from app.cache.responses import completion_from_text
from app.cache.scope import scope_of
from app.cache.service import CacheService, LookupResult
from app.cache.verifier import RULES
from app.db.engine import transaction
from app.tenants.models import Tenant
from app.tenants.repository import TenantRepository
from app.toolkit.evaluation.metrics import Evaluation, LabelledPair, RuleCounts, hit_metrics

EVAL_MODEL = "eval-model"


async def run_pairs(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: CacheService,
    pairs: Sequence[LabelledPair],
    policies: Mapping[str, TenantCachePolicy],
    *,
    name: str,
    concurrency: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Evaluation]:
    """Store each pair's first prompt once, look up its second under every policy.

    One pair at a time by default, so that identical input gives identical figures: the
    embedder batches prompts that arrive together, and the int8 model quantises each batch's
    activations with that batch's own range, so a prompt's vector (and a borderline decision)
    would depend on which other pairs happened to be embedded with it."""
    async with transaction(sessionmaker, system=True) as session:
        tenant = await TenantRepository(session).create(f"eval-{uuid.uuid4().hex[:12]}")
    verifier_policies = {label: policy.verifier_policy() for label, policy in policies.items()}
    results: dict[str, list[LookupResult | None]] = {label: [None] * len(pairs) for label in policies}
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, pair: LabelledPair) -> None:
        async with gate, transaction(sessionmaker, tenant_id=tenant.id) as session:
            namespace = f"pair-{index}"
            stored = scope_of(EVAL_MODEL, [{"role": "user", "content": pair.first}])
            answer = completion_from_text(EVAL_MODEL, f"answer {index}")
            await cache.store(session, tenant.id, namespace, stored, answer, ttl_s=None)
            asked = scope_of(EVAL_MODEL, [{"role": "user", "content": pair.second}])
            for label, verifier_policy in verifier_policies.items():
                results[label][index] = await cache.lookup(
                    session, tenant.id, namespace, asked, verifier_policy
                )
        if progress is not None:
            progress(1)

    try:
        await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    finally:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(delete(Tenant).where(Tenant.id == tenant.id))
    return {
        label: _evaluation(f"{name}: {label}", pairs, [r for r in found if r is not None])
        for label, found in results.items()
    }


def _evaluation(name: str, pairs: Sequence[LabelledPair], results: Sequence[LookupResult]) -> Evaluation:
    labels = np.array([p.same_answer for p in pairs], dtype=bool)
    similarities = np.array([r.similarity if r.similarity is not None else -1.0 for r in results])
    scores = np.full(len(pairs), -np.inf)
    rejections: dict[str, list[int]] = {}
    for index, (pair, result) in enumerate(zip(pairs, results, strict=True)):
        if result.tier == "exact":
            scores[index] = np.inf  # identical prompts: always served
        elif result.verdict is not None and result.verdict.score is not None:
            scores[index] = result.verdict.score
        if result.verdict is not None:
            for reason in result.verdict.rejections.values():
                rejections.setdefault(reason, [0, 0])[0 if pair.same_answer else 1] += 1
    rule_counts = []
    for rule_name, rule in RULES.items():
        fired = np.array([rule(p.first, p.second) is not None for p in pairs], dtype=bool)
        rule_counts.append(RuleCounts(rule_name, int((fired & labels).sum()), int((fired & ~labels).sum())))
    kinds = dict.fromkeys(p.kind for p in pairs if p.kind)
    by_kind = {
        kind: hit_metrics(
            [r.hit for p, r in zip(pairs, results, strict=True) if p.kind == kind],
            [p.same_answer for p in pairs if p.kind == kind],
        )
        for kind in kinds
    }
    return Evaluation(
        name=name,
        cosine_threshold=0.9,
        cosine=hit_metrics(list(similarities >= 0.9), list(labels)),
        verifier=hit_metrics([r.hit for r in results], list(labels)),
        rules=tuple(rule_counts),
        rejections={k: (v[0], v[1]) for k, v in rejections.items()},
        similarities=similarities,
        verifier_scores=scores,
        labels=labels,
        by_kind=by_kind,
    )


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "name": evaluation.name,
        "pairs": evaluation.verifier.pairs,
        "deja": evaluation.verifier.as_dict(),
        f"cosine_{evaluation.cosine_threshold:g}": evaluation.cosine.as_dict(),
        "rejections": {
            k: {"same_answer": s, "different_answer": d} for k, (s, d) in evaluation.rejections.items()
        },
        # Each rule alone on every pair: how many true paraphrases it would refuse, how many look-alikes.
        "rules_alone": {
            r.rule: {"rejects_same_answer": r.rejected_same, "rejects_different_answer": r.rejected_different}
            for r in evaluation.rules
        },
        **(
            {"by_kind": {k: m.as_dict() for k, m in evaluation.by_kind.items()}} if evaluation.by_kind else {}
        ),
    }
