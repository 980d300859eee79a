"""The side-by-side harness's paraphrases through Déjà's hit decision, in process: which it serves,
which it refuses and why, and how many pairs the cross-encoder reads per lookup.

Each stored prompt of the harness's workload (`workload.py` in the harness folder) is embedded
with the served embedder; each paraphrase takes its five nearest stored prompts by exact cosine
(the service searches with the HNSW index) and goes through the verifier chain at the default
settings. No server, no database: a quick look at the decision the harness measures.

Usage: python scripts/peer_paraphrases.py PEER_BENCH_DIR [N=2000] [--every K=2] [--verifier-dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.cache.onnx_models import OnnxCrossEncoder, OnnxEmbedder
from app.cache.verifier import Candidate, VerifierPolicy, build_verifier

TOP_K = 5


class CountingScorer:
    """The cross-encoder, counting the pairs it reads."""

    def __init__(self, inner: OnnxCrossEncoder) -> None:
        self.inner = inner
        self.pairs = 0

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        self.pairs += len(pairs)
        return self.inner.score(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("harness", type=Path, help="the side-by-side harness folder (holds workload.py)")
    parser.add_argument("entries", type=int, nargs="?", default=2000)
    parser.add_argument("--every", type=int, default=2, help="look up every K-th paraphrase")
    parser.add_argument(
        "--verifier-dir",
        type=Path,
        default=None,
        help="a cross-encoder to decide with (default: the shipped one)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.harness.resolve()))
    from workload import Workload  # the harness's own, standard library only

    workload = Workload(args.entries)
    embedder = OnnxEmbedder()
    stored = embedder.embed(workload.stored)
    ids = [uuid.uuid4() for _ in workload.stored]
    scorer = CountingScorer(
        OnnxCrossEncoder() if args.verifier_dir is None else OnnxCrossEncoder(args.verifier_dir)
    )
    verifier = build_verifier(scorer)
    policy = VerifierPolicy()
    queries = [(key, text) for key, texts in enumerate(workload.paraphrases) for text in texts][:: args.every]
    outcome: collections.Counter[str] = collections.Counter()
    pairs_read: collections.Counter[int] = collections.Counter()
    refused: collections.Counter[tuple[str, str]] = collections.Counter()
    example: dict[tuple[str, str], str] = {}
    for key, text in queries:
        similarities = stored @ embedder.embed([text])[0]
        nearest = np.argsort(-similarities)[:TOP_K]
        candidates = [Candidate(ids[i], workload.stored[i], float(similarities[i])) for i in nearest]
        before = scorer.pairs
        verdict = verifier.decide(text, candidates, policy)
        pairs_read[scorer.pairs - before] += 1
        if verdict.accepted is not None:
            outcome["right" if verdict.accepted.entry_id == ids[key] else "wrong"] += 1
            continue
        outcome["refused"] += 1
        own = next((r for r in verdict.reports if r.candidate.entry_id == ids[key]), None)
        reason = "not among the nearest" if own is None else (own.rejection or "")
        group = (workload.intent_of[key], reason)
        refused[group] += 1
        if own is not None and group not in example:
            score = own.scores.get("cross_encoder")
            example[group] = f"{text!r} / {workload.stored[key]!r}: cosine {own.candidate.similarity:.2f}" + (
                "" if score is None else f", cross-encoder {score:.2f}"
            )
    total = len(queries)
    print(
        f"{total} paraphrases of {args.entries} stored prompts: served {outcome['right'] + outcome['wrong']} "
        f"({(outcome['right'] + outcome['wrong']) / total:.1%}), of them {outcome['wrong']} another entry's; "
        f"refused {outcome['refused']}"
    )
    print(
        "pairs the cross-encoder read per lookup: "
        + ", ".join(f"{n}: {c}" for n, c in sorted(pairs_read.items()))
    )
    print("refused, by intent and the stage that refused:")
    for (intent, reason), count in refused.most_common():
        print(f"  {count:5d}  {intent:12s} {reason:22s} {example.get((intent, reason), '')}")


if __name__ == "__main__":
    main()
