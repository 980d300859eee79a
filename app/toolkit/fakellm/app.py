"""The fake OpenAI-compatible model server, as a Litestar app."""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.params import FromPath
from litestar.response import Stream

from app.cache.scope import normalise_prompt
from app.toolkit.fakellm import generate
from app.toolkit.fakellm.config import FAULT_KINDS, FakeLLMConfig, FaultKind, FaultSpec, parse_fault
from app.toolkit.fakellm.wire import (
    AssistantMessage,
    AudioOut,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    CompletionTokensDetails,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    ErrorDetail,
    ErrorResponse,
    FakeStats,
    FaultRequest,
    FunctionCall,
    FunctionDelta,
    Logprobs,
    Model,
    ModelList,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)

FAULT_HEADER = "x-fake-fail"
SYSTEM_FINGERPRINT = "fp_deja_fake"
REASONING_TOKENS = 2000  # what the `reasoning` fault counts beside the answer's own tokens
KNOWN_MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "text-embedding-3-large")

_encoder = msgspec.json.Encoder()
_T = TypeVar("_T")


class FakeLLMState:
    """Counters and fault plans; one per app. All access happens on the server's event loop."""

    def __init__(self, config: FakeLLMConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.chat_calls: Counter[str] = Counter()
        self.embedding_calls: Counter[str] = Counter()
        # Runtime plans (POST /_fake/faults) take precedence over the configured ones.
        self.faults: dict[str, FaultSpec] = {
            model: parse_fault(spec) for model, spec in self.config.fail_models.items()
        }
        # Seeded so that a fault rate gives the same sequence every run; not for secrets.
        self.fault_rng = random.Random(self.config.seed)  # noqa: S311
        self.latency_rng = random.Random(self.config.seed + 1)  # noqa: S311

    def stats(self) -> FakeStats:
        return FakeStats(
            total=self.chat_calls.total() + self.embedding_calls.total(),
            chat=dict(self.chat_calls),
            embeddings=dict(self.embedding_calls),
            faults={
                model: spec.kind if spec.times is None else f"{spec.kind}*{spec.times}"
                for model, spec in self.faults.items()
            },
        )

    def pick_fault(self, model: str, header_value: str | None) -> FaultKind | None:
        """The fault for this call: header first, then the model's plan, then the random rate."""
        if header_value:
            return parse_fault(header_value).kind
        spec = self.faults.get(model)
        if spec is not None:
            if spec.times is not None:
                if spec.times <= 1:
                    del self.faults[model]
                else:
                    self.faults[model] = FaultSpec(kind=spec.kind, times=spec.times - 1)
            return spec.kind
        if self.config.fail_rate > 0 and self.fault_rng.random() < self.config.fail_rate:
            return self.fault_rng.choice(self.config.fail_kinds)
        return None

    async def wait_latency(self) -> None:
        delay_ms = self.config.latency_ms
        if self.config.jitter_ms > 0:
            delay_ms += self.latency_rng.uniform(0, self.config.jitter_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


def _json(
    body: msgspec.Struct, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    all_headers = {"x-request-id": f"req_{uuid.uuid4().hex}", **(headers or {})}
    return Response(
        _encoder.encode(body), status_code=status_code, media_type="application/json", headers=all_headers
    )


def _error(
    status_code: int,
    message: str,
    error_type: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> Response[bytes]:
    detail = ErrorDetail(message=message, type=error_type, code=code, param=param)
    return _json(ErrorResponse(error=detail), status_code, headers)


def _fault_response(kind: FaultKind, config: FakeLLMConfig) -> Response[bytes] | None:
    """The error answer of a fault, or None for faults that shape a successful answer."""
    if kind == "400":
        # As OpenAI refuses a prompt longer than the model reads.
        return _error(
            400,
            "Injected fault: the request was rejected.",
            "invalid_request_error",
            code="context_length_exceeded",
            param="messages",
        )
    if kind == "401":
        # As OpenAI words it: the key's last characters, which are the operator's, not a tenant's.
        return _error(
            401,
            "Injected fault: Incorrect API key provided: sk-proj-****Xy9Q.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if kind == "404":
        return _error(
            404,
            "Injected fault: the model does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    if kind == "429":
        # As OpenAI words it: the organisation and its use, every tenant's requests together.
        return _error(
            429,
            "Injected fault: Rate limit reached in organization org-FAKE0001 on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1.",
            "requests",
            "rate_limit_exceeded",
            headers={"retry-after": str(config.retry_after_s)},
        )
    if kind == "500":
        return _error(500, "Injected fault: the server had an error.", "server_error")
    if kind == "503":
        return _error(503, "Injected fault: the engine is overloaded.", "server_error")
    return None


def _check_auth(request: Request[Any, Any, Any], config: FakeLLMConfig) -> Response[bytes] | None:
    if config.api_key is None:
        return None
    if request.headers.get("authorization") != f"Bearer {config.api_key}":
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    return None


def _header_fault(request: Request[Any, Any, Any]) -> tuple[str | None, Response[bytes] | None]:
    value = request.headers.get(FAULT_HEADER)
    if value is None:
        return None, None
    try:
        parse_fault(value)
    except ValueError as exc:
        return None, _error(400, f"{FAULT_HEADER}: {exc}", "invalid_request_error")
    return value, None


def _decode(raw: bytes, type_: type[_T]) -> _T | Response[bytes]:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        return _error(400, f"Invalid request: {exc}", "invalid_request_error")
    except msgspec.DecodeError:
        return _error(400, "The body of the request is not valid JSON.", "invalid_request_error")


class _Answer(msgspec.Struct, kw_only=True):
    """One choice before it is shaped as a completion or as chunks."""

    content: str | None
    tool_call: ToolCall | None
    finish_reason: str
    function_call: FunctionCall | None = None
    audio: AudioOut | None = None


def _picked(
    offered: list[dict[str, Any]] | None, choice: Any, messages: list[Any], result_role: str
) -> dict[str, Any] | None:
    """The tool the fake calls: the named one, else the first; none after a result came back."""
    if not offered or choice == "none":
        return None
    if messages and messages[-1].role == result_role:
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        for tool in offered:
            if (tool.get("function") or {}).get("name") == wanted:
                return tool
    return offered[0]


def _pick_tool(chat: ChatRequest) -> dict[str, Any] | None:
    return _picked(chat.tools, chat.tool_choice, chat.messages, "tool")


def _pick_function(chat: ChatRequest) -> dict[str, Any] | None:
    """The legacy form: `functions` and `function_call`, a result in a "function" message."""
    offered = [{"type": "function", "function": function} for function in chat.functions or []]
    choice = {"function": chat.function_call} if isinstance(chat.function_call, dict) else chat.function_call
    picked = _picked(offered, choice, chat.messages, "function")
    return picked["function"] if picked is not None else None


def _token_logprob(piece: str) -> TokenLogprob:
    """A made-up but fixed log probability for a streamed piece."""
    return TokenLogprob(token=piece, logprob=-0.01 * (len(piece) % 17 + 1), bytes=list(piece.encode()))


def _answers(chat: ChatRequest, fault: FaultKind | None, config: FakeLLMConfig) -> list[_Answer]:
    limit = chat.max_completion_tokens or chat.max_tokens
    answers: list[_Answer] = []
    tool = _pick_tool(chat)
    legacy = _pick_function(chat)
    for index in range(max(1, chat.n or 1)):
        if fault == "empty":
            answers.append(_Answer(content="", tool_call=None, finish_reason="stop"))
            continue
        if fault == "spent":  # a reasoning model whose output limit ran out before it answered
            answers.append(_Answer(content="", tool_call=None, finish_reason="length"))
            continue
        if legacy is not None:
            name = str(legacy.get("name", "function"))
            arguments = generate.tool_arguments({"function": legacy}, generate.last_user_text(chat.messages))
            legacy_call = FunctionCall(name=name, arguments=arguments)
            answers.append(
                _Answer(
                    content=None, tool_call=None, function_call=legacy_call, finish_reason="function_call"
                )
            )
            continue
        if tool is not None:
            digest = generate.conversation_digest(chat.model, chat.messages, index).hex()
            name = str((tool.get("function") or {}).get("name", "tool"))
            arguments = generate.tool_arguments(tool, generate.last_user_text(chat.messages))
            call = ToolCall(id=f"call_{digest[:24]}", function=FunctionCall(name=name, arguments=arguments))
            answers.append(_Answer(content=None, tool_call=call, finish_reason="tool_calls"))
            continue
        known = config.answers.get(normalise_prompt(generate.last_user_text(chat.messages)))
        text = known if known is not None else generate.answer_text(chat.model, chat.messages, index)
        if fault == "long":
            text = generate.long_text(config.long_answer_chars, text)
        finish_reason = "stop"
        if limit is not None and generate.estimate_tokens(text) > limit:
            text, finish_reason = text[: max(1, limit) * 4], "length"
        if chat.modalities and "audio" in chat.modalities:
            # Spoken: no content, the words in the audio's transcript (the data stands for a WAV).
            digest = generate.conversation_digest(chat.model, chat.messages, index).hex()
            spoken = AudioOut(
                id=f"audio_{digest[:24]}",
                data=base64.b64encode(text.encode()).decode(),
                expires_at=int(time.time()) + 3600,
                transcript=text,
            )
            answers.append(_Answer(content=None, tool_call=None, audio=spoken, finish_reason=finish_reason))
            continue
        answers.append(_Answer(content=text, tool_call=None, finish_reason=finish_reason))
    return answers


def _usage(chat: ChatRequest, answers: list[_Answer]) -> Usage:
    prompt = generate.prompt_tokens(chat.messages, chat.tools)
    completion = spoken = 0
    for answer in answers:
        called = answer.tool_call.function if answer.tool_call is not None else answer.function_call
        if called is not None:
            completion += generate.estimate_tokens(called.name + called.arguments)
        elif answer.audio is not None:
            spoken += generate.estimate_tokens(answer.audio.transcript)
        elif answer.content:
            completion += generate.estimate_tokens(answer.content)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion + spoken,
        total_tokens=prompt + completion + spoken,
        # Counted apart, as a provider counts them: priced at the model's audio rate.
        completion_tokens_details=CompletionTokensDetails(audio_tokens=spoken) if spoken else None,
    )


def _sse(chunk: msgspec.Struct) -> bytes:
    return b"data: " + _encoder.encode(chunk) + b"\n\n"


async def _stream_body(
    chat: ChatRequest, answers: list[_Answer], usage: Usage, fault: FaultKind | None, config: FakeLLMConfig
) -> AsyncIterator[bytes]:
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices: list[ChunkChoice], chunk_usage: Usage | None = None) -> bytes:
        return _sse(
            ChatCompletionChunk(
                id=completion_id,
                object="chat.completion.chunk",
                created=created,
                model=chat.model,
                system_fingerprint=SYSTEM_FINGERPRINT,
                choices=choices,
                usage=chunk_usage,
            )
        )

    async def pause() -> None:
        if config.token_latency_ms > 0:
            await asyncio.sleep(config.token_latency_ms / 1000)

    sent = 0
    for index, answer in enumerate(answers):
        yield chunk([ChunkChoice(index=index, delta=ChunkDelta(role="assistant", content=""))])
        if answer.tool_call is not None:
            call = answer.tool_call
            head = ToolCallDelta(
                index=0,
                id=call.id,
                type="function",
                function=FunctionDelta(name=call.function.name, arguments=""),
            )
            yield chunk([ChunkChoice(index=index, delta=ChunkDelta(tool_calls=[head]))])
            pieces = generate.stream_pieces(call.function.arguments)
        elif answer.function_call is not None:
            named = FunctionDelta(name=answer.function_call.name, arguments="")
            yield chunk([ChunkChoice(index=index, delta=ChunkDelta(function_call=named))])
            pieces = generate.stream_pieces(answer.function_call.arguments)
        elif answer.audio is not None:
            yield chunk([ChunkChoice(index=index, delta=ChunkDelta(audio=answer.audio))])
            pieces = []
        else:
            pieces = generate.stream_pieces(answer.content) if answer.content else []
        for piece in pieces:
            await pause()
            if fault == "midstream" and sent >= 2:
                # As OpenAI reports a failure after the stream has started: an error event, no [DONE].
                detail = ErrorDetail(message="Injected fault: the stream broke off.", type="server_error")
                yield _sse(ErrorResponse(error=detail))
                return
            if fault == "unfinished" and sent >= 2:
                return  # the body ends cleanly, with no finish_reason and no [DONE]
            if fault == "misshapen" and sent >= 2:
                # Valid JSON that is no chunk (choices as text), then the body goes on as if fine.
                yield b'data: {"id": "x", "object": "chat.completion.chunk", "choices": "oops"}\n\n'
                fault = None
            sent += 1
            logprobs = None
            if answer.tool_call is not None:
                arguments = FunctionDelta(arguments=piece)
                delta = ChunkDelta(tool_calls=[ToolCallDelta(index=0, function=arguments)])
            elif answer.function_call is not None:
                delta = ChunkDelta(function_call=FunctionDelta(arguments=piece))
            else:
                delta = ChunkDelta(content=piece)
                logprobs = Logprobs(content=[_token_logprob(piece)]) if chat.logprobs else None
            yield chunk([ChunkChoice(index=index, delta=delta, logprobs=logprobs)])
        yield chunk([ChunkChoice(index=index, delta=ChunkDelta(), finish_reason=answer.finish_reason)])
    if chat.stream_options is not None and chat.stream_options.include_usage:
        yield chunk([], usage)
    yield b"data: [DONE]\n\n"


def create_fake_llm_app(config: FakeLLMConfig | None = None) -> Litestar:
    """An OpenAI-compatible stand-in model server: deterministic answers, injectable faults, call counts."""
    state = FakeLLMState(config or FakeLLMConfig())

    @post("/v1/chat/completions", status_code=200)
    async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
        config = state.config
        if (denied := _check_auth(request, config)) is not None:
            return denied
        header_value, bad_header = _header_fault(request)
        if bad_header is not None:
            return bad_header
        chat = _decode(await request.body(), ChatRequest)
        if isinstance(chat, Response):
            return chat
        state.chat_calls[chat.model] += 1
        if not chat.messages:
            return _error(
                400,
                "Invalid 'messages': empty array. Expected at least one message.",
                "invalid_request_error",
                "empty_array",
            )
        if chat.n is not None and not 1 <= chat.n <= 128:
            return _error(400, "Invalid 'n': expected a value between 1 and 128.", "invalid_request_error")
        fault = state.pick_fault(chat.model, header_value)
        await state.wait_latency()
        if fault == "timeout":
            await _hang(request, config.timeout_sleep_s)
        elif fault is not None and (failed := _fault_response(fault, config)) is not None:
            return failed
        if fault in ("midstream", "misshapen") and not chat.stream:
            return _error(500, "Injected fault: the server had an error.", "server_error")
        answers = _answers(chat, fault, config)
        usage = _usage(chat, answers)
        if fault == "overcounted":  # a provider's count no request could reach
            usage = Usage(prompt_tokens=10**12, completion_tokens=10**12, total_tokens=2 * 10**12)
        elif fault == "halfcounted":  # the prompt counted, the answer not
            usage = Usage(prompt_tokens=usage.prompt_tokens)
        elif fault in ("reasoning", "spent"):  # a reasoning model: thousands of tokens billed, never shown
            completion = (usage.completion_tokens or 0) + REASONING_TOKENS
            usage = Usage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=completion,
                total_tokens=usage.prompt_tokens + completion,
                completion_tokens_details=CompletionTokensDetails(reasoning_tokens=REASONING_TOKENS),
            )
        if chat.stream:
            return Stream(
                _stream_body(chat, answers, usage, fault, config),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-request-id": f"req_{uuid.uuid4().hex}"},
            )
        choices = [
            Choice(
                index=i,
                finish_reason=a.finish_reason,
                message=AssistantMessage(
                    role="assistant",
                    content=a.content,
                    tool_calls=[a.tool_call] if a.tool_call is not None else None,
                    function_call=a.function_call,
                    audio=a.audio,
                ),
                logprobs=(
                    Logprobs(content=[_token_logprob(p) for p in generate.stream_pieces(a.content)])
                    if chat.logprobs and a.content
                    else None
                ),
            )
            for i, a in enumerate(answers)
        ]
        return _json(
            ChatCompletion(
                id=f"chatcmpl-{uuid.uuid4().hex}",
                created=int(time.time()),
                model=chat.model,
                choices=choices,
                usage=usage,
                system_fingerprint=SYSTEM_FINGERPRINT,
            )
        )

    @post("/v1/embeddings", status_code=200)
    async def embeddings(request: Request[Any, Any, Any]) -> Response[Any]:
        config = state.config
        if (denied := _check_auth(request, config)) is not None:
            return denied
        header_value, bad_header = _header_fault(request)
        if bad_header is not None:
            return bad_header
        body = _decode(await request.body(), EmbeddingRequest)
        if isinstance(body, Response):
            return body
        state.embedding_calls[body.model] += 1
        texts = _embedding_texts(body.input)
        if texts is None:
            return _error(
                400,
                "Invalid 'input': expected a non-empty string, strings or token lists.",
                "invalid_request_error",
            )
        if body.dimensions is not None and body.dimensions < 1:
            return _error(400, "Invalid 'dimensions': expected a positive integer.", "invalid_request_error")
        fault = state.pick_fault(body.model, header_value)
        await state.wait_latency()
        if fault == "timeout":
            await _hang(request, config.timeout_sleep_s)
        elif fault is not None and (failed := _fault_response(fault, config)) is not None:
            return failed
        dim = body.dimensions or generate.embedding_dim_for(body.model, config.embedding_dim)
        data: list[Embedding] = []
        for index, text in enumerate(texts):
            vector = generate.embed(text, dim)
            encoded: list[float] | str = (
                generate.encode_base64(vector) if body.encoding_format == "base64" else vector
            )
            data.append(Embedding(index=index, embedding=encoded))
        tokens = sum(generate.estimate_tokens(t) for t in texts)
        return _json(
            EmbeddingResponse(
                data=data, model=body.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
            )
        )

    @get("/v1/models")
    async def list_models() -> Response[Any]:
        names = dict.fromkeys(
            [*KNOWN_MODELS, *state.config.fail_models, *state.chat_calls, *state.embedding_calls]
        )
        return _json(ModelList(data=[Model(id=name, created=0) for name in names]))

    @get("/v1/models/{model_id:str}")
    async def retrieve_model(model_id: FromPath[str]) -> Response[Any]:
        # Every name exists: model names are free-form.
        return _json(Model(id=model_id, created=0))

    @get("/_fake/stats")
    async def stats() -> Response[Any]:
        return _json(state.stats())

    @post("/_fake/reset", status_code=200)
    async def reset() -> Response[Any]:
        state.reset()
        return _json(state.stats())

    @post("/_fake/faults", status_code=200)
    async def add_fault(request: Request[Any, Any, Any]) -> Response[Any]:
        body = _decode(await request.body(), FaultRequest)
        if isinstance(body, Response):
            return body
        if body.times is not None and body.times < 1:
            return _error(400, "times must be at least 1 (or null for every call)", "invalid_request_error")
        state.faults[body.model] = FaultSpec(kind=body.kind, times=body.times)
        return _json(state.stats())

    @delete("/_fake/faults/{model:str}", status_code=200)
    async def clear_fault(model: FromPath[str]) -> Response[Any]:
        state.faults.pop(model, None)
        return _json(state.stats())

    return Litestar(
        route_handlers=[
            chat_completions,
            embeddings,
            list_models,
            retrieve_model,
            stats,
            reset,
            add_fault,
            clear_fault,
        ],
        openapi_config=None,
        # Run in-process by tests and benchmarks: leave the host's logging set-up alone.
        logging_config=None,
        debug=False,
    )


async def _hang(request: Request[Any, Any, Any], seconds: float) -> None:
    """Sleep like a stuck model, but stop once the client has gone: nobody reads the answer then."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    waiter = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()


def _embedding_texts(value: str | list[Any]) -> list[str] | None:
    if isinstance(value, str):
        return [value] if value else None
    if not value:
        return None
    if all(isinstance(item, str) for item in value):
        return list(value)
    if all(isinstance(item, int) for item in value):
        return [" ".join(map(str, value))]
    if all(isinstance(item, list) and item and all(isinstance(t, int) for t in item) for item in value):
        return [" ".join(map(str, item)) for item in value]
    return None


__all__ = ["FAULT_HEADER", "FAULT_KINDS", "FakeLLMState", "create_fake_llm_app"]
