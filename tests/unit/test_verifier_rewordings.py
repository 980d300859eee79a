"""Light rewordings that teach the verifier which one-word changes keep the answer."""

from __future__ import annotations

import random

from app.toolkit.ml.rewordings import (
    compound,
    contract,
    drop_final_mark,
    opener,
    overlaid,
    place_preposition,
    reword,
    rewording_pairs,
)
from app.toolkit.ml.swaps import SwapPair


def rng() -> random.Random:
    return random.Random(0)


def test_a_contraction_keeps_the_capital_of_a_sentence_start() -> None:
    assert (
        contract("Who is the owner of the billing service?", rng())
        == "Who's the owner of the billing service?"
    )
    assert contract("Why does the build not start when it is Monday?", rng()) == (
        "Why does the build not start when it's Monday?"
    )


def test_a_question_ending_on_its_verb_is_not_contracted() -> None:
    assert contract("Do you know who the new lead is?", rng()) is None


def test_a_place_takes_the_other_preposition() -> None:
    assert place_preposition("How much leave does a part-timer in the Madrid office get?", rng()) == (
        "How much leave does a part-timer at the Madrid office get?"
    )
    assert place_preposition("Can visitors park at our Austin campus?", rng()) == (
        "Can visitors park in our Austin campus?"
    )


def test_a_place_that_qualifies_another_word_is_left_alone() -> None:
    # "in the office lease" is about a lease: "at the office lease" would be another phrase.
    assert place_preposition("Summarise the renewal clause in the office lease", rng()) is None
    assert place_preposition("How did people get stuck in the warehouse fire?", rng()) is None
    assert place_preposition("Is the meeting in the afternoon?", rng()) is None


def test_a_compound_is_spelled_the_other_common_way() -> None:
    assert compound("Draft a follow-up to the supplier", rng()) == "Draft a follow up to the supplier"
    assert compound("Send an email to the team", rng()) == "Send an e-mail to the team"


def test_a_question_opener_is_worded_the_other_way() -> None:
    assert opener("How do I reset my VPN token?", random.Random(1)) == "How can I reset my VPN token?"
    worded = {opener("Which team owns the billing API?", random.Random(seed)) for seed in range(20)}
    # On a coin's toss "which" becomes "what"; otherwise no other opener applies here.
    assert worded == {"What team owns the billing API?", None}


def test_which_and_what_are_exchanged_only_before_a_noun() -> None:
    for seed in range(20):
        assert opener("What is the VPN address?", random.Random(seed)) is None


def test_the_final_mark_is_dropped() -> None:
    assert drop_final_mark("Who approves travel?", rng()) == "Who approves travel"
    assert drop_final_mark("Who approves travel", rng()) is None


def test_a_rewording_names_each_edit_it_made() -> None:
    text = "Who is on duty for the payments service in the Dublin office, and how do I page them?"
    kinds = set()
    for seed in range(50):
        edited = reword(text, random.Random(seed))
        assert edited is not None
        assert edited.text != text
        assert 1 <= len(edited.kinds) <= 4
        kinds.update(edited.kinds)
    assert {"contract", "place_preposition", "opener"} <= kinds


def test_a_sentence_no_edit_applies_to_gives_no_pair() -> None:
    assert reword("Summarise the attached report", rng()) is None
    assert rewording_pairs(["Summarise the attached report"], seed=1, count=5) == []


def test_rewording_pairs_keep_the_answer_and_are_reproducible() -> None:
    sentences = [
        "Who is the owner of the payroll export?",
        "How do I request a new laptop?",
        "Which office handles visas for contractors?",
        "Can you book a room in the Paris office for Friday?",
        "What is the e-mail address of the help desk?",
    ]
    pairs = rewording_pairs(sentences, seed=7, count=10)

    assert pairs == rewording_pairs(sentences, seed=7, count=10)
    assert 3 <= len(pairs) <= len(sentences)
    assert all(pair.label == 1 and pair.first != pair.second for pair in pairs)
    assert all((pair.first in sentences) != (pair.second in sentences) for pair in pairs)
    assert all(pair.kind.startswith("rewording:") for pair in pairs)


def test_edits_laid_over_a_look_alike_keep_it_a_look_alike() -> None:
    swapped = [
        SwapPair(
            "How do I migrate from Postgres to MySQL?",
            "How do I migrate from MySQL to Postgres?",
            0,
            "direction",
        ),
        SwapPair("Who is the manager of the Lyon site?", "Who is the Lyon site's manager?", 1, "possessive"),
    ]

    out = overlaid(swapped, seed=3, count=2)

    assert {(pair.first, pair.label, pair.kind) for pair in out} == {
        ("How do I migrate from Postgres to MySQL?", 0, "direction+rewording"),
        ("Who is the manager of the Lyon site?", 1, "possessive+rewording"),
    }
    by_kind = {pair.kind: pair.second for pair in out}
    assert by_kind["direction+rewording"] != swapped[0].second
    assert "MySQL to Postgres" in by_kind["direction+rewording"]
