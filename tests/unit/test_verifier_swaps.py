"""The order and role transformations that teach the verifier which reorders change the answer."""

from __future__ import annotations

import random

from app.toolkit.ml.swaps import (
    ROLE_FRAMES,
    Variant,
    front_setting,
    move_clause,
    opposite,
    passive,
    possessive,
    reverse_direction,
    role_frames,
    swap_contrast,
    swap_coordinated,
    swap_roles,
    transform_all,
)


def rng() -> random.Random:
    return random.Random(0)


def test_swapping_the_ends_of_a_direction_is_a_look_alike() -> None:
    variant = reverse_direction("How do I migrate from Postgres to MySQL without downtime?", rng())

    assert variant is not None
    assert variant.text == "How do I migrate from MySQL to Postgres without downtime?"
    assert variant.label == 0


def test_an_email_to_someone_becomes_an_email_from_them() -> None:
    variant = reverse_direction("Write an email to my manager asking for a raise", rng())

    assert variant is not None
    assert variant.text == "Write an email from my manager asking for a raise"
    assert variant.label == 0


def test_exchanging_two_parties_is_a_look_alike() -> None:
    variant = swap_roles("What rights does the landlord have if the tenant breaks the lease?", rng())

    assert variant is not None
    assert variant.text == "What rights does the tenant have if the landlord breaks the lease?"
    assert variant.label == 0


def test_the_two_sides_of_a_contrast_are_swapped() -> None:
    variant = swap_contrast("Is a melon bigger than an apple?", rng())

    assert variant is not None
    assert variant.text == "Is an apple bigger than a melon?"
    assert variant.label == 0


def test_a_contrast_swaps_two_things_of_one_shape() -> None:
    assert swap_contrast("When should I use UIScrollView instead of UITableView in iOS?", rng()) == Variant(
        "When should I use UITableView instead of UIScrollView in iOS?", 0, "contrast"
    )
    assert swap_contrast("Why is arranged marriage better than love marriage?", rng()) == Variant(
        "Why is love marriage better than arranged marriage?", 0, "contrast"
    )


def test_a_clause_is_never_swapped_as_if_it_were_a_thing() -> None:
    # Each of these once came out garbled ("How can I become fit and look going without good to gym?").
    for sentence in (
        "How can I become fit and look good without going to gym?",
        "How can I lose weight without exercise?",
        "How do I know that I have become over confident rather than confident?",
        "Mr. Kerkorian tried unsuccessfully to take over Chrysler in 1995.",
        "Calculate the monthly payment on a $350k loan at 6.5 percent over 30 years",
        "It completed the withdrawal of its more than 6,000 soldiers.",
    ):
        assert swap_contrast(sentence, rng()) is None, sentence


def test_two_opposite_movements_are_exchanged() -> None:
    sentence = "Why did the price go up while the volume went down?"
    variants = {opposite(sentence, random.Random(seed)) for seed in range(20)}
    texts = {v.text for v in variants if v is not None}

    assert "Why did the price go down while the volume went up?" in texts
    assert all(v is not None and v.label == 0 for v in variants)


def test_reorders_that_keep_every_role_are_paraphrases() -> None:
    moved = move_clause("If the build fails, how do I roll back the release?", rng())
    coordinated = swap_coordinated("What is the difference between TCP and UDP?", rng())
    owned = possessive("What is the capital of France?", rng())
    made_passive = passive("the manager approves the expense report", rng())

    assert moved is not None
    assert moved.text == "How do I roll back the release if the build fails?"
    assert coordinated is not None
    assert coordinated.text == "What is the difference between UDP and TCP?"
    assert owned is not None
    assert owned.text == "What is France's capital?"
    assert made_passive is not None
    assert made_passive.text == "The expense report is approved by the manager"
    assert {v.label for v in (moved, coordinated, owned, made_passive)} == {1}


def test_a_phrase_of_time_place_or_tool_moves_to_the_front_and_back() -> None:
    fronted = front_setting("What was the budget for project Nova in Q3 2023?", rng())
    tool = front_setting("How do I make a pivot table in Excel?", rng())
    back = front_setting("This week, who's on call for payments at the Berlin office?", rng())

    assert fronted is not None
    assert fronted.text == "In Q3 2023, what was the budget for project Nova?"
    assert tool is not None
    assert tool.text == "In Excel, how do I make a pivot table?"
    assert back is not None
    assert back.text == "Who's on call for payments at the Berlin office this week?"
    assert {v.label for v in (fronted, tool, back)} == {1}


def test_the_end_of_a_direction_is_never_moved_as_a_setting() -> None:
    # "to MySQL" is where the migration goes, not when or where the question holds.
    assert front_setting("Migrate the orders database from Postgres to MySQL", rng()) is None


def test_a_word_inside_a_longer_phrase_is_not_swapped_as_an_item() -> None:
    # "PeopleSoft products and customers": "products" is modified, the pair is not two items.
    assert swap_coordinated("Oracle will support PeopleSoft products and customers for years", rng()) is None


def test_generation_is_reproducible_and_labels_both_ways() -> None:
    sentences = [frame.format(a="customer", b="supplier") for frame in ROLE_FRAMES]
    first = transform_all(sentences, seed=3)

    assert first == transform_all(sentences, seed=3)
    assert {pair.label for pair in first} == {0, 1}
    assert all(pair.first != pair.second for pair in first)
    frames = role_frames(seed=5, count=200)
    assert len(frames) == 200
    assert {pair.label for pair in frames} == {0, 1}
