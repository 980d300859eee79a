"""The written work prompts trained on never hold a prompt of a report-only set."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from app.toolkit.ml.train import JUDGING_FILES, WRITTEN_SOURCES, _written


def _prompts(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        " ".join(re.findall(r"\w+", row[side].lower())) for row in rows for side in ("sentence1", "sentence2")
    }


@pytest.mark.parametrize("written", list(WRITTEN_SOURCES.values()), ids=lambda path: path.stem)
def test_no_prompt_of_a_report_only_set_is_trained_on(written: Path) -> None:
    reported = set().union(*(_prompts(path) for path in JUDGING_FILES))
    assert not _prompts(written) & reported


@pytest.mark.parametrize(
    ("source", "kind"), [("written", "direction"), ("counter", "topical"), ("short", "other_action")]
)
def test_the_validation_slice_shares_no_prompt_with_training(source: str, kind: str) -> None:
    train, held = _written(source)
    assert 0.15 < len(held.pairs) / (len(held.pairs) + len(train)) < 0.25
    # No prompt of any written file's slice, on either side of any pair, is trained on.
    held_out = {text for other in WRITTEN_SOURCES for pair in _written(other)[1].pairs for text in pair}
    assert not held_out & {text for pair, _ in train for text in pair}
    # Both kinds in both parts, with their kinds kept.
    assert set(held.labels) == {0, 1}
    assert {label for _, label in train} == {0, 1}
    assert len(held.kinds) == len(held.pairs)
    assert kind in held.kinds
