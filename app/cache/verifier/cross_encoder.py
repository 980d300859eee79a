"""The cross-encoder stage: a model reads both prompts together and scores "same answer?"."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.cache.verifier.base import GREETING, Candidate, StageResult, VerifierPolicy, word_overlap
from app.cache.verifier.texts import LONG_PROMPT_CHARS, word_nearest_first

CROSS_ENCODER: Final = "cross_encoder"
# The stage name of the distilled model that reads the pairs before the cross-encoder. Its
# refusals carry the cross-encoder's reason: the same judgement, made sooner.
FIRST_PASS: Final = "first_pass"  # noqa: S105 - a stage name, not a secret


class PairScorer(Protocol):
    """Anything that scores prompt pairs in [0, 1]: the ONNX cross-encoder, a
    sentence-transformers CrossEncoder with a sigmoid head, a stub in tests."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.floating] | Sequence[float]: ...


@runtime_checkable
class ModelChooser(Protocol):
    """A pair scorer with more than one model, each reading the pairs it was chosen for."""

    def scorer_name(self, first: str, second: str) -> str | None:
        """The name of the model that scores this pair, when its scores are learnt apart from
        the stage's (an error bound fits a curve per name); None for the stage's own."""
        ...


# The cross-encoder reads at most this many surviving candidates per lookup (the nearest ones).
MAX_SCORED = 2


# Words a prompt may be written with or without and ask the same: contractions, a greeting, a
# polite wrapper, thanks after the request, and the openers of a how-to or where-to question
# (matched once the articles are gone: "is there way to").
_CONTRACTIONS: Final = {
    "what's": "what is",
    "whats": "what is",
    "how's": "how is",
    "where's": "where is",
    "who's": "who is",
    "it's": "it is",
    "i'm": "i am",
    "don't": "do not",
    "dont": "do not",
    "doesn't": "does not",
    "doesnt": "does not",
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "isn't": "is not",
    "isnt": "is not",
    "aren't": "are not",
    "i've": "i have",
    "there's": "there is",
    "that's": "that is",
    "we're": "we are",
    "you're": "you are",
    "they're": "they are",
    "we've": "we have",
    "you've": "you have",
    "they've": "they have",
    "i'll": "i will",
    "we'll": "we will",
    "let's": "let us",
    "didn't": "did not",
    "didnt": "did not",
    "haven't": "have not",
    "hasn't": "has not",
    "wasn't": "was not",
    "weren't": "were not",
    "shouldn't": "should not",
    "wouldn't": "would not",
    "couldn't": "could not",
}
_GREETING: Final = re.compile(rf"^(?:{GREETING}(?:\s*[,!.:;-]+\s*|\s+))+")
# Thanks closing a prompt after a mark, and "please" after a space too ("… to Spanish pls"; "How
# do I say thank you" keeps its thanks).
_THANKS: Final = re.compile(
    r"(?:\s*[,.;:!?-]+\s*(?:please|pls|plz|thanks|thank you|thx|ty|cheers|thanks in advance)[.!]*"
    r"|\s+(?:please|pls|plz)[.!]*)+$"
)
_POLITE: Final = re.compile(
    r"^(?:(?:please|pls|plz|kindly|can you|could you|would you|will you|can u|could u),?\s+)+"
)
# How a how-to or where-to question is put, wherever it stands ("is there way to": the articles
# are gone), and phrases that ask alike, each in one form (`_asked_alike`). Each pattern opens on
# one of a few letters, so that a scan of a long prompt skips the rest quickly.
_PHRASES: Final = {
    "compared to": "compared with",
    "rather than": "instead of",
    "with no": "without",
    "in order to": "to",
}
_ASKED_ALIKE: Final = re.compile(
    r"[hitwcr](?<!\w[hitwcr])(?:"
    r"(?P<how>(?<=h)(?:ow (?:can|could|would|do|should) (?:i|we|one|you)|ow does one|ow to)"
    r"|(?<=i)s there way to|(?<=t)ell me how to)"
    r"|(?P<where>(?<=w)(?:here (?:can|could|do|should) (?:i|we|one|you)|here to))"
    r"|(?<=c)ompared to|(?<=r)ather than|(?<=w)ith no|(?<=i)n order to)\b"
)
_PERCENT: Final = re.compile(r"(\d) ?(?:percent|per cent|pct)\b")


# Articles, as words of their own; "The" / "A" / "An" only at the start ("Plan A" keeps its "A").
_ARTICLES: Final = frozenset({"a", "an", "the"})
_OPENING_ARTICLES: Final = frozenset({"A", "An", "The"})
# "1,000" is "1000".
_THOUSANDS: Final = re.compile(r"(?<=\d),(?=\d{3}\b)")
# Thanks are looked for in the last this many characters only: a long prompt costs no more.
_THANKS_TAIL: Final = 80
# One word in its other spellings. British and American: "-ise" / "-ize" and "-yse" / "-yze"
# after three letters or two ("prise" and "prize" stay apart), "-our" / "-or" after three
# ("colour", "favourite"; "your" and "four" stay), and the words below. A letter typed twice or
# once ("exceeded" / "exceded", "cancelled" / "canceled"), in a word of six letters or more once
# halved ("filled" / "filed" and "latter" / "later" stay apart), read as each prompt parts its
# words. Small numbers in words ("two" / "2", "third" / "3rd"; not "one", a pronoun too). A
# word's usual short form at work ("prod" / "production", "mtg" / "meeting", "df" / "dataframe";
# not those that stand for two words, as "min", "auth" or "req").
_SPELLINGS: Final = {
    "centre": "center",
    "centres": "centers",
    "metre": "meter",
    "metres": "meters",
    "litre": "liter",
    "litres": "liters",
    "theatre": "theater",
    "fibre": "fiber",
    "catalogue": "catalog",
    "catalogues": "catalogs",
    "dialogue": "dialog",
    "analogue": "analog",
    "programme": "program",
    "programmes": "programs",
    "cheque": "check",
    "cheques": "checks",
    "grey": "gray",
    "licence": "license",
    "licences": "licenses",
    "defence": "defense",
    "offence": "offense",
    "practise": "practice",
    "ageing": "aging",
    "judgement": "judgment",
    "enrol": "enroll",
    "enrolment": "enrollment",
    "fulfil": "fulfill",
    "fulfilment": "fulfillment",
    "towards": "toward",
    "whilst": "while",
    "amongst": "among",
    "learnt": "learned",
    "aluminium": "aluminum",
    "tyre": "tire",
    "tyres": "tires",
    "plough": "plow",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "first": "1st",
    "second": "2nd",
    "third": "3rd",
    "fourth": "4th",
    "fifth": "5th",
    "prod": "production",
    "intl": "international",
    "mtg": "meeting",
    "mtgs": "meetings",
    "appt": "appointment",
    "appts": "appointments",
    "qtr": "quarter",
    "qtrs": "quarters",
    "doc": "document",
    "docs": "documents",
    "opps": "opportunities",
    "col": "column",
    "cols": "columns",
    "js": "javascript",
    "df": "dataframe",
    "dfs": "dataframes",
    "db": "database",
    "dbs": "databases",
    "vs": "versus",
    "thru": "through",
    "abt": "about",
    "msg": "message",
    "msgs": "messages",
    "dept": "department",
    "depts": "departments",
    "mgr": "manager",
    "mgrs": "managers",
    "acct": "account",
    "accts": "accounts",
    "info": "information",
    "config": "configuration",
    "configs": "configurations",
    "env": "environment",
    "envs": "environments",
    "repo": "repository",
    "repos": "repositories",
    "approx": "approximately",
    "govt": "government",
    "pkg": "package",
    "pkgs": "packages",
    "perf": "performance",
    "yr": "year",
    "yrs": "years",
    "wk": "week",
    "wks": "weeks",
    "hrs": "hours",
    "mins": "minutes",
    "secs": "seconds",
    # "What" and "which" ask alike; words that hurry or soften a request ask nothing of their own.
    "which": "what",
    **dict.fromkeys(("just", "quickly", "really", "actually", "basically", "simply"), ""),
}
_SPELT: Final = re.compile(r"[a-z]+")
# Short forms with a number in them: Kubernetes, a quarter ("Q3" / "3rd quarter", as "third
# quarter" is spelt), "vs." for "versus".
_SHORT_FORMS: Final = {
    "k8s": "kubernetes",
    "q1": "1st quarter",
    "q2": "2nd quarter",
    "q3": "3rd quarter",
    "q4": "4th quarter",
    "vs.": "versus",
}
_SHORT_FORM: Final = re.compile(r"[kqv](?<![\w.][kqv])(?:(?<=k)8s|(?<=q)[1-4]|(?<=v)s\.)(?!\w)")
# A unit of time after a number, in one form: "1-hour" / "1 hr" / "1hr", "3 days" / "3-day".
_TIME_UNITS: Final = {
    written: unit
    for unit, forms in {
        "minute": ("minute", "minutes", "min", "mins"),
        "hour": ("hour", "hours", "hr", "hrs"),
        "second": ("second", "seconds", "sec", "secs"),
        "day": ("day", "days"),
        "week": ("week", "weeks", "wk", "wks"),
        "month": ("month", "months"),
        "year": ("year", "years", "yr", "yrs"),
    }.items()
    for written in forms
}
# A number with a unit of time or "k" for thousands after it ("$5k" / "$5,000", "1.5k" /
# "1500"; a number inside a word keeps its "k": `_with_unit`).
_NUMBER_WITH_UNIT: Final = re.compile(
    rf"(?P<number>\d+(?:\.\d+)?)(?:[\s-]?(?P<unit>{'|'.join(_TIME_UNITS)})\b|k\b)"
)
_THOUSANDS_K: Final = re.compile(r"\d{1,9}(?:\.\d{1,3})?")
_ISE: Final = re.compile(
    r"(?<=[a-z]{3})is(?=(?:e|es|ed|ing|ation|ations|er|ers)$)|(?<=[a-z]{2})ys(?=(?:e|es|ed|ing|er|ers)$)"
)
_OUR: Final = re.compile(r"(?<=[a-z]{3})our(?=(?:|s|ed|ing|ite|ites|able|ful|less)$)")
_DOUBLED: Final = re.compile(r"([a-z])\1")
_HALVED_MIN: Final = 6
# How a prompt is laid out, once its words are spelt alike: "re-run" / "rerun", "time-to-hire" /
# "time to hire", "45 km" / "45km", "A/B" / "AB", "w/" for "with", quotes, brackets, and commas
# between words. A hyphen or a space between two numbers stays ("-5" is not "5", "3 4" not "34").
_WITH: Final = (
    (re.compile(r"(?<![\w/])w/o(?![\w/])"), "without "),
    (re.compile(r"(?<![\w/])w/(?![\w/])"), "with "),
)
_SLASHED_LETTERS: Final = re.compile(r"\b([a-z])/([a-z])\b")
_MARKS: Final = re.compile(r"[\"'`()\[\]\u201c\u201d\u2018]|[,.?!:;](?=\s)|(?<=\s)[-\u2013\u2014]+(?=\s)")
_HYPHEN_IN_A_WORD: Final = re.compile(r"-(?<=[a-z]-)(?=[a-z\d])|-(?<=\d-)(?=[a-z])")
_LETTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS: Final = frozenset("0123456789")
# An acronym and the words it stands for, on the two sides of a pair: capitals, two to six of
# them; the words may be joined by a space or a hyphen ("non-disclosure agreement"). Read in the
# first characters of each prompt only, and the first few acronyms: a long prompt costs no more.
_ACRONYM: Final = re.compile(r"\b[A-Z]{2,6}\b")
_ACRONYM_LINKS: Final = frozenset({"of", "on", "and", "for", "to", "in", "at", "by", "or"})
# Words no acronym stands for ("send it to his room" does not spell out "HR").
_NOT_SPELT: Final = frozenset(
    [
        "his",
        "her",
        "hers",
        "its",
        "our",
        "ours",
        "their",
        "theirs",
        "your",
        "yours",
        "my",
        "mine",
        "this",
        "that",
        "these",
        "those",
        "him",
        "them",
        "they",
        "she",
        "you",
        "we",
        "me",
        "us",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "which",
        "why",
        "how",
        "than",
        "then",
        "are",
        "was",
        "were",
        "been",
        "being",
        "has",
        "have",
        "had",
        "does",
        "did",
        "not",
        "nor",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "all",
        "any",
        "some",
        "each",
        "every",
        "both",
        "few",
        "many",
        "more",
        "most",
        "much",
        "such",
        "very",
        "just",
        "also",
        "only",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "with",
        "without",
        "about",
        "after",
        "before",
        "between",
        "out",
        "off",
        "but",
        "yet",
        "so",
        "if",
        "as",
        "one",
        "two",
    ]
)
_ACRONYM_SPAN: Final = 2_000
_ACRONYMS_READ: Final = 4
_WORD_PIECE: Final = re.compile(r"[^\W\d_]+")
_SPELT_GAP: Final = re.compile(r"[\s-]")
# A lookup folds its prompt once per candidate, and stored prompts recur from lookup to lookup;
# the latest this many foldings are kept (texts of up to about 6,000 characters: a few MB at most).
FOLDED_CACHE: Final = 256
# Words recur from prompt to prompt: the latest this many spellings are kept.
SPELLINGS_CACHE: Final = 8_192


@lru_cache(maxsize=FOLDED_CACHE)
def folded(text: str) -> str:
    """The prompt without the differences no reader would call a change: case, spacing, the
    closing punctuation, articles, "&" for "and", "1,000" for "1000", contractions, a greeting,
    "please" or "can you" before the request and thanks after it, how a how-to or where-to
    question is put ("How can I", "how to", "Is there a way to": "how do i"), phrases that ask
    alike (`_PHRASES`), a word's other spellings and short forms (`_SPELLINGS`,
    `_SHORT_FORMS`), "which" for "what", words that hurry or soften a request, a unit of time
    after a number in one form, thousands as "k", and how the words are laid out (clause marks,
    hyphens, `_joined`). A key to compare, not a text to read."""
    words = text.replace("&", " and ").replace("\u2019", "'").split()
    if words and words[0] in _OPENING_ARTICLES:
        words = words[1:]
    text = " ".join(
        _CONTRACTIONS.get(word, word) for word in (w.casefold() for w in words if w not in _ARTICLES)
    )
    if "," in text:
        text = _THOUSANDS.sub("", text)
    text = _GREETING.sub("", re.sub(r"[\s?.!]+$", "", text))
    head, tail = text[:-_THANKS_TAIL], text[-_THANKS_TAIL:]
    text = _POLITE.sub("", re.sub(r"[\s?.!,]+$", "", head + _THANKS.sub("", tail)))
    text = _PERCENT.sub(r"\1%", _ASKED_ALIKE.sub(_asked_alike, text))
    text = _SHORT_FORM.sub(lambda match: _SHORT_FORMS[match.group()], text)
    text = _NUMBER_WITH_UNIT.sub(_with_unit, text)
    text = _SPELT.sub(_spelt_alike, text)
    if "/" in text:
        for pattern, written in _WITH:
            text = pattern.sub(written, text)
        text = _SLASHED_LETTERS.sub(r"\1\2", text)
    return _joined(_HYPHEN_IN_A_WORD.sub("", _MARKS.sub("", text)))


def _joined(text: str) -> str:
    """The words written together where a space parts two letters, a letter and a number, or a
    number and a letter; kept between two numbers and beside any other mark."""
    parts = text.split()
    out = parts[:1]
    for before, part in itertools.pairwise(parts):
        last, first = before[-1], part[0]
        together = (last in _LETTERS and (first in _LETTERS or first in _DIGITS)) or (
            last in _DIGITS and first in _LETTERS
        )
        out.append(part if together else " " + part)
    return "".join(out)


def _asked_alike(match: re.Match[str]) -> str:
    if match.group("how") is not None:
        return "how do i"
    if match.group("where") is not None:
        return "where do i"
    return _PHRASES[match.group()]


def _with_unit(match: re.Match[str]) -> str:
    number, unit = match.group("number", "unit")
    if unit is not None:
        return f"{number} {_TIME_UNITS[unit]}"
    start = match.start()
    before = match.string[start - 1] if start else " "
    if before == "." or before.isalnum() or before == "_" or not _THOUSANDS_K.fullmatch(number):
        return match.group()
    return format((Decimal(number) * 1000).normalize(), "f")


def _spelt_alike(match: re.Match[str]) -> str:
    return _spelling(match.group())


@lru_cache(maxsize=SPELLINGS_CACHE)
def _spelling(word: str) -> str:
    """The one spelling `folded` gives a word (`_SPELLINGS`)."""
    # A word the list respells is then spelt as any other: "fulfil" and "fulfill" fold alike.
    word = _SPELLINGS.get(word, word)
    if len(word) < _HALVED_MIN:
        return word
    word = _OUR.sub("or", _ISE.sub(lambda m: m.group()[0] + "z", word))
    halved = _DOUBLED.sub(r"\1", word)
    return halved if len(halved) >= _HALVED_MIN else word


def same_request(first: str, second: str) -> bool:
    """The two prompts are one request but for what `folded` leaves out, or for an acronym one
    of them spells out ("Summarise this NDA" / "Summarise this non-disclosure agreement")."""
    if folded(first) == folded(second):
        return True
    for text, other in ((first, second), (second, first)):
        for acronym in dict.fromkeys(_ACRONYM.findall(text[:_ACRONYM_SPAN])[:_ACRONYMS_READ]):
            spelt = _spelt_out(acronym, other)
            if spelt is not None and folded(text) == folded(spelt):
                return True
    return False


def _spelt_out(acronym: str, text: str) -> str | None:
    """`text` with the first words whose initials spell `acronym` written as it: words of three
    letters or more that can stand in a name (not "his", "that", "with" ...), with "of", "and",
    "on" ... between them ("return on investment"), and not themselves in capitals; None without
    them."""
    letters = acronym.casefold()
    words = list(_WORD_PIECE.finditer(text[:_ACRONYM_SPAN]))
    for start in range(len(words) - len(letters) + 1):
        run = words[start : start + len(letters)]
        pieces = [word.group() for word in run]
        if (
            all(piece[0].casefold() == letter for piece, letter in zip(pieces, letters, strict=True))
            and all(
                (len(piece) >= 3 and piece.casefold() not in _NOT_SPELT) or piece.casefold() in _ACRONYM_LINKS
                for piece in pieces
            )
            and pieces[0].casefold() not in _ACRONYM_LINKS
            and pieces[-1].casefold() not in _ACRONYM_LINKS
            and not any(piece.isupper() for piece in pieces)
            and all(_SPELT_GAP.fullmatch(text[a.end() : b.start()]) for a, b in itertools.pairwise(run))
        ):
            return text[: run[0].start()] + acronym + text[run[-1].end() :]
    return None


def _is_same(query: str, candidate: Candidate) -> bool:
    """The candidate is the prompt itself but for what `folded` leaves out. For two
    cuts that stop before the prompts' end (`Candidate.cut_short`) only case may differ: their
    ends are not the prompts' ends, and a space at a cut may be one the other prompt lacks."""
    if candidate.cut_short:
        return candidate.prompt.casefold() == candidate.beside(query).casefold()
    return same_request(candidate.prompt, candidate.beside(query))


def _same_prompt(query: str, candidates: Sequence[Candidate]) -> bool:
    return any(_is_same(query, c) for c in candidates)


def _to_read(query: str, candidates: Sequence[Candidate], policy: VerifierPolicy) -> list[Candidate]:
    """The candidates a model reads: the nearest `MAX_SCORED` at or above the strict cosine, or,
    when none is, the nearest below it; for a long prompt, among those the embedder could not
    tell apart, the nearest in words first (`word_nearest_first`).

    Candidates come best cosine first; the model's cost grows with every pair it reads, and a
    prompt's true paraphrase is almost always among the nearest two survivors. Those below the
    strict cosine are read only when no survivor is above it, and those below the far cosine only
    when no survivor is above that: they are served only when the model is very sure, and would
    cost a pair on most hits.
    """
    above = [c for c in candidates if c.similarity >= policy.cross_encoder_strict_below]
    if not above:
        above = [c for c in candidates if c.similarity >= policy.cross_encoder_far_below]
    return word_nearest_first(query, above or candidates)[:MAX_SCORED]


def _threshold(query: str, candidate: Candidate, policy: VerifierPolicy) -> float | None:
    """The lowest probability served for this candidate (`VerifierPolicy.cross_encoder_threshold`):
    surer below the strict cosine, surer still below the far one, less so for a rewording near
    cosine 1."""
    reworded_range = candidate.similarity >= policy.cross_encoder_reworded_above
    overlap = word_overlap(candidate.beside(query), candidate.prompt) if reworded_range else 1.0
    return policy.cross_encoder_threshold(candidate.similarity, overlap)


def _scores(scorer: PairScorer, query: str, candidates: Sequence[Candidate]) -> npt.NDArray[np.float64]:
    scores = np.asarray(scorer.score([(c.beside(query), c.prompt) for c in candidates]), dtype=np.float64)
    if scores.shape != (len(candidates),):
        raise ValueError(f"pair scorer returned shape {scores.shape} for {len(candidates)} pairs")
    return scores


class CrossEncoderStage:
    """Reads the nearest surviving candidates (`_to_read`) one at a time, nearest first, and stops
    at the first whose probability reaches the policy's threshold for its cosine
    (`VerifierPolicy.cross_encoder_threshold`); the candidates before it are refused, those after
    it are not read. On a CPU a pair costs the same alone as in a batch, and the nearest candidate
    is the one served on most hits, so most hits cost one pair. With `nearest_first` off it reads
    them all in one call and the chain serves its favourite.

    Pairs are (new prompt, stored prompt), the order the model is trained on.
    """

    name: str = CROSS_ENCODER

    def __init__(self, scorer: PairScorer) -> None:
        self.scorer = scorer
        # Which model scored each pair, when the scorer has more than one.
        self._chooser = scorer if isinstance(scorer, ModelChooser) else None

    def enabled(self, policy: VerifierPolicy) -> bool:
        return policy.cross_encoder_min_score is not None

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        if policy.cross_encoder_min_score is None or not candidates:
            return [StageResult() for _ in candidates]
        # The same prompt but for what `folded` leaves out needs no model: it is served with full confidence,
        # and the other candidates are refused unread.
        if _same_prompt(query, candidates):
            return [
                StageResult(score=1.0) if _is_same(query, c) else StageResult(rejection=CROSS_ENCODER)
                for c in candidates
            ]
        to_read = _to_read(query, candidates, policy)
        calls = [[c] for c in to_read] if policy.nearest_first else [to_read]
        results: dict[uuid.UUID, StageResult] = {}
        for call in calls:
            if self._read(query, call, policy, results) and policy.nearest_first:
                break
        # A candidate the model did not read is refused in its name.
        return [results.get(c.entry_id, StageResult(rejection=CROSS_ENCODER)) for c in candidates]

    def check_screened(
        self,
        query: str,
        candidates: Sequence[Candidate],
        policy: VerifierPolicy,
        passes: Callable[[int], bool],
    ) -> Sequence[StageResult] | None:
        """`check` on the candidates that get past the screen before it (`passes`), asking about
        each only as it comes to it: the nearest survivor of the nearest cosine band (`_to_read`),
        then, if the model refuses it, the next, up to `MAX_SCORED`. None where `check` must see
        every survivor: a long prompt (whose ties it orders by words) or a candidate that is the
        prompt itself but for its spelling."""
        if policy.cross_encoder_min_score is None or not candidates:
            return [StageResult() for _ in candidates]
        if len(query) >= LONG_PROMPT_CHARS or any(_is_same(query, c) for c in candidates):
            return None
        to_read: list[Candidate] = []
        band: int | None = None
        results: dict[uuid.UUID, StageResult] = {}
        for position, candidate in enumerate(candidates):  # best cosine first
            # Only the first survivor's band is read (`_to_read`): once past it, nothing more is.
            if band is not None and _band(candidate, policy) != band:
                break
            if not passes(position):
                continue
            band = _band(candidate, policy)
            to_read.append(candidate)
            if policy.nearest_first and self._read(query, [candidate], policy, results):
                break
            if len(to_read) == MAX_SCORED:
                break
        if not policy.nearest_first and to_read:
            self._read(query, to_read, policy, results)
        return [results.get(c.entry_id, StageResult(rejection=CROSS_ENCODER)) for c in candidates]

    def _read(
        self,
        query: str,
        call: Sequence[Candidate],
        policy: VerifierPolicy,
        results: dict[uuid.UUID, StageResult],
    ) -> bool:
        """Scores one call's pairs into `results`; whether it serves one of them."""
        chooser = self._chooser
        served_one = False
        for candidate, score in zip(call, _scores(self.scorer, query, call), strict=True):
            threshold = _threshold(query, candidate, policy)
            served = threshold is not None and score >= threshold
            served_one |= served
            results[candidate.entry_id] = StageResult(
                score=float(score),
                rejection=None if served else CROSS_ENCODER,
                scorer=None
                if chooser is None
                else chooser.scorer_name(candidate.beside(query), candidate.prompt),
            )
        return served_one


def _band(candidate: Candidate, policy: VerifierPolicy) -> int:
    """0 at or above the strict cosine, 1 at or above the far one, 2 below: `_to_read` reads the
    survivors of the nearest band that has any."""
    if candidate.similarity >= policy.cross_encoder_strict_below:
        return 0
    if candidate.similarity >= policy.cross_encoder_far_below:
        return 1
    return 2


@dataclass(frozen=True, slots=True)
class FirstPassBand:
    """Where a small model's word is final: a probability below `reject_below` refuses, one at or
    above `serve_above` serves; in between, the cross-encoder reads the pair. Chosen on validation
    slices so that the two models together decide as the cross-encoder alone
    (`deja verifier distil`)."""

    reject_below: float
    serve_above: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.reject_below <= self.serve_above <= 1.0:
            raise ValueError(f"first-pass band must hold 0 <= reject_below <= serve_above <= 1: {self}")


def read_band(first_pass_dir: Path, cross_encoder_model: Path) -> FirstPassBand | None:
    """The band in `first_pass_dir/band.json`, when that directory holds a first pass distilled from
    the cross-encoder in `cross_encoder_model` (band.json names it by its SHA-256); None otherwise,
    a band.json that cannot be read included."""
    band_path = first_pass_dir / "band.json"
    if not all((first_pass_dir / name).is_file() for name in ("model.onnx", "tokenizer.json", "band.json")):
        return None
    try:
        band = json.loads(band_path.read_text(encoding="utf-8"))
        if hashlib.sha256(cross_encoder_model.read_bytes()).hexdigest() != band["cross_encoder_sha256"]:
            return None
        return FirstPassBand(reject_below=float(band["reject_below"]), serve_above=float(band["serve_above"]))
    except (OSError, ValueError, KeyError, TypeError):  # unreadable, or not a band written by distil
        return None


class FirstPassStage:
    """A smaller model distilled from the cross-encoder reads the pairs first, at a fraction of the
    cost (two layers: 1.43 against 3.26 ms a pair, docs/quality.md). Where it is sure, it decides:
    it refuses below its band (or the candidate's threshold, whichever is lower) and serves above
    it (and at or above the threshold); the cross-encoder then reads only the pairs left in
    between. It reads the candidates the cross-encoder would read, in the same way: nearest first
    (`nearest_first`), stopping at the first it serves (the later ones are refused unread) or is
    unsure of (the later ones wait for the cross-encoder's word on it), or all in one call. So the
    two stages together serve what the cross-encoder alone would. Its scores, where it decides,
    stand for the cross-encoder's (the verdict's score): a policy that must grade hits by the
    cross-encoder's own score turns it off (`VerifierPolicy.first_pass`).
    """

    name: str = FIRST_PASS

    def __init__(
        self, scorer: PairScorer, band: FirstPassBand, reads: Callable[[str, str], bool] | None = None
    ) -> None:
        self.scorer = scorer
        self.band = band
        # Which pairs (as the models read them) it may decide: those its cross-encoder reads. The
        # others are left to the cross-encoder, unread, as pairs it is unsure of.
        self.reads = reads

    def enabled(self, policy: VerifierPolicy) -> bool:
        return policy.first_pass and policy.cross_encoder_min_score is not None

    def _decide(self, query: str, candidate: Candidate, score: float, policy: VerifierPolicy) -> StageResult:
        threshold = _threshold(query, candidate, policy)
        if threshold is None:
            return StageResult(score=score)
        if score < min(self.band.reject_below, threshold):
            return StageResult(score=score, rejection=CROSS_ENCODER)
        if score >= max(self.band.serve_above, threshold):
            return StageResult(score=score, settled=True)
        return StageResult(score=score)

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]:
        if not self.enabled(policy) or not candidates or _same_prompt(query, candidates):
            return [StageResult() for _ in candidates]
        read = _to_read(query, candidates, policy)
        calls = [[c] for c in read] if policy.nearest_first else [read]
        results = {}
        for index, call in enumerate(calls):
            own = [c for c in call if self.reads is None or self.reads(c.beside(query), c.prompt)]
            for candidate, score in zip(own, _scores(self.scorer, query, own) if own else (), strict=True):
                results[candidate.entry_id] = self._decide(query, candidate, float(score), policy)
            for candidate in call:
                results.setdefault(candidate.entry_id, StageResult())
            decided = results[call[0].entry_id]
            if policy.nearest_first and decided.rejection is None:
                if not decided.settled:
                    # Unsure: the later candidates wait, unread, for the cross-encoder's word.
                    results |= {later.entry_id: StageResult() for later in read[index + 1 :]}
                break
        return [results.get(c.entry_id, StageResult(rejection=CROSS_ENCODER)) for c in candidates]
