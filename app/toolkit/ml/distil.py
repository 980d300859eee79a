"""Distil the shipped cross-encoder into a smaller first pass, and choose where its word is final.

The student is all-MiniLM-L6-v2 cut to its lowest `layers` encoder layers, trained to match the
cross-encoder's own logits (of the mean probability over both orders of each pair) over every
training pair. It reads a pair in under half the time with two layers (the command measures both);
where it is sure, the cross-encoder need not read the pair at all
(`app.cache.verifier.FirstPassStage`). The band where it is sure is chosen on the validation
slices: the one that decides the most pairs alone while the two models together stay within a
hair of the cross-encoder alone on every slice, at the service's default thresholds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR, OnnxCrossEncoder
from app.cache.verifier import FIRST_PASS, RULES, VerifierPolicy
from app.toolkit.ml.export import build_onnx, default_source_dir
from app.toolkit.ml.report import (
    BAND_PRECISION_SLACK,
    BAND_RECALL_SLACK,
    TWO_STAGES,
    choose_band,
    decided_share,
    figures,
    policy_decision,
    score_sets,
)
from app.toolkit.ml.train import Stage, TrainConfig, console, load_splits, train_model

STUDENT_NAME = "verifier-first-pass-int8"


@dataclass(frozen=True)
class DistilConfig:
    train: TrainConfig
    teacher_dir: Path = DEFAULT_VERIFIER_DIR
    output_dir: Path = Path(".ml-work/first-pass/candidate")
    # Encoder layers the student keeps (all-MiniLM-L6-v2 has 6).
    layers: int = 2
    learning_rate: float = 1e-4


def teacher_probabilities(teacher: OnnxCrossEncoder, pairs: list[tuple[str, str]]) -> np.ndarray[Any, Any]:
    """The cross-encoder's probability for each pair, the mean of both orders (training shows the
    student either order)."""
    scores = np.zeros(len(pairs), dtype=np.float64)
    batch = 64
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("the cross-encoder scores the training pairs", total=len(pairs))
        for start in range(0, len(pairs), batch):
            part = pairs[start : start + batch]
            forward = np.asarray(teacher.score(part), dtype=np.float64)
            backward = np.asarray(teacher.score([(b, a) for a, b in part]), dtype=np.float64)
            scores[start : start + len(part)] = (forward + backward) / 2
            progress.advance(task, len(part))
    return scores


def student_source(work_dir: Path, layers: int) -> Path:
    """all-MiniLM-L6-v2's files with its config cut to `layers` encoder layers (loading it keeps the
    lowest ones)."""
    source = work_dir / f"source-{layers}-layers"
    if source.is_dir():
        shutil.rmtree(source)
    shutil.copytree(default_source_dir(), source)
    config_path = source / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["num_hidden_layers"] = layers
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return source


def ms_per_pair(model: OnnxCrossEncoder, pairs: list[tuple[str, str]]) -> float:
    """CPU milliseconds per pair, read one at a time as a lookup reads its nearest candidate."""
    if not pairs:
        return 0.0
    model.score(pairs[:1])
    started = time.process_time()
    for pair in pairs:
        model.score([pair])
    return (time.process_time() - started) / len(pairs) * 1000


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def distil(config: DistilConfig, policy: VerifierPolicy | None = None) -> dict[str, Any]:
    """Train the student, export it int8, choose its band and write the first pass's directory."""
    started = time.perf_counter()
    train = config.train
    policy = policy or VerifierPolicy()
    train.work_dir.mkdir(parents=True, exist_ok=True)
    splits = load_splits(train, with_mined=True)
    pairs = [(first, second) for first, second, _ in splits.train]
    teacher = OnnxCrossEncoder(config.teacher_dir, threads=train.threads)
    soft = np.clip(teacher_probabilities(teacher, pairs), 1e-6, 1 - 1e-6)
    # The student matches the cross-encoder's logits: a sure teacher's logit still teaches where a
    # probability near 0 or 1 no longer gives a gradient.
    logits = np.log(soft / (1 - soft))
    examples = [(first, second, float(z)) for (first, second), z in zip(pairs, logits, strict=True)]
    console.print(f"distilling into {config.layers} layers on {len(examples)} pairs: {splits.sources}")
    source = student_source(train.work_dir, config.layers)
    stage = Stage(
        "distil", source, config.learning_rate, train.head_learning_rate, train.seed, logit_targets=True
    )
    training = train_model(train, examples, train.work_dir / "hf", stage)
    with console.status("exporting the int8 ONNX graph"):
        build_onnx(train.work_dir / "hf", train.work_dir / "int8", "text-classification")
    student = OnnxCrossEncoder(train.work_dir / "int8", threads=train.threads)

    enabled = frozenset(RULES) - policy.disabled_rules
    decision = policy_decision("", policy, enabled, "shipped")
    models = {"shipped": teacher, FIRST_PASS: student}
    with console.status("scoring the validation slices with both models"):
        validation = score_sets(splits.validation, models, train.threads)
    band = choose_band(validation, decision)
    if band is None:
        raise SystemExit("no band keeps the cross-encoder's figures: nothing written")
    both = policy_decision("", policy, enabled, TWO_STAGES)
    for item in validation:
        item.add_first_pass(TWO_STAGES, decision, band)
    # What each model costs on pairs that reach it (50 of each slice, in the lookup's order), twice
    # in turn, the lower kept.
    read = [
        (second, first)
        for item in validation
        for (first, second) in [
            pair
            for pair, reached in zip(item.labelled.pairs, item.reaches_model(decision), strict=True)
            if reached
        ][:50]
    ]
    costs: dict[str, list[float]] = {"cross_encoder": [], "first_pass": []}
    for _ in range(2):
        costs["cross_encoder"].append(ms_per_pair(teacher, read))
        costs["first_pass"].append(ms_per_pair(student, read))
    cost = {name: round(min(values), 3) for name, values in costs.items()}
    decided = decided_share(validation, decision, band)
    result: dict[str, Any] = {
        "name": STUDENT_NAME,
        "source_model": f"sentence-transformers/all-MiniLM-L6-v2, its lowest {config.layers} layers, "
        "distilled from the cross-encoder",
        "cross_encoder_sha256": sha256(config.teacher_dir / "model.onnx"),
        "reject_below": band.reject_below,
        "serve_above": band.serve_above,
        "rule": f"the band settling the most validation pairs while, on every validation slice at the "
        f"default thresholds, the two models stay within {BAND_PRECISION_SLACK} of the cross-encoder's "
        f"precision and {BAND_RECALL_SLACK} of its recall",
        "decided_on_validation": round(decided, 4),
        "ms_per_pair": cost,
        # The first pass costs every read pair its own time and saves the cross-encoder's on those it
        # decides alone: it pays when it decides more than this share alone (an optimistic bound: a
        # lookup spares the cross-encoder call only when the first pass decides all its pairs).
        "pays_from_decided": round(cost["first_pass"] / cost["cross_encoder"], 4),
        "validation": {
            item.labelled.name: {
                "cross_encoder": figures(item.hits(decision), item.labels),
                "with_first_pass": figures(item.hits(both), item.labels),
                "decided_alone": round(decided_share([item], decision, band), 4),
            }
            for item in validation
        },
        "training": {
            **training,
            "layers": config.layers,
            "learning_rate": config.learning_rate,
            "pairs": len(examples),
            "sources": splits.sources,
            "config": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in asdict(train).items()
                if k not in ("output_dir", "data_dir", "work_dir")
            },
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    config.output_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copyfile(train.work_dir / "int8" / name, config.output_dir / name)
    (config.output_dir / "band.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
