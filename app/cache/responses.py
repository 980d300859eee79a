"""Stored answers are OpenAI chat completion objects; helpers to make and replay them."""

from __future__ import annotations

import time
import uuid
from typing import Any


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_from_text(model: str, content: str) -> dict[str, Any]:
    """A chat completion object for an answer stored as plain text (the native API allows it)."""
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def is_completion(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("choices"), list)
        and all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in value["choices"])
    )


def replay(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored completion as a new response: a new id and creation time, the same content.

    Fields every OpenAI completion carries are filled in where an upstream left them out
    (`object`, each message's `role`), so that a replayed answer always parses as OpenAI's."""
    choices = [
        {**choice, "message": {"role": "assistant", **choice["message"]}}
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        else choice
        for choice in stored.get("choices", [])
    ]
    return {
        "object": "chat.completion",
        **stored,
        "id": new_completion_id(),
        "created": int(time.time()),
        "choices": choices,
    }
