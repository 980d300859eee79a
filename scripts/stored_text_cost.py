"""What reading the nearest entries' stored prompts costs a lookup, by prompt length.

    python scripts/stored_text_cost.py [--neighbours 20] [--rounds 5]

Before the verifier reads a candidate, the lookup normalises its stored prompt (an entry keeps the
prompt as sent) and cuts the pair to what the models read (`read_candidates` in
`app/cache/verifier/texts.py`). Here a long text is pasted with another request after it in each
stored prompt, so the entries tie, as many requests about one document do, and the lookup fetches
`--neighbours` of them (the service fetches four times top_k when the nearest tie). Each length is
timed as the service reads it (the nearest entry, then others while the stored text read stays
within STORED_CHARS_READ characters) and with no bound. It prints the median CPU time per lookup.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid

from app.cache.scope import normalise_prompt, read_text
from app.cache.verifier.texts import STORED_CHARS_READ, read_candidates

WORDS = [
    "the",
    "service",
    "returned",
    "an",
    "error",
    "after",
    "the",
    "deploy",
    "and",
    "the",
    "queue",
    "kept",
    "growing",
    "until",
]
REQUESTS = (
    "Summarise this.",
    "List the action items.",
    "What are the main risks?",
    "Draft a reply to this.",
    "Translate this into French.",
)


def _text(length: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length // 4))[:length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--neighbours", type=int, default=20, help="Tied entries fetched per lookup.")
    parser.add_argument("--rounds", type=int, default=5, help="Lookups timed per length and bound.")
    args = parser.parse_args()
    rng = random.Random(0)  # noqa: S311 - reproducible texts, not secrets
    print(f"{args.neighbours} tied entries a lookup, median of {args.rounds} lookups, CPU ms")
    print("| stored prompt length | as served | no bound |")
    print("|---|---|---|")
    for length in (4_000, 64_000, 256_000, 1_000_000):
        row = []
        for bound in (STORED_CHARS_READ, sys.maxsize):
            timings = []
            for _ in range(args.rounds):
                text = _text(length, rng)
                neighbours = [
                    (uuid.uuid4(), f"{text}\n\n{rng.choice(REQUESTS)} ({index})", 0.99)
                    for index in range(args.neighbours)
                ]
                query = read_text(normalise_prompt(f"{text}\n\nWhat should we do next?"))
                started = time.process_time()
                read_candidates(query, neighbours, 5, max_chars=bound)
                timings.append((time.process_time() - started) * 1000)
            row.append(f"{statistics.median(timings):.1f}")
        print(f"| {length:,} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
