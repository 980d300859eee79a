"""Write the pairs the shipped cross-encoder never saw in training, as JSONL for `deja eval`:
the validation slice of every training source (the held-out langcache half, PAWS dev, Quora,
MRPC, the project's validation intents, the written pairs, the instruction pairs of held-out
tasks, the order and role transformations) and the PAWS test split (report only), split exactly
as `deja verifier train` splits them.

Usage: python scripts/held_out_pairs.py DATA_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.toolkit.ml.train import LabelledSet, TrainConfig, load_splits


def write(labelled: LabelledSet, out_dir: Path) -> Path:
    path = out_dir / f"{labelled.name}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for (a, b), label in zip(labelled.pairs, labelled.labels, strict=True):
            handle.write(json.dumps({"a": a, "b": b, "label": label}, ensure_ascii=False) + "\n")
    return path


def main(data_dir: str, out_dir: str) -> None:
    config = TrainConfig(data_dir=Path(data_dir), paws_test_pairs=8000)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = load_splits(config)
    sets = [*splits.validation, *splits.report]
    for labelled in sets:
        print(f"{write(labelled, out)}: {len(labelled.pairs)} pairs")


if __name__ == "__main__":
    main(*sys.argv[1:3])
