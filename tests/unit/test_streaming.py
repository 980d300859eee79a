"""A stored answer streams back as what was stored, and an answer that cannot is not stored."""

from __future__ import annotations

from typing import Any

from app.completions.streaming import CompletionAssembler, replay_chunks, servable_again
from app.ledger.booking import answer_text


def completion(message: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant"} | message, "finish_reason": "stop"} | choice
        ],
        "usage": None,
    }


def round_trip(stored: dict[str, Any]) -> dict[str, Any]:
    assembler = CompletionAssembler()
    for chunk in replay_chunks(stored, include_usage=False):
        assembler.add(chunk)
    return assembler.completion()["choices"][0]  # type: ignore[no-any-return]


def test_every_field_of_a_stored_answer_streams_back_as_it_was_stored() -> None:
    """Reasoning text, a legacy function call, citations and logprobs were left out of replays."""
    logprobs = {
        "content": [
            {"token": t, "logprob": -0.1, "bytes": list(t.encode()), "top_logprobs": []}
            for t in ("Oslo ", "rain")
        ],
        "refusal": None,
    }
    stored = completion(
        {
            "content": "Oslo rain",
            "reasoning_content": "The user asks about Oslo.",
            "annotations": [
                {"type": "url_citation", "url_citation": {"url": "https://yr.no", "title": "Yr"}}
            ],
        },
        logprobs=logprobs,
    )
    choice = round_trip(stored)
    assert choice["message"]["content"] == "Oslo rain"
    assert choice["message"]["reasoning_content"] == "The user asks about Oslo."
    assert choice["message"]["annotations"] == stored["choices"][0]["message"]["annotations"]
    assert choice["logprobs"] == logprobs
    called = round_trip(completion({"content": None, "function_call": {"name": "f", "arguments": '{"a":1}'}}))
    assert called["message"]["function_call"] == {"name": "f", "arguments": '{"a":1}'}


def test_an_answer_in_parts_stored_by_an_earlier_version_streams_without_breaking() -> None:
    """Content in parts (a reasoning model's) broke a streamed hit after its headers went out."""
    parts = [{"type": "thinking", "thinking": "..."}, {"type": "text", "text": "Done."}]
    chunks = list(replay_chunks(completion({"content": parts}), include_usage=False))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert any(chunk["choices"][0]["delta"].get("content") == parts for chunk in chunks)


def test_only_answers_a_copy_can_give_back_are_stored() -> None:
    assert servable_again(completion({"content": "Hello."}))
    assert servable_again(completion({"content": None, "tool_calls": [{"id": "c", "type": "function"}]}))
    assert not servable_again(completion({"content": [{"type": "text", "text": "Hello."}]}))
    assert not servable_again(completion({"content": None, "audio": {"id": "audio_1", "transcript": "Hi"}}))
    # A field of some server's own is kept, and streams back as it was stored.
    extra = completion({"content": "Hi.", "provider_specific_fields": {"citations": ["a"]}})
    assert servable_again(extra)
    assert round_trip(extra)["message"]["provider_specific_fields"] == {"citations": ["a"]}


def chunks(*deltas: dict[str, Any]) -> CompletionAssembler:
    assembler = CompletionAssembler()
    for delta in deltas:
        assembler.add({"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta}]})
    return assembler


def test_a_stream_in_pieces_of_other_shapes_is_assembled_whole_and_not_stored_when_it_cannot_be() -> None:
    """Content that turns into parts and back kept only its last piece, and was stored as a
    whole answer; a field sent as list fragments kept only the last fragment."""
    thinking = {"type": "thinking", "thinking": "Rivers first."}
    mixed = chunks({"content": ""}, {"content": [thinking]}, {"content": "Answer"})
    assert mixed.completion()["choices"][0]["message"]["content"] == [
        thinking,
        {"type": "text", "text": "Answer"},
    ]
    assert not mixed.storable
    details = chunks(
        {"reasoning_details": [{"text": "a"}]}, {"reasoning_details": [{"text": "b"}]}, {"content": "x"}
    )
    assert details.completion()["choices"][0]["message"]["reasoning_details"] == [
        {"text": "a"},
        {"text": "b"},
    ]
    assert details.storable
    spoken = chunks(
        {"audio": {"id": "audio_1", "transcript": "Hel"}}, {"audio": {"transcript": "lo", "data": "AA"}}
    )
    assert spoken.completion()["choices"][0]["message"]["audio"] == {
        "id": "audio_1",
        "transcript": "Hello",
        "data": "AA",
    }
    assert not spoken.storable


def test_a_cut_answer_is_booked_for_everything_it_said() -> None:
    """A stream cut before its usage is counted from its text: a legacy function call, reasoning
    and a spoken answer's transcript counted nothing, so delivered output could be booked at $0."""
    said = answer_text(
        completion(
            {
                "content": None,
                "reasoning_content": "Check the city.",
                "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                "audio": {"id": "audio_1", "transcript": "It rains."},
            }
        )
    )
    for piece in ("Check the city.", "get_weather", '{"city": "Oslo"}', "It rains."):
        assert piece in said


def test_many_choices_replay_in_a_bounded_number_of_events_and_reassemble_whole() -> None:
    """The bound is the answer's, not each choice's: 128 choices of 7,800 characters (an
    upstream's answer to n=128) were 62,720 events, 128 choices of 64 tool calls 8,448."""
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": "look_up", "arguments": f'{{"n":{i}}}'}}
        for i in range(64)
    ]
    for message in ({"content": "a " * 3900}, {"content": None, "tool_calls": calls}):
        completion = {
            "id": "chatcmpl-many",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": i, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
                for i in range(128)
            ],
        }
        chunks = list(replay_chunks(completion, include_usage=False))
        assert len(chunks) <= 1600
        assembler = CompletionAssembler()
        for chunk in chunks:
            assembler.add(chunk)
        whole = assembler.completion()["choices"]
        assert len(whole) == 128
        for choice in whole:
            assert (choice["message"]["content"] or None) == message["content"]
            assert choice["message"].get("tool_calls") == message.get("tool_calls")


def test_what_an_answer_says_of_itself_at_its_top_streams_back_in_every_chunk() -> None:
    """A streamed hit's chunks said `service_tier: None` where the miss's had said "default"."""
    stored = completion({"content": "Oslo rain"}) | {"service_tier": "default", "system_fingerprint": "fp_1"}
    chunks = list(replay_chunks(stored, include_usage=True))
    assert {(chunk["service_tier"], chunk["system_fingerprint"]) for chunk in chunks} == {("default", "fp_1")}


def test_an_answer_a_content_filter_stopped_is_not_stored() -> None:
    """What a content filter left of an answer was stored and served again for the entry's TTL."""
    assert servable_again(completion({"content": "Here is how to"}, finish_reason="stop"))
    assert not servable_again(completion({"content": "Here is how to"}, finish_reason="content_filter"))
    assert not servable_again(completion({"content": ""}, finish_reason="length"))
