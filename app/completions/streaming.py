"""Server-sent events: assemble a streamed completion for storage, and replay a stored one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

DONE = b"data: [DONE]\n\n"
# Replayed content goes out in word-sized pieces, as a model would send it; a long answer in at
# most about REPLAY_PIECES pieces of several words each (a 1 MB answer word by word was 520,000
# events, 114 MB of stream and 12 s of the event loop's CPU). The bound is the answer's, shared
# by its choices (128 choices of 7,800 characters were 62,700 events), and a choice's tool calls
# go out in as many chunks at most.
REPLAY_PIECES = 512
# A replay is written REPLAY_BATCH events at a time, the event loop getting a turn in between.
REPLAY_BATCH = 64
_SPACES = re.compile(r"\s+")


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


# Message fields a replay gives back in their own shapes; any other goes out as it was stored,
# in one piece (text such as reasoning, or a field of some server's own).
_STRUCTURED = frozenset({"tool_calls", "function_call", "annotations"})


def servable_again(completion: dict[str, Any]) -> bool:
    """Whether a stored copy of this answer gives back what the model said, streamed or not: not
    when a choice's content is not text (content in parts, as some reasoning models send it), it
    speaks (audio, whose id expires with the provider), it says nothing (the model's output
    limit ran out: the next request may get an answer) or a content filter stopped it (what is
    left of the answer is the filter's verdict on that one call, not an answer to serve again)."""
    for choice in completion.get("choices") or []:
        if isinstance(choice, dict) and choice.get("finish_reason") == "content_filter":
            return False
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), str | None):
            return False
        if message.get("audio"):
            return False
        if not any(message.get(part) for part in ("content", "refusal", "tool_calls", "function_call")):
            return False
    return True


class CompletionAssembler:
    """Folds chunk dicts into the chat completion object they spell out: text fields (content,
    refusal, and any other a server streams as text, such as reasoning) are joined, tool calls
    and a legacy function call assembled, annotations and logprobs gathered; another field keeps
    its last value (content in parts, audio: an answer not to store, `servable_again`)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.created: int | None = None
        self.model: str | None = None
        self.system_fingerprint: str | None = None
        self.usage: dict[str, Any] | None = None
        self.storable = True
        """False once a field came in a shape a stored copy cannot give back (`servable_again`)."""
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        self.id = self.id or chunk.get("id")
        self.created = self.created or chunk.get("created")
        self.model = self.model or chunk.get("model")
        self.system_fingerprint = self.system_fingerprint or chunk.get("system_fingerprint")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            state = self._choices.setdefault(
                index,
                {
                    "message": {"role": "assistant", "content": None, "refusal": None},
                    "tool_calls": {},
                    "finish_reason": None,
                },
            )
            message = state["message"]
            for key, value in (choice.get("delta") or {}).items():
                if value is None:
                    continue
                if key == "role":
                    message["role"] = value
                elif key == "tool_calls" and isinstance(value, list):
                    for call in value:
                        _add_call(state["tool_calls"], call if isinstance(call, dict) else {})
                elif key == "function_call" and isinstance(value, dict):
                    function = message.setdefault("function_call", {"name": "", "arguments": ""})
                    function["name"] += str(value.get("name") or "")
                    function["arguments"] += str(value.get("arguments") or "")
                elif key == "content" and (
                    not isinstance(value, str) or isinstance(message["content"], list)
                ):
                    # Content in parts (some reasoning models): kept in parts, never stored.
                    self.storable = False
                    if not isinstance(message["content"], list):
                        message["content"] = (
                            [{"type": "text", "text": message["content"]}] if message["content"] else []
                        )
                    text = {"type": "text", "text": value} if isinstance(value, str) else value
                    message["content"].extend(value if isinstance(value, list) else [text])
                elif isinstance(value, str) and isinstance(message.get(key), str | None):
                    message[key] = (message.get(key) or "") + value
                elif isinstance(value, list) and isinstance(message.get(key), list | None):
                    if message.get(key) is None:
                        message[key] = []
                    message[key].extend(value)  # citations, reasoning details
                elif isinstance(value, dict) and isinstance(message.get(key), dict):
                    # A field sent in pieces (a spoken answer: its transcript and data): text joined,
                    # the rest replaced. What such a field means is not known here: not stored.
                    self.storable = False
                    for name, piece in value.items():
                        before = message[key].get(name)
                        joined = isinstance(piece, str) and isinstance(before, str)
                        message[key][name] = before + piece if joined else piece
                else:
                    message[key] = dict(value) if isinstance(value, dict) else value
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                # As OpenAI shapes them whole: {"content": [...], "refusal": null}.
                gathered = state.setdefault("logprobs", {"content": None, "refusal": None})
                for key, tokens in logprobs.items():
                    if isinstance(tokens, list):
                        if gathered.get(key) is None:
                            gathered[key] = []
                        gathered[key].extend(tokens)
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message = dict(state["message"])
            if state["tool_calls"]:
                message["tool_calls"] = [state["tool_calls"][i] for i in sorted(state["tool_calls"])]
            if message["content"] == "" and any(message.get(key) for key in _NOT_TEXT_ANSWERS):
                # A stream opens every answer with content "": one that calls a tool, refuses or
                # speaks has no content, as the same answer unstreamed says (null).
                message["content"] = None
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": state.get("logprobs"),
                    "finish_reason": state["finish_reason"] or "stop",
                }
            )
        completion: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage,
        }
        if self.system_fingerprint:
            completion["system_fingerprint"] = self.system_fingerprint
        return completion


# What an answer may hold instead of text content.
_NOT_TEXT_ANSWERS = ("tool_calls", "function_call", "refusal", "audio")


def _add_call(calls: dict[int, dict[str, Any]], call: dict[str, Any]) -> None:
    slot = calls.setdefault(
        int(call.get("index", 0)), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if call.get("id"):
        slot["id"] = call["id"]
    if call.get("type"):
        slot["type"] = call["type"]
    function = call["function"] if isinstance(call.get("function"), dict) else {}
    slot["function"]["name"] += str(function.get("name") or "")
    slot["function"]["arguments"] += str(function.get("arguments") or "")


def replay_chunks(completion: dict[str, Any], *, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The chunks a model would have streamed for this completion, usage chunk last when asked.
    Text goes out in word-sized pieces; with logprobs, in one piece that carries them all, so
    that the pieces and their logprobs add up to the stored ones."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion.get("model"),
    }
    # And what else the answer says of itself at its top (system_fingerprint, service_tier, ...),
    # which a model repeats in every chunk.
    base |= {
        key: value
        for key, value in completion.items()
        if key not in base and key not in ("choices", "usage") and isinstance(value, str | int | float | bool)
    }

    def chunk(
        index: int, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        return {
            **base,
            "choices": [
                {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
            ],
        }

    choices = completion.get("choices") or []
    share = max(1, REPLAY_PIECES // max(1, len(choices)))  # pieces each choice may take
    for choice in choices:
        index = int(choice.get("index", 0))
        message = choice.get("message") or {}
        logprobs = choice.get("logprobs")
        opening = "" if isinstance(message.get("content"), str) else None  # as a model opens it
        yield chunk(index, {"role": message.get("role", "assistant"), "content": opening})
        for key, value in message.items():
            # What else the model sent before its answer (reasoning, ...), in one piece.
            if key not in ("role", "content", "refusal") and key not in _STRUCTURED and value:
                yield chunk(index, {key: value})
        content = message.get("content")
        if logprobs or not isinstance(content, str):
            if content or logprobs:
                yield chunk(index, {"content": content if content is not None else ""}, logprobs=logprobs)
        else:
            for piece in _pieces(content, share):
                yield chunk(index, {"content": piece})
        if message.get("refusal"):
            yield chunk(index, {"refusal": message["refusal"]})
        if message.get("function_call"):
            yield chunk(index, {"function_call": message["function_call"]})
        if message.get("annotations"):
            yield chunk(index, {"annotations": message["annotations"]})
        calls = message.get("tool_calls") or []
        per_chunk = -(-len(calls) // share)  # one call a chunk, unless that takes more than `share`
        for start in range(0, len(calls), per_chunk or 1):
            yield chunk(
                index,
                {
                    "tool_calls": [
                        _call_delta(at, call)
                        for at, call in enumerate(calls[start : start + per_chunk], start)
                    ]
                },
            )
        yield chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage:
        yield {**base, "choices": [], "usage": completion.get("usage")}


def _call_delta(position: int, call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "index": position,
        "id": call.get("id"),
        "type": call.get("type", "function"),
        "function": {"name": function.get("name", ""), "arguments": function.get("arguments", "")},
    }


def _pieces(content: str, most: int = REPLAY_PIECES) -> Iterator[str]:
    """The content in pieces that end after a run of whitespace: a word each, or for a long
    content as many words as make one `most`-th of it."""
    size = max(1, len(content) // most)
    start = 0
    while start < len(content):
        spaces = _SPACES.search(content, start + size)
        end = len(content) if spaces is None else spaces.end()
        yield content[start:end]
        start = end
