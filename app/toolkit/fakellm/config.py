"""Configuration of the fake model server and its fault grammar."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import msgspec

from app.cache.scope import normalise_prompt
from app.toolkit.files import decode_json

FaultKind = Literal[
    "400",
    "401",
    "404",
    "429",
    "500",
    "503",
    "timeout",
    "empty",
    "long",
    "midstream",
    "unfinished",
    "misshapen",
    "overcounted",
    "halfcounted",
    "reasoning",
    "spent",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


class FaultSpec(msgspec.Struct, frozen=True):
    """A fault and how many calls it hits (`None`: every call)."""

    kind: FaultKind
    times: int | None = None


def parse_fault(spec: str) -> FaultSpec:
    """Parse `"kind"` (every call) or `"kind*n"` (the next n calls only)."""
    kind, sep, times_text = spec.strip().partition("*")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(sorted(FAULT_KINDS))}")
    if not sep:
        return FaultSpec(kind=kind)  # type: ignore[arg-type]  # checked against FAULT_KINDS above
    try:
        times = int(times_text)
    except ValueError:
        raise ValueError(f"bad fault count in {spec!r}; expected kind*N") from None
    if times < 1:
        raise ValueError(f"fault count must be at least 1 in {spec!r}")
    return FaultSpec(kind=kind, times=times)  # type: ignore[arg-type]


class FakeLLMConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How the fake server behaves. Every field has a harmless default: no latency, no faults."""

    latency_ms: float = 0.0
    """Fixed delay before the answer (before the first chunk when streaming)."""
    jitter_ms: float = 0.0
    """Uniform random extra delay, 0..jitter_ms, added to `latency_ms`."""
    token_latency_ms: float = 0.0
    """Delay between streamed chunks."""
    fail_rate: float = 0.0
    """Share of chat calls (0..1) that fail with one of `fail_kinds`, drawn from a seeded RNG."""
    fail_kinds: tuple[FaultKind, ...] = ("500",)
    fail_models: dict[str, str] = msgspec.field(default_factory=dict)
    """Model name -> fault spec (`"500"`, `"timeout"`, `"429*2"` for the first two calls only)."""
    seed: int = 0
    timeout_sleep_s: float = 30.0
    """How long a `timeout` fault hangs before answering; longer than the client's timeout."""
    retry_after_s: int = 1
    """`Retry-After` sent with 429 answers."""
    long_answer_chars: int = 60_000
    """Length of the answer a `long` fault produces."""
    embedding_dim: int = 384
    """Embedding size for names with no known size (text-embedding-3-small: 1536, -3-large: 3072)."""
    api_key: str | None = None
    """When set, requests must carry `Authorization: Bearer <api_key>`; otherwise any key is accepted."""
    answers: dict[str, str] = msgspec.field(default_factory=dict)
    """Normalised prompt -> answer: a chat request whose last user message matches gets that
    answer as its content (`load_answers` reads them from a JSONL file)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        for name, value in (
            ("latency_ms", self.latency_ms),
            ("jitter_ms", self.jitter_ms),
            ("token_latency_ms", self.token_latency_ms),
            ("timeout_sleep_s", self.timeout_sleep_s),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        for kind in self.fail_kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r} in fail_kinds")
        for spec in self.fail_models.values():
            parse_fault(spec)
        if self.embedding_dim < 1:
            raise ValueError("embedding_dim must be positive")


class _AnswerLine(msgspec.Struct, forbid_unknown_fields=False):
    prompt: str
    answer: str


def load_answers(path: Path) -> dict[str, str]:
    """A JSONL file of `{"prompt": ..., "answer": ...}` lines as normalised prompt -> answer
    (the cache's own normalisation); a later line for the same prompt wins."""
    answers: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item: _AnswerLine = decode_json(line, _AnswerLine)
        except ValueError as exc:
            raise ValueError(f'{path}:{number}: expected {{"prompt": ..., "answer": ...}}: {exc}') from None
        answers[normalise_prompt(item.prompt)] = item.answer
    return answers
