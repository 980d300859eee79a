"""Token counts as a provider reports them (OpenAI's `usage` object): what the ledger prices, what
quotas count, what a stored answer says it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """The token counts of an OpenAI `usage` object; what is missing or malformed counts 0."""
        usage = usage if isinstance(usage, dict) else {}
        details = usage.get("prompt_tokens_details")
        details = details if isinstance(details, dict) else {}
        return cls(
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            cached_tokens=_count(details.get("cached_tokens")),
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def within(self, most_prompt: int, most_completion: int) -> Usage:
        """These counts, none above what one request can use."""
        prompt = min(self.prompt_tokens, most_prompt)
        return Usage(prompt, min(self.completion_tokens, most_completion), min(self.cached_tokens, prompt))

    def as_openai(self) -> dict[str, Any]:
        """An OpenAI `usage` object with these counts."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }


# A token count from outside (an upstream's usage, a stored entry) is trusted only this far.
MAX_TOKEN_COUNT = 2**31 - 1


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, 0), MAX_TOKEN_COUNT))
