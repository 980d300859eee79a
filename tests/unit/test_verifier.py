"""The chain: order of stages, the expensive stage reading the nearest survivors first, the hit served."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.cache.bound.service import graded_by_the_curve
from app.cache.policy import TenantCachePolicy, check_policy, parse_policy
from app.cache.verifier import (
    CROSS_ENCODER,
    FIRST_PASS,
    REWORDED_MAX_OVERLAP,
    SIMILARITY,
    Candidate,
    FirstPassBand,
    FirstPassStage,
    VerifierPolicy,
    build_verifier,
    same_request,
    word_overlap,
)
from app.cache.verifier.base import Stage, StageResult, Verifier
from app.errors import Unprocessable


class FakeScorer:
    """Scores pairs from a table and records every call."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        self.calls.append(list(pairs))
        return np.array([self.table[stored] for _, stored in pairs], dtype=np.float32)


def candidate(prompt: str, similarity: float) -> Candidate:
    return Candidate(entry_id=uuid.uuid4(), prompt=prompt, similarity=similarity)


QUERY = "convert 5 km to miles"
NO_CE = VerifierPolicy(min_similarity_without_cross_encoder=0.8, cross_encoder_min_score=None)


def test_reversed_conversion_is_not_served_but_the_paraphrase_is() -> None:
    reversed_ = candidate("convert 5 miles to km", 0.97)
    paraphrase = candidate("5 kilometres in miles", 0.91)
    verdict = build_verifier().decide(QUERY, [paraphrase, reversed_], NO_CE)
    assert verdict.accepted == paraphrase
    assert verdict.rejections == {reversed_.entry_id: "direction"}
    assert verdict.score == paraphrase.similarity


def test_below_the_floor_is_a_miss_and_says_why() -> None:
    far = candidate("5 kilometres in miles", 0.5)
    verdict = build_verifier().decide(QUERY, [far], NO_CE)
    assert not verdict.hit
    assert verdict.accepted is None
    assert verdict.rejections == {far.entry_id: SIMILARITY}


def test_no_candidates_is_a_miss() -> None:
    verdict = build_verifier().decide(QUERY, [], NO_CE)
    assert not verdict.hit
    assert verdict.reports == ()


def test_rules_can_be_turned_off() -> None:
    reversed_ = candidate("convert 5 miles to km", 0.97)
    policy = VerifierPolicy(
        min_similarity_without_cross_encoder=0.8, rules=False, cross_encoder_min_score=None
    )
    assert build_verifier().decide(QUERY, [reversed_], policy).accepted == reversed_
    only_number_rule_off = VerifierPolicy(disabled_rules=frozenset({"number"}), cross_encoder_min_score=None)
    assert build_verifier().decide("5 tickets", [candidate("50 tickets", 0.95)], only_number_rule_off).hit


def test_cross_encoder_reads_the_nearest_survivor_first_and_stops_when_it_serves_it() -> None:
    near = candidate("how many miles is 5 km", 0.95)
    nearer = candidate("5 km in miles please", 0.96)
    look_alike = candidate("convert 5 miles to km", 0.98)  # the rules drop it before the model
    far = candidate("weather in Paris", 0.3)
    scorer = FakeScorer({near.prompt: 0.9, nearer.prompt: 0.6})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [far, near, look_alike, nearer], policy)
    # One pair: the nearest survivor passes, so the next one is never read.
    assert scorer.calls == [[(QUERY, nearer.prompt)]]
    assert verdict.accepted == nearer
    assert verdict.score == np.float32(0.6)
    report = next(r for r in verdict.reports if r.candidate == nearer)
    assert report.scores == {SIMILARITY: 0.96, CROSS_ENCODER: np.float32(0.6)}
    # Reports come best cosine first, and keep every stage's finding.
    assert [r.candidate for r in verdict.reports] == [look_alike, nearer, near, far]
    assert [r.rejection for r in verdict.reports] == ["direction", None, CROSS_ENCODER, SIMILARITY]
    assert CROSS_ENCODER not in verdict.reports[2].scores


def test_cross_encoder_reads_the_next_survivor_when_it_refuses_the_nearest() -> None:
    near = candidate("how many miles is 5 km", 0.95)
    nearer = candidate("5 km in miles please", 0.96)
    scorer = FakeScorer({near.prompt: 0.9, nearer.prompt: 0.1})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [near, nearer], policy)
    assert scorer.calls == [[(QUERY, nearer.prompt)], [(QUERY, near.prompt)]]
    assert verdict.accepted == near
    assert verdict.rejections == {nearer.entry_id: CROSS_ENCODER}


def test_reading_every_survivor_in_one_call_serves_the_models_favourite() -> None:
    near = candidate("how many miles is 5 km", 0.95)
    nearer = candidate("5 km in miles please", 0.96)
    scorer = FakeScorer({near.prompt: 0.9, nearer.prompt: 0.6})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5, nearest_first=False)
    verdict = build_verifier(scorer).decide(QUERY, [near, nearer], policy)
    assert scorer.calls == [[(QUERY, nearer.prompt), (QUERY, near.prompt)]]
    assert verdict.accepted == near
    assert verdict.score == np.float32(0.9)
    assert verdict.rejections == {}


def test_under_an_error_bound_the_model_reads_both_nearest_and_the_curve_grades_its_favourite() -> None:
    near = candidate("how many miles is 5 km", 0.95)
    nearer = candidate("5 km in miles please", 0.96)
    scorer = FakeScorer({near.prompt: 0.9, nearer.prompt: 0.6})
    verdict = build_verifier(scorer).decide(QUERY, [near, nearer], graded_by_the_curve(VerifierPolicy()))
    assert scorer.calls == [[(QUERY, nearer.prompt), (QUERY, near.prompt)]]
    assert verdict.accepted == near
    assert verdict.score == np.float32(0.9)


def test_cross_encoder_below_its_floor_rejects() -> None:
    near = candidate("how many miles is 5 km", 0.95)
    scorer = FakeScorer({near.prompt: 0.1})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [near], policy)
    assert not verdict.hit
    assert verdict.rejections == {near.entry_id: CROSS_ENCODER}


def test_cross_encoder_is_not_called_when_nothing_survives_or_it_is_off() -> None:
    scorer = FakeScorer({})
    verifier = build_verifier(scorer)
    verifier.decide(QUERY, [candidate("convert 5 miles to km", 0.99)], VerifierPolicy())
    verifier.decide(QUERY, [candidate("5 km in miles", 0.99)], NO_CE)
    assert scorer.calls == []


def test_without_a_cross_encoder_the_cosine_floor_is_stricter() -> None:
    policy = VerifierPolicy(min_similarity=0.8, min_similarity_without_cross_encoder=0.9)
    paraphrase = candidate("how many miles is 5 km", 0.85)
    scorer = FakeScorer({paraphrase.prompt: 0.95})
    assert build_verifier(scorer).decide(QUERY, [paraphrase], policy).hit
    assert not build_verifier().decide(QUERY, [paraphrase], policy).hit
    # A tenant that turns the model off gets the stricter floor too.
    model_off = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=None)
    assert not build_verifier(scorer).decide(QUERY, [paraphrase], model_off).hit


def test_a_request_can_only_tighten_the_threshold() -> None:
    tenant = VerifierPolicy(min_similarity=0.85, min_similarity_without_cross_encoder=0.9)
    assert tenant.stricter(0.95).similarity_floor(True) == 0.95
    assert tenant.stricter(0.95).similarity_floor(False) == 0.95
    assert tenant.stricter(0.5) == tenant
    assert tenant.stricter(0.88).similarity_floor(True) == 0.88
    assert tenant.stricter(0.88).similarity_floor(False) == 0.9
    assert tenant.stricter(None) is tenant


def test_the_cross_encoder_reads_only_the_two_nearest_survivors() -> None:
    first = candidate("how many miles is 5 km", 0.97)
    second = candidate("5 km in miles please", 0.95)
    third = candidate("5 km expressed in miles", 0.93)
    scorer = FakeScorer({first.prompt: 0.05, second.prompt: 0.1, third.prompt: 0.99})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [third, first, second], policy)
    assert scorer.calls == [[(QUERY, first.prompt)], [(QUERY, second.prompt)]]
    assert not verdict.hit
    assert verdict.rejections[third.entry_id] == CROSS_ENCODER


def test_the_same_prompt_but_for_case_and_spacing_is_served_without_the_model() -> None:
    same = candidate("Convert 5 km  to miles?", 0.99)
    other = candidate("how many miles is 5 km", 0.95)
    scorer = FakeScorer({other.prompt: 0.99})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [other, same], policy)
    assert scorer.calls == []
    assert verdict.accepted == same
    assert verdict.score == 1.0
    # "C++" and "C" differ by more than closing punctuation: the model still reads them.
    scorer = FakeScorer({"how do I learn C?": 0.1})
    assert (
        not build_verifier(scorer)
        .decide("how do I learn C++?", [candidate("how do I learn C?", 0.97)], policy)
        .hit
    )
    assert scorer.calls == [[("how do I learn C++?", "how do I learn C?")]]


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        ("How do I book a meeting room?", "how can I book a meeting room"),
        ("Hi, how can we rename a git branch? thanks", "How to rename a git branch"),
        ("Is there a way to undo send in Outlook?", "how do I undo send in Outlook"),
        ("Where can I find the holiday calendar?", "where do I find the holiday calendar"),
        ("Can you summarise this thread, please?", "summarise this thread"),
        ("What's the guest wifi password?", "what is the guest wifi password"),
        ("Build & push the image to ECR", "build and push an image to ECR"),
        ("Split the file into chunks of 1,000 lines", "split the file into chunks of 1000 lines"),
        # One word spelt two ways: British and American, a letter typed once, a number in words.
        (
            "How do I analyse the favourite colours of our users?",
            "how do i analyze the favorite colors of our users",
        ),
        ("Who exceeded the storage quota last month?", "who exceded the storage quota last month"),
        ("How do we fulfil a backorder?", "how do we fulfill a backorder"),
        ("Give me ten subject lines for the re-launch", "Give me 10 subject lines for the relaunch"),
        # Laid out apart: hyphens, spaces, quotes, commas, "w/", "A/B", a contraction.
        ("We're tracking time-to-hire in a database", "we are tracking time to hire in a data base"),
        ("Plan an A/B test w/ 2 variants, for 'pricing'", "plan an AB test with 2 variants for pricing"),
        # A word's short form, a quarter, a unit of time after a number, thousands as "k", and
        # "please" closing the prompt without a mark.
        (
            "Is it safe to run VACUUM FULL on a production table during business hours?",
            "is it safe to run vacuum full on a prod table during business hrs??",
        ),
        (
            "How do I restart a pod in Kubernetes with no downtime?",
            "how do i restart a pod in k8s with no downtime",
        ),
        (
            "Give me 5 subject lines for our Q3 newsletter",
            "Give me five subject lines for our third quarter newsletter",
        ),
        (
            "Suggest an agenda for a 1-hour review with Northwind",
            "suggest an agenda for a 1 hr review with Northwind",
        ),
        ("Can I expense software under $5,000?", "can I expense software under $5k"),
        (
            "Translate 'order ready for pickup' into Spanish",
            "translate 'order ready for pickup' into Spanish pls",
        ),
        ("Explain a purchase order vs. a requisition", "explain a purchase order versus a requisition"),
        # "Which" for "what", a word that hurries the request, clause punctuation between words.
        (
            "What IAM permissions does a Lambda need to read one S3 bucket?",
            "Which IAM permissions does a Lambda need to read one S3 bucket?",
        ),
        (
            "Can you quickly explain what CVSS 9.8 means for patching?",
            "explain what CVSS 9.8 means for patching",
        ),
        (
            "Convert this cron expression to plain English: 0 3 * * 1-5",
            "convert this cron expression to plain english? 0 3 * * 1-5",
        ),
        ("We ship Friday - what documents do we need?", "We ship Friday. What documents do we need?"),
        # An opener after a phrase, phrases that ask alike, a percentage, a hyphen before a number.
        ("In Jira, how do I bulk move 40 tickets?", "In Jira how can I bulk move 40 tickets"),
        (
            "Summarise the changes in Basel III compared to Basel II",
            "summarise the changes in Basel III compared with Basel II",
        ),
        ("Offer a refund rather than a replacement", "offer a refund instead of a replacement"),
        ("A ticket open 3 weeks with no reply", "a ticket open 3 weeks without reply"),
        ("Work out a 15 percent discount on $240", "work out a 15% discount on $240"),
        ("When will I get my W-2?", "when will I get my W2"),
        # An acronym spelt out on one side.
        (
            "Write an SOP for receiving stock at the warehouse",
            "Write a standard operating procedure for receiving stock at the warehouse.",
        ),
        ("What is the ROI of the new CRM?", "what is the return on investment of the new CRM"),
    ],
)
def test_the_same_request_but_for_its_opener_greeting_or_thanks_is_served_without_the_model(
    asked: str, stored: str
) -> None:
    scorer = FakeScorer({})
    verdict = build_verifier(scorer).decide(asked, [candidate(stored, 0.96)], VerifierPolicy())
    assert (verdict.hit, verdict.score, scorer.calls) == (True, 1.0, [])


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        # Thanks that are the request itself, and openers that ask something else, stay.
        ("How do I say thank you", "How do I say please"),
        ("Why can I book a meeting room?", "How can I book a meeting room?"),
        ("How can I stop sharing my calendar?", "How do I share my calendar?"),
        # A capital letter that names something is no article.
        ("Explain option A", "Explain the option"),
        # Two words, not one spelt two ways; initials that are no acronym; a minus that stays.
        ("Who filled in the expense form?", "Who filed the expense form?"),
        ("Compare the later draft with the first", "Compare the latter draft with the first"),
        ("Send the signed copy to HR", "Send the signed copy to his room"),
        ("Plot y = x -1", "Plot y = x 1"),
        # Quarters swapped; a short form that is part of a word.
        ("Compare Q3 with Q4 revenue", "Compare Q4 with Q3 revenue"),
        ("List every prod table", "List every product table"),
    ],
)
def test_other_requests_alike_in_form_are_read_by_the_model(asked: str, stored: str) -> None:
    scorer = FakeScorer({stored: 0.1})
    verdict = build_verifier(scorer).decide(asked, [candidate(stored, 0.9)], VerifierPolicy())
    assert not verdict.hit
    assert scorer.calls == [[(asked, stored)]]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Can I expense software under $5k?", "Can I expense software under $50,000?"),
        ("Book a 1-hour slot", "Book a 1-day slot"),
        ("Wait 5 min", "Wait 5 hrs"),
        # Marks inside a number, and a minus, stay.
        ("Meet at 3:30", "Meet at 3 30"),
        ("Plot y = x -1", "Plot y = x 1"),
        ("Use version 9.8", "Use version 98"),
    ],
)
def test_another_amount_or_unit_written_short_is_another_request(first: str, second: str) -> None:
    assert not same_request(first, second)
    assert not same_request(second, first)


WRITTEN_PAIRS = sorted((Path(__file__).parents[2] / "app" / "toolkit" / "ml" / "data").glob("*.csv"))


def test_no_pair_the_written_data_labels_different_is_one_request_once_folded() -> None:
    # Every labelled pair the project wrote or had written (training files, report-only sets,
    # stress pairs, long prompts): what the same-request check leaves out must never make two
    # requests with different answers one, or the service would serve them unread.
    assert WRITTEN_PAIRS
    read = 0
    for path in WRITTEN_PAIRS:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                read += 1
                if row["label"] == "0":
                    assert not same_request(row["sentence2"], row["sentence1"]), (path.name, row["sentence1"])
    assert read > 10_000


def test_each_stage_reads_the_prompt_as_cut_beside_each_candidate() -> None:
    # Two long prompts are each read where they differ from the new one: the rules, the
    # case-and-spacing check and the model all read that cut, never the chain's own text.
    long_query = "…the notes. " + QUERY
    reversed_ = replace(candidate("notes. convert 5 miles to km", 0.99), query="notes. convert 5 km to miles")
    same = replace(candidate("notes. Convert 5 km to miles?", 0.97), query="notes. convert 5 km to miles")
    reworded = replace(candidate("notes. 5 km in miles", 0.96), query="notes. convert 5 km to miles")
    scorer = FakeScorer({reworded.prompt: 0.9})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(long_query, [reversed_, same], policy)
    assert (verdict.accepted, verdict.score, scorer.calls) == (same, 1.0, [])
    assert verdict.rejections == {reversed_.entry_id: "direction"}
    verdict = build_verifier(scorer).decide(long_query, [reworded], policy)
    assert verdict.accepted == reworded
    assert scorer.calls == [[("notes. convert 5 km to miles", reworded.prompt)]]


def test_beside_the_same_prompt_no_other_candidate_is_served_unread() -> None:
    same = candidate("Convert 5 km to miles?", 0.9999)
    accented = candidate("convért 5 km to miles", 1.0)  # the uncased tokenizer strips the accent
    scorer = FakeScorer({})
    verdict = build_verifier(scorer).decide(QUERY, [same, accented], VerifierPolicy())
    assert verdict.accepted == same
    assert verdict.rejections == {accented.entry_id: CROSS_ENCODER}
    assert scorer.calls == []


def test_below_the_strict_cosine_the_model_must_be_surer() -> None:
    policy = VerifierPolicy(
        min_similarity=0.7,
        cross_encoder_min_score=0.65,
        cross_encoder_strict_below=0.8,
        cross_encoder_strict_min_score=0.98,
    )
    sure = candidate("how far is 5 km in miles", 0.75)
    unsure = candidate("5 km, what is that in miles", 0.76)
    near = candidate("5 km in miles please", 0.85)
    scorer = FakeScorer({sure.prompt: 0.99, unsure.prompt: 0.9, near.prompt: 0.9})
    verifier = build_verifier(scorer)
    assert verifier.decide(QUERY, [sure], policy).accepted == sure
    assert verifier.decide(QUERY, [unsure], policy).rejections == {unsure.entry_id: CROSS_ENCODER}
    # 0.9 is enough at cosine 0.85, where the usual threshold holds.
    assert verifier.decide(QUERY, [near], policy).accepted == near
    # Below the floor the model is not asked at all.
    far = candidate("5 km to nautical miles", 0.69)
    scorer.calls.clear()
    assert verifier.decide(QUERY, [far], policy).rejections == {far.entry_id: SIMILARITY}
    assert scorer.calls == []
    # A tenant's stricter usual threshold holds below the strict cosine too.
    picky = VerifierPolicy(min_similarity=0.7, cross_encoder_min_score=0.995)
    assert not verifier.decide(QUERY, [sure], picky).hit
    # A request asking for cosine 0.8 closes the band.
    assert not verifier.decide(QUERY, [sure], policy.stricter(0.8)).hit


def test_below_the_far_cosine_only_a_model_all_but_certain_serves() -> None:
    policy = VerifierPolicy(
        min_similarity=0.55,
        cross_encoder_min_score=0.65,
        cross_encoder_strict_below=0.8,
        cross_encoder_strict_min_score=0.87,
        cross_encoder_far_below=0.7,
        cross_encoder_far_min_score=0.96,
    )
    reworded = candidate("convert five kilometres to the imperial unit", 0.62)
    scorer = FakeScorer({reworded.prompt: 0.97})
    verifier = build_verifier(scorer)
    assert verifier.decide(QUERY, [reworded], policy).accepted == reworded
    # Sure enough for the strict band, not for the far one.
    scorer.table[reworded.prompt] = 0.9
    assert verifier.decide(QUERY, [reworded], policy).rejections == {reworded.entry_id: CROSS_ENCODER}
    assert policy.cross_encoder_threshold(0.75) == 0.87
    assert policy.cross_encoder_threshold(0.62) == 0.96
    # A tenant's stricter strict threshold holds in the far band too; a floor at the far cosine closes it.
    scorer.table[reworded.prompt] = 0.97
    assert not verifier.decide(QUERY, [reworded], replace(policy, cross_encoder_strict_min_score=0.98)).hit
    scorer.calls.clear()
    assert verifier.decide(QUERY, [reworded], policy.stricter(0.7)).rejections == {
        reworded.entry_id: SIMILARITY
    }
    assert scorer.calls == []


def test_below_the_far_cosine_the_model_reads_a_candidate_only_when_none_is_above() -> None:
    policy = VerifierPolicy(min_similarity=0.5, cross_encoder_far_below=0.7)
    strict = candidate("5 km expressed in miles", 0.75)
    far = candidate("convert five kilometres to the imperial unit", 0.62)
    scorer = FakeScorer({strict.prompt: 0.3, far.prompt: 0.99})
    verdict = build_verifier(scorer).decide(QUERY, [strict, far], policy)
    assert scorer.calls == [[(QUERY, strict.prompt)]]
    assert not verdict.hit
    scorer.calls.clear()
    assert build_verifier(scorer).decide(QUERY, [far], policy).accepted == far
    assert scorer.calls == [[(QUERY, far.prompt)]]


def test_below_the_strict_cosine_the_model_reads_a_candidate_only_when_none_is_above() -> None:
    policy = VerifierPolicy(min_similarity=0.7, cross_encoder_min_score=0.65, cross_encoder_strict_below=0.8)
    above = candidate("how many miles is 5 km", 0.85)
    below = candidate("5 km expressed in miles", 0.75)
    scorer = FakeScorer({above.prompt: 0.3, below.prompt: 0.99})
    verdict = build_verifier(scorer).decide(QUERY, [below, above], policy)
    # One pair read, not two: the candidate above 0.8 is the only one scored.
    assert scorer.calls == [[(QUERY, above.prompt)]]
    assert not verdict.hit
    assert verdict.rejections == {above.entry_id: CROSS_ENCODER, below.entry_id: CROSS_ENCODER}
    # Alone, the one below is read, and served when the model is sure enough.
    scorer.calls.clear()
    assert build_verifier(scorer).decide(QUERY, [below], policy).accepted == below
    assert scorer.calls == [[(QUERY, below.prompt)]]


def test_a_rewording_near_cosine_one_needs_only_the_reworded_score() -> None:
    policy = VerifierPolicy()
    reworded = candidate("what is five kilometres expressed as miles", 0.93)  # one word shared
    rearranged = candidate("convert to miles 5 km", 0.93)  # the same words
    scorer = FakeScorer({reworded.prompt: 0.4, rearranged.prompt: 0.4})
    verifier = build_verifier(scorer)
    assert (
        word_overlap(QUERY, reworded.prompt) < REWORDED_MAX_OVERLAP <= word_overlap(QUERY, rearranged.prompt)
    )
    assert verifier.decide(QUERY, [reworded], policy).accepted == reworded
    # A rearrangement is what the model reads best: the usual threshold holds for it.
    assert verifier.decide(QUERY, [rearranged], policy).rejections == {rearranged.entry_id: CROSS_ENCODER}
    # Below the reworded cosine, or with the tier closed, the usual threshold holds too.
    assert not verifier.decide(QUERY, [candidate(reworded.prompt, 0.89)], policy).hit
    assert not verifier.decide(QUERY, [reworded], replace(policy, cross_encoder_reworded_above=1.0)).hit
    # A tenant that raises the usual threshold raises the reworded one with it.
    assert not verifier.decide(QUERY, [reworded], replace(policy, cross_encoder_min_score=0.9)).hit
    # The model must still not object.
    scorer.table[reworded.prompt] = 0.2
    assert not verifier.decide(QUERY, [reworded], policy).hit


def test_the_first_pass_decides_where_it_is_sure_and_the_cross_encoder_reads_only_the_rest() -> None:
    policy = VerifierPolicy()  # threshold 0.65 at cosine 0.8 to 0.9
    sure = candidate("how many miles are 5 km", 0.86)
    hopeless = candidate("a training plan to convert to running 5 km", 0.85)
    unsure = candidate("5 km in miles, roughly", 0.84)
    small = FakeScorer({sure.prompt: 0.99, hopeless.prompt: 0.01, unsure.prompt: 0.6})
    large = FakeScorer({sure.prompt: 0.2, hopeless.prompt: 0.99, unsure.prompt: 0.9})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.05, 0.95)))

    verdict = verifier.decide(QUERY, [sure], policy)
    # Sure: served on the first pass's word; the cross-encoder, which would refuse it, never reads it.
    assert verdict.accepted == sure
    assert verdict.score == pytest.approx(0.99)
    assert verdict.reports[0].settled_by == FIRST_PASS
    assert large.calls == []
    # Hopeless: refused for the cross-encoder's reason, by the first pass.
    verdict = verifier.decide(QUERY, [hopeless], policy)
    assert verdict.rejections == {hopeless.entry_id: CROSS_ENCODER}
    assert verdict.reports[0].rejected_by == FIRST_PASS
    assert large.calls == []
    # In between: the cross-encoder decides, with its own score.
    verdict = verifier.decide(QUERY, [unsure], policy)
    assert verdict.accepted == unsure
    assert verdict.score == pytest.approx(0.9)
    assert large.calls == [[(QUERY, unsure.prompt)]]


def test_with_a_first_pass_the_same_candidates_are_read_nearest_first() -> None:
    policy = VerifierPolicy()
    nearest = candidate("how many miles are 5 km", 0.9)
    second = candidate("5 km in miles, roughly", 0.88)
    third = candidate("what is 5 km in miles", 0.87)
    small = FakeScorer({nearest.prompt: 0.01, second.prompt: 0.5, third.prompt: 0.99})
    large = FakeScorer({nearest.prompt: 0.9, second.prompt: 0.97, third.prompt: 0.99})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.05, 0.95)))
    verdict = verifier.decide(QUERY, [third, second, nearest], policy)
    # Both models read the nearest two only: the first refuses one, the second serves the other.
    assert small.calls == [[(QUERY, nearest.prompt)], [(QUERY, second.prompt)]]
    assert large.calls == [[(QUERY, second.prompt)]]
    assert verdict.accepted == second
    assert verdict.rejections == {nearest.entry_id: CROSS_ENCODER, third.entry_id: CROSS_ENCODER}


def test_with_a_first_pass_the_nearest_candidate_the_models_serve_is_served() -> None:
    nearest = candidate("how many miles are 5 km", 0.9)
    second = candidate("5 km in miles, roughly", 0.88)
    # The first pass settles the nearest: the second is refused unread, by either model.
    small = FakeScorer({nearest.prompt: 0.96, second.prompt: 0.99})
    large = FakeScorer({nearest.prompt: 0.7, second.prompt: 0.99})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.05, 0.95)))
    verdict = verifier.decide(QUERY, [second, nearest], VerifierPolicy())
    assert (verdict.accepted, small.calls, large.calls) == (nearest, [[(QUERY, nearest.prompt)]], [])
    # Unsure of the nearest, it leaves both to the cross-encoder, which serves the nearest as it
    # would alone, however sure the first pass would have been of the second.
    small.table[nearest.prompt] = 0.5
    small.calls.clear()
    verdict = verifier.decide(QUERY, [second, nearest], VerifierPolicy())
    assert (verdict.accepted, small.calls, large.calls) == (
        nearest,
        [[(QUERY, nearest.prompt)]],
        [[(QUERY, nearest.prompt)]],
    )
    assert verdict.rejections == {second.entry_id: CROSS_ENCODER}
    # Reading all in one call, two settled candidates: the surer one is served.
    small.table.update({nearest.prompt: 0.96, second.prompt: 0.99})
    all_at_once = VerifierPolicy(nearest_first=False)
    assert verifier.decide(QUERY, [second, nearest], all_at_once).accepted == second


def test_the_first_pass_never_serves_below_the_candidates_threshold_nor_refuses_above_it() -> None:
    small = FakeScorer({})
    large = FakeScorer({})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.3, 0.9)))
    below_strict = candidate("5 km expressed in miles", 0.75)  # threshold 0.87 at the defaults
    small.table[below_strict.prompt] = 0.92
    large.table[below_strict.prompt] = 0.5
    # A tenant asking for 0.95: the first pass's 0.92 is not enough to serve on its own word.
    picky = VerifierPolicy(cross_encoder_min_score=0.95)
    assert not verifier.decide(QUERY, [below_strict], picky).hit
    assert large.calls == [[(QUERY, below_strict.prompt)]]
    large.table[below_strict.prompt] = 0.97
    assert verifier.decide(QUERY, [below_strict], picky).hit
    # A tenant asking for 0.2: the first pass's 0.25 is no refusal there; the cross-encoder decides.
    lenient = VerifierPolicy(cross_encoder_min_score=0.2, cross_encoder_strict_min_score=0.2)
    small.table[below_strict.prompt] = 0.25
    large.table[below_strict.prompt] = 0.5
    large.calls.clear()
    assert verifier.decide(QUERY, [below_strict], lenient).hit
    assert large.calls == [[(QUERY, below_strict.prompt)]]


def test_the_first_pass_reads_nothing_the_cross_encoder_would_not() -> None:
    small = FakeScorer({})
    large = FakeScorer({})
    stage = FirstPassStage(small, FirstPassBand(0.05, 0.95))
    same = candidate("Convert 5 km to miles?", 0.99)
    # The prompt itself but for case and punctuation: served without either model.
    verdict = build_verifier(large, first_pass=stage).decide(QUERY, [same], VerifierPolicy())
    assert verdict.accepted == same
    assert small.calls == large.calls == []
    # The model turned off by the tenant: neither runs.
    model_off = VerifierPolicy(cross_encoder_min_score=None, min_similarity_without_cross_encoder=0.8)
    other = candidate("5 km in miles", 0.95)
    assert build_verifier(large, first_pass=stage).decide(QUERY, [other], model_off).hit
    # No cross-encoder: no first pass either.
    assert build_verifier(None, first_pass=stage).decide(QUERY, [other], NO_CE).hit
    assert small.calls == large.calls == []


def test_a_policy_graded_by_the_cross_encoders_own_score_turns_the_first_pass_off() -> None:
    sure = candidate("how many miles are 5 km", 0.86)
    small = FakeScorer({sure.prompt: 0.99})
    large = FakeScorer({sure.prompt: 0.2})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.05, 0.95)))
    # The error bound's policy: its curve is the cross-encoder's, so the cross-encoder scores the pair.
    verdict = verifier.decide(QUERY, [sure], replace(VerifierPolicy(), first_pass=False))
    assert small.calls == []
    assert large.calls == [[(QUERY, sure.prompt)]]
    assert verdict.rejections == {sure.entry_id: CROSS_ENCODER}


def test_below_the_strict_cosine_the_first_pass_reads_only_what_the_cross_encoder_would() -> None:
    above = candidate("how many miles is 5 km", 0.85)
    below = candidate("5 km expressed in miles", 0.75)
    small = FakeScorer({above.prompt: 0.5, below.prompt: 0.99})
    large = FakeScorer({above.prompt: 0.3, below.prompt: 0.99})
    verifier = build_verifier(large, first_pass=FirstPassStage(small, FirstPassBand(0.05, 0.95)))
    verdict = verifier.decide(QUERY, [below, above], VerifierPolicy())
    # The candidate below 0.8 is not read while one above survives: by neither model.
    assert small.calls == [[(QUERY, above.prompt)]]
    assert large.calls == [[(QUERY, above.prompt)]]
    assert not verdict.hit
    assert verdict.rejections == {above.entry_id: CROSS_ENCODER, below.entry_id: CROSS_ENCODER}


def test_every_verifier_setting_a_tenant_has_reaches_the_verifier() -> None:
    """A tenant setting named as a verifier field is passed on, not left at the default."""
    verifier_fields = {field.name for field in fields(VerifierPolicy)}
    shared = sorted(set(TenantCachePolicy.__struct_fields__) & verifier_fields)
    assert "cross_encoder_far_min_score" in shared
    changed: dict[str, object] = {}
    for name in shared:
        default = getattr(VerifierPolicy(), name)
        if isinstance(default, bool):
            changed[name] = not default
        elif isinstance(default, float):
            changed[name] = round(default / 2, 3)
        elif isinstance(default, frozenset):
            changed[name] = ["number"]
    policy = parse_policy(changed).verifier_policy()
    for name, value in changed.items():
        expected = frozenset(value) if isinstance(value, list) else value
        assert getattr(policy, name) == expected, name


def test_a_far_band_above_the_strict_one_is_refused() -> None:
    with pytest.raises(Unprocessable, match="far band lies below the strict one"):
        check_policy({"cross_encoder_far_below": 0.85})
    assert check_policy({"cross_encoder_far_below": 0.75}).cross_encoder_far_below == 0.75


class EveryCandidateScreened:
    """The rules stage as a plain stage: the chain must run it on every candidate before the model."""

    def __init__(self, inner: Stage) -> None:
        self.inner = inner
        self.name = inner.name

    def enabled(self, policy: VerifierPolicy) -> bool:
        return self.inner.enabled(policy)

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        return self.inner.check(query, candidates, policy)


def test_the_rules_read_only_the_candidates_the_model_comes_to() -> None:
    nearest = candidate("5 km in miles please", 0.96)
    look_alike = candidate("convert 5 miles to km", 0.95)  # a rule would refuse it
    scorer = FakeScorer({nearest.prompt: 0.9, look_alike.prompt: 0.9})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(QUERY, [look_alike, nearest], policy)
    assert verdict.accepted == nearest
    # Served at the first read: the look-alike behind it was never read by a rule nor the model.
    assert verdict.rejections == {look_alike.entry_id: CROSS_ENCODER}
    assert scorer.calls == [[(QUERY, nearest.prompt)]]

    scorer.table[nearest.prompt] = 0.1  # refused: the next candidate is screened, and a rule refuses it
    third = candidate("how many miles is 5 km", 0.94)
    scorer.table[third.prompt] = 0.9
    verdict = build_verifier(scorer).decide(QUERY, [look_alike, nearest, third], policy)
    assert verdict.accepted == third
    assert verdict.rejections == {nearest.entry_id: CROSS_ENCODER, look_alike.entry_id: "direction"}


def test_a_long_prompt_has_every_candidate_screened_before_the_model_reads() -> None:
    context = " Background: " + "the quarterly figures were reviewed by the finance team. " * 20
    query = QUERY + context
    nearest = candidate("5 km in miles please" + context, 0.96)
    look_alike = candidate("convert 5 miles to km" + context, 0.95)
    scorer = FakeScorer({nearest.prompt: 0.9, look_alike.prompt: 0.9})
    policy = VerifierPolicy(min_similarity=0.8, cross_encoder_min_score=0.5)
    verdict = build_verifier(scorer).decide(query, [look_alike, nearest], policy)
    assert verdict.accepted == nearest
    assert verdict.rejections == {look_alike.entry_id: "direction"}


@pytest.mark.parametrize("nearest_first", [True, False])
def test_screening_as_the_model_reads_decides_as_screening_every_candidate_first(nearest_first: bool) -> None:
    prompts = [
        "convert 5 km to miles",
        "convert 5 miles to km",
        "5 km in miles please",
        "how many miles is 5 km",
        "convert 50 km to miles",
        "Convert 5 km to miles!",
        "convert 5 km to miles in 2023",
        "what is 5 km in miles",
    ]
    rng = np.random.default_rng(7)
    policy = VerifierPolicy(nearest_first=nearest_first)
    for _ in range(400):
        chosen = rng.choice(len(prompts), size=int(rng.integers(1, 6)), replace=False)
        candidates = [candidate(prompts[i], float(rng.uniform(0.6, 1.0))) for i in chosen]
        table = {c.prompt: float(rng.uniform(0.0, 1.0)) for c in candidates}
        screened_as_read = build_verifier(FakeScorer(table))
        chain = build_verifier(FakeScorer(table))
        screened_first = Verifier(
            [chain.stages[0], EveryCandidateScreened(chain.stages[1]), *chain.stages[2:]]
        )
        lazy = screened_as_read.decide(QUERY, candidates, policy)
        eager = screened_first.decide(QUERY, candidates, policy)
        assert (lazy.accepted, lazy.score) == (eager.accepted, eager.score)
        # A candidate screened either way has the same finding; one read by the model, the same score.
        for mine, theirs in zip(lazy.reports, eager.reports, strict=True):
            if CROSS_ENCODER in mine.scores:
                assert mine.scores == theirs.scores
                assert mine.rejection == theirs.rejection
