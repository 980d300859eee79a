"""The shipped ONNX models, loaded as the service loads them, judged on what a user would notice."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from app.cache.onnx_models import (
    DEFAULT_EMBEDDER_DIR,
    DEFAULT_OVER_TEXT_DIR,
    DEFAULT_VERIFIER_DIR,
    MAX_CHARS,
    PAIR_TOKENS,
    OnnxCrossEncoder,
    OnnxEmbedder,
    OverTextCrossEncoders,
    around_shared_text,
    int8_products_saturate,
    shares_text,
)
from app.cache.service import load_cross_encoder
from app.cache.verifier.texts import TIE
from app.settings import CacheSettings
from app.toolkit.ml.train import WORK_PROMPTS_FILE


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(DEFAULT_EMBEDDER_DIR)


@pytest.fixture(scope="module")
def verifier() -> OnnxCrossEncoder:
    return OnnxCrossEncoder(DEFAULT_VERIFIER_DIR)


def test_embedder_vectors_are_unit_float32_of_its_dimension(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed(["How do I reset my VPN password?", "SQL: count orders per customer"])

    assert embedder.name == "minilm-l6-v2-int8"
    assert embedder.dimension == 384
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_paraphrase_is_closer_than_an_unrelated_prompt(embedder: OnnxEmbedder) -> None:
    stored, paraphrase, unrelated = embedder.embed(
        [
            "How do I reset my VPN password?",
            "i forgot my vpn password, how can I reset it",
            "Write a Python function that merges two sorted lists.",
        ]
    )

    assert float(stored @ paraphrase) > 0.8
    assert float(stored @ paraphrase) > float(stored @ unrelated) + 0.4


def test_a_text_gets_the_same_vector_alone_or_in_any_batch(embedder: OnnxEmbedder) -> None:
    text = "Summarise the Q3 churn numbers for the board in three bullet points."
    others = [
        "hi",
        "Explain the difference between a Kubernetes Deployment and a StatefulSet, with examples of when "
        "each one is the right choice for a stateful database workload running in production.",
        "pandas: group by region and take the median revenue",
    ] * 4
    alone = embedder.embed([text])[0]
    first = embedder.embed([text, *others])[0]
    last = embedder.embed([*others, text])[-1]

    # Dynamic int8 scales activations per batch, so "the same" is to within quantisation noise
    # (about the distance between the int8 and fp32 vectors); alone it is exactly repeatable.
    # The lookup takes cosines that close for a tie (`TIE`): the embedder's own noise.
    assert float(alone @ first) > 1 - TIE
    assert float(alone @ last) > 1 - TIE
    np.testing.assert_array_equal(embedder.embed([text])[0], alone)
    long_text = " ".join(others)[:MAX_CHARS]
    long_alone = embedder.embed([long_text])[0]
    for odd in ("ZZZZ " * 400, "!!!! " * 400, "12345 " * 300, "x"):
        assert float(long_alone @ embedder.embed([long_text, odd])[0]) > 1 - TIE, odd


def test_embedder_is_safe_to_share_between_threads(embedder: OnnxEmbedder) -> None:
    texts = [f"Ticket {number}: the printer on floor {number} is offline" for number in range(8)]
    expected = [embedder.embed([text])[0] for text in texts]
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        results[index] = embedder.embed([texts[index]])[0]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == len(texts)
    for index, vector in results.items():
        np.testing.assert_allclose(vector, expected[index], atol=1e-6)


def test_verifier_gives_one_probability_per_pair(verifier: OnnxCrossEncoder) -> None:
    scores = verifier.score(
        [
            ("How do I reset my VPN password?", "i forgot my vpn password, how can I reset it"),
            ("How do I reset my VPN password?", "Write a haiku about autumn."),
            ("SQL: count orders per customer", "SQL count of orders for each customer"),
        ]
    )

    assert verifier.name == "verifier-minilm-int8"
    assert scores.dtype == np.float32
    assert scores.shape == (3,)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert verifier.score([]).shape == (0,)


def test_a_pair_scores_alike_alone_and_beside_a_longer_pair(verifier: OnnxCrossEncoder) -> None:
    # Pairs of one call are read together, the shorter padded to the longer: the padding must be
    # invisible to the model. Only int8's per-batch scale moves a score, by a few hundredths.
    short = ("How do I reset my VPN password?", "i forgot my vpn password, how can I reset it")
    long = (
        "Summarise the attached quarterly report for the board, focusing on revenue and churn. " * 3,
        "Give the board a summary of the quarterly report: revenue and churn in each region. " * 3,
    )
    alone = [verifier.score([pair])[0] for pair in (short, long)]
    together = verifier.score([short, long])

    assert abs(together[0] - alone[0]) < 0.1
    assert abs(together[1] - alone[1]) < 0.1


def test_verifier_ranks_a_paraphrase_above_a_look_alike(verifier: OnnxCrossEncoder) -> None:
    paraphrase, reversed_units = verifier.score(
        [
            ("convert 5 km to miles", "how many miles is 5 km?"),
            ("convert 5 km to miles", "convert 5 miles to km"),
        ]
    )
    same, other_field = verifier.score(
        [
            ("How do I bulk change the status on 50 tickets?", "bulk update status for 50 tickets at once"),
            (
                "How do I bulk change the status on 50 tickets?",
                "How do I bulk change the assignee on 50 tickets?",
            ),
        ]
    )

    # The shipped threshold must serve neither look-alike; each paraphrase must outrank its look-alike.
    threshold = json.loads((DEFAULT_VERIFIER_DIR / "metrics.json").read_text())["recommended"]
    assert paraphrase > reversed_units + 0.1
    assert same > other_field + 0.5
    assert max(reversed_units, other_field) < threshold["probability_threshold"]


_HOSTILE_LOOKUP = """
import resource, sys, time
from app.cache.onnx_models import OnnxCrossEncoder, OnnxEmbedder
verifier, embedder = OnnxCrossEncoder(), OnnxEmbedder()
stored = ("lorem ipsum dolor sit amet " * 8000)[:200_000]
asked = ("other lorem ipsum dolor sit amet " * 7000)[:200_000]
verifier.score([("warm", "up")]), embedder.embed(["warm up"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
embedder.embed([stored, asked])
verifier.score([(asked, stored), (stored, "short prompt"), ("!" * 200_000, "?" * 200_000)])
elapsed = time.perf_counter() - started
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"{elapsed:.3f} {grown_mb:.1f}")
"""


def test_hostile_long_prompts_cost_bounded_time_and_memory() -> None:
    # Two 200k-character prompts: before each side was cut ahead of tokenising, the pair alone
    # took 3.5 GB and seconds; now it costs what two 256-token inputs cost. Run in a fresh
    # process so that its peak memory is this lookup's alone.
    done = subprocess.run(
        [sys.executable, "-c", _HOSTILE_LOOKUP], capture_output=True, text=True, check=True, timeout=120
    )
    elapsed, grown_mb = (float(value) for value in done.stdout.split())

    assert elapsed < 2.0
    assert grown_mb < 100


# A passage longer than the pairs the cross-encoder is trained on (PAIR_TOKENS), shared by the
# prompts of the tests below.
_PASSAGE = (
    "The quarterly review covered the migration of the billing service to the new cluster, the"
    " hiring plan for the support team in Lisbon, and the budget for the customer conference in"
    " October. The migration finished two weeks late because the payment provider changed its"
    " API; the team added retries and a second region. Support hired four of the six people it"
    " planned, and the conference budget grew by ten percent after the venue raised its prices."
    " The board asked for a plan to cut cloud costs and for a monthly report on churn."
)


def test_the_verifier_is_trained_on_pairs_as_long_as_it_reads() -> None:
    training = json.loads((DEFAULT_VERIFIER_DIR / "metrics.json").read_text())["training"]["config"]

    assert training["max_tokens"] == PAIR_TOKENS


def test_long_prompts_are_read_where_they_differ(verifier: OnnxCrossEncoder) -> None:
    # Past the model's window, two questions after one long text, or two wordings of one
    # instruction before it, would look the same: the pair is read where they differ.
    other_question, other_instruction, reworded = verifier.score(
        [
            (f"{_PASSAGE} List the benefits in these notes.", f"{_PASSAGE} List the risks in these notes."),
            (
                f"Translate the following notes into French. {_PASSAGE}",
                f"Summarise the following notes. {_PASSAGE}",
            ),
            (
                f"Give me a summary of the following notes. {_PASSAGE}",
                f"Summarise the following notes. {_PASSAGE}",
            ),
        ]
    )

    assert other_question < 0.5
    assert other_instruction < 0.5
    assert reworded > 0.8


def test_long_prompts_that_differ_beyond_the_window_are_never_scored_alike(
    verifier: OnnxCrossEncoder,
) -> None:
    # Two long texts that differ throughout, or one that only adds a request to the other, cannot
    # be read where they differ in PAIR_TOKENS: past what the model can read whole (256 tokens),
    # it would judge them on their openings alone, so it gives them nothing.
    text = f"{_PASSAGE} {_PASSAGE}"
    throughout = (
        f"Summarise the following notes. {text}",
        f"Summarise the following notes. {text.replace(' the ', ' our ')}",
    )
    added = [
        (f"{text} Summarise these notes. Then draft a reply to the board.", f"{text} Summarise these notes."),
        (f"{text} List the action items. Draft a reply.", f"{text} List the action items!"),
        (f"List the action items. Draft a reply. {text}", f"List the action items: {text}"),
    ]

    assert verifier.score([throughout, *added]).tolist() == [0.0] * 4


def test_long_prompts_with_their_requests_on_two_sides_of_one_text_are_read_as_the_requests(
    verifier: OnnxCrossEncoder,
) -> None:
    # "Summarise this: TEXT" / "TEXT Give me a summary.": no shared start or end, so no window
    # where they differ; past 256 tokens they were never read, and a paraphrase never served.
    text = f"{_PASSAGE} {_PASSAGE}"
    reworded, other = verifier.score(
        [
            (f"Summarise the following notes: {text}", f"{text}\n\nGive me a summary of these notes."),
            (f"Translate the following notes into French: {text}", f"{text} Summarise these notes."),
        ]
    )

    assert reworded > 0.8
    assert other < 0.5


def test_the_requests_around_a_shared_text_are_found_whole_and_only_around_a_text() -> None:
    text = _PASSAGE
    # Whole words: "notes:" and "Notes" are not cut where the text happens to start alike.
    assert around_shared_text(f"Summarise these notes:\n{text}", f"{text}\n\nGive me a summary.") == (
        "Summarise these notes:",
        "Give me a summary.",
    )
    assert around_shared_text(f"Please read: {text} Thanks!", f"{text} What was decided?") == (
        "Please read: Thanks!",
        "What was decided?",
    )
    # One prompt is only the text (with other punctuation): nothing to compare with the request.
    assert around_shared_text(f"Summarise this: {text}", f"{text}!") is None
    # Both start (or end) with it: `pair_window` reads where they differ.
    assert around_shared_text(f"{text} Summarise this.", f"{text} What was decided?") is None
    # Sharing a sentence is not pasting one text.
    assert around_shared_text(f"Summarise this: {text}", f"{text[:120]} What else happened in 2019?") is None


def test_prompts_paste_one_text_when_most_of_each_is_that_text() -> None:
    text = _PASSAGE
    assert shares_text(f"Summarise these notes:\n{text}", f"{text}\n\nGive me a summary.")
    assert shares_text(f"{text}\nWhat was decided?", f"{text}\nList the decisions.")
    assert shares_text(f"Translate into French: {text}", f"Translate into German: {text}")
    # Short prompts, a shared sentence, or a shared opening before two long requests: no pasted text.
    assert not shares_text("Summarise the review.", "Give me a summary of the review.")
    assert not shares_text(f"Summarise this: {text}", f"{text[:120]} What else happened in 2019?")
    assert not shares_text(
        f"{text[:210]} {'Which regions had the most failed payments last month? ' * 8}",
        f"{text[:210]} {'How many refunds did support approve in May? ' * 8}",
    )


def test_pairs_that_paste_one_text_are_read_by_the_cross_encoder_of_their_own(
    verifier: OnnxCrossEncoder,
) -> None:
    over_text = OnnxCrossEncoder(DEFAULT_OVER_TEXT_DIR)
    both = OverTextCrossEncoders(verifier, over_text)
    pasted = [
        (f"Give me a short summary of the notes below.\n{_PASSAGE}", f"{_PASSAGE}\nSummarise this."),
        (f"{_PASSAGE}\nWhat did the board ask for?", f"{_PASSAGE}\nWhat were the board's requests?"),
    ]
    plain = [
        ("How do I undo the last git commit?", "how can I undo my last commit in git"),
        ("Convert 5 km to miles", "Convert 5 miles to km"),
    ]

    scores = both.score([pasted[0], plain[0], pasted[1], plain[1]])

    assert over_text.score(pasted).tolist() != verifier.score(pasted).tolist()
    assert scores[[0, 2]].tolist() == over_text.score(pasted).tolist()
    assert scores[[1, 3]].tolist() == verifier.score(plain).tolist()
    # The cross-encoder for pasted texts ships beside the verifier.
    assert (both.name, over_text.name) == (
        "verifier-minilm-int8 + verifier-over-text-int8",
        "verifier-over-text-int8",
    )


def test_the_service_reads_pairs_over_one_text_apart_unless_told_not_to(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(load_cross_encoder(CacheSettings()), OverTextCrossEncoders)
    alone = load_cross_encoder(CacheSettings(verifier_over_text=False))
    assert isinstance(alone, OnnxCrossEncoder)
    assert alone.name == "verifier-minilm-int8"
    # A directory without the model: said once at startup, and the general cross-encoder reads them.
    with caplog.at_level(logging.WARNING):
        missing = load_cross_encoder(CacheSettings(verifier_over_text_model_dir=tmp_path))
    assert isinstance(missing, OnnxCrossEncoder)
    assert "no cross-encoder for pairs over one text" in caplog.text


def test_a_pair_that_fits_the_model_is_read_whole_when_it_cannot_be_read_where_it_differs(
    verifier: OnnxCrossEncoder,
) -> None:
    # Over PAIR_TOKENS but within 256, reworded throughout: too different to cut, so it is read
    # whole, as the model can.
    asked = (
        "Can you explain how I can restrict sign-in to our company accounts only when users log in"
        " through the Google OAuth flow in our Django app, and what settings I need to change in"
        " the admin console? We use django-allauth, the app runs behind a load balancer, and"
        " contractors with personal Gmail addresses must no longer get in."
    )
    stored = (
        "Please explain how to limit Google OAuth sign-in in our Django application so that only"
        " company accounts can log in, and which admin console settings must be changed. Our setup"
        " is django-allauth behind a load balancer, and contractors who use personal Gmail"
        " addresses should be locked out from now on, thanks"
    )

    assert verifier.score([(asked, stored)])[0] > 0.3


@pytest.mark.parametrize(
    ("machine", "flags", "saturate"),
    [
        ("x86_64", frozenset({"avx2", "fma"}), True),
        ("x86_64", frozenset({"avx2", "avx512f", "avx512bw"}), True),
        ("x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}), False),
        ("x86_64", frozenset({"avx2", "avx_vnni"}), False),
        ("AMD64", frozenset(), True),  # flags unknown: the exact products, to be safe
        ("aarch64", frozenset(), False),
        ("arm64", frozenset({"asimddp"}), False),
    ],
)
def test_exact_int8_products_only_where_the_fast_ones_saturate(
    machine: str, flags: frozenset[str], saturate: bool
) -> None:
    assert int8_products_saturate(machine, flags) is saturate


def test_the_models_decide_as_exact_int8_arithmetic_does_on_this_cpu(
    embedder: OnnxEmbedder, verifier: OnnxCrossEncoder
) -> None:
    # The fast u8 x s8 products saturate on x86-64 without VNNI: there 22 of the hand-written work
    # prompts' 41 paraphrases were served instead of 26 (docs/quality.md). The service's models must
    # compute what exact products compute, on every CPU (on one with VNNI, the fast ones are exact).
    with WORK_PROMPTS_FILE.open(encoding="utf-8", newline="") as handle:
        pairs = [(row["sentence2"], row["sentence1"]) for row in csv.DictReader(handle)]
    exact_embedder = OnnxEmbedder(DEFAULT_EMBEDDER_DIR, exact_int8=True)
    exact_verifier = OnnxCrossEncoder(DEFAULT_VERIFIER_DIR, exact_int8=True)

    def cosines(model: OnnxEmbedder) -> np.ndarray:
        return np.array([float(np.prod(model.embed([a, b]), axis=0).sum()) for a, b in pairs])

    def probabilities(model: OnnxCrossEncoder) -> np.ndarray:
        return np.array([model.score([pair])[0] for pair in pairs])

    np.testing.assert_allclose(cosines(embedder), cosines(exact_embedder), atol=2e-3)
    np.testing.assert_allclose(probabilities(verifier), probabilities(exact_verifier), atol=1e-2)
    over_text = OnnxCrossEncoder(DEFAULT_OVER_TEXT_DIR)
    exact_over_text = OnnxCrossEncoder(DEFAULT_OVER_TEXT_DIR, exact_int8=True)
    np.testing.assert_allclose(probabilities(over_text), probabilities(exact_over_text), atol=1e-2)
    if int8_products_saturate():
        # Where the fast products saturate, they must give other scores: else the exact ones
        # were never switched on (ONNX Runtime ignores a session option it does not know).
        fast = cosines(OnnxEmbedder(DEFAULT_EMBEDDER_DIR, exact_int8=False))
        assert np.abs(fast - cosines(exact_embedder)).max() > 1e-2
