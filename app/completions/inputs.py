"""The one input model of a chat request body: every number bounded, every string capped.

The body still goes upstream as the client sent it (fields Déjà does not know pass through),
but not before it converts to `ChatBody`: a value a model API, Postgres or a quota would choke
on (a negative or absurd max_tokens, `1e30`, a 10,000-character model name, the wrong type) is
a 422 here, before any work is done for it. JSON depth, UTF-8 and NUL are checked earlier, for
every body (app.observability.input_guard).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec

from app.errors import Unprocessable

MAX_MODEL_CHARS = 200
MAX_OUTPUT_TOKENS = 1_000_000
MAX_CHOICES = 128
MAX_TOOLS = 128
# Content parts (text, images, audio, files) in all the messages of one request. Each part costs
# its own work before the model is called (its tokens estimated, its media sized), and seventy
# thousand tiny parts fit in a MiB: a request's work grew with them far past its size.
MAX_CONTENT_PARTS = 1000

Model = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL_CHARS)]
OutputTokens = Annotated[int, msgspec.Meta(ge=1, le=MAX_OUTPUT_TOKENS)]
Penalty = Annotated[float, msgspec.Meta(ge=-2.0, le=2.0)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(msgspec.Struct, kw_only=True):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    tool_call_id: ShortText | None = None
    tool_calls: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=MAX_TOOLS)] | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatBody(msgspec.Struct, kw_only=True):
    """The fields of an OpenAI chat request that Déjà reads, shapes or bounds."""

    model: Model
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: OutputTokens | None = None
    max_completion_tokens: OutputTokens | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHOICES)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    stop: ShortText | Annotated[list[ShortText], msgspec.Meta(max_length=4)] | None = None
    logit_bias: dict[str, Annotated[float, msgspec.Meta(ge=-100, le=100)]] | None = None
    tools: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=MAX_TOOLS)] | None = None
    user: ShortText | None = None
    cache: dict[str, Any] | None = None  # Déjà's own controls (app.completions.controls)


def chat_body(raw: dict[str, Any], *, max_messages: int) -> ChatBody:
    """`raw` checked against `ChatBody`; a 422 naming the first field that does not fit."""
    try:
        body = msgspec.convert(raw, ChatBody)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"Invalid request: {exc}.") from None
    if len(body.messages) > max_messages:
        raise Unprocessable(
            f"At most {max_messages} messages are accepted; this request has {len(body.messages)}."
        )
    check_content_parts(message.content for message in body.messages)
    return body


def check_content_parts(contents: Iterable[Any]) -> None:
    """A 422 when the messages' `contents` hold more than MAX_CONTENT_PARTS parts in all."""
    parts = sum(len(content) for content in contents if isinstance(content, list))
    if parts > MAX_CONTENT_PARTS:
        raise Unprocessable(
            f"At most {MAX_CONTENT_PARTS} content parts are accepted in one request; this one has {parts}."
        )
