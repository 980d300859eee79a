"""Readers of labelled pairs and the hit metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.toolkit.evaluation.metrics import (
    CurveSeries,
    LabelledPair,
    PairsFileError,
    hit_metrics,
    plot_precision_recall,
    precision_recall_curve,
    read_pairs,
)


def test_reads_paws_tsv_with_crlf(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"1\tA cat sat .\tA cat was sitting .\t1\r\n2\tX to Y .\tY to X .\t0\r\n")
    assert read_pairs(path) == [
        LabelledPair("A cat sat .", "A cat was sitting .", True),
        LabelledPair("X to Y .", "Y to X .", False),
    ]


def test_reads_csv_and_strips_change_markers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(
        'sentence1,sentence2,label\n"delete local branch","delete **remote** branch",0\n"a, b","b",1\n',
        encoding="utf-8",
    )
    assert read_pairs(path) == [
        LabelledPair("delete local branch", "delete remote branch", False),
        LabelledPair("a, b", "b", True),
    ]


def test_reads_jsonl_and_detects_it_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "pairs"
    rows = [{"a": "5 km in miles", "b": "5 miles in km", "label": 0}, {"a": "hi", "b": "hello", "label": 1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert [p.same_answer for p in read_pairs(path)] == [False, True]


def test_a_kind_column_says_what_each_pair_tests(tmp_path: Path) -> None:
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(
        "sentence1,sentence2,label,kind\nA to B,B to A,0, direction \nhi,hello,1,\n", encoding="utf-8"
    )
    assert [p.kind for p in read_pairs(csv_path)] == ["direction", ""]
    jsonl_path = tmp_path / "pairs.jsonl"
    jsonl_path.write_text('{"a": "x", "b": "y", "label": 1, "kind": "paraphrase"}\n', encoding="utf-8")
    assert read_pairs(jsonl_path) == [LabelledPair("x", "y", True, "paraphrase")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "question,answer\nx,y\n", "header"),
        ("bad.csv", "sentence1,sentence2,label\nx,y,maybe\n", "label"),
        ("bad.jsonl", '{"a": "x", "b": "y", "label": 1}\n{"a": "x"\n', "bad.jsonl:2"),
        ("bad.tsv", "1\tonly two fields\n", "4 tab-separated"),
        ("empty.csv", "sentence1,sentence2,label\n", "no labelled pairs"),
        ("bad.jsonl", '{"a": "x", "b": "y", "label": 1, "kind": 3}\n', '"kind" must be a string'),
    ],
)
def test_a_broken_file_says_what_and_where(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PairsFileError, match=message):
        read_pairs(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PairsFileError, match="cannot read"):
        read_pairs(tmp_path / "nope.csv")


def test_metrics_on_a_hand_made_set() -> None:
    labels = [True, True, True, False, False, False, False, True]
    decisions = [True, True, False, True, False, False, False, False]
    metrics = hit_metrics(decisions, labels)
    assert (metrics.true_hits, metrics.false_hits, metrics.true_misses, metrics.false_misses) == (2, 1, 3, 2)
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(2 / 4)
    assert metrics.false_hit_rate == pytest.approx(1 / 4)
    assert metrics.hit_rate == pytest.approx(3 / 8)


def test_metrics_with_no_hits_do_not_divide_by_zero() -> None:
    metrics = hit_metrics([False, False], [True, False])
    assert metrics.precision == 0.0
    assert metrics.recall == 0.0


def test_curve_matches_thresholded_decisions_and_ties_hit_together() -> None:
    scores = [0.95, 0.9, 0.9, 0.7, -np.inf]
    labels = [True, False, True, True, False]
    curve = precision_recall_curve(scores, labels)
    for threshold in (0.95, 0.9, 0.7):
        metrics = hit_metrics([s >= threshold for s in scores], labels)
        assert curve.at(threshold) == pytest.approx((metrics.precision, metrics.recall))
    # A rejected pair (score -inf) never becomes a point.
    assert list(curve.thresholds) == [0.95, 0.9, 0.7]


def test_plot_is_written_as_png(tmp_path: Path) -> None:
    curve = precision_recall_curve([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    out = plot_precision_recall(
        [CurveSeries("cosine", curve, 0.8), CurveSeries("rules", curve)], tmp_path / "pr.png", title="t"
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bag_of_words(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """A stand-in embedder: normalised word counts, so word order and numbers look alike to it."""
    vocabulary = ["convert", "km", "miles", "to", "5", "50", "tickets", "buy", "hello", "world"]
    vectors = np.array([[text.lower().split().count(word) for word in vocabulary] for text in texts], float)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
