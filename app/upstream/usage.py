"""Token counts as a provider reports them (OpenAI's `usage` object): what the ledger prices, what
quotas count, what a stored answer says it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. `cached_tokens` and the audio counts are parts of the prompt's and the
    completion's counts (as OpenAI's `*_tokens_details` report them), never beyond them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """The token counts of an OpenAI `usage` object; what is missing or malformed counts 0."""
        usage = usage if isinstance(usage, dict) else {}
        prompt = _details(usage, "prompt_tokens_details")
        completion = _details(usage, "completion_tokens_details")
        prompt_tokens = _count(usage.get("prompt_tokens"))
        completion_tokens = _count(usage.get("completion_tokens"))
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=min(_count(prompt.get("cached_tokens")), prompt_tokens),
            audio_prompt_tokens=min(_count(prompt.get("audio_tokens")), prompt_tokens),
            audio_completion_tokens=min(_count(completion.get("audio_tokens")), completion_tokens),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.audio_prompt_tokens + other.audio_prompt_tokens,
            self.audio_completion_tokens + other.audio_completion_tokens,
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def within(self, most_prompt: int, most_completion: int) -> Usage:
        """These counts, none above what one request can use."""
        prompt = min(self.prompt_tokens, most_prompt)
        completion = min(self.completion_tokens, most_completion)
        return Usage(
            prompt,
            completion,
            min(self.cached_tokens, prompt),
            min(self.audio_prompt_tokens, prompt),
            min(self.audio_completion_tokens, completion),
        )

    def as_openai(self) -> dict[str, Any]:
        """An OpenAI `usage` object with these counts."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }
        if self.audio_prompt_tokens:
            usage["prompt_tokens_details"]["audio_tokens"] = self.audio_prompt_tokens
        if self.audio_completion_tokens:
            usage["completion_tokens_details"] = {"audio_tokens": self.audio_completion_tokens}
        return usage


# A token count from outside (an upstream's usage, a stored entry) is trusted only this far.
MAX_TOKEN_COUNT = 2**31 - 1


def _details(usage: dict[str, Any], name: str) -> dict[str, Any]:
    details = usage.get(name)
    return details if isinstance(details, dict) else {}


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, 0), MAX_TOKEN_COUNT))
