"""The verifier report's default threshold: the lowest at which the chat and work slices keep their precision."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.cache.verifier import FIRST_PASS, FirstPassBand
from app.toolkit.ml.report import (
    DEFAULT_SLICES,
    Decision,
    ScoredSet,
    best_cosine_cutoff,
    choose_band,
    choose_default,
    choose_far,
    choose_shared_text,
    choose_strict,
    decided_share,
    lost_where,
    ranking_auc,
    served_by_kind,
)
from app.toolkit.ml.train import LabelledSet


def _slice(name: str, probabilities: list[float], labels: list[int]) -> ScoredSet:
    pairs = [(f"a{i}", f"b{i}") for i in range(len(labels))]
    item = ScoredSet(LabelledSet(name, pairs, labels), np.full(len(labels), 0.95))
    item.probability["model"] = np.asarray(probabilities, dtype=np.float64)
    return item


def test_the_default_is_the_lowest_threshold_keeping_the_chat_pairs_precise() -> None:
    # Nine right pairs from 0.56 to 0.80 and a look-alike at 0.62: under 90% right below 0.65, all above.
    right = [0.56 + 0.03 * i for i in range(9)]
    chat, _ = DEFAULT_SLICES
    item = _slice(chat, [*right, 0.62], [1] * 9 + [0])

    default = choose_default([item], "model", frozenset(), floor=0.8)

    assert default.threshold == 0.65
    assert default.floor == 0.8


def test_the_work_prompts_must_keep_their_precision_too() -> None:
    right = [0.56 + 0.03 * i for i in range(9)]
    chat, work = DEFAULT_SLICES
    # The chat pairs are all right from 0.65; a work look-alike at 0.72 keeps the work pairs
    # 80% right until 0.75.
    slices = [_slice(chat, [*right, 0.62], [1] * 9 + [0]), _slice(work, [*right, 0.72], [1] * 9 + [0])]

    assert choose_default(slices, "model", frozenset(), floor=0.8).threshold == 0.75


def test_no_slice_may_be_served_less_precisely_than_by_plain_cosine() -> None:
    right = [0.56 + 0.03 * i for i in range(9)]
    chat, _ = DEFAULT_SLICES
    # A public slice: plain cosine >= 0.9 serves its three right pairs and one look-alike (75%).
    # With the model, two look-alikes at 0.72 below cosine 0.9 keep it under 75% until 0.75.
    public = _slice("qqp_validation", [0.9, 0.9, 0.9, 0.6, 0.72, 0.72], [1, 1, 1, 0, 0, 0])
    public.cosine = np.array([0.95, 0.95, 0.95, 0.95, 0.85, 0.85])
    slices = [_slice(chat, [*right, 0.62], [1] * 9 + [0]), public]

    assert choose_default(slices, "model", frozenset(), floor=0.8).threshold == 0.75


def test_without_a_precise_threshold_the_strictest_is_taken() -> None:
    item = _slice(DEFAULT_SLICES[0], [0.99, 0.99], [1, 0])

    assert choose_default([item], "model", frozenset(), floor=0.8).threshold == 0.95


def test_below_the_strict_cosine_the_lowest_threshold_keeping_the_precision_is_chosen() -> None:
    chat, work = DEFAULT_SLICES
    # Above 0.8: four right pairs. Between 0.7 and 0.8: a right pair at 0.96 and a look-alike at
    # 0.93: served from 0.94, four right of five (80%) below that.
    cosine = np.array([0.9, 0.9, 0.9, 0.9, 0.75, 0.72])
    slices = []
    for name in (chat, work):
        item = _slice(name, [0.9, 0.9, 0.9, 0.9, 0.96, 0.93], [1, 1, 1, 1, 1, 0])
        item.cosine = cosine
        slices.append(item)
    base = choose_default(slices, "model", frozenset(), floor=0.8)

    strict = choose_strict(slices, base, floor=0.7)

    assert (base.threshold, base.floor) == (0.5, 0.8)
    assert (strict.floor, strict.strict_below, strict.strict_threshold) == (0.7, 0.8, 0.94)
    assert [int(hit) for hit in slices[0].hits(strict)] == [1, 1, 1, 1, 1, 0]
    # With a look-alike above every strict threshold, the band stays closed.
    slices[1].probability["model"][5] = 0.995
    assert choose_strict(slices, base, floor=0.7) == base


def test_below_the_far_cosine_the_floor_serving_the_most_at_the_precision_is_chosen() -> None:
    chat, work = DEFAULT_SLICES
    # Above 0.7: nine right pairs. A right pair at cosine 0.62 (0.97) and a look-alike at 0.58
    # (0.95): floor 0.6 serves the first from 0.91 on; floor 0.55 needs 0.96 to refuse the
    # look-alike and serves nothing more, so the higher floor is kept.
    cosine = np.array([0.9] * 9 + [0.62, 0.58])
    slices = []
    for name in (chat, work):
        item = _slice(name, [0.9] * 9 + [0.97, 0.95], [1] * 10 + [0])
        item.cosine = cosine
        slices.append(item)
    base = Decision("default", 0.7, frozenset(), "model", 0.65)

    far = choose_far(slices, base)

    assert (far.floor, far.far_below, far.far_threshold) == (0.6, 0.7, 0.9)
    assert [int(hit) for hit in slices[0].hits(far)] == [1] * 10 + [0]
    # A right pair at 0.52 the model is sure of opens the band to 0.5, at the threshold that
    # refuses the look-alike.
    for item in slices:
        item.cosine = np.array([0.9] * 9 + [0.52, 0.58])
        item.probability["model"][9] = 0.99
    assert (choose_far(slices, base).floor, choose_far(slices, base).far_threshold) == (0.5, 0.96)
    # A look-alike above every far threshold keeps the band closed.
    for item in slices:
        item.probability["model"][10] = 0.995
    assert choose_far(slices, base) == base


def test_a_floor_that_serves_more_topical_look_alikes_is_not_taken() -> None:
    chat, work = DEFAULT_SLICES
    slices = []
    for name in (chat, work):
        item = _slice(name, [0.9] * 9 + [0.99], [1] * 10)
        item.cosine = np.array([0.9] * 9 + [0.62])
        slices.append(item)
    base = Decision("default", 0.7, frozenset(), "model", 0.65)
    # Two questions on one topic at cosine 0.6, which the model is sure ask the same.
    topical = _slice("work_prompts_stress:topical", [0.99], [0])
    topical.cosine = np.array([0.6])
    assert choose_far(slices, base).floor == 0.6
    assert choose_far(slices, base, topical) == base
    topical.cosine = np.array([0.52])  # below the floor the band needs: it opens
    assert choose_far(slices, base, topical).floor == 0.6


def test_the_report_decides_a_rewording_as_the_service_does() -> None:
    pairs = [("Best horror movies from the 1990s", "Top 1990s horror films list"), ("a b c d", "d c b a")]
    item = ScoredSet(LabelledSet("chat", pairs, [1, 0]), np.array([0.95, 0.95]))
    item.probability["model"] = np.array([0.4, 0.4])
    closed = Decision("", 0.8, frozenset(), "model", 0.65)

    reworded = replace(closed, reworded_above=0.9, reworded_margin=0.35)

    assert [bool(hit) for hit in item.hits(closed)] == [False, False]
    # Only the pair worded apart is served; the same words rearranged keep the usual threshold.
    assert [bool(hit) for hit in item.hits(reworded)] == [True, False]


NOTES = (
    "Minutes of the billing review: the migration to the new cluster finished two weeks late because"
    " the payment provider changed its API; the team added retries and a second region. Support hired"
    " four of the six people it planned. The board asked for a plan to cut cloud costs by July."
)


def test_a_threshold_for_pairs_pasting_one_text_applies_to_those_alone() -> None:
    pairs = [
        (f"Give me a short summary of the notes below.\n{NOTES}", f"tl;dr pls\n{NOTES}"),
        (f"{NOTES}\nWhat was decided?", f"{NOTES}\nList the decisions."),
        ("Give me a short summary of the billing review.", "Give me a brief summary of the billing review."),
        # Two long requests after a short shared opening paste no text.
        (
            f"{NOTES[:210]} {'Which regions had the most failed payments last month?' * 8}",
            f"{NOTES[:210]} {'How many refunds did support approve in May?' * 8}",
        ),
    ]
    item = ScoredSet(LabelledSet("notes", pairs, [1, 1, 1, 0]), np.full(4, 0.85))
    item.probability["model"] = np.full(4, 0.5)
    decision = Decision("", 0.65, frozenset(), "model", 0.7, 0.8, 0.8, shared_margin=0.3)

    assert [bool(shared) for shared in item.shared] == [True, True, False, False]
    assert [bool(hit) for hit in item.hits(decision)] == [True, True, False, False]
    assert not item.hits(replace(decision, shared_margin=0.0)).any()
    # Below the strict cosine the strict threshold holds, pasted text or not.
    item.cosine = np.full(4, 0.75)
    assert not item.hits(decision).any()


def test_the_shared_text_threshold_walks_down_while_the_written_slice_keeps_its_precision() -> None:
    # 40 reworded requests over one text scored 0.66 down to 0.27; one other request at 0.42.
    right = [0.66 - 0.01 * i for i in range(40)]
    pairs = [(f"{NOTES} Request {i}.", f"{NOTES} Ask {i}.") for i in range(41)]
    written = ScoredSet(LabelledSet("instructions_over_text", pairs, [1] * 40 + [0]), np.full(41, 0.95))
    written.probability["model"] = np.array([*right, 0.42])
    base = Decision("", 0.65, frozenset(), "model", 0.7, 0.8, 0.8)

    chosen = choose_shared_text(written, base)

    # At 0.4 the look-alike is served (1 wrong in 28: under 0.97); 0.45 is the last kept.
    assert chosen.shared_margin == 0.25
    # A look-alike the model is surer of than of any paraphrase keeps the threshold where it was.
    written.probability["model"] = np.array([*right, 0.69])
    assert choose_shared_text(written, base) == base


def test_the_first_pass_band_settles_the_most_pairs_that_keep_the_models_figures() -> None:
    # The cross-encoder serves the four right pairs (>= 0.65) and none of the four look-alikes.
    item = _slice("qqp_validation", [0.9, 0.95, 0.99, 0.8, 0.1, 0.2, 0.3, 0.5], [1, 1, 1, 1, 0, 0, 0, 0])
    # The first pass agrees except on one look-alike it is very sure of (0.97), which it would serve.
    item.probability[FIRST_PASS] = np.array([0.99, 0.99, 0.995, 0.6, 0.0, 0.01, 0.2, 0.97])
    decision = Decision("", 0.8, frozenset(), "model", 0.65)

    band = choose_band([item], decision)

    assert band is not None
    # Serving from 0.97 would serve the look-alike: the band serves from 0.99 (of the bands that
    # settle as many pairs, the narrowest), and refuses the 0.2 and under, where it agrees.
    assert band == FirstPassBand(reject_below=0.25, serve_above=0.99)
    assert decided_share([item], decision, band) == 6 / 8


def test_no_band_when_the_first_pass_disagrees_wherever_it_is_sure() -> None:
    item = _slice("qqp_validation", [0.9, 0.1], [1, 0])
    item.probability[FIRST_PASS] = np.array([0.0, 1.0])
    assert choose_band([item], Decision("", 0.8, frozenset(), "model", 0.65)) is None


def test_the_report_ranks_the_pairs_a_model_reads_by_the_cosine_and_by_each_model() -> None:
    # Past the floor the cosine ranks the look-alikes first and the model ranks them last; the
    # pair below the floor, which no model reads, is left out of both.
    item = _slice("qqp_validation", [0.9, 0.8, 0.2, 0.1, 0.0], [1, 1, 0, 0, 1])
    item.cosine = np.array([0.75, 0.8, 0.9, 0.95, 0.5])

    assert ranking_auc(item, None) == 0.0
    assert ranking_auc(item, "model") == 1.0
    # A slice whose pairs read all need the same answer ranks nothing.
    assert ranking_auc(_slice("qqp_validation", [0.5, 0.6], [1, 1]), None) is None


def test_a_decision_is_set_beside_the_most_precise_cosine_cutoff_serving_as_many_right_hits() -> None:
    item = _slice("qqp_validation", [0.0] * 8, [1, 0, 1, 0, 1, 1, 1, 1])
    item.cosine = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.95, 0.94, 0.93])
    # One right hit: cosine >= 0.99 serves it alone.
    assert best_cosine_cutoff(item, 1) == {"precision": 1.0, "cosine": 0.99}
    # Two: >= 0.97 serves them at 2 of 3, but a lower cutoff serves more, more precisely: >= 0.93,
    # 6 of 8.
    assert best_cosine_cutoff(item, 2) == {"precision": 0.75, "cosine": 0.93}
    # Four: the two pairs tied at 0.95 go in together (4 right of 6 there); >= 0.93 is more precise.
    assert best_cosine_cutoff(item, 4) == {"precision": 0.75, "cosine": 0.93}
    assert best_cosine_cutoff(item, 0) is None
    assert best_cosine_cutoff(item, 7) is None


def test_served_pairs_are_counted_by_kind_for_each_label() -> None:
    labelled = LabelledSet(
        "work",
        [("How do I book a room?", "how can I book a room"), ("a", "b"), ("c", "d"), ("e", "f")],
        [1, 1, 0, 0],
        kinds=["near_identical", "reworded", "topical", "topical"],
    )
    item = ScoredSet(labelled, np.full(4, 0.95))
    hits = np.array([True, False, True, False])

    assert served_by_kind(item, hits) == {"topical": "1/2"}
    assert served_by_kind(item, hits, same_answer=True) == {"near_identical": "1/1", "reworded": "0/1"}
    # The first pair is one request once folded: the service serves it unread.
    assert item.unread.tolist() == [True, False, False, False]


def test_lost_paraphrases_are_told_apart_by_where_they_are_lost() -> None:
    """Under the floor the model never reads a pair; a rule refuses before it; the model last."""
    labelled = LabelledSet(
        "work",
        [(f"a{i}", f"b{i}") for i in range(6)],
        [1, 1, 1, 1, 1, 0],
        kinds=["reworded", "reworded", "near_identical", "near_identical", "reworded", "topical"],
    )
    item = ScoredSet(labelled, np.array([0.5, 0.9, 0.9, 0.9, 0.9, 0.9]))
    item.probability["model"] = np.array([0.99, 0.99, 0.99, 0.2, 0.99, 0.99])
    item.fired["number"] = np.array([False, True, False, False, False, False])
    decision = Decision("verifier", 0.65, frozenset({"number"}), "model", 0.7)

    lost = lost_where(item, decision)

    assert (lost["below_floor"], lost["refused_by_a_rule"], lost["refused_by_the_model"]) == (1, 1, 1)
    assert lost["by_kind"]["reworded"] == {
        "same_answer": 3,
        "below_floor": 1,
        "refused_by_a_rule": 1,
        "refused_by_the_model": 0,
    }
    assert lost["by_kind"]["near_identical"]["refused_by_the_model"] == 1
    assert "topical" not in lost["by_kind"]  # look-alikes are not lost paraphrases
