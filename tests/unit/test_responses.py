"""Replayed answers are OpenAI chat completions, whatever the upstream left out."""

from __future__ import annotations

from app.cache.responses import completion_from_text, replay


def test_replay_gives_a_new_id_and_the_same_content() -> None:
    stored = completion_from_text("gpt-4o-mini", "Forty-two.")
    again = replay(stored)
    assert again["id"] != stored["id"]
    assert again["choices"] == stored["choices"]
    assert again["object"] == "chat.completion"


def test_replay_fills_what_every_openai_completion_carries() -> None:
    stored = {
        "id": "chatcmpl-x",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
    }
    again = replay(stored)
    assert again["object"] == "chat.completion"
    assert again["choices"][0]["message"] == {"role": "assistant", "content": "hi"}
    assert stored["choices"][0]["message"] == {"content": "hi"}  # the stored entry is untouched
