"""The replay stream: reproducible, one answer per prompt, look-alikes with answers of their own."""

from __future__ import annotations

from app.cache.scope import normalise_prompt
from app.toolkit.ml.pairs import INTENTS, in_validation
from app.toolkit.replay.stream import StreamBuilder


def test_the_stream_is_reproducible_and_labels_each_prompt_once() -> None:
    first = StreamBuilder(3).build(questions=10, look_alikes=2, paraphrases=4, repeats=3)
    assert first == StreamBuilder(3).build(questions=10, look_alikes=2, paraphrases=4, repeats=3)
    answers: dict[str, str] = {}
    for line in first:
        assert answers.setdefault(normalise_prompt(line["prompt"]), line["answer"]) == line["answer"]
    # Paraphrases repeat (exact hits), and look-alikes bring answers of their own.
    assert len(answers) < len(first)
    assert len(set(answers.values())) > 10


def test_only_held_out_intents_are_used() -> None:
    held_out = {intent.id for intent in INTENTS if in_validation(intent)}
    stream = StreamBuilder(5).build(questions=20, look_alikes=2, paraphrases=2, repeats=1)
    assert all(line["answer"].split(" ")[4] in held_out for line in stream)
