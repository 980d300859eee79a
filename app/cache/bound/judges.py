"""Answer judges: would the stored answer have served the new prompt as well as the model's
fresh answer does? Their verdicts are the labels the error bound learns from.

- `exact`: the two answers are equal after normalisation (case, whitespace, trailing
  punctuation); for classification-like workloads where one prompt has one right answer.
- `embedding`: the answers' embeddings (the cache's own embedder) are within the tenant's
  `answer_min_similarity` cosine.
- `llm`: a short judge prompt to a model (the caller's `Ask`, which reserves the tenant's quota
  for the call and books it); verdicts are kept in memory so the same pair of answers is
  judged once per process.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import numpy as np

from app.cache.embedders import Embedder

JudgeName = Literal["exact", "embedding", "llm"]
# (model, prompt) -> the model's reply.
Ask = Callable[[str, str], Awaitable[str]]
# The judge's reply is one word.
JUDGE_MAX_TOKENS = 3


class JudgeCalls(Protocol):
    """The `llm` judge's calls to a model for a tenant, after its request `request_id`."""

    async def ask(self, tenant_id: uuid.UUID, request_id: str, model: str, prompt: str) -> str: ...


_SPACE = re.compile(r"\s+")
_VERDICT_CACHE_SIZE = 10_000
JUDGE_PROMPT = (
    "Two answers were written for the question below. Would a user who asked the question be "
    "equally well served by answer A as by answer B (same facts, same request fulfilled)? "
    "Reply with exactly one word: YES or NO.\n\nQuestion:\n{question}\n\nAnswer A:\n{stored}\n\n"
    "Answer B:\n{fresh}"
)


def answer_text(completion: dict[str, Any]) -> str:
    """The text of a chat completion's first choice ('' when it has none)."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else ""


def normalise_answer(text: str) -> str:
    return _SPACE.sub(" ", text).strip().rstrip(".!").casefold()


class AnswerJudge(Protocol):
    async def same(self, question: str, stored: str, fresh: str) -> bool: ...


class ExactJudge:
    async def same(self, question: str, stored: str, fresh: str) -> bool:
        return normalise_answer(stored) == normalise_answer(fresh)


class EmbeddingJudge:
    def __init__(self, embedder: Embedder, min_similarity: float) -> None:
        self.embedder = embedder
        self.min_similarity = min_similarity

    async def same(self, question: str, stored: str, fresh: str) -> bool:
        if normalise_answer(stored) == normalise_answer(fresh):
            return True
        vectors = await self.embedder.embed([stored, fresh])
        norms = np.linalg.norm(vectors, axis=1)
        cosine = float(vectors[0] @ vectors[1] / max(float(norms[0] * norms[1]), 1e-12))
        return cosine >= self.min_similarity


class LLMJudge:
    """Asks `model` through `ask`; the verdict is YES when the reply starts with it."""

    def __init__(self, ask: Ask, model: str, verdicts: OrderedDict[bytes, bool]) -> None:
        self.ask = ask
        self.model = model
        self.verdicts = verdicts

    async def same(self, question: str, stored: str, fresh: str) -> bool:
        if normalise_answer(stored) == normalise_answer(fresh):
            return True
        key = hashlib.sha256("\x00".join((self.model, question, stored, fresh)).encode()).digest()
        if key in self.verdicts:
            self.verdicts.move_to_end(key)
            return self.verdicts[key]
        prompt = JUDGE_PROMPT.format(question=question, stored=stored, fresh=fresh)
        verdict = (await self.ask(self.model, prompt)).strip().upper().startswith("YES")
        self.verdicts[key] = verdict
        if len(self.verdicts) > _VERDICT_CACHE_SIZE:
            self.verdicts.popitem(last=False)
        return verdict
