"""Light rewordings that never change what a prompt asks, made from real prompts.

Most training pairs whose two prompts differ by a single word are negatives: a PAWS swap, a
direction reversed ("to" for "from"), an opposite, another entity. Trained on them alone the
verifier learnt that one changed word makes another request: it refused "... in the London
office?" beside "... at the London office?" (probability 0.03).
The edits here change a word or two and keep the answer:

- a contraction: "who is" -> "who's", "do not" -> "don't" (pairs are read in both orders, so one
  direction teaches both);
- a place's preposition: "in the Berlin office" <-> "at the Berlin office", for nouns of places
  one works in or visits (office, site, warehouse, ...);
- a spelling of a compound: "e-mail" / "email", "follow-up" / "follow up", "set-up" / "setup";
- a question's opener: "how do I" / "how can I", "can you" / "could you", "which X" / "what X";
- a final question mark or full stop dropped (only beside another edit).

`rewording_pairs` makes a pair of a sentence and that sentence with one to three of the edits
that apply to it (label 1). `overlaid` lays the same edits over the changed side of other
pairs (the order and role transformations of `app.toolkit.ml.swaps`), whose label they keep:
an edit alone never tells the label, the rest of the pair does.

Every function is deterministic for its seed or random generator.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from app.toolkit.ml.swaps import SwapPair

CONTRACTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("who is", "who's"),
    ("what is", "what's"),
    ("where is", "where's"),
    ("when is", "when's"),
    ("how is", "how's"),
    ("that is", "that's"),
    ("there is", "there's"),
    ("it is", "it's"),
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("was not", "wasn't"),
    ("were not", "weren't"),
    ("cannot", "can't"),
    ("can not", "can't"),
    ("will not", "won't"),
    ("would not", "wouldn't"),
    ("should not", "shouldn't"),
    ("could not", "couldn't"),
    ("have not", "haven't"),
    ("has not", "hasn't"),
    ("i am", "I'm"),
    ("we are", "we're"),
    ("they are", "they're"),
    ("you are", "you're"),
    ("i have", "I've"),
    ("we have", "we've"),
    ("let us", "let's"),
)
# A contraction only before another word: "Who is?" stays.
_CONTRACTION: Final = [
    (re.compile(rf"\b{re.escape(long)}\b(?= [\w$€£])", re.IGNORECASE), short) for long, short in CONTRACTIONS
]

PLACES: Final[tuple[str, ...]] = (
    "office",
    "offices",
    "building",
    "site",
    "campus",
    "branch",
    "store",
    "shop",
    "warehouse",
    "plant",
    "factory",
    "lab",
    "laboratory",
    "headquarters",
    "HQ",
    "facility",
    "data center",
    "datacenter",
    "hospital",
    "clinic",
    "hotel",
    "airport",
    "depot",
    "studio",
    "showroom",
    "branch office",
    "distribution center",
    "call center",
)
_PLACE: Final = re.compile(
    r"\b(?P<prep>in|at) (?P<det>the|our|your|my|their|his|her) (?P<name>(?:[\w&.'-]+ ){0,2}?)"
    rf"(?P<place>{'|'.join(sorted(PLACES, key=len, reverse=True))})"
    # The place itself, not a word it qualifies ("the office lease", "the warehouse fire"): what
    # follows ends the phrase.
    r"(?=[,.;:?!)]|$| (?:in|at|on|for|to|of|with|from|by|during|and|or|but|this|next|last|today|"
    r"tonight|tomorrow|yesterday|now|when|while|before|after|since|until|where|who|that|is|are|was|"
    r"were|get|gets|have|has|do|does|can|could|should|will|would)\b)",
    re.IGNORECASE,
)

COMPOUNDS: Final[tuple[tuple[str, str], ...]] = (
    ("e-mail", "email"),
    ("e-mails", "emails"),
    ("follow-up", "follow up"),
    ("log-in", "login"),
    ("sign-in", "sign in"),
    ("sign-up", "sign up"),
    ("set-up", "setup"),
    ("check-in", "check in"),
    ("roll-out", "rollout"),
    ("back-up", "backup"),
    ("co-worker", "coworker"),
    ("co-workers", "coworkers"),
    ("to-do", "to do"),
    ("up-to-date", "up to date"),
    ("time-off", "time off"),
    ("on-site", "onsite"),
    ("off-site", "offsite"),
    ("web-site", "website"),
    ("day-to-day", "day to day"),
    ("re-run", "rerun"),
    ("hand-off", "handoff"),
)
_COMPOUND: Final = [
    (re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE), b) for a, b in COMPOUNDS if "-" in a
] + [(re.compile(rf"\b{re.escape(b)}\b", re.IGNORECASE), a) for a, b in COMPOUNDS if "-" in a]

OPENERS: Final[tuple[tuple[str, str], ...]] = (
    ("how do I", "how can I"),
    ("how do we", "how can we"),
    ("how do you", "how can you"),
    ("can you", "could you"),
    ("can you", "would you"),
    ("could you", "would you"),
)
_OPENER: Final = [(re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE), b) for a, b in OPENERS] + [
    (re.compile(rf"\b{re.escape(b)}\b", re.IGNORECASE), a) for a, b in OPENERS
]
# "Which team owns X?" / "What team owns X?": a question word before a noun, never before a verb
# or a pronoun ("which is", "what do").
_WHICH: Final = re.compile(
    r"\b(?P<word>which|what) (?!(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have|"
    r"had|of|i|you|we|they|he|she|it|the|a|an|to|if|kind|type|sort)\b)(?=[a-z]{3,} )",
    re.IGNORECASE,
)


def _keep_case(original: str, replacement: str) -> str:
    if original[:1].isupper() and replacement[:1].islower():
        return replacement[:1].upper() + replacement[1:]
    if original[:1].islower() and replacement[:1].isupper() and not replacement.startswith("I'"):
        return replacement[:1].lower() + replacement[1:]
    return replacement


def _first(text: str, rng: random.Random, patterns: Sequence[tuple[re.Pattern[str], str]]) -> str | None:
    applicable = [(pattern, short) for pattern, short in patterns if pattern.search(text)]
    if not applicable:
        return None
    pattern, replacement = rng.choice(applicable)
    matches = list(pattern.finditer(text))
    match = rng.choice(matches)
    return text[: match.start()] + _keep_case(match.group(0), replacement) + text[match.end() :]


def contract(text: str, rng: random.Random) -> str | None:
    """'Who is the owner of X?' -> 'Who's the owner of X?'."""
    return _first(text, rng, _CONTRACTION)


def place_preposition(text: str, rng: random.Random) -> str | None:
    """'in the Berlin office' <-> 'at the Berlin office'."""
    matches = list(_PLACE.finditer(text))
    if not matches:
        return None
    match = rng.choice(matches)
    other = "at" if match.group("prep").lower() == "in" else "in"
    start, end = match.span("prep")
    return text[:start] + _keep_case(match.group("prep"), other) + text[end:]


def compound(text: str, rng: random.Random) -> str | None:
    """'on-call' <-> 'on call', 'e-mail' <-> 'email'."""
    return _first(text, rng, _COMPOUND)


def opener(text: str, rng: random.Random) -> str | None:
    """'How do I ...' <-> 'How can I ...', 'Can you ...' <-> 'Could you ...', 'Which X' <-> 'What X'."""
    which = list(_WHICH.finditer(text))
    if which and rng.random() < 0.5:
        match = rng.choice(which)
        other = "what" if match.group("word").lower() == "which" else "which"
        start, end = match.span("word")
        return text[:start] + _keep_case(match.group("word"), other) + text[end:]
    return _first(text, rng, _OPENER)


def drop_final_mark(text: str, rng: random.Random) -> str | None:
    """'... this week?' -> '... this week'."""
    stripped = text.rstrip()
    if stripped.endswith(("?", ".")) and not stripped.endswith(".."):
        return stripped[:-1].rstrip()
    return None


EDITS: Final[tuple[Callable[[str, random.Random], str | None], ...]] = (
    contract,
    place_preposition,
    compound,
    opener,
)


@dataclass(frozen=True)
class Edited:
    text: str
    kinds: tuple[str, ...]


def reword(text: str, rng: random.Random, *, most: int = 3) -> Edited | None:
    """`text` with one to `most` of the edits that apply to it, or None when none does."""
    edits = list(EDITS)
    rng.shuffle(edits)
    wanted = rng.randint(1, most)
    current = text
    kinds: list[str] = []
    for edit in edits:
        changed = edit(current, rng)
        if changed is not None and changed != current:
            current, kinds = changed, [*kinds, edit.__name__]
            if len(kinds) == wanted:
                break
    if not kinds:
        return None
    if rng.random() < 0.3:
        dropped = drop_final_mark(current, rng)
        if dropped is not None:
            current, kinds = dropped, [*kinds, drop_final_mark.__name__]
    return Edited(current, tuple(kinds))


def rewording_pairs(sentences: Iterable[str], seed: int, count: int) -> list[SwapPair]:
    """Up to `count` pairs of a sentence and its rewording (label 1), no edit leading more than a
    third of them (contractions apply to most questions)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    unique = sorted({" ".join(s.split()) for s in sentences if 3 <= len(s.split()) <= 60})
    rng.shuffle(unique)
    cap = max(1, count // 3)
    taken: dict[str, int] = {}
    pairs: list[SwapPair] = []
    for text in unique:
        if len(pairs) == count:
            break
        edited = reword(text, rng)
        if edited is None or taken.get(edited.kinds[0], 0) >= cap:
            continue
        taken[edited.kinds[0]] = taken.get(edited.kinds[0], 0) + 1
        first, second = (text, edited.text) if rng.random() < 0.5 else (edited.text, text)
        pairs.append(SwapPair(first, second, 1, "rewording:" + "+".join(edited.kinds)))
    return pairs


def overlaid(pairs: Sequence[SwapPair], seed: int, count: int) -> list[SwapPair]:
    """Up to `count` of `pairs` with light edits laid over their second side, label kept."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    order = list(range(len(pairs)))
    rng.shuffle(order)
    out: list[SwapPair] = []
    for index in order:
        if len(out) == count:
            break
        pair = pairs[index]
        edited = reword(pair.second, rng, most=2)
        if edited is None:
            continue
        out.append(SwapPair(pair.first, edited.text, pair.label, f"{pair.kind}+rewording"))
    return out
