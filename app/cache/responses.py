"""Stored answers are OpenAI chat completion objects; helpers to make and replay them."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import msgspec

from app.errors import Unprocessable
from app.upstream.usage import Usage


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


class _Function(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    function: _Function
    id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    type: Annotated[str, msgspec.Meta(max_length=64)] = "function"


class _Message(msgspec.Struct):
    role: Annotated[str, msgspec.Meta(max_length=64)] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: Annotated[list[_ToolCall], msgspec.Meta(max_length=128)] | None = None


class _Choice(msgspec.Struct):
    message: _Message
    index: Annotated[int, msgspec.Meta(ge=0, le=127)] = 0
    finish_reason: Annotated[str, msgspec.Meta(max_length=64)] | None = None


TokenCount = Annotated[int, msgspec.Meta(ge=0)]


class _Usage(msgspec.Struct):
    prompt_tokens: TokenCount = 0
    completion_tokens: TokenCount = 0
    total_tokens: TokenCount = 0


class _Completion(msgspec.Struct):
    """What a stored answer must look like to be replayed, as JSON or as a stream (other fields pass)."""

    choices: Annotated[list[_Choice], msgspec.Meta(min_length=1, max_length=128)]
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    # Counts of tokens, when given: whole numbers, none below 0 (a hit books what they saved).
    usage: _Usage | None = None


def check_completion(
    value: dict[str, Any], *, model: str, most_prompt_tokens: int, most_completion_tokens_each: int
) -> dict[str, Any]:
    """`value`, if it is a chat completion object Déjà can replay, whose `usage` counts no more
    than one request can, with what OpenAI's clients require and it left out filled in (`model`,
    each choice's `index` and `finish_reason`); else a 422 naming what is wrong.

    A hit on the entry books what it saved from that `usage`, priced at the model's price: a
    client's count beyond what any request could cost would book savings that never were (and a
    sum that no ledger column can hold). Its one answer is choice 0 (a streamed replay of choice 3
    of one breaks the clients that assemble a stream by index), by the assistant, calling no tool."""
    try:
        msgspec.convert(value, _Completion)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"'response' must be text or a chat completion object: {exc}.") from None
    choices: list[dict[str, Any]] = value["choices"]
    # The cache API's prompts name no `n` and no tools: the requests an entry serves ask for one
    # answer and cannot take a call of a tool they did not offer.
    if len(choices) != 1:
        raise Unprocessable("'response.choices' must hold one answer: the requests it serves ask for one.")
    message = choices[0]["message"]
    if message.get("role", "assistant") != "assistant":
        raise Unprocessable("'response.choices[0].message.role' must be 'assistant'.")
    if message.get("tool_calls") or message.get("function_call"):
        raise Unprocessable(
            "'response' must not call tools: the requests it serves offer none (store a chat request's "
            "answer through /v1/chat/completions instead)."
        )
    if not (message.get("content") or message.get("refusal") or message.get("audio")):
        # An upstream's empty answer is a failure, never stored: one given here is no answer either.
        raise Unprocessable("'response.choices[0].message' holds no answer: its content is empty.")
    if choices[0].get("index", 0) != 0:
        raise Unprocessable("'response.choices[0].index' must be 0, or left out.")
    value = {
        **value,
        "choices": [_complete_choice(choice, position) for position, choice in enumerate(choices)],
    }
    if value.get("model") is None:
        value["model"] = model
    usage = Usage.of(value.get("usage"))
    # Each answer (`n` of them) may be as long as the model allows.
    most_completion_tokens = most_completion_tokens_each * len(value["choices"])
    if usage.prompt_tokens > most_prompt_tokens or usage.completion_tokens > most_completion_tokens:
        raise Unprocessable(
            f"'response.usage' counts more tokens than one request to this model can: at most "
            f"{most_prompt_tokens} prompt tokens and {most_completion_tokens} completion tokens "
            f"({most_completion_tokens_each} for each of its answers)."
        )
    return value


def _complete_choice(choice: dict[str, Any], position: int) -> dict[str, Any]:
    """`choice` with its `index` (its position) and `finish_reason` when it has none."""
    if "index" in choice and choice.get("finish_reason"):
        return choice
    message = choice.get("message")
    calls = isinstance(message, dict) and bool(message.get("tool_calls"))
    return {
        **choice,
        "index": choice.get("index", position),
        "finish_reason": choice.get("finish_reason") or ("tool_calls" if calls else "stop"),
    }


def _fresh_calls(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        return message
    fresh = [
        {**call, "id": f"call_{uuid.uuid4().hex[:24]}"} if isinstance(call, dict) and call.get("id") else call
        for call in calls
    ]
    return {**message, "tool_calls": fresh}


def replay(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored completion as a new response: a new id and creation time, the same content, and
    a new id for each tool call (a client that keeps calls by id, as ids are meant to be, would
    find every hit's calls under the first one's).

    Fields every OpenAI completion carries are filled in where an upstream left them out
    (`object`, each message's `role`, each choice's `index` and `finish_reason`), so that a
    replayed answer always parses as OpenAI's."""
    choices = [
        _complete_choice(
            {**choice, "message": _fresh_calls({"role": "assistant", **choice["message"]})}, position
        )
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        else choice
        for position, choice in enumerate(stored.get("choices", []))
    ]
    return {
        "object": "chat.completion",
        **stored,
        "id": new_completion_id(),
        "created": int(time.time()),
        "choices": choices,
    }
