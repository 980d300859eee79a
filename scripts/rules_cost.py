"""What the verifier's rules cost a lookup, by prompt length.

    python scripts/rules_cost.py [--candidates 5] [--rounds 30]

The rules stage as a lookup runs it (`RulesStage.check`: every rule, the prompt against each
candidate above the floor), on work prompts grown to about 200, 500, 1,000, 4,000 and 20,000
characters, each candidate the prompt opened differently ("Please:", "Hi,", ...) so that each is
a text of its own and no rule stops early. Beside it, the cross-encoder stage's first step on the
same candidates: whether one is the prompt itself but for its spelling and layout
(`same_request`, served unread), and the choice of the cross-encoder that reads each pair
(`shares_text`: the one for prompts that paste one text, or the general one). Past 4,096 characters each pair is cut as a lookup
cuts it (`compared_texts`: to where the two differ, with the text around it). Every round
uses new texts, as a tenant's traffic does: the analyses of short texts are cached, and those of
long ones are not kept past one decision. It prints the median CPU time of the stage per lookup
and per candidate, and of the same-request check and of the choice of model per lookup.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from app.cache.onnx_models import shares_text
from app.cache.verifier.base import Candidate, VerifierPolicy
from app.cache.verifier.cross_encoder import same_request
from app.cache.verifier.stages import RulesStage
from app.cache.verifier.texts import compared_texts

SENTENCES = (
    "Summarise the Q3 churn numbers for the board in three bullet points.",
    "Explain the difference between a Kubernetes Deployment and a StatefulSet.",
    "Our printer on floor 3 shows error E-04 since the last firmware update.",
    "Draft a polite reply to a customer whose refund is late by two weeks.",
    "The migration moves every table from the old cluster to the new one overnight.",
    "Keep the tone friendly and mention the discount code that expires on Friday.",
)

OPENINGS = ("Please:", "Hi,", "Hello,", "Quick question:", "Thanks in advance:", "Hey,", "Kindly:")


def _text(length: int, rng: random.Random) -> str:
    parts: list[str] = []
    while sum(len(part) + 1 for part in parts) < length:
        parts.append(rng.choice(SENTENCES).replace("three", rng.choice(["three", "four", "five"])))
    return " ".join(parts)[:length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--candidates", type=int, default=5, help="Candidates above the floor per lookup.")
    parser.add_argument("--rounds", type=int, default=30, help="Lookups timed per length.")
    args = parser.parse_args()
    stage = RulesStage()
    # Every rule, `negation` too (off by default): the stage's cost with all it can run.
    policy = VerifierPolicy(disabled_rules=frozenset())
    rng = random.Random(0)  # noqa: S311 - reproducible texts, not secrets
    rejected = same = pasted = 0
    print(f"rules stage, {args.candidates} candidates a lookup, median of {args.rounds} lookups")
    print(
        "| prompt length | ms per lookup | ms per candidate | same-request check, ms per lookup "
        "| choice of model, ms per lookup |"
    )
    print("|---|---|---|---|---|")
    for length in (200, 500, 1000, 4000, 20000):
        timings, checks, choices = [], [], []
        for _ in range(args.rounds):
            query = _text(length, rng)
            started = time.process_time()
            candidates = []
            for index in range(args.candidates):
                cut = compared_texts(query, f"{OPENINGS[index % len(OPENINGS)]} {query}")
                if cut is not None:
                    own = None if cut.query == query else cut.query  # as the service hands it
                    candidates.append(
                        Candidate(uuid.uuid4(), cut.stored, 0.9, query=own, cut_short=cut.cut_short)
                    )
            results = stage.check(query, candidates, policy)
            timings.append((time.process_time() - started) * 1000)
            rejected += sum(result.rejection is not None for result in results)
            started = time.process_time()
            same += sum(same_request(c.prompt, c.beside(query)) for c in candidates)
            checks.append((time.process_time() - started) * 1000)
            started = time.process_time()
            pasted += sum(shares_text(c.beside(query), c.prompt) for c in candidates)
            choices.append((time.process_time() - started) * 1000)
        median = statistics.median(timings)
        print(
            f"| {length:,} | {median:.2f} | {median / args.candidates:.2f} | {statistics.median(checks):.2f} "
            f"| {statistics.median(choices):.3f} |"
        )
    print(
        f"candidates a rule rejected: {rejected}; the same request once folded: {same}; "
        f"read by the cross-encoder for pasted texts: {pasted}"
    )


if __name__ == "__main__":
    main()
