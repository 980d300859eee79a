"""Write the pairs the shipped cross-encoder never saw in training, as JSONL for `deja eval`:
the held-out halves of the two shared files and the project's generated validation pairs,
split exactly as `deja verifier train` splits them.

Usage: python scripts/held_out_pairs.py DATA_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.toolkit.ml.train import LabelledSet, TrainConfig, load_shared, project_sets


def write(labelled: LabelledSet, out_dir: Path) -> Path:
    path = out_dir / f"{labelled.name}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for (a, b), label in zip(labelled.pairs, labelled.labels, strict=True):
            handle.write(json.dumps({"a": a, "b": b, "label": label}, ensure_ascii=False) + "\n")
    return path


def main(data_dir: str, out_dir: str) -> None:
    config = TrainConfig(data_dir=Path(data_dir))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sets = [*load_shared(config).held_out, project_sets(config)[1]]
    for labelled in sets:
        print(f"{write(labelled, out)}: {len(labelled.pairs)} pairs")


if __name__ == "__main__":
    main(*sys.argv[1:3])
