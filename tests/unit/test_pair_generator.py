"""The verifier's generated pairs: reproducible, well formed, and split by intent."""

from __future__ import annotations

import re

from app.toolkit.ml.pairs import INTENTS, POOLS, SLOT, _pool_name, generate, in_validation


def test_every_slot_of_every_phrasing_has_a_pool() -> None:
    for intent in INTENTS:
        for phrasing in intent.phrasings:
            for slot in SLOT.findall(phrasing):
                assert _pool_name(slot) in POOLS, (intent.id, slot)


def test_generation_is_reproducible_and_reads_well() -> None:
    pairs = generate(4000, seed=3, validation=False)
    assert pairs == generate(4000, seed=3, validation=False)
    doubled = re.compile(r"\b(the|a|an)\s+\1\b", re.IGNORECASE)
    for pair in pairs:
        for text in (pair.first, pair.second):
            assert "{" not in text, text
            assert not doubled.search(text), text
    assert {pair.label for pair in pairs} == {0, 1}


def test_training_and_validation_pairs_come_from_disjoint_intents() -> None:
    held_out = {intent.id for intent in INTENTS if in_validation(intent)}
    training = {pair.intent for pair in generate(3000, seed=5, validation=False)}
    validation = {pair.intent for pair in generate(3000, seed=5, validation=True)}
    assert validation <= held_out
    assert not training & held_out
