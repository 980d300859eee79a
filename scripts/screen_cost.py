"""What the hit decision costs when the rules read every candidate first, against when they read
only the candidates the cross-encoder comes to.

    python scripts/screen_cost.py PEER_BENCH_DIR [N=2000] [--every K=1] [--batch]

The side-by-side harness's paraphrases (`workload.py` in the harness folder), each against its five
nearest stored prompts by exact cosine, go through the chain at the default settings twice, in two
fresh processes so that neither finds the other's analyses cached: once with the rules stage run
on every candidate above the floor before the model, as a plain stage; once as the service runs
it, asked about a candidate only when the cross-encoder comes to it (`Screen` in
`app/cache/verifier/base.py`). It prints the CPU time of the decision per lookup (this thread's:
the models run in it), of it the cross-encoder's, and whether the two ways served the same
candidates at the same scores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.cache.onnx_models import OnnxCrossEncoder, OnnxEmbedder
from app.cache.verifier import Candidate, VerifierPolicy, build_verifier
from app.cache.verifier.base import StageResult, Verifier
from app.cache.verifier.stages import RulesStage

TOP_K = 5


class EveryCandidate:
    """The rules stage as a plain stage: the chain runs it on every candidate before the model."""

    def __init__(self, inner: RulesStage) -> None:
        self.inner = inner
        self.name = inner.name
        self.screened = 0

    def enabled(self, policy: VerifierPolicy) -> bool:
        return self.inner.enabled(policy)

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        self.screened += len(candidates)
        return self.inner.check(query, candidates, policy)


class AsRead(EveryCandidate):
    """The rules stage as the service runs it (a `Screen`), counting the candidates it reads."""

    def check_one(self, query: str, candidate: Candidate, policy: VerifierPolicy) -> StageResult:
        self.screened += 1
        return self.inner.check_one(query, candidate, policy)

    def deciding(self) -> AbstractContextManager[None]:
        return self.inner.deciding()


class TimedScorer:
    def __init__(self, inner: OnnxCrossEncoder) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.pairs = 0

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        self.pairs += len(pairs)
        started = time.thread_time()
        scores = self.inner.score(pairs)
        self.seconds += time.thread_time() - started
        return scores


def _one_way(harness: Path, entries: int, every: int, way: str, batch: bool) -> dict[str, object]:
    sys.path.insert(0, str(harness.resolve()))
    from workload import Workload  # the harness's own, standard library only

    workload = Workload(entries)
    embedder = OnnxEmbedder()
    stored = embedder.embed(workload.stored)
    ids = [uuid.uuid5(uuid.NAMESPACE_OID, str(index)) for index in range(len(workload.stored))]
    scorer = TimedScorer(OnnxCrossEncoder())
    chain = build_verifier(scorer)
    rules = chain.stages[1]
    assert isinstance(rules, RulesStage)
    counted = EveryCandidate(rules) if way == "every" else AsRead(rules)
    verifier = Verifier([chain.stages[0], counted, *chain.stages[2:]])
    lookups = []
    for texts in workload.paraphrases:
        for text in texts:
            similarities = stored @ embedder.embed([text])[0]
            nearest = np.argsort(-similarities)[:TOP_K]
            lookups.append(
                (text, [Candidate(ids[i], workload.stored[i], float(similarities[i])) for i in nearest])
            )
    lookups = lookups[::every]
    # Under an error bound the model reads the two nearest survivors in one call (`nearest_first` off).
    policy = VerifierPolicy(nearest_first=not batch)
    seconds = 0.0
    served = []
    for text, candidates in lookups:
        started = time.thread_time()
        verdict = verifier.decide(text, candidates, policy)
        seconds += time.thread_time() - started
        served.append(None if verdict.accepted is None else [str(verdict.accepted.entry_id), verdict.score])
    return {
        "lookups": len(lookups),
        "seconds": seconds,
        "model_seconds": scorer.seconds,
        "screened": counted.screened,
        "pairs": scorer.pairs,
        "served": served,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("harness", type=Path, help="the side-by-side harness folder (holds workload.py)")
    parser.add_argument("entries", type=int, nargs="?", default=2000)
    parser.add_argument("--every", type=int, default=1, help="look up every K-th paraphrase")
    parser.add_argument(
        "--batch",
        action="store_true",
        help="the two nearest survivors read in one call, as under an error bound",
    )
    parser.add_argument("--way", choices=["every", "as-read"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        print(json.dumps(_one_way(args.harness, args.entries, args.every, args.way, args.batch)))
        return
    results = {}
    for way in ("every", "as-read"):
        command = [sys.executable, __file__, str(args.harness), str(args.entries), "--every", str(args.every)]
        command += ["--batch"] if args.batch else []
        # This script itself, in a fresh interpreter: no caches shared between the two ways.
        output = subprocess.run(  # noqa: S603
            [*command, "--way", way], check=True, capture_output=True, text=True
        ).stdout
        results[way] = json.loads(output.strip().splitlines()[-1])
    for way, label in (("every", "rules on every candidate first"), ("as-read", "rules as the model reads")):
        r = results[way]
        n = int(r["lookups"])
        print(
            f"{label:32s} {n} lookups: decision {float(r['seconds']) / n * 1e3:.3f} ms CPU per lookup, "
            f"of it the cross-encoder {float(r['model_seconds']) / n * 1e3:.3f}, "
            f"the rest {(float(r['seconds']) - float(r['model_seconds'])) / n * 1e3:.3f}; "
            f"candidates the rules read {int(r['screened']) / n:.2f}, pairs the model read {int(r['pairs']) / n:.2f}"
        )
    same = results["every"]["served"] == results["as-read"]["served"]
    print(f"the same candidates served at the same scores: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
