"""Deterministic content of the fake server: answers, tool calls, token counts, embeddings."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from typing import Any

import numpy as np

from app.toolkit.fakellm.wire import ChatMessageIn

ECHO_MAX_CHARS = 200

# A small vocabulary for the hash-derived sentence; any fixed list would do.
_WORDS = (
    "cache",
    "vector",
    "tenant",
    "model",
    "answer",
    "prompt",
    "query",
    "ledger",
    "latency",
    "token",
    "cosine",
    "index",
    "stream",
    "request",
    "budget",
    "quota",
    "scope",
    "replica",
    "shard",
    "embedding",
    "verifier",
    "router",
    "fallback",
    "breaker",
    "priority",
    "signal",
    "metric",
    "window",
    "policy",
    "record",
    "entry",
    "schema",
)
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_PIECE_RE = re.compile(r"\S+\s*|\s+")


def estimate_tokens(text: str) -> int:
    """OpenAI's rule of thumb for English: about four characters per token, at least one."""
    return max(1, math.ceil(len(text) / 4))


def message_text(message: ChatMessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    if message.content is None:
        return ""
    return " ".join(str(part.get("text", "")) for part in message.content if part.get("type") == "text")


def prompt_tokens(messages: list[ChatMessageIn], tools: list[dict[str, Any]] | None) -> int:
    # As the OpenAI cookbook counts chat prompts: ~4 tokens of framing per message, 3 to prime the reply.
    total = 3 + sum(4 + estimate_tokens(message_text(m)) for m in messages)
    if tools:
        total += estimate_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def conversation_digest(model: str, messages: list[ChatMessageIn], choice_index: int = 0) -> bytes:
    canonical = json.dumps([[m.role, message_text(m)] for m in messages], ensure_ascii=False)
    return _digest(model, canonical, str(choice_index))


def last_user_text(messages: list[ChatMessageIn]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message_text(message)
    return ""


def answer_text(model: str, messages: list[ChatMessageIn], choice_index: int = 0) -> str:
    """`Answer to: <last user turn>. <sentence picked by a hash of model and conversation>`."""
    digest = conversation_digest(model, messages, choice_index)
    question = " ".join(last_user_text(messages).split())
    if len(question) > ECHO_MAX_CHARS:
        question = question[: ECHO_MAX_CHARS - 1] + "…"
    words = [_WORDS[b % len(_WORDS)] for b in digest[:10]]
    sentence = " ".join(words).capitalize() + "."
    if not question:
        return sentence
    end = "" if question[-1] in ".?!…" else "."
    return f"Answer to: {question}{end} {sentence}"


def long_text(chars: int, seed_text: str) -> str:
    base = (seed_text.rstrip() + " ") if seed_text else "lorem "
    return (base * (chars // len(base) + 1))[:chars]


def stream_pieces(text: str) -> list[str]:
    """Word-sized pieces, as a model streams tokens; long texts go out in bigger pieces."""
    if len(text) > 4000:
        return [text[i : i + 1000] for i in range(0, len(text), 1000)]
    return _PIECE_RE.findall(text) or [text]


def tool_arguments(tool: dict[str, Any], question: str) -> str:
    """JSON arguments for a tool, one deterministic value per declared property."""
    function = tool.get("function") or {}
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        arguments[name] = _value_for(schema if isinstance(schema, dict) else {}, question)
    return json.dumps(arguments, ensure_ascii=False)


def _value_for(schema: dict[str, Any], question: str) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return 42
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return question[:50] or "value"


def embedding_dim_for(model: str, default: int) -> int:
    # The sizes of OpenAI's embedding models; any other name gets the configured default.
    if "text-embedding-3-large" in model:
        return 3072
    if "text-embedding-3-small" in model or "text-embedding-ada-002" in model:
        return 1536
    return default


def embed(text: str, dim: int) -> list[float]:
    """A unit vector: the sum of one seeded Gaussian vector per word (feature hashing).

    Equal texts give equal vectors and texts that share words point the same way, so
    similarity search behaves plausibly without a real model.
    """
    words = [w.lower() for w in _WORD_RE.findall(text)] or [text]
    vector = np.zeros(dim, dtype=np.float64)
    for word in words:
        seed = int.from_bytes(_digest("word", word)[:8], "little")
        vector += np.random.default_rng(seed).standard_normal(dim)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        vector[0], norm = 1.0, 1.0
    return [float(x) for x in vector / norm]


def encode_base64(vector: list[float]) -> str:
    # OpenAI's base64 format: little-endian float32, which the SDK asks for by default.
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
