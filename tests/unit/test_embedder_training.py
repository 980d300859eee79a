"""What the embedder is fine-tuned on: true pairs pulled together, look-alikes as their negatives,
and never the word-order pairs that a mean-pooled embedder cannot tell apart."""

from __future__ import annotations

from app.toolkit.ml.embedder_train import embedder_examples
from app.toolkit.ml.train import Splits


def _splits() -> Splits:
    splits = Splits()
    rows = {
        "qqp": [
            ("How do I learn Python fast?", "What is the quickest way to learn Python?", 1),
            ("How do I learn Python fast?", "How do I learn Rust fast?", 0),
        ],
        "paws_dev": [("Flights from Boston to Denver", "Flights from Denver to Boston", 0)],
        "swaps": [
            ("Migrate from Postgres to MySQL", "Migrate from MySQL to Postgres", 0),
            ("Email my manager about the offsite", "Email about the offsite to my manager", 1),
        ],
        "written": [
            ("Summarise this ticket", "Give me a summary of this ticket", 1),
            ("Summarise this ticket", "Summarise this ticket", 1),
            ("Summarise this ticket", "Summarise this ticket", 1),
            ("Summarise this ticket", "ticket this Summarise", 0),
        ],
    }
    for source, chunk in rows.items():
        splits.train += chunk
        splits.sources[source] = len(chunk)
    return splits


def test_true_pairs_are_trained_together_and_order_sources_are_left_out() -> None:
    examples = embedder_examples(_splits())
    texts = {text for pair in examples.pairs for text in pair} | set(examples.look_alikes)
    assert ("How do I learn Python fast?", "What is the quickest way to learn Python?") in examples.pairs
    assert ("Summarise this ticket", "Give me a summary of this ticket") in examples.pairs
    # PAWS and the order transformations teach word order: the cross-encoder's work, not the embedder's.
    assert not texts & {
        "Flights from Boston to Denver",
        "Migrate from Postgres to MySQL",
        "Email my manager about the offsite",
    }
    assert set(examples.sources) == {"qqp", "written"}
    # A row read twice an epoch (a source's repeats) is one example.
    assert examples.pairs.count(("Summarise this ticket", "Summarise this ticket")) == 1


def test_a_labelled_look_alike_is_a_negative_of_both_its_prompts_unless_it_only_reorders_words() -> None:
    examples = embedder_examples(
        _splits(), {"short": [("Reset my VPN password", "Reset my Okta password", 0)]}
    )
    assert examples.look_alikes["How do I learn Python fast?"] == ["How do I learn Rust fast?"]
    assert examples.look_alikes["How do I learn Rust fast?"] == ["How do I learn Python fast?"]
    assert examples.look_alikes["Reset my VPN password"] == ["Reset my Okta password"]
    # The same words in another order: no mean of word vectors tells them apart.
    assert "Summarise this ticket" not in examples.look_alikes
    assert examples.sources["short"] == 1
