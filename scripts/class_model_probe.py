"""Would a cross-encoder of their own rank one class of pairs better than the shipped one does?

    python scripts/class_model_probe.py DATA_DIR WORK_DIR [--min-overlap 0.85] [--only-paws] [--epochs 3]
        [--learning-rate 6e-5]

Needs the training environment (`make train-env`). A quick look before a routed model is
planned, not a recipe: it trains a model on the training rows of one class only, from the same
all-MiniLM-L6-v2 weights and at the rates of `deja verifier train` unless told otherwise (mined
look-alikes left out), exports it fused and int8 as the service reads it, and prints how well
it and the shipped general cross-encoder rank the pairs of that class in every validation slice
and report-only set (ROC AUC over the class's pairs, no threshold). The class is the pairs
whose prompts share at least `--min-overlap` of their words (`word_overlap`, the share the
service's thresholds read); with `--only-paws` the model reads PAWS dev's training part alone.
About 10 to 20 minutes on two cores; the figures are written to WORK_DIR/probe.json too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR, OnnxCrossEncoder, counting_tokenizer
from app.cache.verifier.base import word_overlap
from app.toolkit.ml.export import build_onnx, default_source_dir
from app.toolkit.ml.train import (
    PAWS_TRAIN_FILE,
    Stage,
    TrainConfig,
    _split_file,
    as_served,
    load_splits,
    roc_auc,
    train_model,
)

# A set is reported when the class holds at least this many of its pairs, of both labels.
MIN_PAIRS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the shared labelled pairs")
    parser.add_argument("work_dir", type=Path, help="scratch space: checkpoints, the model, probe.json")
    parser.add_argument(
        "--min-overlap", type=float, default=0.85, help="the class: word overlap at least this"
    )
    parser.add_argument("--only-paws", action="store_true", help="train on PAWS dev's training part alone")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--learning-rate", type=float, default=TrainConfig.learning_rate, help="of the encoder layers"
    )
    args = parser.parse_args()

    config = TrainConfig(
        data_dir=args.data_dir, work_dir=args.work_dir, epochs=args.epochs, learning_rate=args.learning_rate
    )
    config.work_dir.mkdir(parents=True, exist_ok=True)
    splits = load_splits(config)
    if args.only_paws:
        paws_train, _ = _split_file(config, PAWS_TRAIN_FILE, "paws_dev")
        rows = [(p.first, p.second, int(p.same_answer)) for p in paws_train]
    else:
        rows = splits.train
    rows = [row for row in rows if word_overlap(row[0], row[1]) >= args.min_overlap]
    print(
        f"training on {len(rows)} rows ({sum(row[2] for row in rows)} labelled the same answer)", flush=True
    )

    model_dir = config.work_dir / "int8"
    if not (model_dir / "model.onnx").exists():
        hf_dir = config.work_dir / "hf"
        examples = as_served(rows, config, counting_tokenizer(default_source_dir()))
        stage = Stage(
            "probe", default_source_dir(), config.learning_rate, config.head_learning_rate, config.seed
        )
        print(train_model(config, examples, hf_dir, stage), flush=True)
        build_onnx(hf_dir, model_dir, "text-classification", quantise=True)

    models = {
        "shipped": OnnxCrossEncoder(DEFAULT_VERIFIER_DIR, threads=config.threads),
        "class model": OnnxCrossEncoder(model_dir, threads=config.threads),
    }
    figures: dict[str, dict[str, float | int]] = {}
    print(f"{'set':34s} {'pairs':>6s} {'same':>5s} " + " ".join(f"{name:>12s}" for name in models))
    for labelled in [*splits.validation, *splits.report]:
        chosen = [i for i, (a, b) in enumerate(labelled.pairs) if word_overlap(a, b) >= args.min_overlap]
        labels = [labelled.labels[i] for i in chosen]
        if len(chosen) < MIN_PAIRS or len(set(labels)) < 2:
            continue
        pairs = [labelled.pairs[i] for i in chosen]
        aucs = {
            name: round(roc_auc(np.asarray(model.score(pairs)), labels), 3) for name, model in models.items()
        }
        figures[labelled.name] = {"pairs": len(chosen), "same_answer": sum(labels), **aucs}
        print(
            f"{labelled.name:34s} {len(chosen):6d} {sum(labels):5d} "
            + " ".join(f"{auc:12.3f}" for auc in aucs.values()),
            flush=True,
        )
    (config.work_dir / "probe.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
