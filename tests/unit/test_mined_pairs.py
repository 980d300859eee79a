"""Look-alikes mined with the embedder never relabel a pair a source already labels."""

from __future__ import annotations

from pathlib import Path

from app.toolkit.ml.train import TrainConfig, _pair_key, mine_look_alikes

# Two near neighbours: a Quora-style duplicate a source labels "same answer".
PARTNERS = ("What should I do to improve my tennis?", "How can I improve my tennis skills?")
OTHERS = ("What is the capital of Peru?", "Write a haiku about autumn rain.")


def test_a_labelled_pair_is_not_mined_as_a_look_alike() -> None:
    config = TrainConfig(data_dir=Path("unused"), mined_min_cosine=0.6, threads=1)
    sentences = [*PARTNERS, *OTHERS]
    assert {frozenset(pair) for pair in mine_look_alikes(sentences, config)} == {frozenset(PARTNERS)}
    # Either order of the labelled pair keeps it out.
    assert mine_look_alikes(sentences, config, {_pair_key(*reversed(PARTNERS))}) == []
    # Spacing does not tell a labelled pair apart.
    assert mine_look_alikes(sentences, config, {_pair_key(PARTNERS[0] + "  ", " " + PARTNERS[1])}) == []
