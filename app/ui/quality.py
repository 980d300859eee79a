"""The measured quality of the hit decision, as `scripts/quality.sh` wrote it to docs/quality/.

A wheel carries them too (app.resources: setup.py copies docs/quality/*.json); without them
the page says where the figures come from instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from app.resources import quality_dir

# The runs of scripts/quality.sh, each on pairs the verifier never trained on; the report-only
# sets (the three sets of hand-written work prompts, the long prompts, the PAWS test split) among
# them, on which no threshold was chosen (docs/quality.md says which rule fixes their misses shaped).
FILES = (
    "langcache_held_out",
    "project_validation",
    "work_prompts_written",
    "work_prompts_second",
    "work_prompts_third",
    "long_prompts",
    "swaps_validation",
    "qqp_validation",
    "mrpc_validation",
    "paws_dev_validation",
    "paws_test",
)


@dataclass(frozen=True, slots=True)
class Figure:
    pairs_file: str
    decision: str  # "Déjà", "without cross-encoder", "plain cosine ≥ 0.9"
    pairs: int
    precision: float
    recall: float
    false_hit_rate: float


@lru_cache(maxsize=1)
def figures() -> tuple[Figure, ...]:
    rows: list[Figure] = []
    for name in FILES:
        path = quality_dir() / f"{name}.json"
        try:
            runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
        except (OSError, ValueError, AttributeError):
            continue  # missing, or being rewritten by scripts/quality.sh: the page shows the others
        for run in runs:
            with_cross_encoder = not run["name"].endswith("no cross-encoder")
            decisions = [("Déjà" if with_cross_encoder else "without cross-encoder", run["deja"])]
            if with_cross_encoder:
                decisions.append(("plain cosine ≥ 0.9", run["cosine_0.9"]))
            rows.extend(
                Figure(
                    pairs_file=name,
                    decision=label,
                    pairs=int(m["pairs"]),
                    precision=float(m["precision"]),
                    recall=float(m["recall"]),
                    false_hit_rate=float(m["false_hit_rate"]),
                )
                for label, m in decisions
            )
    return tuple(rows)
