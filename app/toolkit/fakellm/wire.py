"""Wire types of the fake server: the subset of the OpenAI API it reads and writes."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from app.toolkit.fakellm.config import FaultKind

# Requests: unknown fields are ignored, as OpenAI-compatible servers do for fields they do not use.


class ChatMessageIn(msgspec.Struct, kw_only=True):
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[ChatMessageIn]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None  # the legacy form of tools
    function_call: str | dict[str, Any] | None = None
    logprobs: bool | None = None
    modalities: list[str] | None = None
    n: int | None = 1
    max_tokens: int | None = None
    max_completion_tokens: int | None = None


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    model: str
    # str, list[str], list[int] (tokens) or list[list[int]]; checked by the handler.
    input: str | list[Any]
    dimensions: int | None = None
    encoding_format: str | None = "float"


class FaultRequest(msgspec.Struct, kw_only=True):
    """Body of `POST /_fake/faults`: make `model` fail with `kind`, for `times` calls or for good."""

    model: str
    kind: FaultKind
    times: int | None = None


# Responses.


class CompletionTokensDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    reasoning_tokens: int | None = None
    # A spoken answer's tokens (`modalities: ["text", "audio"]`), counted in completion_tokens.
    audio_tokens: int | None = None


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    prompt_tokens: int
    # None (left out): a provider that counts the prompt only (the `halfcounted` fault).
    completion_tokens: int | None = None
    total_tokens: int | None = None
    # A reasoning model's hidden tokens (the `reasoning` fault), a spoken answer's tokens.
    completion_tokens_details: CompletionTokensDetails | None = None


class FunctionCall(msgspec.Struct, kw_only=True):
    name: str
    arguments: str


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: FunctionCall


# `omit_defaults` leaves out fields equal to their default, so fields that OpenAI always sends
# (`role`, `object`) have none here: they are given at construction and always on the wire.


class AudioOut(msgspec.Struct, kw_only=True):
    """A spoken answer (`modalities: ["text", "audio"]`): its id expires with the provider."""

    id: str
    data: str
    expires_at: int
    transcript: str


class AssistantMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    audio: AudioOut | None = None


class TokenLogprob(msgspec.Struct, kw_only=True):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Logprobs(msgspec.Struct, kw_only=True):
    content: list[TokenLogprob] | None
    refusal: None = None


class Choice(msgspec.Struct, kw_only=True):
    index: int
    message: AssistantMessage
    logprobs: Logprobs | None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str


class FunctionDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class ChunkDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: FunctionDelta | None = None
    audio: AudioOut | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int
    delta: ChunkDelta
    logprobs: Logprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class Embedding(msgspec.Struct, kw_only=True):
    object: str = "embedding"
    index: int
    embedding: list[float] | str  # str when encoding_format is "base64"


class EmbeddingUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int
    owned_by: str = "deja-fake-llm"


class ModelList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Model]


class ErrorDetail(msgspec.Struct, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct, kw_only=True):
    error: ErrorDetail


class FakeStats(msgspec.Struct, kw_only=True):
    """Calls received since start or the last reset, failed ones included."""

    total: int
    chat: dict[str, int]
    embeddings: dict[str, int]
    faults: dict[str, str]
