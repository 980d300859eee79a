"""Labelled prompt pairs and the figures of the hit decision.

A labelled pair is two prompts and whether they deserve the same answer. The readers take
the three formats the project evaluates on: PAWS TSV, a CSV with a header, and JSONL. The
metrics are those of a cache: of the hits served, how many were right (precision); of the
pairs that should hit, how many did (recall); of the pairs that must not, how many did
anyway (the false-hit rate).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.errors import BadRequest
from app.toolkit.files import decode_json, prompt_problem


class PairsFileError(BadRequest):
    """A pairs file that cannot be read as labelled pairs."""


@dataclass(frozen=True, slots=True)
class LabelledPair:
    first: str
    second: str
    # True when the two prompts deserve the same answer.
    same_answer: bool
    # What sets the two prompts apart, when the file says (a CSV `kind` column, a JSONL "kind"):
    # the figures are also given per kind.
    kind: str = ""


def _label(raw: object, where: str) -> bool:
    text = str(raw).strip()
    if text in ("1", "1.0", "true", "True"):
        return True
    if text in ("0", "0.0", "false", "False"):
        return False
    raise PairsFileError(f"{where}: label must be 0 or 1, got {text!r}")


def _read_tsv(text: str, name: str) -> list[LabelledPair]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise PairsFileError(
                f"{name}:{number}: expected 4 tab-separated fields (id, sentence1, sentence2, label)"
            )
        if number == 1 and fields[3].strip() == "label":
            continue  # a header, as some copies of PAWS carry
        pairs.append(LabelledPair(fields[1], fields[2], _label(fields[3], f"{name}:{number}")))
    return pairs


def _read_csv(text: str, name: str) -> list[LabelledPair]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"sentence1", "sentence2", "label"} - set(reader.fieldnames or ())
    if missing:
        raise PairsFileError(
            f"{name}: CSV header must name sentence1, sentence2 and label; missing {sorted(missing)}"
        )
    pairs = []
    for row in reader:
        where = f"{name}:{reader.line_num}"
        first, second = row.get("sentence1"), row.get("sentence2")
        if first is None or second is None:
            raise PairsFileError(f"{where}: row has too few fields")
        # Some sets mark the word that changed with **...**: it is not part of the prompt.
        pairs.append(
            LabelledPair(
                first.replace("**", ""),
                second.replace("**", ""),
                _label(row["label"], where),
                (row.get("kind") or "").strip(),
            )
        )
    return pairs


def _read_jsonl(text: str, name: str) -> list[LabelledPair]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row: Any = decode_json(line)
        except ValueError as error:
            raise PairsFileError(f"{where}: {error}") from None
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("a"), str)
            or not isinstance(row.get("b"), str)
        ):
            raise PairsFileError(f'{where}: expected {{"a": str, "b": str, "label": 0|1}}')
        kind = row.get("kind", "")
        if not isinstance(kind, str):
            raise PairsFileError(f'{where}: "kind" must be a string')
        pairs.append(LabelledPair(row["a"], row["b"], _label(row.get("label"), where), kind.strip()))
    return pairs


def read_pairs(path: Path | str) -> list[LabelledPair]:
    """Read labelled pairs; the format comes from the extension, else from the first line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise PairsFileError(f"{path.name}: cannot read ({error})") from error
    suffix = path.suffix.lower()
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if suffix in (".jsonl", ".ndjson") or (
        suffix not in (".tsv", ".csv") and first_line.lstrip().startswith("{")
    ):
        pairs = _read_jsonl(text, path.name)
    elif suffix == ".tsv" or (suffix != ".csv" and "\t" in first_line):
        pairs = _read_tsv(text, path.name)
    else:
        try:
            pairs = _read_csv(text, path.name)
        except csv.Error as error:  # a field longer than the csv module reads (131,072 characters)
            raise PairsFileError(f"{path.name}: not a CSV file this command can read ({error})") from None
    if not pairs:
        raise PairsFileError(f"{path.name}: no labelled pairs")
    for number, pair in enumerate(pairs, start=1):
        for side, prompt in (("first", pair.first), ("second", pair.second)):
            if (problem := prompt_problem(prompt)) is not None:
                raise PairsFileError(f"{path.name}: pair {number}: its {side} prompt {problem}")
    return pairs


# ---------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True, slots=True)
class HitMetrics:
    """How a hit decision did on labelled pairs. A ratio with nothing to divide is 0.0."""

    true_hits: int  # served, and right to
    false_hits: int  # served a wrong answer
    true_misses: int
    false_misses: int  # could have served, did not

    @property
    def pairs(self) -> int:
        return self.true_hits + self.false_hits + self.true_misses + self.false_misses

    @property
    def positives(self) -> int:
        return self.true_hits + self.false_misses

    @property
    def negatives(self) -> int:
        return self.false_hits + self.true_misses

    @property
    def hits(self) -> int:
        return self.true_hits + self.false_hits

    @property
    def precision(self) -> float:
        """Of the hits served, the share that were right."""
        return self.true_hits / self.hits if self.hits else 0.0

    @property
    def recall(self) -> float:
        """Of the pairs that deserved a hit, the share that got one."""
        return self.true_hits / self.positives if self.positives else 0.0

    @property
    def false_hit_rate(self) -> float:
        """Of the pairs that must not hit, the share that did: wrong answers served."""
        return self.false_hits / self.negatives if self.negatives else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.pairs if self.pairs else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "pairs": self.pairs,
            "hits": self.hits,
            "true_hits": self.true_hits,
            "false_hits": self.false_hits,
            "true_misses": self.true_misses,
            "false_misses": self.false_misses,
            "precision": self.precision,
            "recall": self.recall,
            "false_hit_rate": self.false_hit_rate,
            "hit_rate": self.hit_rate,
        }


def hit_metrics(decisions: Sequence[bool], labels: Sequence[bool]) -> HitMetrics:
    """Compare hit decisions with labels (True = same answer), pair by pair."""
    if len(decisions) != len(labels):
        raise ValueError(f"{len(decisions)} decisions for {len(labels)} labels")
    counts = {(d, y): 0 for d in (True, False) for y in (True, False)}
    for decision, label in zip(decisions, labels, strict=True):
        counts[(bool(decision), bool(label))] += 1
    return HitMetrics(
        true_hits=counts[(True, True)],
        false_hits=counts[(True, False)],
        true_misses=counts[(False, False)],
        false_misses=counts[(False, True)],
    )


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PrecisionRecallCurve:
    """Precision and recall of "hit when score >= threshold", for every distinct threshold."""

    thresholds: FloatArray  # descending
    precision: FloatArray
    recall: FloatArray

    def at(self, threshold: float) -> tuple[float, float]:
        """(precision, recall) of the decision `score >= threshold`."""
        index = np.searchsorted(-self.thresholds, -threshold, side="right") - 1
        if index < 0:
            return 0.0, 0.0
        return float(self.precision[index]), float(self.recall[index])


def precision_recall_curve(
    scores: Sequence[float] | FloatArray, labels: Sequence[bool]
) -> PrecisionRecallCurve:
    """The curve of a score (cosine, cross-encoder probability...) used as a hit threshold.

    A pair a rule rejected can be given the score -inf: it then never hits.
    """
    score_array = np.asarray(scores, dtype=np.float64)
    label_array = np.asarray(labels, dtype=bool)
    if score_array.shape != label_array.shape:
        raise ValueError(f"{score_array.shape[0]} scores for {label_array.shape[0]} labels")
    order = np.argsort(-score_array, kind="stable")
    sorted_scores, sorted_labels = score_array[order], label_array[order]
    true_hits = np.cumsum(sorted_labels)
    hits = np.arange(1, len(sorted_labels) + 1)
    # The curve has a point only where the score changes: ties hit together.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True] & np.isfinite(sorted_scores)
    positives = max(int(label_array.sum()), 1)
    return PrecisionRecallCurve(
        thresholds=sorted_scores[last_of_tie],
        precision=(true_hits / hits)[last_of_tie],
        recall=(true_hits / positives)[last_of_tie],
    )


@dataclass(frozen=True, slots=True)
class CurveSeries:
    label: str
    curve: PrecisionRecallCurve
    # The threshold in use, marked on the plot; None for no mark.
    operating_threshold: float | None = None


def plot_precision_recall(series: Sequence[CurveSeries], path: Path | str, *, title: str) -> Path:
    """Write the curves, with each operating point marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for item in series:
        (line,) = axes.plot(item.curve.recall, item.curve.precision, label=item.label, linewidth=1.6)
        if item.operating_threshold is not None:
            precision, recall = item.curve.at(item.operating_threshold)
            axes.plot([recall], [precision], marker="o", markersize=7, color=line.get_color())
            axes.annotate(
                f"{item.operating_threshold:g}: P={precision:.2f} R={recall:.2f}",
                (recall, precision),
                textcoords="offset points",
                # Near the right edge the label goes to the left of its point, inside the axes.
                xytext=(-6, -14) if recall > 0.7 else (6, -14),
                horizontalalignment="right" if recall > 0.7 else "left",
                fontsize=8,
                color=line.get_color(),
            )
    axes.set_xlabel("recall (share of same-answer pairs served)")
    axes.set_ylabel("precision (share of hits that were right)")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out)
    plt.close(figure)
    return out


# ---------------------------------------------------------------------------------------
# Evaluating a verifier on labelled pairs


@dataclass(frozen=True, slots=True)
class RuleCounts:
    """How often one rule fired, on pairs that deserve the same answer and on pairs that do not."""

    rule: str
    rejected_same: int  # true paraphrases turned down: the rule's cost
    rejected_different: int  # look-alikes turned down: the rule's use


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The verifier against plain cosine on one file of labelled pairs."""

    name: str
    cosine_threshold: float
    cosine: HitMetrics
    verifier: HitMetrics
    rules: tuple[RuleCounts, ...]
    # Why the verifier turned pairs down: reason -> (same-answer pairs, different-answer pairs).
    rejections: dict[str, tuple[int, int]]
    similarities: FloatArray
    # The verifier's deciding score per pair, -inf where it rejected.
    verifier_scores: FloatArray
    labels: npt.NDArray[np.bool_]
    # The verifier's figures on the pairs of each kind the file names, in the file's order.
    by_kind: dict[str, HitMetrics] = field(default_factory=dict)


def plot_evaluation(evaluation: Evaluation, path: Path | str, *, operating_score: float | None) -> Path:
    """Precision/recall of plain cosine and of the verifier's deciding score, operating points marked."""
    return plot_precision_recall(
        [
            CurveSeries(
                "plain cosine",
                precision_recall_curve(evaluation.similarities, list(evaluation.labels)),
                evaluation.cosine_threshold,
            ),
            CurveSeries(
                "verifier (rejected pairs never hit)",
                precision_recall_curve(evaluation.verifier_scores, list(evaluation.labels)),
                operating_score,
            ),
        ],
        path,
        title=f"Hit decision on {evaluation.name}",
    )


def format_evaluation(evaluation: Evaluation) -> str:
    """A plain-text table of an evaluation, for terminals and reports."""
    lines = [
        f"{evaluation.name}: {evaluation.cosine.pairs} pairs, {evaluation.cosine.positives} same-answer",
        f"{'decision':32s} {'precision':>9s} {'recall':>7s} {'false-hit':>9s} {'hits':>6s} {'wrong':>6s}",
    ]
    for label, metrics in (
        (f"cosine >= {evaluation.cosine_threshold:g}", evaluation.cosine),
        ("verifier", evaluation.verifier),
    ):
        lines.append(
            f"{label:32s} {metrics.precision:9.3f} {metrics.recall:7.3f} {metrics.false_hit_rate:9.3f}"
            f" {metrics.hits:6d} {metrics.false_hits:6d}"
        )
    lines.append(f"{'rule (alone, every pair)':32s} {'rejects same':>13s} {'rejects different':>18s}")
    for counts in evaluation.rules:
        lines.append(f"{counts.rule:32s} {counts.rejected_same:13d} {counts.rejected_different:18d}")
    lines.append("verifier rejections by reason (same-answer / different-answer pairs):")
    for reason, (same, different) in sorted(evaluation.rejections.items()):
        lines.append(f"  {reason:30s} {same:6d} / {different:6d}")
    if evaluation.by_kind:
        width = max(30, *(len(kind) for kind in evaluation.by_kind))
        lines.append(
            f"{'verifier by kind':{width + 2}s} {'pairs':>6s} {'same':>6s} {'hits':>6s} {'wrong':>6s}"
        )
        for kind, metrics in evaluation.by_kind.items():
            lines.append(
                f"  {kind:{width}s} {metrics.pairs:6d} {metrics.positives:6d} {metrics.hits:6d}"
                f" {metrics.false_hits:6d}"
            )
    return "\n".join(lines)
