"""The hit decision side by side on every labelled set: plain cosine, a previous verifier and
the shipped one, each rule alone, and the look-alikes served by kind.

Each pair is decided as the verifier chain decides a lookup with one candidate: the cosine
floor (the int8 embedder, one prompt at a time as the cache embeds), then the rules, then the
cross-encoder's probability against the threshold. `deja eval` runs the same decision
through the database and the HTTP code; this report is the quick, per-kind view of it and
the place where the default thresholds are chosen, on the validation slices only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.cache.onnx_models import (
    DEFAULT_EMBEDDER_DIR,
    OnnxCrossEncoder,
    OnnxEmbedder,
    OverTextCrossEncoders,
    shares_text,
)
from app.cache.verifier import (
    FIRST_PASS,
    REWORDED_MAX_OVERLAP,
    RULES,
    FirstPassBand,
    PairScorer,
    VerifierPolicy,
    same_request,
    word_overlap,
)
from app.toolkit.ml.train import (
    INSTRUCTIONS_OVER_TEXT_FILE,
    WORK_PROMPTS_STRESS_FILE,
    LabelledSet,
    TrainConfig,
    cosines,
    load_splits,
    roc_auc,
    work_prompts,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
TARGET_PRECISION = 0.97
# Pairs below this cosine never reach the model under any floor tried: not scored.
LOWEST_FLOOR = 0.5
# The models' ranking (ROC AUC) is measured on the pairs at this cosine or more, where most of
# the model's decisions fall (and as reports before the far band measured it).
RANKED_FROM = 0.7
# Cosine floors tried below the strict band's (`choose_far`), each with the far threshold grid.
FAR_FLOORS = (0.65, 0.6, 0.55, 0.5)
FAR_THRESHOLDS = tuple(float(x) for x in np.round(np.arange(0.9, 0.991, 0.01), 2))
# A lower floor costs a model read on more lookups (misses among them): it is taken only when it
# serves at least this much more of the true pairs (mean recall over the validation slices).
FAR_MIN_GAIN = 0.005
# The floors the strict rule (`choose`) searches, with one threshold and no band.
CHOSEN_FLOOR = 0.7
# (cosine floor, cross-encoder threshold, strict threshold below STRICT_BELOW) settings whose
# figures the report lists; a strict threshold of None: no candidate below STRICT_BELOW.
SWEEP: tuple[tuple[float, float, float | None], ...] = (
    (0.75, 0.65, None),
    (0.8, 0.5, None),
    (0.8, 0.65, None),
    (0.8, 0.7, None),
    (0.8, 0.8, None),
    (0.8, 0.85, None),
    (0.85, 0.85, None),
    (0.85, 0.9, None),
    (0.7, 0.5, 0.87),
    (0.7, 0.65, 0.85),
    (0.7, 0.65, 0.87),
    (0.7, 0.65, 0.9),
    (0.7, 0.65, 0.95),
    (0.7, 0.65, 0.97),
    (0.7, 0.65, 0.98),
    (0.7, 0.65, 0.99),
    (0.7, 0.8, 0.87),
)
# (cosine floor, far threshold) settings of the far band the report lists, the rest at the
# service's defaults; a floor at the far cosine closes the band.
FAR_SWEEP: tuple[tuple[float, float], ...] = (
    (0.7, 0.95),
    (0.65, 0.95),
    (0.6, 0.9),
    (0.6, 0.95),
    (0.6, 0.97),
    (0.55, 0.95),
    (0.5, 0.95),
    (0.5, 0.98),
)
# The cosine below which the strict threshold applies (the service's `cross_encoder_strict_below`).
STRICT_BELOW = 0.8
# (from cosine, margin below the threshold) settings of the reworded tier the report lists, the
# rest at the service's defaults; a margin of 0 closes it.
REWORDED_SWEEP: tuple[tuple[float, float], ...] = (
    (0.9, 0.0),
    (0.9, 0.15),
    (0.9, 0.35),
    (0.9, 0.55),
    (0.85, 0.35),
)
# A threshold of their own for pairs that paste one text (`choose_shared_text`): walking down this
# grid, the written slice of such pairs must keep SHARED_TEXT_PRECISION and at most
# SHARED_TEXT_FALSE_HITS of its look-alikes served. Two prompts paste one text when what they share
# at their start and end, or one run of text with their requests around it, is SHARED_TEXT_CHARS or
# more and at least half of the shorter prompt (`app.cache.onnx_models.shares_text`).
SHARED_TEXT_THRESHOLDS = tuple(float(x) for x in np.round(np.arange(0.7, 0.199, -0.05), 2))
SHARED_TEXT_PRECISION = 0.97
SHARED_TEXT_FALSE_HITS = 0.02
# The default threshold: the most recall at which users' kinds of prompts, chat (the held-out
# langcache half, labelled for "same answer") and work (the held-out intents), each keep this
# precision, at the service's cosine floor, while no validation slice is served less precisely
# than plain cosine >= PLAIN_COSINE serves it.
DEFAULT_SLICES = ("langcache_held_out", "project_validation")
DEFAULT_PRECISION = 0.95
PLAIN_COSINE = 0.9


@dataclass(frozen=True)
class Decision:
    """One way to decide a hit: a cosine floor, the rules in force, and a model with its threshold."""

    name: str
    floor: float
    rules: frozenset[str] = frozenset()
    model: str | None = None
    threshold: float = 0.0
    # Below `strict_below` the model must reach `strict_threshold` (when higher than `threshold`).
    strict_below: float = 0.0
    strict_threshold: float = 0.0
    # From `reworded_above`, a pair worded apart needs `reworded_margin` less than `threshold`.
    reworded_above: float = 2.0
    reworded_margin: float = 0.0
    # Below `far_below` the model must reach `far_threshold` (when higher than the two above).
    far_below: float = 0.0
    far_threshold: float = 0.0
    # From `strict_below`, a pair that pastes one text needs `shared_margin` less than `threshold`.
    shared_margin: float = 0.0


@dataclass
class ScoredSet:
    labelled: LabelledSet
    cosine: FloatArray
    # `word_overlap` of each pair.
    overlap: FloatArray = field(init=False)
    # Rule name -> which pairs it refuses.
    fired: dict[str, BoolArray] = field(default_factory=dict)
    # Model name -> probability per pair (0 where the cosine is below LOWEST_FLOOR).
    probability: dict[str, FloatArray] = field(default_factory=dict)
    # The pairs that are one request but for what `same_request` leaves out: served unread, at 1.0.
    unread: BoolArray = field(init=False)
    # The pairs whose prompts paste one text (`shares_text`).
    shared: BoolArray = field(init=False)

    def __post_init__(self) -> None:
        self.overlap = np.array([word_overlap(a, b) for a, b in self.labelled.pairs], dtype=np.float64)
        self.unread = np.array([same_request(a, b) for a, b in self.labelled.pairs], dtype=bool)
        self.shared = np.array([shares_text(b, a) for a, b in self.labelled.pairs], dtype=bool)

    @property
    def labels(self) -> BoolArray:
        return np.asarray(self.labelled.labels, dtype=bool)

    def reaches_model(self, decision: Decision) -> BoolArray:
        """The pairs that pass the floor and the rules: those the model reads."""
        served = self.cosine >= decision.floor
        for rule in decision.rules:
            served &= ~self.fired[rule]
        return served

    def thresholds(self, decision: Decision) -> FloatArray:
        """The model's threshold for each pair (strict below `strict_below`, lower for a rewording
        or a pair that pastes one text)."""
        strict = max(decision.threshold, decision.strict_threshold)
        far = max(strict, decision.far_threshold)
        reworded = (self.cosine >= decision.reworded_above) & (self.overlap < REWORDED_MAX_OVERLAP)
        margin = np.where(self.shared, decision.shared_margin, 0.0)
        margin = np.where(reworded, np.maximum(margin, decision.reworded_margin), margin)
        usual = np.maximum(0.0, decision.threshold - margin)
        return np.where(
            self.cosine < decision.far_below,
            far,
            np.where(self.cosine < decision.strict_below, strict, usual),
        )

    def hits(self, decision: Decision) -> BoolArray:
        served = self.reaches_model(decision)
        if decision.model is not None:
            served &= self.probability[decision.model] >= self.thresholds(decision)
        return served

    def decided_alone(self, decision: Decision, band: FirstPassBand) -> BoolArray:
        """The pairs the first pass decides alone under `decision`'s thresholds (FirstPassStage)."""
        first = self.probability[FIRST_PASS]
        threshold = self.thresholds(decision)
        return (first < np.minimum(band.reject_below, threshold)) | (
            first >= np.maximum(band.serve_above, threshold)
        )

    def add_first_pass(self, name: str, decision: Decision, band: FirstPassBand) -> None:
        """`name`: the probability the two stages decide with, the first pass's where it decides
        the pair and `decision.model`'s elsewhere."""
        assert decision.model is not None
        self.probability[name] = np.where(
            self.decided_alone(decision, band), self.probability[FIRST_PASS], self.probability[decision.model]
        )


def score_sets(
    sets: Sequence[LabelledSet],
    models: Mapping[str, PairScorer],
    threads: int = 2,
    embedder_dir: Path = DEFAULT_EMBEDDER_DIR,
) -> list[ScoredSet]:
    embedder = OnnxEmbedder(embedder_dir, threads=threads)
    scored = []
    for labelled in sets:
        cosine = cosines(embedder, labelled.pairs)
        item = ScoredSet(labelled, cosine)
        # The first prompt is stored and the second looked up: the rules and the model read a pair
        # as a lookup does, (new prompt, stored prompt). The model is not symmetric.
        asked = [(second, first) for first, second in labelled.pairs]
        for name, rule in RULES.items():
            item.fired[name] = np.array([rule(a, b) is not None for a, b in asked], dtype=bool)
        reached = np.nonzero(cosine >= LOWEST_FLOOR)[0]
        for name, model in models.items():
            probability = np.zeros(len(labelled.pairs), dtype=np.float64)
            # One pair per run, as a lookup with one candidate: int8 dynamic quantisation scales a
            # batch's activations together, so a pair's score moves a little with its batch.
            for index in reached:
                # The same request (`same_request`) is served unread, as by the service.
                probability[index] = 1.0 if item.unread[index] else model.score([asked[index]])[0]
            item.probability[name] = probability
        scored.append(item)
    return scored


def _sweep_name(floor: float, threshold: float, strict: float | None) -> str:
    name = f"floor {floor:g}, threshold {threshold:g}"
    return name if strict is None else f"{name}, {strict:g} below {STRICT_BELOW:g}"


def figures(hits: BoolArray, labels: BoolArray) -> dict[str, float | int]:
    true_hits = int((hits & labels).sum())
    served = int(hits.sum())
    return {
        "precision": round(true_hits / served, 4) if served else 1.0,
        "recall": round(true_hits / max(1, int(labels.sum())), 4),
        "false_hit_rate": round(int((hits & ~labels).sum()) / max(1, int((~labels).sum())), 4),
        "hits": served,
        "wrong_hits": served - true_hits,
    }


def served_by_kind(item: ScoredSet, hits: BoolArray, *, same_answer: bool = False) -> dict[str, str]:
    """Look-alikes served / look-alikes, per kind of change (sets that record kinds); with
    `same_answer`, paraphrases served / paraphrases, per kind of rewording."""
    if not item.labelled.kinds:
        return {}
    out: dict[str, list[int]] = {}
    for kind, hit, label in zip(item.labelled.kinds, hits, item.labels, strict=True):
        if bool(label) == same_answer:
            counts = out.setdefault(kind, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
    return {kind: f"{served}/{total}" for kind, (served, total) in sorted(out.items())}


def lost_where(item: ScoredSet, decision: Decision) -> dict[str, Any]:
    """Where `decision` loses the set's true pairs: under its cosine floor (the model never reads
    them), refused by a rule, or refused by the model; per kind of rewording where the set records
    kinds. What a better verifier can win is the last; the first needs a better embedder or a lower
    floor."""
    labels = item.labels
    below = labels & (item.cosine < decision.floor)
    reached = item.reaches_model(decision)
    by_rule = labels & ~below & ~reached
    by_model = labels & reached & ~item.hits(decision)
    out: dict[str, Any] = {
        "below_floor": int(below.sum()),
        "refused_by_a_rule": int(by_rule.sum()),
        "refused_by_the_model": int(by_model.sum()),
    }
    if item.labelled.kinds:
        kinds = np.asarray(item.labelled.kinds)
        out["by_kind"] = {
            str(kind): {
                "same_answer": int((labels & (kinds == kind)).sum()),
                "below_floor": int((below & (kinds == kind)).sum()),
                "refused_by_a_rule": int((by_rule & (kinds == kind)).sum()),
                "refused_by_the_model": int((by_model & (kinds == kind)).sum()),
            }
            for kind in sorted(set(kinds[labels].tolist()))
        }
    return out


def best_cosine_cutoff(item: ScoredSet, true_hits: int) -> dict[str, float] | None:
    """The most precise plain-cosine cutoff that serves at least `true_hits` of the set's true
    pairs, picked on the set itself (so the cosine is flattered): its precision and the cosine it
    cuts at. A decision less precise than it at the same number of right hits is no better than a
    cosine cache there. None when `true_hits` is 0 or more than the set has."""
    if true_hits <= 0 or true_hits > int(item.labels.sum()):
        return None
    order = np.argsort(-item.cosine, kind="stable")
    ranked = item.cosine[order]
    true_so_far = np.cumsum(item.labels[order])
    # Only the last pair of each run of equal cosines ends a cutoff.
    ends = np.nonzero(np.append(ranked[1:] != ranked[:-1], True))[0]
    ends = ends[true_so_far[ends] >= true_hits]
    precision = true_so_far[ends] / (ends + 1)
    best = int(np.argmax(precision))
    return {"precision": round(float(precision[best]), 4), "cosine": round(float(ranked[ends[best]]), 4)}


def ranking_auc(item: ScoredSet, model: str | None) -> float | None:
    """How well `model`'s probability (None: the cosine) ranks the pairs at RANKED_FROM or more:
    where a model must add to the cosine to earn its cost."""
    reached = item.cosine >= RANKED_FROM
    labels = item.labels[reached]
    if labels.all() or not labels.any():
        return None
    scores = item.cosine if model is None else item.probability[model]
    return round(roc_auc(scores[reached], labels.astype(int).tolist()), 4)


def choose(scored: Sequence[ScoredSet], model: str, rules: frozenset[str]) -> Decision:
    """The floor and threshold with the most recall at pooled precision >= TARGET_PRECISION,
    each validation set weighing the same whatever its size."""
    best: tuple[float, float, float] = (-1.0, 0.8, 1.0)
    thresholds = np.round(np.arange(0.5, 0.996, 0.01), 2)
    for floor in np.round(np.arange(CHOSEN_FLOOR, 0.921, 0.02), 2):
        base = [item.hits(Decision("", float(floor), rules)) for item in scored]
        for threshold in thresholds:
            true_w = served_w = positive_w = 0.0
            for item, passed in zip(scored, base, strict=True):
                hits = passed & (item.probability[model] >= threshold)
                weight = 1.0 / len(item.labels)
                true_w += weight * int((hits & item.labels).sum())
                served_w += weight * int(hits.sum())
                positive_w += weight * int(item.labels.sum())
            if served_w and true_w / served_w >= TARGET_PRECISION and true_w / positive_w > best[0] + 1e-9:
                best = (true_w / positive_w, float(floor), float(threshold))
    _, floor, threshold = best
    return Decision("chosen", floor, rules, model, threshold)


def _keeps_precision(scored: Sequence[ScoredSet], decision: Decision) -> bool:
    """Each of DEFAULT_SLICES at DEFAULT_PRECISION or more, and every slice at least as precise as
    plain cosine >= PLAIN_COSINE on it."""
    for item in scored:
        precision = figures(item.hits(decision), item.labels)["precision"]
        if item.labelled.name in DEFAULT_SLICES and precision < DEFAULT_PRECISION:
            return False
        if precision < figures(item.cosine >= PLAIN_COSINE, item.labels)["precision"]:
            return False
    return True


def choose_default(
    scored: Sequence[ScoredSet],
    model: str,
    rules: frozenset[str],
    floor: float,
    reworded: tuple[float, float] = (2.0, 0.0),
) -> Decision:
    """The lowest threshold (a 0.05 grid) keeping the precision `_keeps_precision` asks for, with
    the `reworded` tier (from cosine, margin) in force."""
    template = Decision(
        "default", floor, rules, model, reworded_above=reworded[0], reworded_margin=reworded[1]
    )
    for threshold in np.round(np.arange(0.5, 0.951, 0.05), 2):
        decision = replace(template, threshold=float(threshold))
        if _keeps_precision(scored, decision):
            return decision
    return replace(template, threshold=0.95)


def choose_strict(scored: Sequence[ScoredSet], base: Decision, floor: float) -> Decision:
    """`base` (its floor becomes the strict cosine) extended down to `floor` with the lowest strict
    threshold (a 0.01 grid) that still keeps the precision `_keeps_precision` asks for; `base`
    itself when none does."""
    for strict in np.round(np.arange(0.8, 0.991, 0.01), 2):
        decision = replace(base, floor=floor, strict_below=base.floor, strict_threshold=float(strict))
        if _keeps_precision(scored, decision):
            return decision
    return base


def choose_far(scored: Sequence[ScoredSet], base: Decision, guard: ScoredSet | None = None) -> Decision:
    """`base` (its floor becomes the far cosine) extended down to one of FAR_FLOORS with the lowest
    far threshold (FAR_THRESHOLDS) that still keeps the precision `_keeps_precision` asks for: of
    those, the one serving the most of the validation slices' true pairs (each slice weighing the
    same), a lower floor only when it serves FAR_MIN_GAIN more than the best higher one, and, given
    a `guard` (look-alikes of the kind a lower floor lets in), no more of its look-alikes than
    `base` does; `base` itself when no lower floor does."""
    best, best_recall = base, _pooled_recall(scored, base)

    def look_alikes_served(decision: Decision) -> int:
        return 0 if guard is None else int((guard.hits(decision) & ~guard.labels).sum())

    allowed = look_alikes_served(base)
    for floor in FAR_FLOORS:
        if floor >= base.floor:
            continue
        for threshold in FAR_THRESHOLDS:
            decision = replace(base, floor=floor, far_below=base.floor, far_threshold=threshold)
            if not _keeps_precision(scored, decision):
                continue
            if look_alikes_served(decision) > allowed:
                continue
            recall = _pooled_recall(scored, decision)
            if recall >= best_recall + FAR_MIN_GAIN - 1e-9:
                best, best_recall = decision, recall
            break
    return best


def choose_shared_text(written: ScoredSet, base: Decision) -> Decision:
    """`base` with the lowest threshold for pairs that paste one text: walking down
    SHARED_TEXT_THRESHOLDS, while the written slice of such pairs keeps SHARED_TEXT_PRECISION and
    serves at most SHARED_TEXT_FALSE_HITS of its look-alikes, as a margin below `base.threshold`;
    `base` itself (no margin) when no threshold below it keeps them."""
    chosen = base
    for threshold in SHARED_TEXT_THRESHOLDS:
        if threshold >= base.threshold:
            continue
        decision = replace(base, shared_margin=round(base.threshold - threshold, 2))
        served = figures(written.hits(decision), written.labels)
        if served["precision"] < SHARED_TEXT_PRECISION or served["false_hit_rate"] > SHARED_TEXT_FALSE_HITS:
            break
        chosen = decision
    return chosen


def _band(name: str, below: float, threshold: float, floor: float) -> dict[str, float | None]:
    """A band of `default_on_validation` as the policy names it; null when it is closed."""
    opened = below > floor
    return {
        f"cross_encoder_{name}_below": below if opened else None,
        f"cross_encoder_{name}_min_score": threshold if opened else None,
    }


def _only(item: ScoredSet, kind: str) -> ScoredSet:
    """The pairs of `item` of one kind, as a set of their own."""
    keep = [index for index, each in enumerate(item.labelled.kinds) if each == kind]
    if not keep:
        raise ValueError(f"{item.labelled.name} holds no pair of kind {kind!r}")
    labelled = item.labelled
    part = ScoredSet(
        LabelledSet(
            f"{labelled.name}:{kind}",
            [labelled.pairs[i] for i in keep],
            [labelled.labels[i] for i in keep],
            labelled.notes,
            [kind] * len(keep),
        ),
        item.cosine[keep],
    )
    part.fired = {name: fired[keep] for name, fired in item.fired.items()}
    part.probability = {name: values[keep] for name, values in item.probability.items()}
    return part


def _pooled_recall(scored: Sequence[ScoredSet], decision: Decision) -> float:
    """The mean over slices of the share of true pairs served."""
    return float(
        np.mean([item.labels[item.hits(decision)].sum() / max(1, item.labels.sum()) for item in scored])
    )


# The band of the first pass: on every validation slice, the two stages together must stay this
# close to the cross-encoder alone (precision, recall), at the service's defaults.
BAND_PRECISION_SLACK = 0.005
BAND_RECALL_SLACK = 0.01
BAND_REJECT_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
BAND_SERVE_GRID = tuple(float(x) for x in np.round(np.arange(0.65, 1.0001, 0.005), 3))
TWO_STAGES = "shipped+first_pass"


def decided_share(scored: Sequence[ScoredSet], decision: Decision, band: FirstPassBand) -> float:
    """Of the pairs the model reads (pooled), the share the first pass decides alone."""
    read = decided = 0
    for item in scored:
        reached = item.reaches_model(decision)
        read += int(reached.sum())
        decided += int((reached & item.decided_alone(decision, band)).sum())
    return decided / max(1, read)


def choose_band(scored: Sequence[ScoredSet], decision: Decision) -> FirstPassBand | None:
    """The band that decides the most pairs alone while, on every slice of `scored`, the two stages stay
    within BAND_PRECISION_SLACK of the cross-encoder's precision and BAND_RECALL_SLACK of its
    recall under `decision`; None when no band does (the first pass then decides nothing)."""
    alone = {item.labelled.name: figures(item.hits(decision), item.labels) for item in scored}
    both = replace(decision, model=TWO_STAGES)
    best: tuple[float, FirstPassBand | None] = (0.0, None)
    # Of bands that decide as many pairs alone, the narrowest is kept.
    for reject_below in BAND_REJECT_GRID:
        for serve_above in reversed(BAND_SERVE_GRID):
            band = FirstPassBand(reject_below, serve_above)
            for item in scored:
                item.add_first_pass(TWO_STAGES, decision, band)
            close = all(
                (got := figures(item.hits(both), item.labels))["precision"]
                >= alone[item.labelled.name]["precision"] - BAND_PRECISION_SLACK
                and got["recall"] >= alone[item.labelled.name]["recall"] - BAND_RECALL_SLACK
                for item in scored
            )
            share = decided_share(scored, decision, band)
            if close and share > best[0] + 1e-9:
                best = (share, band)
    for item in scored:
        if best[1] is None:
            item.probability.pop(TWO_STAGES, None)
        else:
            item.add_first_pass(TWO_STAGES, decision, best[1])
    return best[1]


def policy_decision(name: str, policy: VerifierPolicy, rules: frozenset[str], model: str) -> Decision:
    """The decision the service makes with `policy` and its cross-encoder."""
    assert policy.cross_encoder_min_score is not None
    return Decision(
        name,
        policy.min_similarity,
        rules,
        model,
        policy.cross_encoder_min_score,
        policy.cross_encoder_strict_below,
        policy.cross_encoder_strict_min_score,
        policy.cross_encoder_reworded_above,
        policy.cross_encoder_reworded_margin,
        policy.cross_encoder_far_below,
        policy.cross_encoder_far_min_score,
    )


def report(
    config: TrainConfig,
    shipped_dir: Path,
    previous_dir: Path | None,
    policy: VerifierPolicy,
    first_pass: tuple[Path, FirstPassBand] | None = None,
    embedder_dir: Path = DEFAULT_EMBEDDER_DIR,
    over_text_dir: Path | None = None,
) -> dict[str, Any]:
    """The report on the verifier in `shipped_dir`; with `over_text_dir`, the cross-encoder that
    reads the pairs whose prompts paste one text beside it, as the service reads them."""
    splits = load_splits(config)
    general = OnnxCrossEncoder(shipped_dir, threads=config.threads)
    models: dict[str, PairScorer] = {
        "shipped": general
        if over_text_dir is None
        else OverTextCrossEncoders(general, OnnxCrossEncoder(over_text_dir, threads=config.threads))
    }
    if previous_dir is not None:
        models["previous"] = OnnxCrossEncoder(previous_dir, threads=config.threads)
    if first_pass is not None:
        models[FIRST_PASS] = OnnxCrossEncoder(first_pass[0], threads=config.threads)
    validation = score_sets(splits.validation, models, config.threads, embedder_dir)
    # The stress pairs are reported here, not by training (they came after the shipped model), and
    # their topical look-alikes guard the choice of the floor (`choose_far`).
    stress = work_prompts(
        WORK_PROMPTS_STRESS_FILE,
        "work_prompts_stress",
        "topical look-alikes and near-identical paraphrases written apart; they guard the floor's choice",
    )
    # Pairs that paste one text, written to choose their threshold (`choose_shared_text`).
    over_text = work_prompts(
        INSTRUCTIONS_OVER_TEXT_FILE,
        "instructions_over_text",
        "one pasted text with a reworded or another request around it, written apart; it chooses their threshold",
    )
    reported = score_sets([*splits.report, over_text, stress], models, config.threads, embedder_dir)
    topical = _only(reported[-1], "topical")
    written_over_text = reported[-2]
    all_rules = frozenset(RULES)
    enabled = all_rules - policy.disabled_rules
    decisions = [
        Decision("cosine >= 0.9", 0.9),
        Decision("rules, cosine >= 0.9 (no model)", policy.min_similarity_without_cross_encoder, enabled),
        shipped_verifier := policy_decision("shipped verifier", policy, enabled, "shipped"),
        policy_decision("shipped model without rules", policy, frozenset(), "shipped"),
    ]
    first_pass_figures: dict[str, Any] = {}
    if first_pass is not None:
        band = first_pass[1]
        served = policy_decision("shipped verifier with its first pass", policy, enabled, TWO_STAGES)
        decisions.insert(3, served)
        shipped = replace(served, model="shipped")
        for item in [*validation, *reported]:
            item.add_first_pass(TWO_STAGES, shipped, band)
        first_pass_figures = {
            "reject_below": band.reject_below,
            "serve_above": band.serve_above,
            # Of the pairs that reach the models, the share the first pass decides alone.
            "decided_alone": {
                item.labelled.name: round(decided_share([item], shipped, band), 4)
                for item in [*validation, *reported]
            },
        }
    if previous_dir is not None:
        # The previous verifier: its model reading every pair alone, at the defaults it shipped with
        # (today's, which the cross-encoder for requests over one pasted text kept).
        decisions.insert(1, policy_decision("previous verifier", policy, enabled, "previous"))
    sets: dict[str, Any] = {}
    for item in [*validation, *reported]:
        labels = item.labels
        model_alone = policy_decision("", policy, frozenset(), "shipped")
        served_by_model = item.hits(model_alone)
        sets[item.labelled.name] = {
            "pairs": len(labels),
            "same_answer": int(labels.sum()),
            "notes": item.labelled.notes,
            "decisions": {d.name: figures(item.hits(d), labels) for d in decisions},
            # For each decision, the most precise cosine cutoff serving as many true pairs (`best_cosine_cutoff`).
            "plain_cosine_at_the_same_recall": {
                d.name: best_cosine_cutoff(item, int((item.hits(d) & labels).sum())) for d in decisions
            },
            # How well each model alone ranks the pairs at cosine >= RANKED_FROM.
            "roc_auc": {"cosine": ranking_auc(item, None)}
            | {name: ranking_auc(item, name) for name in item.probability},
            "look_alikes_served_by_kind": {d.name: served_by_kind(item, item.hits(d)) for d in decisions},
            "paraphrases_served_by_kind": {
                d.name: served_by_kind(item, item.hits(d), same_answer=True) for d in decisions
            },
            # Where the shipped verifier loses the true pairs it does not serve (`lost_where`).
            "paraphrases_lost_where": lost_where(item, shipped_verifier),
            # The pairs one request but for what `same_request` leaves out (served unread at cosine >= the
            # floor, unless a rule refuses them), by label.
            "one_request_once_folded": {
                "same_answer": int((item.unread & labels).sum()),
                "different_answer": int((item.unread & ~labels).sum()),
            },
            # Each rule alone: true paraphrases it refuses, look-alikes it refuses, and of those
            # the ones the shipped model alone would have served (what the rule adds).
            "rules_alone": {
                name: {
                    "refuses_same_answer": int((fired & labels).sum()),
                    "refuses_different_answer": int((fired & ~labels).sum()),
                    "catches_what_the_model_serves": int((fired & ~labels & served_by_model).sum()),
                    "refuses_what_the_model_serves_rightly": int((fired & labels & served_by_model).sum()),
                }
                for name, fired in item.fired.items()
            },
        }
    chosen = choose(validation, "shipped", enabled)
    default = choose_far(
        validation,
        choose_strict(
            validation,
            choose_default(
                validation,
                "shipped",
                enabled,
                policy.cross_encoder_strict_below,
                (policy.cross_encoder_reworded_above, policy.cross_encoder_reworded_margin),
            ),
            policy.cross_encoder_far_below,
        ),
        topical,
    )
    default_policy = policy_decision("", policy, enabled, "shipped")
    closed_shared = replace(default_policy, shared_margin=0.0)
    shared_text = choose_shared_text(written_over_text, closed_shared)
    shared_walk = {
        f"{threshold:g}": {
            item.labelled.name: figures(
                item.hits(
                    replace(closed_shared, shared_margin=round(closed_shared.threshold - threshold, 2))
                ),
                item.labels,
            )
            for item in [written_over_text, *validation]
        }
        for threshold in SHARED_TEXT_THRESHOLDS
    }
    sweep = {
        _sweep_name(floor, threshold, strict): {
            item.labelled.name: figures(
                item.hits(Decision("", floor, enabled, "shipped", threshold, STRICT_BELOW, strict or 0.0)),
                item.labels,
            )
            for item in validation
        }
        for floor, threshold, strict in SWEEP
    }
    for floor, threshold in FAR_SWEEP:
        decision = replace(
            default_policy,
            floor=floor,
            far_below=max(floor, policy.cross_encoder_far_below),
            far_threshold=threshold,
        )
        name = f"the defaults, floor {floor:g}, {threshold:g} below {decision.far_below:g}"
        sweep[name] = {item.labelled.name: figures(item.hits(decision), item.labels) for item in validation}
    for above, margin in REWORDED_SWEEP:
        decision = replace(default_policy, reworded_above=above, reworded_margin=margin)
        name = f"the defaults, {margin:g} less for a rewording from {above:g}"
        sweep[name] = {item.labelled.name: figures(item.hits(decision), item.labels) for item in validation}
    return {
        "policy": {
            "min_similarity": policy.min_similarity,
            "cross_encoder_min_score": policy.cross_encoder_min_score,
            "cross_encoder_strict_below": policy.cross_encoder_strict_below,
            "cross_encoder_strict_min_score": policy.cross_encoder_strict_min_score,
            "cross_encoder_far_below": policy.cross_encoder_far_below,
            "cross_encoder_far_min_score": policy.cross_encoder_far_min_score,
            "cross_encoder_reworded_above": policy.cross_encoder_reworded_above,
            "cross_encoder_reworded_margin": policy.cross_encoder_reworded_margin,
            "disabled_rules": sorted(policy.disabled_rules),
        },
        "first_pass": first_pass_figures,
        "chosen_on_validation": {
            "target_precision": TARGET_PRECISION,
            "min_similarity": chosen.floor,
            "cross_encoder_min_score": chosen.threshold,
            "validation_sets": [item.labelled.name for item in validation],
        },
        "default_on_validation": {
            "rule": f"the lowest threshold keeping each of {', '.join(DEFAULT_SLICES)} at precision >= "
            f"{DEFAULT_PRECISION} and every validation slice at least as precise as plain cosine >= "
            f"{PLAIN_COSINE}, at cosine >= {policy.cross_encoder_strict_below}; then, down to cosine "
            f"{policy.cross_encoder_far_below}, the lowest strict threshold keeping both; then, of the floors "
            f"{', '.join(f'{f:g}' for f in FAR_FLOORS)}, the one whose lowest far threshold keeping both "
            f"serves the most true pairs (a lower floor only for {FAR_MIN_GAIN:.1%} more of them, and only "
            "if it serves no more of the stress set's topical look-alikes)",
            "min_similarity": default.floor,
            "cross_encoder_min_score": default.threshold,
            # A band no threshold opens is null (closed), not a cosine of 0.
            **_band("strict", default.strict_below, default.strict_threshold, default.floor),
            **_band("far", default.far_below, default.far_threshold, default.floor),
        },
        "shared_text_on_validation": {
            "rule": f"walking the threshold down from {closed_shared.threshold:g} for pairs that paste one text "
            f"(at cosine >= {closed_shared.strict_below:g}), the lowest at which {written_over_text.labelled.name} "
            f"keeps precision >= {SHARED_TEXT_PRECISION} and a false-hit rate <= {SHARED_TEXT_FALSE_HITS}, "
            "every threshold above it too; the rest at the defaults",
            # How far below the usual threshold; 0: no threshold of their own.
            "margin": shared_text.shared_margin,
            "threshold": round(closed_shared.threshold - shared_text.shared_margin, 2),
            # Each threshold of the walk, on that slice and on every validation slice.
            "walk": shared_walk,
        },
        "threshold_sweep": sweep,
        "sets": sets,
    }
