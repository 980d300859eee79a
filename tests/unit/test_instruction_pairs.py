"""The instruction pairs the verifier may be trained on, and training pairs read as the service reads them."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR, counting_tokenizer, pair_window
from app.toolkit.ml.instructions import ACROSS, OBJECTS, TASKS, in_validation, instruction_pairs, more_tasks
from app.toolkit.ml.train import JUDGING_FILES, TrainConfig, as_served

_PROSE = [
    "The company said quarterly revenue rose 8 percent, helped by strong demand in Asia.",
    "Shares fell in early trading after the regulator opened an inquiry into the merger.",
    "The council voted to close the bridge for repairs until the end of the summer.",
    "Researchers found that the new vaccine protected most patients for at least a year.",
    "The airline cancelled dozens of flights as the storm moved up the east coast.",
    "Union leaders said they would return to talks with management next week.",
]
_LONG_SHARED = " ".join(_PROSE * 3)


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_pairs_are_reproducible_and_of_both_labels_alone_and_over_a_text() -> None:
    pairs = instruction_pairs(600, _PROSE, seed=3, validation=False)

    assert pairs == instruction_pairs(600, _PROSE, seed=3, validation=False)
    assert {pair.label for pair in pairs} == {0, 1}
    assert {pair.kind.split(", ")[1] for pair in pairs} == {"alone", "before", "after"}
    for pair in pairs:
        assert "{" not in pair.first + pair.second
        if pair.label == 0:
            assert pair.first.casefold() != pair.second.casefold()
        if not pair.kind.endswith("alone"):
            # One pasted text under both requests: only the instructions tell them apart.
            assert any(sentence in pair.first and sentence in pair.second for sentence in _PROSE)


def test_pairs_across_a_text_put_one_request_before_it_and_the_other_after_it() -> None:
    pairs = instruction_pairs(200, _PROSE, seed=3, validation=True, placements=ACROSS)

    assert {pair.kind.split(", ")[1] for pair in pairs} == {"across"}
    assert {pair.label for pair in pairs} == {0, 1}
    for pair in pairs:
        assert any(sentence in pair.first and sentence in pair.second for sentence in _PROSE)
        # The text opens one prompt, and the other opens with its request.
        opens = [
            any(prompt.startswith(sentence) for sentence in _PROSE) for prompt in (pair.first, pair.second)
        ]
        assert opens in ([True, False], [False, True])


def test_the_more_tasks_are_new_tasks_held_out_alike_and_trained_on_only_when_asked() -> None:
    more = more_tasks()
    ids = [task.id for task in more]
    assert len(ids) == len(set(ids)) == 80
    assert not set(ids) & {task.id for task in TASKS}
    assert all(len(task.phrasings) >= 4 for task in more)

    default = instruction_pairs(3000, _PROSE, seed=5, validation=False)
    with_more = instruction_pairs(3000, _PROSE, seed=5, validation=False, more=True)

    assert not {pair.intent for pair in default} & set(ids)
    trained = {pair.intent for pair in with_more} & set(ids)
    assert trained
    assert not {task.id for task in more if in_validation(task)} & trained


def test_about_a_quarter_of_the_tasks_is_held_out_and_never_trained_on() -> None:
    held_out = {task.id for task in TASKS if in_validation(task)}
    assert 0.15 < len(held_out) / len(TASKS) < 0.35

    validation = instruction_pairs(800, _PROSE, seed=5, validation=True)
    training = instruction_pairs(3000, _PROSE, seed=5, validation=False)

    assert {pair.intent for pair in validation} == held_out
    assert not {pair.intent for pair in training} & held_out


def _sentences(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        _words(sentence)
        for row in rows
        for side in ("sentence1", "sentence2")
        for sentence in re.split(r"(?<=[.?!:])\s+", row[side])
    }


def test_no_task_phrasing_is_a_sentence_of_a_report_only_set() -> None:
    reported = set().union(*(_sentences(path) for path in JUDGING_FILES))
    phrasings = {
        _words(phrasing.replace("{obj}", obj))
        for task in [*TASKS, *more_tasks()]
        for phrasing in task.phrasings
        for obj in OBJECTS
    }

    assert not phrasings & reported


@pytest.fixture(scope="module")
def counter() -> Tokenizer:
    # The shipped model's vocabulary: the base model's, which training measures with.
    return counting_tokenizer(DEFAULT_VERIFIER_DIR)


def test_a_long_training_pair_is_read_where_it_differs_as_the_service_reads_it(counter: Tokenizer) -> None:
    # Cut at the model's 128 tokens, both prompts would end inside the shared text and the one
    # instruction that tells them apart would be lost: the pair would teach "the same".
    long_pair = (f"{_LONG_SHARED} Draft a reply to this email.", f"{_LONG_SHARED} List the action items.", 0)
    short_pair = ("Summarise this email.", "Give me a summary of this email.", 1)

    read = as_served([long_pair, short_pair], TrainConfig(), counter)

    assert read == [("Draft a reply to this email", "List the action items", 0), short_pair]
    assert read[0][:2] == pair_window(counter, *long_pair[:2])


def test_a_training_pair_with_requests_on_two_sides_of_a_text_is_read_as_its_requests_when_asked(
    counter: Tokenizer,
) -> None:
    text = " ".join(_PROSE)
    across = (f"Draft a reply to this email: {text}", f"{text} List the action items.", 0)

    # A recipe without it reads the pair as it always has (cut by the training tokenizer).
    assert as_served([across], TrainConfig(), counter) == [across]
    assert as_served([across], TrainConfig(instructions_across=True), counter) == [
        ("Draft a reply to this email:", "List the action items.", 0)
    ]
