"""The verifier's generated pairs: reproducible, well formed, and split by intent."""

from __future__ import annotations

import re

from app.toolkit.ml.pairs import INTENTS, POOLS, SLOT, generate, in_validation


def test_every_slot_of_every_phrasing_has_a_pool() -> None:
    for intent in INTENTS:
        for phrasing in intent.phrasings:
            for slot in SLOT.findall(phrasing):
                assert slot.rstrip("0123456789") in POOLS, (intent.id, slot)


def test_generation_is_reproducible_and_reads_well() -> None:
    pairs = generate(4000, seed=3, validation=False)
    assert pairs == generate(4000, seed=3, validation=False)
    doubled = re.compile(r"\b(the|a|an)\s+\1\b", re.IGNORECASE)
    for pair in pairs:
        for text in (pair.first, pair.second):
            assert "{" not in text, text
            assert not doubled.search(text), text
    assert {pair.label for pair in pairs} == {0, 1}


def test_about_a_quarter_of_the_intents_is_held_out_for_validation() -> None:
    held_out = [intent for intent in INTENTS if in_validation(intent)]
    assert 0.15 < len(held_out) / len(INTENTS) < 0.35
    validation = generate(400, seed=5, validation=True)
    assert {pair.intent for pair in validation} == {intent.id for intent in held_out}
