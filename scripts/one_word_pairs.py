"""How the verifier's training rows label pairs whose two prompts differ by a word or two.

    python scripts/one_word_pairs.py [DATA_DIR] [--rewording-pairs N]

Loads the training rows of `deja verifier train` at its defaults (without the mined look-alikes,
which need the embedder), compares each pair's two prompts word by word (case-blind, punctuation
left out, prompts of up to 40 words) and counts, by label, the pairs that differ by one word and by
two, and the pairs whose one difference is one preposition traded for another ("in" / "at",
"to" / "from"). A model learns what such pairs teach: if nearly every one-word change it reads is
another request, it refuses a request with one word changed.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import re
from pathlib import Path

from app.toolkit.ml.train import TrainConfig, load_splits

PREPOSITIONS = frozenset({"in", "at", "on", "for", "to", "of", "from", "by", "with", "about", "into", "onto"})
_WORD = re.compile(r"[\w'-]+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir", type=Path, nargs="?", default=Path("../shared/data"))
    parser.add_argument("--rewording-pairs", type=int, default=0, help="As `deja verifier train`.")
    args = parser.parse_args()
    splits = load_splits(TrainConfig(data_dir=args.data_dir, rewording_pairs=args.rewording_pairs))
    changed_words: collections.Counter[tuple[int, int]] = collections.Counter()
    one_preposition: collections.Counter[int] = collections.Counter()
    for first, second, label in splits.train:
        words_a, words_b = _WORD.findall(first.lower()), _WORD.findall(second.lower())
        if len(words_a) > 40 or len(words_b) > 40:
            continue
        changes = [
            op
            for op in difflib.SequenceMatcher(a=words_a, b=words_b, autojunk=False).get_opcodes()
            if op[0] != "equal"
        ]
        changed = sum(max(a_end - a_start, b_end - b_start) for _, a_start, a_end, b_start, b_end in changes)
        if 1 <= changed <= 2:
            changed_words[(changed, int(label))] += 1
        if changed == 1 and changes[0][0] == "replace":
            _, a_start, _, b_start, _ = changes[0]
            if words_a[a_start] in PREPOSITIONS and words_b[b_start] in PREPOSITIONS:
                one_preposition[int(label)] += 1
    print(f"{len(splits.train)} training rows (without mined look-alikes)")
    for changed in (1, 2):
        print(
            f"  {changed} word(s) changed: {changed_words[(changed, 0)]} negatives, "
            f"{changed_words[(changed, 1)]} positives"
        )
    print(f"  one preposition traded: {one_preposition[0]} negatives, {one_preposition[1]} positives")


if __name__ == "__main__":
    main()
