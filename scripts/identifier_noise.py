"""Whether the hit decision on a pair moves with an identifier the pair names.

    python scripts/identifier_noise.py [--draws N=200] [--seed S=0] [--verifier-dir DIR]

A request about one ticket, order, office or server, reworded, asks the same whatever the
identifier both prompts name; the same request about two identifiers asks something else,
whatever they are. So neither decision should depend on which identifiers are drawn. For each of
a few workplace requests and each kind of identifier (six hex digits, a number, a tracker key), N
identifiers are drawn (seeded) and two pairs go through the chain at the default settings as a
lookup reads them (the prompts normalised, the cosine of the served embedder, the rules, the
cross-encoder): the request stored and its rewording looked up with the same identifier (a
paraphrase: it should be served), and the request looked up with another identifier (a
look-alike: it should not). Prints, per request and kind, the paraphrases refused, with the
cross-encoder's lowest and median score on them, and the look-alikes served; in all, how many
look-alikes the rules left to the cross-encoder; then each pair decided wrongly.
"""

from __future__ import annotations

import argparse
import random
import uuid
from pathlib import Path

import numpy as np

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR, OnnxCrossEncoder, OnnxEmbedder
from app.cache.scope import indentation, normalise_prompt, read_text
from app.cache.verifier import CROSS_ENCODER, Verdict, Verifier, VerifierPolicy, build_verifier
from app.cache.verifier.texts import model_text, read_candidates

# A request with its identifier's place ({}), and a rewording of it.
REQUESTS: tuple[tuple[str, str], ...] = (
    ("What is the door code of office {}?", "Tell me the door code of office {}?"),
    ("What's the status of ticket {}?", "Can you tell me the status of ticket {}?"),
    ("Summarise pull request {} for me", "Give me a summary of pull request {}"),
    ("Who is assigned to incident {}?", "Which person is assigned to incident {}?"),
    ("When will order {} be delivered?", "What is the delivery date for order {}?"),
    ("How do I restart server {}?", "How can I restart server {}?"),
)
KINDS: tuple[str, ...] = ("hex", "number", "tracker key")


def identifier(kind: str, rng: random.Random) -> str:
    if kind == "hex":
        return f"{rng.getrandbits(24):06x}"
    if kind == "number":
        return str(rng.randint(1000, 99999))
    return f"{rng.choice(['INC', 'OPS', 'BILL', 'SEC', 'DATA'])}-{rng.randint(10, 9999)}"


class Lookup:
    """One stored prompt and one looked up, decided as the service decides them."""

    def __init__(self, verifier_dir: Path) -> None:
        self.embedder = OnnxEmbedder(threads=1)
        self.verifier: Verifier = build_verifier(OnnxCrossEncoder(verifier_dir, threads=1))
        self.policy = VerifierPolicy()

    def verdict(self, stored: str, asked: str) -> Verdict | None:
        normalised = normalise_prompt(asked)
        new = read_text(normalised)
        vectors = self.embedder.embed([new, read_text(normalise_prompt(stored))])
        cosine = float(vectors[0] @ vectors[1])
        candidates = read_candidates(new, [(uuid.uuid4(), stored, cosine)], 1, layout=indentation(normalised))
        if not candidates:
            return None
        return self.verifier.decide(model_text(new), candidates, self.policy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--draws", type=int, default=200, help="identifiers drawn per request and kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verifier-dir", type=Path, default=DEFAULT_VERIFIER_DIR)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible draws, not secrets
    lookup = Lookup(args.verifier_dir)
    refused_all = served_all = read_all = 0
    wrong: list[str] = []
    print(f"{args.draws} identifiers per request and kind; paraphrases refused, look-alikes served")
    for stored_form, asked_form in REQUESTS:
        for kind in KINDS:
            refused = served = 0
            scores = []
            for _ in range(args.draws):
                one, other = identifier(kind, rng), identifier(kind, rng)
                paraphrase = lookup.verdict(stored_form.format(one), asked_form.format(one))
                if paraphrase is None or not paraphrase.hit:
                    refused += 1
                    wrong.append(
                        f"paraphrase refused: {asked_form.format(one)!r} / {stored_form.format(one)!r}"
                    )
                if paraphrase is not None and CROSS_ENCODER in paraphrase.reports[0].scores:
                    scores.append(paraphrase.reports[0].scores[CROSS_ENCODER])
                if one != other:
                    look_alike = lookup.verdict(stored_form.format(one), stored_form.format(other))
                    read_all += look_alike is not None and CROSS_ENCODER in look_alike.reports[0].scores
                    if look_alike is not None and look_alike.hit:
                        served += 1
                        wrong.append(
                            f"look-alike served: {stored_form.format(other)!r} / {stored_form.format(one)!r}"
                        )
            refused_all, served_all = refused_all + refused, served_all + served
            read = (
                f"cross-encoder lowest {min(scores):.3f}, median {float(np.median(scores)):.3f}"
                if scores
                else "cross-encoder not run"
            )
            print(f"  {stored_form:40s} {kind:11s} refused {refused:3d}  served {served:3d}  ({read})")
    pairs = args.draws * len(REQUESTS) * len(KINDS)
    print(
        f"in all: {refused_all} of {pairs} paraphrases refused ({refused_all / pairs:.2%}), "
        f"{served_all} of {pairs} look-alikes served ({served_all / pairs:.2%}); "
        f"the cross-encoder read {read_all} of the look-alikes (the rules refused the rest unread)"
    )
    for line in wrong:
        print(f"  {line}")


if __name__ == "__main__":
    main()
