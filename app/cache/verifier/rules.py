"""Cheap checks for what sentence embeddings miss.

Two prompts can sit at cosine 0.95 and still need different answers: "convert 5 km to
miles" and "convert 5 miles to km", "5 tickets" and "50 tickets", "with nuts" and "without
nuts". Each rule here is a pure function of the two prompts that returns a rejection reason
or None. They encode general facts of English (what a quantity, a negation, a name or a
direction looks like) and err towards keeping a pair: a rule that rejects a true paraphrase
costs a hit, and the cross-encoder behind them sees what they let through.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from difflib import SequenceMatcher
from functools import lru_cache, wraps
from types import MappingProxyType
from typing import Final, Protocol, TypeVar, cast

from app.cache.verifier.base import GREETING, shared_ends

Rule = Callable[[str, str], str | None]

NUMBER: Final = "number"
TIME: Final = "time"
NEGATION: Final = "negation"
ENTITY: Final = "entity"
DIRECTION: Final = "direction"
ANTONYM: Final = "antonym"
ORDER: Final = "order"
CODE: Final = "code"

# Every analysis of one text (its tokens, numbers, names, directions...) is cached: a lookup
# checks one prompt against several candidates, and the stored prompts near a tenant's traffic
# recur from lookup to lookup. Each result is immutable, so a cached one is shared safely. Only
# texts (or token tuples) of up to CACHED_CHARS characters are kept, so that the caches' memory
# stays bounded (tens of MB) whatever the prompts. A longer text's analyses are kept only for
# one decision (`one_decision`): every rule reads the prompt and each candidate several times.
TEXT_CACHE: Final = 1024
CACHED_CHARS: Final = 512
# Words are cached apart, more of them, each up to WORD_CHARS characters.
WORD_CACHE: Final = 4096
WORD_CHARS: Final = 40


class _Key(Sized, Hashable, Protocol):
    """A text, or a tuple of its tokens."""


_Text = TypeVar("_Text", bound=_Key)
_Analysis = TypeVar("_Analysis")


def _characters(key: _Key) -> int:
    if isinstance(key, str):
        return len(key)
    return sum(len(part) for part in cast("tuple[str, ...]", key))


# The analyses of long texts made during the decision in progress, by (function, text).
_DECISION: ContextVar[dict[tuple[object, object], object] | None] = ContextVar("rules_decision", default=None)


@contextmanager
def one_decision() -> Iterator[None]:
    """Within the block, each analysis of a text too long for the caches is made once and kept
    until the block ends (a block inside another shares the outer one's)."""
    if _DECISION.get() is not None:
        yield
        return
    token = _DECISION.set({})
    try:
        yield
    finally:
        _DECISION.reset(token)


def _per_text(
    maxsize: int = TEXT_CACHE, max_chars: int = CACHED_CHARS
) -> Callable[[Callable[[_Text], _Analysis]], Callable[[_Text], _Analysis]]:
    """A function of one text (or token tuple) with its results for the last `maxsize` keys of up to
    `max_chars` characters kept; a longer key's result is kept for the decision in progress."""

    def decorate(function: Callable[[_Text], _Analysis]) -> Callable[[_Text], _Analysis]:
        cached = lru_cache(maxsize=maxsize)(function)

        @wraps(function)
        def analyse(text: _Text) -> _Analysis:
            if _characters(text) <= max_chars:
                return cached(text)
            decision = _DECISION.get()
            if decision is None:
                return function(text)
            key = (function, text)
            if key not in decision:
                decision[key] = function(text)
            return cast("_Analysis", decision[key])

        return analyse

    return decorate


# ---------------------------------------------------------------------------------------
# Text preparation


@_per_text()
def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # "García" and "Garcia", "Süper" and "Super" name the same thing.
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    # ``quoted'' is how TeX and some corpora write "quoted".
    text = text.replace("``", '"').replace("''", '"')
    text = re.sub(r"\bdeg(?:ree)?s?\.?\s+(celsius|centigrade|fahrenheit)\b", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(r"[°º]\s*F\b", " fahrenheit", text)
    text = re.sub(r"[°º]\s*C\b", " celsius", text)
    text = re.sub(r"[°º]", " degrees", text)
    # Arrows read as "to": "JPEG→PNG" is "JPEG to PNG". A match starts only where a run of spaces
    # does: tried from inside a long run, the spaces before the arrow would be read again each time.
    return re.sub(r"(?<!\s)\s*(?:→|->|=>|⟶)\s*", " to ", text)


_TOKEN: Final = re.compile(
    r"(?P<num>(?<![\w.])(?<![A-Za-z]-)[vV]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)*)(?P<glued>[A-Za-z%]+)?"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)?)"
    r"|(?P<sym>[$€£¥%])"
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "word" or "sym"
    text: str  # as written (a number without its glued suffix)
    glued: str = ""  # letters stuck to a number: "km" in "5km"
    hyphened: bool = False  # a hyphen and a letter follow: "two" in "two-factor"

    @property
    def lower(self) -> str:
        return self.text.lower()


@_per_text()
def _tokens(text: str) -> tuple[_Token, ...]:
    out = []
    normalised = _normalise(text)
    for match in _TOKEN.finditer(normalised):
        if match.group("num") is not None:
            out.append(_Token("num", match.group("num"), match.group("glued") or ""))
        elif match.group("word") is not None:
            word = match.group("word")
            after = normalised[match.end() : match.end() + 2]
            hyphened = len(after) == 2 and after[0] == "-" and after[1].isalpha()
            # "yesterday's close" -> "yesterday close": the possessive adds no meaning here.
            out.append(_Token("word", word[:-2] if word.lower().endswith("'s") else word, hyphened=hyphened))
        else:
            out.append(_Token("sym", match.group("sym")))
    return tuple(out)


@_per_text()
def _words(text: str) -> tuple[str, ...]:
    return tuple(t.lower for t in _tokens(text) if t.kind == "word")


_IRREGULAR: Final[Mapping[str, str]] = {
    "sold": "sell",
    "bought": "buy",
    "won": "win",
    "lost": "lose",
    "rose": "rise",
    "risen": "rise",
    "fell": "fall",
    "fallen": "fall",
    "sent": "send",
    "began": "begin",
    "begun": "begin",
    "hid": "hide",
    "hidden": "hide",
    "got": "get",
    "gave": "give",
    "taken": "take",
    "took": "take",
    "better": "good",
    "worse": "bad",
    "men": "man",
    "women": "woman",
}


@_per_text(WORD_CACHE, WORD_CHARS)
def _lemmas(word: str) -> frozenset[str]:
    """The word and the stems it may be an inflection of (crude, but enough for set lookups)."""
    forms = {word, _IRREGULAR.get(word, word)}
    for suffix, repl in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ing", ""),
        ("ing", "e"),
        ("ed", ""),
        ("ed", "e"),
        ("d", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.add(word[: -len(suffix)] + repl)
    # Doubled consonant before -ing/-ed: "stopping" -> "stop".
    for suffix in ("ing", "ed"):
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= 4 and stem[-1] == stem[-2]:
            forms.add(stem[:-1])
    return frozenset(forms)


@_per_text()
def _lemma_set(text: str) -> frozenset[str]:
    return frozenset(lemma for word in _words(text) for lemma in _lemmas(word))


# ---------------------------------------------------------------------------------------
# Numbers, quantities, units, versions, dates

_NUMBER_WORDS: Final[Mapping[str, int]] = {
    # "one" is left out: far more often a pronoun ("the first one") than a count.
    "zero": 0,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "dozen": 12,
    # Ordinals count as their number: "9th" and "ninth" are the same, "1st" is "first".
    # ("first" often means "initial", "second" is also a time unit.)
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "twentieth": 20,
}
_MAGNITUDES: Final[Mapping[str, int]] = {
    "hundred": 100,
    "thousand": 1_000,
    "k": 1_000,
    "million": 1_000_000,
    "mn": 1_000_000,
    "billion": 1_000_000_000,
    "bn": 1_000_000_000,
    "trillion": 1_000_000_000_000,
}
# Magnitudes that count on their own ("a million rows"); "k", "mn" and "bn" only after a number.
_MAGNITUDE_WORDS: Final = frozenset({"hundred", "thousand", "million", "billion", "trillion"})
_MONTHS: Final[Mapping[str, int]] = {
    name: index + 1
    for index, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        )
    )
}
# "may" and "march" are also a verb: only capitalised mid-sentence do they name a month.
_AMBIGUOUS_MONTHS: Final = frozenset({"may", "march"})

# Unit spellings -> one canonical name, so "5km" and "5 kilometres" are the same quantity.
_UNIT_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "km": ("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"),
    "mi": ("mi", "mile", "miles"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "ft": ("ft", "foot", "feet"),
    "inch": ("inch", "inches"),
    "yd": ("yd", "yard", "yards"),
    "kg": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"),
    "g": ("g", "gram", "grams", "gramme", "grammes"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "oz": ("oz", "ounce", "ounces"),
    "l": ("l", "liter", "liters", "litre", "litres"),
    "ml": ("ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    "gal": ("gal", "gallon", "gallons"),
    "cup": ("cup", "cups"),
    "celsius": ("celsius", "centigrade"),
    "fahrenheit": ("fahrenheit",),
    "kelvin": ("kelvin",),
    "degree": ("degree", "degrees", "deg"),
    "usd": ("usd", "dollar", "dollars", "$", "bucks"),
    "eur": ("eur", "euro", "euros", "€"),
    "gbp": ("gbp", "sterling", "£", "quid"),
    "jpy": ("jpy", "yen", "¥"),
    "cny": ("cny", "rmb", "yuan", "renminbi"),
    "inr": ("inr", "rupee", "rupees"),
    "chf": ("chf", "franc", "francs"),
    "cad": ("cad",),
    "aud": ("aud",),
    "btc": ("btc", "bitcoin", "bitcoins"),
    "percent": ("%", "percent", "pct", "percentage"),
    "ms": ("ms", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "min": ("min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("day", "days"),
    "week": ("week", "weeks", "wk", "wks"),
    "month": ("month", "months", "mo"),
    "year": ("year", "years", "yr", "yrs"),
    "am": ("am",),
    "pm": ("pm",),
    "kb": ("kb", "kilobyte", "kilobytes"),
    "mb": ("mb", "megabyte", "megabytes"),
    "gb": ("gb", "gigabyte", "gigabytes"),
    "tb": ("tb", "terabyte", "terabytes"),
    "byte": ("byte", "bytes"),
    "px": ("px", "pixel", "pixels"),
    "mph": ("mph",),
    "kmh": ("kph", "kmh"),
    "w": ("w", "watt", "watts"),
    "kw": ("kw", "kilowatt", "kilowatts"),
    "kwh": ("kwh",),
    "v": ("volt", "volts"),
    # The length of a text asked for: "in one sentence" / "a one-page guide".
    "word": ("word", "words"),
    "sentence": ("sentence", "sentences"),
    "paragraph": ("paragraph", "paragraphs"),
    "page": ("page", "pages"),
    "slide": ("slide", "slides"),
    "bullet": ("bullet", "bullets"),
}
_UNITS: Final[Mapping[str, str]] = {
    spelling: unit for unit, group in _UNIT_GROUPS.items() for spelling in group
}
_CURRENCY_SYMBOLS: Final = frozenset({"$", "€", "£", "¥"})
_CURRENCY_UNITS: Final = frozenset({"usd", "eur", "gbp", "jpy", "cny", "inr", "chf", "cad", "aud", "btc"})
_ORDINAL_SUFFIXES: Final = frozenset({"st", "nd", "rd", "th"})
# Roman numerals that number a kind or a part ("SOC 2 Type II", "World War I", "Phase III"), as
# written after one of these words: "Type II" is "Type 2".
_ROMAN: Final[Mapping[str, int]] = {
    numeral: value
    for value, numeral in enumerate(
        [
            "I",
            "II",
            "III",
            "IV",
            "V",
            "VI",
            "VII",
            "VIII",
            "IX",
            "X",
            "XI",
            "XII",
            "XIII",
            "XIV",
            "XV",
            "XVI",
            "XVII",
            "XVIII",
            "XIX",
            "XX",
        ],
        start=1,
    )
}
_NUMBERED_BY_ROMAN: Final = frozenset(
    {"type", "phase", "class", "tier", "level", "stage", "part", "grade", "series", "war", "chapter"}
    | {"volume", "vol", "act", "title", "schedule", "category", "division", "book", "section"}
)


def _roman_value(tokens: Sequence[_Token], index: int) -> int | None:
    """The value of a Roman numeral at `index` that numbers the word before it, else None.

    "I" counts only after a capitalised word ("Type I"): "which type I need" has a pronoun."""
    token = tokens[index]
    value = _ROMAN.get(token.text) if token.kind == "word" else None
    if value is None or index == 0:
        return None
    before = tokens[index - 1]
    if before.kind != "word" or before.lower not in _NUMBERED_BY_ROMAN:
        return None
    return value if token.text != "I" or before.text[0].isupper() else None


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number as a value (normalised) and the unit written with it, if any."""

    value: str
    unit: str | None
    # The word a number is part of a name with: "factor" in "two-factor" (`_TERMS`), "type" in
    # "Type II". Such a number counts only against a number of the same value or in the same name
    # ("three-factor", "Type I"): "two-factor authentication" is what "MFA" asks about, "World War
    # II" what "WWII" does.
    compound: str | None = None
    # A duration in one unit of its kind ("12 month" for "1 year" and "twelve months"): `_unmatched`.
    duration: str | None = None
    # The number ranks rather than counts: "1st", "floor 2", "round 3" (a "first" or a "second"
    # in the other prompt states it: `_unmatched`).
    ordinal: bool = False
    # The period an amount of money is paid in: "month" in "$6,500/month", "$6,500 a month".
    per: str | None = None


def _number_value(written: str) -> str:
    text = written.lstrip("vV").replace(",", "")
    # Versions and decimals stay as written ("3.10" is not "3.1"); integers lose leading zeros.
    return str(int(text)) if text.isdigit() else text


def _scaled(value: str, factor: int) -> str:
    try:
        number = float(value) * factor
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else repr(number)


# Terms named with a number word: "two-factor authentication", "two-phase commit", "a three-way
# merge". A count of anything else counts ("a five-step plan", "a five-paragraph essay").
_TERMS: Final = frozenset(
    {"two-factor", "two-step", "two-phase", "two-way", "three-way", "two-tailed", "two-sided"}
    | {"two-tier", "three-tier", "three-body", "third-party", "third-parties"}
    | {"zero-downtime", "zero-trust", "zero-day", "zero-shot", "zero-copy", "zero-based", "zero-sum"}
)
# Numbers that are part of an idiom, read as words: "a 1:1" is "a one-on-one", "ELI5" is
# "explain like I'm five".
_IDIOMS: Final = (
    (re.compile(r"(?<![\d:.])1\s*(?::|-?on-?)\s*1(?![\d:.])", re.IGNORECASE), " one-on-one "),
    (re.compile(r"\blike (?:i'?m|i am) (?:five|5)(?: years old)?\b", re.IGNORECASE), " eli5 "),
    # Parts of an hour, and decades, in words: "three quarters of an hour" is 45 minutes.
    (re.compile(r"\bthree[- ]quarters of an hour\b", re.IGNORECASE), " 45 minutes "),
    (re.compile(r"\b(?:a |one )?quarter of an hour\b", re.IGNORECASE), " 15 minutes "),
    (re.compile(r"\b(?:half an hour|a half[- ]hour)\b", re.IGNORECASE), " 30 minutes "),
    (re.compile(r"\b(?:half a minute|a half[- ]minute)\b", re.IGNORECASE), " 30 seconds "),
    (re.compile(r"\b(?:an|one) hour and a half\b", re.IGNORECASE), " 90 minutes "),
    (re.compile(r"\b(?:a|one) decade\b", re.IGNORECASE), " 10 years "),
    (re.compile(r"\btwo decades\b", re.IGNORECASE), " 20 years "),
    (re.compile(r"\bthree decades\b", re.IGNORECASE), " 30 years "),
)
# A quarter of a year, however written: "Q3", "3Q", "third quarter", "3rd-quarter", "quarter 3".
_QUARTER: Final = re.compile(
    r"\b(?:[Qq]([1-4])|([1-4])Q|(first|second|third|fourth|1st|2nd|3rd|4th)[- ]quarter|quarter ([1-4]))\b",
    re.IGNORECASE,
)
# A half of a year (or of anything), however written: "H1", "first half", "2nd-half". Not "1H"
# nor "h1": "2h" is two hours.
_HALF: Final = re.compile(r"\b(?:H([12])|(?i:(first|second|1st|2nd)[- ]half))\b")
_HALF_ORDINALS: Final[Mapping[str, str]] = {"first": "1", "1st": "1", "second": "2", "2nd": "2"}
_QUARTER_ORDINALS: Final[Mapping[str, str]] = {
    word: str(index + 1)
    for index, words in enumerate((("first", "1st"), ("second", "2nd"), ("third", "3rd"), ("fourth", "4th")))
    for word in words
}
# Durations compare in one unit each: "twelve months" is "1 year", "90 minutes" is "1.5 hours".
_DURATIONS: Final[Mapping[str, tuple[str, int]]] = {
    "year": ("month", 12),
    "month": ("month", 1),
    "week": ("day", 7),
    "day": ("day", 1),
    "h": ("s", 3600),
    "min": ("s", 60),
    "s": ("s", 1),
}


# A time of day: "6pm", "6:30 p.m.", "9 AM" (`_MERIDIEM`), "18:00" (`_CLOCK_24`); a range with one
# meridiem gives it to both ends ("6-8pm", "from 6 to 8 pm": `_CLOCK_RANGE`).
CLOCK: Final = "clock"
_MERIDIEM: Final = re.compile(r"(?<![\d:.])(\d{1,2})(?::([0-5]\d))?\s?([ap])\.?m\b\.?", re.IGNORECASE)
_CLOCK_24: Final = re.compile(r"(?<![\d:.])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")
_CLOCK_RANGE: Final = re.compile(
    r"(?<![\d:.])(\d{1,2})(?::([0-5]\d))?\s?(?:-|–|to|until|till)\s?"
    r"(?=(\d{1,2})(?::[0-5]\d)?\s?([ap])\.?m\b)",
    re.IGNORECASE,
)


def _clock_times(text: str) -> tuple[str, list[str]]:
    """`text` without its times of day, and those times as "HH:MM" (24 hours)."""
    times: list[str] = []

    def time(hour: int, minute: int, meridiem: str | None) -> str | None:
        if meridiem is None:
            return f"{hour:02d}:{minute:02d}"
        if not 1 <= hour <= 12:
            return None
        return f"{hour % 12 + (12 if meridiem.lower() == 'p' else 0):02d}:{minute:02d}"

    def take(match: re.Match[str]) -> str:
        meridiem = match.group(3) if match.re.groups == 3 else None
        found = time(int(match.group(1)), int(match.group(2) or 0), meridiem)
        if found is None:
            return match.group(0)
        times.append(found)
        return " "

    def take_start(match: re.Match[str]) -> str:
        # "6 to 8 pm" is 18:00 to 20:00, but "9 to 5 pm" is 09:00 to 17:00.
        start, end, meridiem = int(match.group(1)), int(match.group(3)), match.group(4)
        if start % 12 > end % 12:
            meridiem = "a" if meridiem.lower() == "p" else "p"
        found = time(start, int(match.group(2) or 0), meridiem)
        if found is None:
            return match.group(0)
        times.append(found)
        return " to "

    text = _CLOCK_RANGE.sub(take_start, text)
    for pattern in (_MERIDIEM, _CLOCK_24):
        text = pattern.sub(take, text)
    return text, times


def _quarter_tokens(tokens: Sequence[_Token], index: int) -> int | None:
    """How many tokens from `index` write a quarter `_QUARTER` found ("3Q"; "third quarter", "3rd
    quarter", "quarter 3"), else None. "Q3" leaves no number token."""
    token = tokens[index]
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if token.kind == "num" and token.glued.lower() == "q" and token.text in ("1", "2", "3", "4"):
        return 1
    # A half, counted from `_HALF` too: "1st half".
    ordinal_half = token.kind == "num" and f"{token.text}{token.glued}".lower() in _HALF_ORDINALS
    if ordinal_half and after is not None and after.lower == "half":
        return 2
    ordinal = token.lower in _QUARTER_ORDINALS or (
        token.kind == "num" and f"{token.text}{token.glued}".lower() in _QUARTER_ORDINALS
    )
    if ordinal and after is not None and after.lower == "quarter":
        return 2
    quarters = ("1", "2", "3", "4")
    quarter_number = after is not None and after.kind == "num" and not after.glued and after.text in quarters
    if token.lower == "quarter" and quarter_number:
        return 2
    return None


def _named_by(tokens: Sequence[_Token], index: int) -> str | None:
    """The name a number at `index` is part of: a word of two to five capitals just before it that
    is no unit ("SOC 2", "ISO 27001", "GPT 4"), as "SOC2" writes it in one word."""
    if index == 0 or tokens[index].glued:
        return None
    before = tokens[index - 1]
    is_name = before.kind == "word" and 2 <= len(before.text) <= 5 and before.text.isupper()
    return before.lower if is_name and before.lower not in _UNITS else None


# Things numbered in order, a number after them a rank: "floor 2" is "the second floor".
_NUMBERED_THINGS: Final = frozenset(
    {"floor", "round", "phase", "stage", "step", "level", "tier", "week", "day", "lesson", "module"}
    | {"chapter", "part", "sprint", "wave", "grade", "year", "quarter", "page", "row", "line", "place"}
)
# Periods money is paid in, by their spellings: "$40/mo", "$40 a month", "$40 per month", "$40 monthly".
_PERIODS_PAID: Final[Mapping[str, str]] = {
    **dict.fromkeys(("hour", "hr", "h", "hourly"), "hour"),
    **dict.fromkeys(("day", "daily", "night", "nightly"), "day"),
    **dict.fromkeys(("week", "wk", "weekly"), "week"),
    **dict.fromkeys(("month", "mo", "monthly"), "month"),
    **dict.fromkeys(("quarter", "quarterly"), "quarter"),
    **dict.fromkeys(("year", "yr", "annum", "annual", "annually", "yearly"), "year"),
}


def _paid_per(tokens: Sequence[_Token], index: int) -> str | None:
    """The period an amount at `index` is paid in, written right after it or after what it is
    paid for ("$0.023 per GB per month", "$99/seat/month"), or None."""
    after = [token.lower for token in tokens[index + 1 : index + 5]]

    def period_at(place: int) -> str | None:
        if place < len(after) and after[place] in _PERIODS_PAID:
            return _PERIODS_PAID[after[place]]
        if place + 1 < len(after) and after[place] in _EACH and after[place + 1] in _PERIODS_PAID:
            return _PERIODS_PAID[after[place + 1]]
        return None

    if (period := period_at(0)) is not None or not after:
        return period
    # What it is paid for, one word: "seat" in "$99/seat/month", "GB" in "$0.023 per GB per month".
    for_one = 1 if after[0] in _EACH else 0
    paid_for = after[for_one : for_one + 1]
    if (
        paid_for
        and paid_for[0].isalpha()
        and paid_for[0] not in _PERIODS_PAID
        and paid_for[0] not in _NOT_PAID_FOR
    ):
        return period_at(for_one + 1)
    return None


_EACH: Final = frozenset({"a", "an", "per", "each", "every"})
# Words after an amount that say when, not what it is paid for ("$500 next month").
_NOT_PAID_FOR: Final = (
    _EACH | {"next", "this", "last", "that", "the", "for", "in", "by"} | {"from", "until", "one"}
)
# Words between a count and its unit that leave the unit the count's.
_ADDING: Final = frozenset(
    {"more", "additional", "extra", "further", "consecutive", "straight", "full", "whole"}
)


@_per_text()
def quantities(text: str) -> tuple[Quantity, ...]:
    """Every number in `text`, digits or words, with the unit that follows (or precedes) it; a
    time of day as one value ("18:00" for "6pm", "6 p.m." and "18:00")."""
    for idiom, words in _IDIOMS:
        text = idiom.sub(words, text)
    text, clock = _clock_times(text)
    found: list[Quantity] = [Quantity(time, CLOCK) for time in clock]
    for match in _QUARTER.finditer(text):
        digit = (
            match.group(1) or match.group(2) or match.group(4) or _QUARTER_ORDINALS[match.group(3).lower()]
        )
        found.append(Quantity(f"q{digit}", None))
    for match in _HALF.finditer(text):
        half = match.group(1) or _HALF_ORDINALS[match.group(2).lower()]
        found.append(Quantity(f"h{half}", None))
    tokens = _tokens(text)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        value: str | None = None
        unit: str | None = None
        if (skip := _quarter_tokens(tokens, index)) is not None:
            index += skip  # counted above
            continue
        if token.kind == "num":
            value = _number_value(token.text)
            glued = token.glued.lower()
            # "5M rows", "$2M", "$2m": a million ("5m" alone is metres or minutes).
            after_currency = index > 0 and tokens[index - 1].text in _CURRENCY_SYMBOLS
            if token.glued == "M" or (glued in ("m", "mm") and after_currency):
                value = _scaled(value, _MAGNITUDES["million"])
            elif token.glued == "C":
                unit = "celsius"  # "-20C" is "-20°C"
            elif glued in _MAGNITUDES:
                value = _scaled(value, _MAGNITUDES[glued])
            elif glued in _UNITS:
                unit = _UNITS[glued]
            elif glued and glued not in _ORDINAL_SUFFIXES:
                value += glued  # "1080p", "3d": a name more than a number
        elif (roman := _roman_value(tokens, index)) is not None:
            # "Type II" counts against "Type 2" or "Type I", not against "WWII" or "the second".
            found.append(Quantity(str(roman), None, tokens[index - 1].lower))
            index += 1
            continue
        elif token.kind == "word" and token.lower in _NUMBER_WORDS:
            value = str(_NUMBER_WORDS[token.lower])
            head = tokens[index + 1] if token.hyphened and index + 1 < len(tokens) else None
            if head is not None and f"{token.lower}-{head.lower}" in _TERMS:
                found.append(Quantity(value, None, head.lower))
                index += 2
                continue
            # "twenty five" is 25.
            nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            tens = int(value) in range(20, 100, 10)
            if tens and nxt and nxt.kind == "word" and 0 < _NUMBER_WORDS.get(nxt.lower, 0) < 10:
                value = str(int(value) + _NUMBER_WORDS[nxt.lower])
                index += 1
        elif token.kind == "word" and token.lower in _MAGNITUDE_WORDS:
            # "a million", "one thousand": a magnitude no number word before it has taken.
            value = str(_MAGNITUDES[token.lower])
        elif token.kind == "word" and token.lower in _MONTHS:
            is_ambiguous = token.lower in _AMBIGUOUS_MONTHS
            if not is_ambiguous or (token.text[0].isupper() and index > 0):
                found.append(Quantity(f"month{_MONTHS[token.lower]}", None))
        if value is not None:
            nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            if nxt is not None and nxt.lower in _MAGNITUDES and nxt.kind == "word":
                value = _scaled(value, _MAGNITUDES[nxt.lower])
                index += 1
                nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            prev = tokens[index - 1] if index > 0 else None
            # "$6,500/month" is dollars, as "$6,500 a month" is: a currency before rules the unit.
            if unit is None and prev is not None and prev.text in _CURRENCY_SYMBOLS:
                unit = _UNITS[prev.text]
            if unit is None and nxt is not None and nxt.lower in _UNITS:
                unit = _UNITS[nxt.lower]
            # "24 more months", "two extra days": the unit after a word that adds to the count.
            after = tokens[index + 2] if index + 2 < len(tokens) else None
            if unit is None and nxt is not None and nxt.lower in _ADDING and after is not None:
                unit = _UNITS.get(after.lower)
            duration = None
            if unit is not None and unit in _DURATIONS:
                base, factor = _DURATIONS[unit]
                duration = f"{_scaled(value, factor)} {base}"
            name = _named_by(tokens, index) if token.kind == "num" else None
            # A rank: "1st", "floor 2", a day of a month ("May 1" is "the first of May").
            ordinal = token.kind == "num" and (
                token.glued.lower() in _ORDINAL_SUFFIXES
                or (
                    prev is not None
                    and prev.kind == "word"
                    and prev.lower in _NUMBERED_THINGS | _MONTHS.keys()
                )
                or (nxt is not None and nxt.kind == "word" and nxt.lower in _MONTHS)
            )
            per = _paid_per(tokens, index) if unit in _CURRENCY_UNITS else None
            found.append(Quantity(value, unit, name, duration, ordinal, per))
        index += 1
    return tuple(found)


# Units whose spelling is never an ordinary word: a mention alone names what is measured.
_MEASURE_UNITS: Final = frozenset(
    {"km", "mi", "cm", "mm", "ft", "inch", "kg", "lb", "oz", "ml", "gal", "mph", "kmh"}
    | {"celsius", "fahrenheit", "kelvin", "kb", "mb", "gb", "tb"}
    | {"usd", "eur", "gbp", "jpy", "cny", "inr", "chf", "cad", "aud", "btc"}
)


@_per_text()
def _measure_units(text: str) -> frozenset[str]:
    units = set()
    # "British pounds" are money, not weight.
    currencies = _currency_words(text)
    for token in _tokens(text):
        spelling = token.glued.lower() if token.kind == "num" else token.lower
        # Words only: a bare "$" or "€" is too often part of a price to name a currency alone.
        unit = currencies.get(spelling) or _UNITS.get(spelling) if token.kind != "sym" else None
        if unit in _MEASURE_UNITS:
            units.add(unit)
    return frozenset(units)


def _named(value: str) -> bool:
    """A value with letters glued to it ("2fa", "1080p", "3d"): a name more than a quantity."""
    return any(ch.isalpha() for ch in value.lstrip("vV"))


# How `quantities` writes a month, a quarter and a half of the year: "month3", "q3", "h1".
_CALENDAR_VALUE: Final = re.compile(r"(month|q|h)\d+")


@_per_text()
def _calendar_masked(text: str) -> tuple[str, ...]:
    """The prompt's words and numbers with every month's name masked (a quarter's and a half's
    number are not among its tokens: "Q3" is "q")."""
    return tuple("<month>" if token.lower in _MONTHS else token.lower for token in _tokens(text))


def _calendar_replaced(extra: set[str], qa: tuple[Quantity, ...], qb: tuple[Quantity, ...]) -> bool:
    """Whether a calendar value of `extra` replaces one of the other prompt's: each prompt names as
    many of its kind, and not the same."""
    for value in extra:
        match = _CALENDAR_VALUE.fullmatch(value)
        if match is None:
            continue
        kind = match.group(1)
        in_a = sorted(q.value for q in qa if (m := _CALENDAR_VALUE.fullmatch(q.value)) and m.group(1) == kind)
        in_b = sorted(q.value for q in qb if (m := _CALENDAR_VALUE.fullmatch(q.value)) and m.group(1) == kind)
        if len(in_a) == len(in_b) and in_a != in_b:
            return True
    return False


def _counted(own: tuple[Quantity, ...], other: tuple[Quantity, ...]) -> tuple[Quantity, ...]:
    """`own` without the compounds that `other` has no number to set against."""
    values = {q.value for q in other}
    heads = {q.compound for q in other if q.compound}
    return tuple(q for q in own if q.compound is None or q.value in values or q.compound in heads)


# Words that state a count or a duration without a number: they match a number the other prompt
# writes ("merge two dicts" / "merge a pair of dicts", "the last 12 months" / "the past year"), but
# a prompt that has them asks for no number ("both" in one prompt is no count the other lacks).
_STATED_BY_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(
        ("pair", "couple", "both", "twice", "duplicate", "duplicates", "twofold", "dual"), ("2",)
    ),
    "threefold": ("3",),
    "one": ("1",),
    # A rank: "the 1st interview round" is "the first", "floor 2" is "the second floor"
    # (`Quantity.ordinal`); "a second" is no count of two.
    # A time of day by its name: "at midnight" / "at 00:00".
    "midnight": ("00:00",),
    **dict.fromkeys(("noon", "midday"), ("12:00",)),
    "first": ("rank 1",),
    "second": ("rank 2",),
    "tenfold": ("10", "10x"),
    "half": ("50", "0.5", "1800 s"),
    # Durations as `Quantity.duration` writes them: "the past year" is "the last 12 months".
    **dict.fromkeys(("week", "weeks", "weekly"), ("7 day",)),
    "fortnight": ("14 day",),
    **dict.fromkeys(("year", "years", "yearly", "annual", "annually"), ("12 month",)),
    **dict.fromkeys(("month", "monthly"), ("1 month",)),
    **dict.fromkeys(("day", "daily"), ("1 day",)),
    **dict.fromkeys(("hour", "hourly"), ("3600 s",)),
    "decade": ("120 month",),
    # None of a thing: "zero orders" is "no orders", "never ordered".
    **dict.fromkeys(("no", "never", "none", "nothing", "nobody", "without", "not"), ("0",)),
}
# A number inside a name: "Win10", "M365", "OAuth2", "p95", "Net-30" (`_in_a_name`).
_LETTERS_THEN_DIGITS: Final = re.compile(r"(?<![\w.])([^\W\d_]+)-?(\d+)(?![\w.])")
_ISO_MONTH: Final = re.compile(r"\b(?:19|20)\d\d[-/](0?[1-9]|1[0-2])\b")


# The longest prompt whose numbers `_stated_otherwise` reads another way.
STATED_OTHERWISE_CHARS: Final = 300


def _decimal_text(number: Decimal) -> str:
    return format(number.normalize(), "f")


# Two things named, compared or joined as two; it states a count of two things, not of two units
# ("two weeks", "in two sentences": `_unmatched`).
_TWO_NAMED: Final = re.compile(
    r"\bdifferen(?:ce|ces|t|tly) (?:between|from)\b|\b(?:vs\.?|versus|either|each other)(?!\w)"
    r"|\bone (?:[\w-]+ ){0,3}(?:to|over|than|or) (?:another|the other)\b"
    r"|\bbetween (?:(?:a|an|the|two) )?[\w-]+(?: [\w-]+)? and (?:(?:a|an|the) )?[^\W\d]"
    r"|\b[\w.]+\(\s*\w+\s*,\s*\w+\s*\)|(?<!\w)[a-z] (?:\+|plus) [a-z](?!\w)"
)
_TWO_THINGS: Final = "2 things"


@_per_text()
def _stated_otherwise(text: str) -> frozenset[str]:
    """Values and durations `text` states in another way than `quantities` reads: words for a
    count or a duration (`_STATED_BY_WORDS`), a percentage as a fraction and a fraction as a
    percentage, "2" as "2.0", a month by its number and an ISO month by its name,
    an hour of the day alone ("6" for "18:00") and a time of day by its hour alone ("8 to 10" for
    "8am to 10pm"). Each only matches a number of the other prompt, and only in a request: in a
    longer text (`STATED_OTHERWISE_CHARS`) so many words would match some number that a count the
    request adds would go unseen."""
    if len(text) > STATED_OTHERWISE_CHARS:
        return frozenset()
    normalised = _normalise(text)
    stated: set[str] = set()
    for word in _words(text):
        stated.update(_STATED_BY_WORDS.get(word, ("0",) if word.endswith("n't") else ()))
    for month in _ISO_MONTH.findall(normalised):
        stated.add(f"month{int(month)}")
    # Two things named as two: "the difference between a lead and an opportunity" says "the two
    # objects", "from one Linux box to another" "two Linux servers", "add(a, b)" "two numbers".
    if _TWO_NAMED.search(normalised.lower()):
        stated.add(_TWO_THINGS)
    for quantity in quantities(text):
        value = quantity.value
        if value.startswith("month"):
            stated.add(value.removeprefix("month"))
        elif quantity.unit == CLOCK:
            hour = int(value[:2])
            stated.update((str(hour), str(hour % 12 or 12)))
        elif re.fullmatch(r"\d+(?:\.\d+)?", value):
            number = Decimal(value)
            stated.add(_decimal_text(number))
            if number == number.to_integral_value():
                stated.add(f"{int(number)}.0")
                if quantity.unit is None and 1 <= number <= 12:
                    stated.update((f"{int(number) % 12:02d}:00", f"{int(number) % 12 + 12:02d}:00"))
            if quantity.unit == "percent":
                stated.add(_decimal_text(number / 100))
            elif number < 1:
                stated.add(_decimal_text(number * 100))
    return frozenset(stated)


@_per_text()
def _names_with_numbers(text: str) -> frozenset[tuple[str, str]]:
    """(number, letters) of each name in `text` that ends in a number: "Win10" is ("10", "win")."""
    if len(text) > STATED_OTHERWISE_CHARS:
        return frozenset()
    return frozenset(
        (str(int(digits)), letters.lower())
        for letters, digits in _LETTERS_THEN_DIGITS.findall(_normalise(text))
    )


def _in_a_name(value: str, own: str, other: str) -> bool:
    """Whether `own` writes `value` beside a word that `other` shortens into one name with it:
    "Windows 10" / "Win10", "Microsoft 365" / "M365", "OAuth 2.0" / "OAuth2", "95th percentile" /
    "p95"; not "tier 1" / "P1", a priority."""
    whole = value.removesuffix(".0")
    letters = {name for number, name in _names_with_numbers(other) if number == whole}
    if not letters:
        return False
    number = re.escape(value) if value == whole else rf"{re.escape(whole)}(?:\.0)?"
    text = _normalise(own).lower()
    beside = re.findall(rf"([^\W\d_]+)\W{{1,2}}{number}\b", text) + re.findall(
        rf"(?<![\w.]){number}(?:st|nd|rd|th)?\W{{1,2}}([^\W\d_]+)", text
    )
    return any(word.startswith(name) for word in beside for name in letters)


def _unmatched(own: tuple[Quantity, ...], other: tuple[Quantity, ...], stated: frozenset[str]) -> set[str]:
    """The values of `own` that `other` has not, as written, as a duration ("twelve months" is
    "1 year"; "6h" is "6", as in "6 hours instead of 2h") or stated another way (`stated`,
    `_stated_otherwise`)."""
    keys = {q.value for q in other} | {q.duration for q in other if q.duration} | stated
    keys |= {alike for q in other if q.duration for alike in _durations_alike(q.duration)}
    return {
        q.value
        for q in own
        if q.value not in keys
        and (q.duration is None or q.duration not in keys)
        and not (q.ordinal and f"rank {q.value}" in keys)
        and not (
            q.value == "2" and q.unit is None and q.per is None and not q.ordinal and _TWO_THINGS in keys
        )
    }


def _durations_alike(duration: str) -> tuple[str, ...]:
    """A number of days in months and the other way round, as a request says them: "the first 90
    days" / "the first three months", "365 days" / "a year" (twelve months)."""
    written, unit = duration.split(" ", 1)
    if not written.isdigit():
        return ()
    count = int(written)
    if unit == "day" and count % 365 == 0:
        return (f"{count // 365 * 12} month",)
    if unit == "day" and count % 30 == 0:
        return (f"{count // 30} month",)
    if unit == "month":
        return (f"{count * 30} day",) + ((f"{count // 12 * 365} day",) if count % 12 == 0 else ())
    return ()


def _numbered_names_missing(text: str, other: str) -> bool:
    """Whether `text` names something with digits in its name ("f7d870", "INC-5944", "S3") that
    `other` does not, in one word or written apart ("S4HANA" / "S/4HANA")."""
    lexicon, runs = _lexicon(other), _runs(other)
    return any(
        any(ch.isdigit() for ch in entity)
        and not _found_in(entity, lexicon)
        and re.sub(r"\W+", "", entity) not in runs
        for entity in entities(text)
    )


# A text's length asked for by a count: "in one sentence", "a one-page guide", "in 3 bullets",
# "a 100-word bio" ("one" and "a" are no count to `quantities`).
_LENGTH_ASKED: Final = re.compile(
    rf"\b(?:an?|one|single|\d+|{'|'.join(_NUMBER_WORDS)})[\s-]+(word|character|sentence|paragraph|page|slide|bullet)(?:s|rs?)?\b"
)


@_per_text()
def _lengths_asked(text: str) -> frozenset[str]:
    return frozenset(_LENGTH_ASKED.findall(_normalise(text).lower()))


def different_numbers(a: str, b: str) -> str | None:
    """Different quantities, counts, versions or dates: "5 tickets" vs "50 tickets", "v3.11" vs "3.12".

    A number in one prompt and not in the other also counts ("top 5 cafés" vs "best cafés"):
    the count shapes the answer, unless the other states it another way ("two" / "a pair", "18:00"
    / "6pm", "5%" / "0.05", "Windows 10" / "Win10": `_stated_otherwise`, `_in_a_name`; "1 M" /
    "1M": `_alike_glued`). A number's unit counts where both prompts give one for it, and so does
    the period an amount is paid in ("$6,500 a month" / "$6,500/week").
    """
    qa, qb = _counted(quantities(a), quantities(b)), _counted(quantities(b), quantities(a))
    values_a = {q.value for q in qa}
    extra_a, extra_b = _extra_values(a, b)
    if (extra_a or extra_b) and _alike_glued(a, b):
        extra_a = extra_b = set()
    if extra_a or extra_b:
        # A number grown into a name ("2FA", "S3", "1080p") counts only against another such name
        # ("1080p" vs "720p"): alone it is a word, and "2FA" is what "MFA" calls two factors.
        names_a, names_b = {v for v in extra_a if _named(v)}, {v for v in extra_b if _named(v)}
        if extra_a - names_a or extra_b - names_b or (names_a and names_b):
            return NUMBER
        # As many months (quarters, halves) in each, not the same, and every other word the same:
        # "between March 3 and March 28" / "between March 3 and April 28". One more ("up from 45.4"
        # / "up from 45.4 in April") is a detail the other leaves out, as a name alone is, and a
        # month in other words may be a bound ("paid in March" / "paid before April").
        if _calendar_replaced(names_a | names_b, qa, qb) and _calendar_masked(a) == _calendar_masked(b):
            return NUMBER
        # Or against a name with digits that only the other prompt has: "ticket 08771f" / "ticket
        # f7d870", one code read as a number with letters, the other, led by a letter, as a name.
        if (names_a and _numbered_names_missing(b, a)) or (names_b and _numbered_names_missing(a, b)):
            return NUMBER
    # "in one sentence" vs "a one-page guide": the length of the text asked for.
    lengths_a, lengths_b = _lengths_asked(a), _lengths_asked(b)
    # In a longer text a length may be asked of a part ("one-word answer plus a reason").
    if len(a) > STATED_OTHERWISE_CHARS or len(b) > STATED_OTHERWISE_CHARS:
        lengths_a = lengths_b = frozenset()
    if lengths_a and lengths_b and not lengths_a & lengths_b:
        return NUMBER
    # "temperature in Celsius" vs "temperature in Fahrenheit": a unit swapped, numbers or not.
    measured_a, measured_b = _measure_units(a), _measure_units(b)
    if measured_a - measured_b and measured_b - measured_a:
        return NUMBER
    for value in values_a:
        units_a = {q.unit for q in qa if q.value == value and q.unit}
        units_b = {q.unit for q in qb if q.value == value and q.unit}
        if units_a and units_b and not units_a & units_b and not _one_pound(units_a, units_b):
            return NUMBER
        # "$6,500 a month" / "$6,500/week": the same amount paid in another period.
        periods_a = {q.per for q in qa if q.value == value and q.per}
        periods_b = {q.per for q in qb if q.value == value and q.per}
        if periods_a and periods_b and not periods_a & periods_b:
            return NUMBER
    return None


def _one_pound(units_a: set[str], units_b: set[str]) -> bool:
    """Whether one prompt's pounds are the other's pounds sterling ("over £50" / "more than fifty
    pounds"): "pounds" alone reads as a weight."""
    return {frozenset(units_a), frozenset(units_b)} == {frozenset({"gbp"}), frozenset({"lb"})}


def _extra_values(a: str, b: str) -> tuple[set[str], set[str]]:
    """The values each prompt has that the other does not, as written or stated otherwise."""
    qa, qb = _counted(quantities(a), quantities(b)), _counted(quantities(b), quantities(a))
    extra_a = {v for v in _unmatched(qa, qb, _stated_otherwise(b)) if not _in_a_name(v, a, b)}
    extra_b = {v for v in _unmatched(qb, qa, _stated_otherwise(a)) if not _in_a_name(v, b, a)}
    return extra_a, extra_b


# A number and a short word after it, written apart: "1 M", "16 GiB", "100 Mbps".
_SPACED_UNIT: Final = re.compile(r"(\d) ([A-Za-z]{1,4})\b")


def _glued_as_in(text: str, other: str) -> str:
    """`text` with each number and short word after it written together where `other` writes them
    so ("1 M" where the other says "1M")."""
    lowered = other.lower()

    def glue(match: re.Match[str]) -> str:
        together = match.group(1) + match.group(2)
        return together if together.lower() in lowered else match.group(0)

    return _SPACED_UNIT.sub(glue, text)


def _alike_glued(a: str, b: str) -> bool:
    """Whether the prompts say the same numbers once a number and the word after it that one
    prompt writes apart are written together as the other writes them: "1 M Tris" / "1M Tris",
    "16 GiB" / "16GiB"."""
    glued_a, glued_b = _glued_as_in(a, b), _glued_as_in(b, a)
    if glued_a == a and glued_b == b:
        return False
    extra_a, extra_b = _extra_values(glued_a, glued_b)
    return not extra_a and not extra_b


# ---------------------------------------------------------------------------------------
# Time references: "today" vs "tomorrow", "now" vs "last week"

# Phrases that pin a period relative to now, as (period, offset).
_PERIODS: Final[Mapping[str, tuple[str, int]]] = {
    "today": ("day", 0),
    "tonight": ("day", 0),
    "this morning": ("day", 0),
    "this afternoon": ("day", 0),
    "this evening": ("day", 0),
    "tomorrow": ("day", 1),
    "yesterday": ("day", -1),
    **{
        f"{word} {period}": (period, offset)
        for period in ("week", "weekend", "month", "quarter", "year")
        for word, offset in (
            ("this", 0),
            ("next", 1),
            ("last", -1),
            ("past", -1),
            ("previous", -1),
            ("coming", 1),
        )
    },
}
# Unanchored "now": compatible with any period that includes the present.
_NOW_WORDS: Final = frozenset(
    {"now", "current", "currently", "latest", "recent", "recently", "newest", "nowadays", "live", "today's"}
)


@_per_text()
def _time_references(text: str) -> tuple[frozenset[tuple[str, int]], bool]:
    words = _words(text)
    joined = " " + " ".join(words) + " "
    periods = frozenset(period for phrase, period in _PERIODS.items() if f" {phrase} " in joined)
    return periods, any(word in _NOW_WORDS for word in words)


_FREQUENCIES: Final = frozenset(
    {"hourly", "daily", "nightly", "weekly", "biweekly", "fortnightly", "monthly", "quarterly", "yearly"}
    | {"annual", "annually"}
)


_WEEKDAYS: Final[Mapping[str, str]] = {
    form: day
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for form in (day, day + "s")
}


def different_time(a: str, b: str) -> str | None:
    """The prompts ask about different times: "weather today" vs "weather tomorrow",
    "back up daily" vs "back up weekly", "standup on Monday" vs "standup on Tuesday"."""
    days_a = {_WEEKDAYS[w] for w in _words(a) if w in _WEEKDAYS}
    days_b = {_WEEKDAYS[w] for w in _words(b) if w in _WEEKDAYS}
    if days_a and days_b and not days_a & days_b:
        return TIME
    periods_a, now_a = _time_references(a)
    periods_b, now_b = _time_references(b)
    freq_a = {w for w in _words(a) if w in _FREQUENCIES}
    freq_b = {w for w in _words(b) if w in _FREQUENCIES}
    if freq_a and freq_b and not freq_a & freq_b:
        return TIME
    if periods_a and periods_b and not periods_a & periods_b:
        return TIME
    # "current rate" vs "rate yesterday": now against a period that is not now. Periods both
    # prompts name (a pasted text both share, "current status of this update: ... last week ...")
    # set nothing against the other's now.
    for periods, own, now in ((periods_a, periods_b, now_b), (periods_b, periods_a, now_a)):
        other_only = periods - own
        if now and other_only and all(offset != 0 for _, offset in other_only):
            return TIME
    return None


# ---------------------------------------------------------------------------------------
# Negation

_NEGATORS: Final = frozenset(
    {
        "not",
        "no",
        "never",
        "without",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "cannot",
        "non",
        "excluding",
        "except",
        "lacking",
    }
)
# A negation tells two prompts apart only when they say much the same besides: when the shorter
# prompt's other words are under this share of the words the two share, they are worded apart,
# and a negative word in one ("I'm not a lawyer: what is this EU regulation" / "explain GDPR in
# simple terms") is a rewording for the model to judge. A prompt that adds detail to the other
# ("pesto recipe" / "pesto recipe without nuts for my daughter") still shares all of its words.
NEGATION_MIN_OVERLAP: Final = 0.5
# Phrases with a negative word and no negative meaning, or a fixed meaning of their own
# ("not working" is "broken", a problem report, not the opposite of "working").
_NOT_NEGATIONS: Final = re.compile(
    r"\b(?:not only|no matter|whether or not|no longer than|no doubt|nothing but|not sure|no idea)\b"
    # "say no to a request" declines it ("said yes" / "said no" is `antonym`'s); "no. of orders"
    # counts them.
    r"|\b(?:say|says|said|saying) no\b(?=\s+to\b|\s*[.?!,]|\s*$)|\bno\.(?=\s*(?:of\b|\d))"
    # Sentence adverbs: "Not surprisingly, Korea leads ..." says what Korea does ("be careful not to
    # mention the layoffs" still negates).
    r"|\bnot surprisingly\b|, not to mention\b"
    # The asker's state before a question, not the request: "I don't know how to pivot a table"
    # asks how to pivot one ("remove the users I don't know" still differs from "... I know").
    r"|\b(?:i|we)(?: still| really| just)? (?:(?:do|did|ca|could) n't|(?:do|did) not|cannot|can not)"
    r" (?:know|understand|see|figure out)(?= (?:how|what|why|where|which|when|whether|if)\b)"
)
# "not working" is a problem report, a paraphrase of "broken", not a negated question.
_BROKEN: Final = re.compile(
    r"\b(?:not|n't) (?:work|working|function|functioning|load|loading|respond|responding)\b"
)
_WORKS: Final = re.compile(r"\b(?:works|working|work|functions|loads|responds)\b")


# A negation typed without its apostrophe ("cant print", "isnt working"), read as "n't".
_NO_APOSTROPHE: Final = re.compile(
    r"\b(?:(ca)nt|(wo)nt|(do|does|did|is|are|was|were|has|have|had|would|should|could|must|need)nt)\b"
)


# "zero-downtime" is "no downtime", "zero waste" is "no waste" ("zero in on", "zero out" are verbs).
_ZERO: Final = re.compile(r"\bzero[- ](?!in\b|out\b)(?=[a-z])")


# "w/o" is "without".
_WITHOUT: Final = re.compile(r"(?<![\w/])w/o(?![\w/])")


@_per_text()
def _prepared(text: str) -> str:
    lowered = _NO_APOSTROPHE.sub(lambda m: f"{next(g for g in m.groups() if g)}n't", _normalise(text).lower())
    return " " + _ZERO.sub("no ", _WITHOUT.sub("without", lowered)).replace("n't", " n't") + " "


_NON_JOINED: Final = re.compile(r"(?<![\w'-])non([a-z]{3,})(?![\w'-])")
_NON_PARTED: Final = re.compile(r"(?<![\w'-])non[- ]([a-z]{3,})(?![\w'-])")
# Initials that may spell a "non-" term and the words after it: "NDA", "NGO", "NPC".
_NON_INITIALS: Final = re.compile(r"(?<![\w-])N[A-Z]{2,4}(?![\w-])")


def _non_written_alike(prepared: str, other: str, other_text: str) -> str:
    """`prepared` with each "nonX" written "non X" where `other` writes it so ("non-binding" /
    "nonbinding"): one word, negated in both or in neither. And a "non-X" that the other prompt
    names by its initials, with the words after it, is a term, not a negation: "non-disclosure
    agreement" is what "NDA" names (`other_text`, the other prompt as written); "non-paying users"
    is not what "NPS" names."""
    parted = frozenset(_NON_PARTED.findall(other))
    if parted:
        prepared = _NON_JOINED.sub(
            lambda m: f"non {m.group(1)}" if m.group(1) in parted else m.group(0), prepared
        )
    for initials in frozenset(_NON_INITIALS.findall(_normalise(other_text))):
        letters = initials.lower()
        spelled = rf"\bnon[- ]({letters[1]}[a-z]+)" + "".join(
            rf"(\s+{letter}[a-z]*)" for letter in letters[2:]
        )
        prepared = re.sub(spelled, lambda m: "non" + "".join(m.groups()), prepared)
    return prepared


@_per_text()
def _negated(prepared: str) -> bool:
    lowered = _NOT_NEGATIONS.sub(" ", _BROKEN.sub(" broken ", prepared))
    words = re.findall(r"n't|[a-z]+", lowered)
    return any(word in _NEGATORS or word == "n't" for word in words)


@_per_text()
def _unnegated_words(prepared: str) -> frozenset[str]:
    return frozenset(
        word for word in re.findall(r"n't|[a-z0-9]+", prepared) if word not in _NEGATORS and word != "n't"
    )


def _shared_share(words_a: frozenset[str], words_b: frozenset[str]) -> float:
    """The share of the shorter prompt's words the other has in some form ("customers" /
    "customer", "listing" / "list"); 1.0 for a prompt without words."""
    shorter, longer = sorted((words_a, words_b), key=len)
    if not shorter:
        return 1.0
    forms = frozenset(form for word in longer for form in _lemmas(word))
    return sum(1 for word in shorter if _lemmas(word) & forms) / len(shorter)


def different_negation(a: str, b: str) -> str | None:
    """One prompt is negated and the other is not: "pesto with nuts" vs "pesto without nuts"
    (when they are worded alike besides: `NEGATION_MIN_OVERLAP`)."""
    prepared_a, prepared_b = _prepared(a), _prepared(b)
    prepared_a, prepared_b = (
        _non_written_alike(prepared_a, prepared_b, b),
        _non_written_alike(prepared_b, prepared_a, a),
    )
    if _shared_share(_unnegated_words(prepared_a), _unnegated_words(prepared_b)) < NEGATION_MIN_OVERLAP:
        return None
    if _negated(prepared_a) != _negated(prepared_b):
        return NEGATION
    # "code that works" vs "code that doesn't work" (but "not working" vs "broken" is fine).
    broken_a, broken_b = bool(_BROKEN.search(prepared_a)), bool(_BROKEN.search(prepared_b))
    for broken, other, other_broken in ((broken_a, prepared_b, broken_b), (broken_b, prepared_a, broken_a)):
        if broken and not other_broken and _WORKS.search(other):
            return NEGATION
    return None


# ---------------------------------------------------------------------------------------
# Named entities and identifiers

# A date written as a pattern: "YYYY-MM-DD", "DD/MM/YYYY", "MM-dd-yy", "%Y-%m-%d".
_DATE_PART: Final = r"(?:%[YmdyHMSbBIpaAjU]|[Yy]{2,4}|[Mm]{1,4}|[Dd]{1,2}|[Hh]{1,2}|[Ss]{2}|W{1,2}w?|Www)"
_DATE_FORMAT: Final = re.compile(
    rf"(?<![\w%])(?:{_DATE_PART}(?:[-/.:]{_DATE_PART})+|(?:YYYY|yyyy)(?:MM|mm)(?:DD|dd))(?![\w%])"
)
_STRFTIME: Final[Mapping[str, str]] = {
    "%Y": "YYYY",
    "%y": "YY",
    "%m": "MM",
    "%d": "DD",
    "%H": "HH",
    "%M": "MI",
    "%S": "SS",
    "%b": "MMM",
    "%B": "MMMM",
    "%I": "hh",
    "%p": "AM",
    "%a": "DDD",
    "%A": "DDDD",
    "%j": "DDDY",
    "%U": "WW",
}


def _strftime_part(match: re.Match[str]) -> str:
    return _STRFTIME[match.group(0)]


@_per_text()
def _date_formats(text: str) -> frozenset[str]:
    """The date and time patterns `text` writes, in one notation ("%Y-%m-%d" is "YYYY-MM-DD"; the
    hours of a 12-hour clock, "hh:mm a" or "%I:%M %p", are "II", of a 24-hour one "HH")."""
    found: set[str] = set()
    # The date part written before a time ("yyyy-MM-dd hh:mm") says in which case it is written.
    before_end, before_lower = -2, True
    for match in _DATE_FORMAT.finditer(text):
        raw = match.group(0)
        lower = raw.islower() and (match.start() - before_end > 1 or before_lower)
        before_end, before_lower = match.end(), raw.islower()
        written = re.sub(r"%[YmdyHMSbBIpaAjU]", _strftime_part, raw)
        # "mm" after an hour is minutes ("HH:mm"); elsewhere, as in "yyyy-mm-dd", a month.
        written = re.sub(r"(?i)(?<=h:)mm", "mi", written)
        # A 12-hour clock: "%I", a marker of the half of the day after it ("hh:mm a", "h:mm tt"),
        # or "h" in a pattern that writes other parts in capitals ("yyyy-MM-dd hh:mm"); "hh:mm"
        # written all in lower case may be either.
        twelve = (
            "%I" in raw
            or _DAY_HALF_MARK.match(text, match.end()) is not None
            or (re.search(r"h", written) is not None and not lower)
        )
        # "h:mm" and "hh:mm" differ only by a leading zero.
        written = re.sub(r"H+", "II" if twelve else "HH", written.upper())
        if re.search(r"[YDHI]", written):
            found.add(written)
    return frozenset(found)


# The half of the day written after a time pattern: "hh:mm a", "h:mm A", "hh:mm tt", "%I:%M %p",
# Excel's "h:mm AM/PM" and "h:mm A/P".
_DAY_HALF_MARK: Final = re.compile(r"\s?(?:(?i:am/pm|a/p)|a|A|tt|%p)(?![\w%])")


_QUOTED: Final = re.compile(r"(?<!\w)'([^']+)'(?!\w)|\"([^\"]+)\"|`([^`]+)`")
# Each starts only where a run of the characters it spans starts: tried again from inside a long
# run ("a-a-a-..."), it would read the run once for each character.
_URL: Final = re.compile(r"\bhttps?://\S+|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DOTTED: Final = re.compile(r"(?<![\w.-])[A-Za-z_][\w-]*(?:\.[A-Za-z0-9_][\w-]*)+")
_OPERATOR: Final = re.compile(r"(?<![\w:])[a-z]+:[\w.@/-]+")
_CAPITALISED: Final = re.compile(r"(?<![\w'])[^\W\d_][\w'-]*")
# After these (and at the very start) a capital letter is grammar, not a name.
_SENTENCE_BREAKS: Final = frozenset('.!?:;(["')
# Words a prompt capitalises for emphasis or grammar, never as a name.
_NOT_NAMES: Final = frozenset(
    {
        "i",
        "i'm",
        "i've",
        "i'd",
        "i'll",
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "is",
        "are",
        "what",
        "how",
        "who",
        "why",
        "when",
        "where",
        "which",
        "please",
        "vs",
        "eli5",
        "ok",
    }
)


_POSSESSIVE: Final = re.compile(r"'s?$", re.IGNORECASE)
_DIGIT_AFTER_LETTER: Final = re.compile(r"[^\W\d_]\d")
_NUMBER_THEN_CAPITALS: Final = re.compile(r"\d-[A-Z]")


def _is_identifier(word: str) -> bool:
    """Code identifiers and model names: snake_case, camelCase, letters with digits, ALLCAPS."""
    has_letter = any(ch.isalpha() for ch in word)
    return has_letter and (
        "_" in word
        or any(ch.isdigit() for ch in word)
        or bool(re.search(r"[a-z][A-Z]", word))
        or (sum(ch.isupper() for ch in word) >= 2)
    )


def _split_camel(word: str) -> list[str]:
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", word)


# Verbs that open a request ("Write a ...", "Can you ...", "Turn this into ...").
_MODALS: Final = "can|could|would|will"
_REQUEST_VERBS: Final = (
    "please|pls|send|write|draft|make|give|put|help|explain"
    "|summari[sz]e|translate|create|list|find|show|tell|turn|rewrite|rephrase|reword|pull|convert|port"
    "|compare|check|review|fix|add|remove|update|set|get|generate|prepare|suggest|analy[sz]e|extract"
    "|shorten|expand|proofread|edit|format|outline|build|plan|schedule|calculate|quick"
)
# A greeting, then a verb that opens a request ("Hi, Send a follow-up ..."): the verb starts the
# request, a sentence start. After a greeting any other word may be a name ("Hi, Priya asked ...").
_LEADING_GREETING: Final = re.compile(
    rf"^\s*(?:{GREETING}\s*[,!.:;-]+\s*)+(?=(?:{_MODALS}|{_REQUEST_VERBS})\b)", re.IGNORECASE
)
# A request opened after a pasted text, whose last line ends without a stop ("... 18,406 Turn this
# into a tweet", the lines joined as the verifier reads them): a verb that opens a request, or
# one that asks to go through a text, then what it acts on. "Acme Group is ..." names a group.
_REQUEST_OPENING: Final = re.compile(
    rf"(?:(?:{_MODALS})\s+(?:you|u|we|i|someone|anyone)"
    rf"|(?:{_REQUEST_VERBS}|break|walk|spot|condense|cut|reply|respond|audit|rank|sort|refactor"
    r"|critique|describe|identify|simplify|clean|classify|polish|tighten|optimi[sz]e|speed|using|any)"
    r"\s+(?:this|these|that|those|the|a|an|it|them|me|us|you|my|our|each|every|all|what|how|why"
    r"|which|who|whether|if|up|down|out|through|over|into|bugs?|issues?|problems?))\b",
    re.IGNORECASE,
)


def _quoted_name(quoted: str) -> bool:
    """Whether a quoted string names something: words, or a delimiter of a character or two
    ("split on '-'", "join with ', '"); not quotes paired across code ("o['id'] != 'x'" quotes
    "] != "), nor a date pattern (`_date_formats` compares those)."""
    if _DATE_FORMAT.fullmatch(quoted.strip()):
        return False
    return any(ch.isalnum() for ch in quoted) or len(quoted.strip()) <= 2


@_per_text()
def entities(text: str) -> tuple[str, ...]:
    """Names and identifiers in `text`, lowercased: quoted strings, URLs, e-mails, file and domain
    names, search operators (site:x), code identifiers and capitalised words not at a sentence start."""
    # "Hi, Send a follow-up": a request verb after a greeting starts the request.
    text = _LEADING_GREETING.sub("", _normalise(text))
    found: list[str] = []

    def take(pattern: re.Pattern[str], source: str) -> str:
        for match in pattern.finditer(source):
            name = next(g for g in match.groups() if g) if match.groups() else match.group(0)
            if _quoted_name(name):
                found.append(name)
        return pattern.sub(" ", source)

    rest = take(_QUOTED, text)
    rest = take(_URL, rest)
    rest = take(_OPERATOR, rest)
    rest = take(_DOTTED, rest)
    # A date pattern ("%Y-%m-%d", "YYYY-MM-DD") is compared as one (`_date_formats`).
    rest = _DATE_FORMAT.sub(" ", rest)
    for match in re.finditer(r"(?<![\w'])[^\W_][\w'+#-]*", rest):
        # "Nigeria's population" names Nigeria as "the population of Nigeria" does.
        word = _POSSESSIVE.sub("", match.group(0)).strip("'-")
        # Numbers ("5km", "v3.11", "10-year-old") belong to the number rule; a word led by a digit
        # with a digit after a letter is an identifier ("3f2a9c1", a commit; "5d8f7-x2k", a pod),
        # and so is one hyphened to capitals ("Form 1099-NEC", "a 10-K filing").
        numeric = (
            word[:1].isdigit()
            and not _DIGIT_AFTER_LETTER.search(word)
            and not _NUMBER_THEN_CAPITALS.search(word)
        )
        if not word or numeric or re.match(r"[vV]\d", word) or word.lower() in _NOT_NAMES:
            continue
        # Months are the number rule's, days of the week the time rule's.
        if word.lower() in _MONTHS or word.lower() in _WEEKDAYS:
            continue
        before = match.start() - 1
        while before >= 0 and rest[before].isspace():
            before -= 1
        at_start = before < 0 or rest[before] in _SENTENCE_BREAKS
        # "2 GB": a unit after a number is the number rule's ("Office 365 Word" names Word).
        after_number = (
            before >= 0 and rest[before].isdigit() and word.lower() in _UNITS and not word.istitle()
        )
        if after_number or (word[0].isupper() and _REQUEST_OPENING.match(rest, match.start())):
            continue
        if _is_identifier(word) or (word[0].isupper() and not at_start):
            found.append(word)
    return tuple(e.lower() for e in found if e.strip())


@_per_text()
def _initials(words: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """The first letters of `words` (camelCase parts count as words) and the word each came from."""
    letters, owners = [], []
    for index, word in enumerate(words):
        for part in _split_camel(word) or [word]:
            letters.append(part[0].lower())
            owners.append(index)
    return "".join(letters), tuple(owners)


# "k8s", "i18n", "a11y": four letters or more left out ("k3s" and "e2e" are names of their own).
_NUMERONYM: Final = re.compile(r"([a-z])([4-9]|[1-9]\d)([a-z])")


_Shapes = Mapping[tuple[str, int, str], tuple[int, ...]]


def _by_ends(words: tuple[str, ...]) -> _Shapes:
    """(first letter, length, last letter) -> the indices of `words` of that shape."""
    shapes: dict[tuple[str, int, str], list[int]] = {}
    for index, word in enumerate(words):
        shapes.setdefault((word[0].lower(), len(word), word[-1].lower()), []).append(index)
    return {shape: tuple(indices) for shape, indices in shapes.items()}


def _numeronym_of(short: str, shapes: _Shapes) -> set[int]:
    """The indices of the words (`_by_ends`) that `short` abbreviates as a numeronym: the first
    letter, how many letters come between, the last ("k8s" for Kubernetes, "i18n" for
    internationalization)."""
    match = _NUMERONYM.fullmatch(short)
    if match is None:
        return set()
    first, between, last = match.group(1), int(match.group(2)), match.group(3)
    return set(shapes.get((first, between + 2, last), ()))


def _acronym_of(acronym: str, words: tuple[str, ...]) -> set[int]:
    """Indices of a run of `words` whose initials spell `acronym` ("nyc" -> new york city)."""
    initials, owners = _initials(words)
    # "NYC" is also written "New York": the last word of a long acronym is often dropped.
    for spelled in (acronym, acronym[:-1]) if len(acronym) >= 3 else (acronym,):
        start = initials.find(spelled)
        if start >= 0:
            return {owners[i] for i in range(start, start + len(spelled))}
    return set()


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """One prompt's words, ready for the lookups that match entities."""

    text: str  # lowercased, punctuation as single spaces
    words: tuple[str, ...]  # as written, in order
    lowered: frozenset[str]
    plain_sorted: tuple[str, ...]  # lowercased words that are not camelCase compounds, sorted
    unhyphened: frozenset[str]  # lowercased, without hyphens: "W-2" is "w2"


@_per_text()
def _lexicon(text: str) -> _Lexicon:
    normalised = _normalise(text)
    words = tuple(_POSSESSIVE.sub("", word) for word in re.findall(r"[^\W_][\w'+#-]*", normalised))
    return _Lexicon(
        text=" " + re.sub(r"\W+", " ", normalised.lower()).strip() + " ",
        words=words,
        lowered=frozenset(w.lower() for w in words),
        plain_sorted=tuple(sorted({w.lower() for w in words if len(_split_camel(w)) <= 1})),
        unhyphened=frozenset(w.lower().replace("-", "") for w in words),
    )


@_per_text()
def _runs(text: str) -> Mapping[str, tuple[str, ...]]:
    """Two or three neighbouring words of `text` written as one, lowercased, with the words they
    join: "Power BI" -> "powerbi", "SOC 2" -> "soc2", "Clinton-Trump" -> "clintontrump"."""
    lowered = [word.lower() for word in _lexicon(text).words]
    return MappingProxyType(
        {
            "".join(re.sub(r"\W+", "", word) for word in lowered[start : start + length]): tuple(
                lowered[start : start + length]
            )
            for length in (2, 3)
            for start in range(len(lowered) - length + 1)
        }
    )


def _slip_of(one: str, two: str) -> bool:
    """Two neighbouring letters typed the other way round inside a name of four letters or more
    ("Jria"/"Jira"). A letter dropped, added or typed wrong is not a slip of a short name:
    "Carl"/"Carol", "Laos"/"Lagos" and "Rust"/"Rest" are other names."""
    if len(one) != len(two) or len(one) < 4 or one[0] != two[0] or one[-1] != two[-1]:
        return False
    first = next((i for i in range(len(one)) if one[i] != two[i]), len(one))
    return (
        first + 1 < len(one)
        and one[first] == two[first + 1]
        and one[first + 1] == two[first]
        and one[first + 2 :] == two[first + 2 :]
    )


def _similar_spelling(one: str, two: str) -> bool:
    """Transliterations, spelling variants and slips: "Scholem"/"Sholem", "Skumps"/"Scumps",
    "Jria"/"Jira"."""
    return _slip_of(one, two) or (
        min(len(one), len(two)) >= 5
        # The quick ratios are upper bounds of the real one and cost far less.
        and (matcher := SequenceMatcher(None, one, two)).real_quick_ratio() >= 0.8
        and matcher.quick_ratio() >= 0.8
        and matcher.ratio() >= 0.8
    )


def _found_in(entity: str, other: _Lexicon) -> bool:
    # "W-2" and "W2", "e-mail" and "email", "T-SQL" and "TSQL": one name, hyphened or not (an
    # underscore stays: "user_id" and "userId" are two identifiers).
    if " " not in entity and entity.replace("-", "") in other.unhyphened:
        return True
    if " " in entity or not entity.isalnum():
        phrase = re.sub(r"\W+", " ", entity).strip()
        if f" {phrase} " in other.text:
            return True
        parts = phrase.split()
        # "instance_type" is "instance type"; "Clinton-Trump" names Clinton and Trump.
        if " " not in entity and ("_" in entity or "-" in entity):
            pieces = [piece for piece in re.split(r"[-_]+", entity) if piece]
            if len(pieces) > 1 and all(_found_in(piece, other) for piece in pieces):
                return True
        # "'body part models'" / "'body part model'", "'shifting left'" / "'shift left'".
        if 1 < len(parts) <= _INFLECTED_PHRASE_WORDS and _inflection_found(parts, other):
            return True
        # A long quotation reworded a little is still the same quotation.
        is_quotation = " " in entity and len(parts) >= 4
        return is_quotation and sum(p in other.lowered for p in parts) >= 0.75 * len(parts)
    if entity in other.lowered or any(
        form in other.lowered for form in (entity + "s", entity + "es", entity.removesuffix("s"))
    ):
        return True
    # An abbreviation of a plain word: "Corp" for "Corporation" (not "Java" for "JavaScript").
    if len(entity) >= 3:
        index = bisect.bisect_left(other.plain_sorted, entity)
        if index < len(other.plain_sorted) and other.plain_sorted[index].startswith(entity):
            return True
    return False


# Quoted phrases of up to this many words match another inflection of each word.
_INFLECTED_PHRASE_WORDS: Final = 6


def _inflection_found(parts: Sequence[str], other: _Lexicon) -> bool:
    """Whether `other` has the words `parts` in a row, each in some inflection."""
    words = other.text.split()
    wanted = [_lemmas(part) for part in parts]
    return any(
        all(wanted[offset] & _lemmas(words[start + offset]) for offset in range(len(parts)))
        for start in range(len(words) - len(parts) + 1)
        if wanted[0] & _lemmas(words[start])
    )


# Above this many (missing name, missing name) comparisons the prompts differ plainly and
# spelling variants are not worth the time: long prompts stay cheap.
_MAX_SPELLING_COMPARISONS: Final = 2_500


# Words hyphened to a name that leave it the name: "Starter-tier", "Nearpod-based", "Pareto-style"
# (not "Saxony-Anhalt", "Business-Plus": a name of its own).
_NAME_SUFFIXES: Final = frozenset(
    {"tier", "plan", "based", "style", "like", "level", "only", "wide", "specific", "related", "ready"}
    | {"friendly", "compatible", "native", "powered", "driven", "hosted", "managed", "side", "centric"}
    | {"certified", "approved", "owned", "led", "facing", "focused", "heavy", "first", "type", "class"}
    | {"format", "method", "model", "framework", "compliant", "wise"}
)


def _hyphened_to(name: str, compound: str) -> bool:
    """Whether `compound` is `name` with a word hyphened to it ("starter-tier", "pareto-style")."""
    return compound.startswith(name + "-") and compound[len(name) + 1 :] in _NAME_SUFFIXES


def _drop_spelling_variants(missing_a: list[str], missing_b: list[str]) -> None:
    """Remove names missing on both sides that are spellings of each other ("Scholem"/"Sholem").

    Identifiers must match exactly: "http2" is not "http3"."""
    if len(missing_a) * len(missing_b) > _MAX_SPELLING_COMPARISONS:
        return
    variants = {
        (x, y)
        for x in missing_a
        for y in missing_b
        if x.isalpha() and y.isalpha() and _similar_spelling(x, y)
    }
    missing_a[:] = [x for x in missing_a if not any(x == pair[0] for pair in variants)]
    missing_b[:] = [y for y in missing_b if not any(y == pair[1] for pair in variants)]


# Currencies by code and by name, for names that a code stands in for.
_CURRENCY_NAMES: Final[Mapping[str, str]] = {
    "usd": r"us dollars?|american dollars?|u\.s\. dollars?",
    "gbp": r"british pounds?|pounds? sterling|sterling|uk pounds?",
    "eur": r"euros?",
    "jpy": r"japanese yen|yen",
    "chf": r"swiss francs?",
    "cad": r"canadian dollars?",
    "aud": r"australian dollars?",
    "inr": r"indian rupees?|rupees?",
    "cny": r"chinese yuan|yuan|renminbi|rmb",
    "sek": r"swedish kron(?:or|a)|kronor",
    "nok": r"norwegian kron(?:er|e)",
    "dkk": r"danish kron(?:er|e)",
    "sgd": r"singapore dollars?",
    "hkd": r"hong kong dollars?",
    "nzd": r"new zealand dollars?",
    "pln": r"polish zloty|zloty|zlotys",
    "zar": r"south african rand",
}
_CURRENCY: Final = re.compile(
    r"\b(?:(?P<code>"
    + "|".join(_CURRENCY_NAMES)
    + r")|"
    + "|".join(f"(?P<{code}>{names})" for code, names in _CURRENCY_NAMES.items())
    + r")\b",
    re.IGNORECASE,
)


@_per_text()
def _currency_words(text: str) -> Mapping[str, str]:
    """Each word of `text` that is part of a currency's code or name ("gbp"; "british", "pounds"),
    with that currency's code."""
    words: dict[str, str] = {}
    for match in _CURRENCY.finditer(text):
        code = match.group("code")
        currency = (
            code.lower() if code else next(k for k, v in match.groupdict().items() if v and k != "code")
        )
        for word in match.group(0).lower().split():
            words[word] = currency
    return MappingProxyType(words)


# Names written more than one way: a country, its people and its initials; products by their
# short names. An entry in capitals is matched in capitals only ("US", not the pronoun "us").
_ALIASES: Final[tuple[tuple[str, ...], ...]] = (
    ("US", "USA", "america", "american", "americans", "united states"),
    ("UK", "britain", "british", "united kingdom", "great britain"),
    ("EU", "european union", "european"),
    ("england", "english"),
    ("UAE", "united arab emirates", "emirates"),
    ("NZ", "new zealand"),
    ("france", "french"),
    ("germany", "german"),
    ("spain", "spanish"),
    ("italy", "italian"),
    ("portugal", "portuguese"),
    ("netherlands", "dutch", "holland"),
    ("switzerland", "swiss"),
    ("ireland", "irish"),
    ("sweden", "swedish"),
    ("norway", "norwegian"),
    ("denmark", "danish"),
    ("finland", "finnish"),
    ("poland", "polish"),
    ("russia", "russian"),
    ("japan", "japanese"),
    ("china", "chinese"),
    ("korea", "korean", "south korea"),
    ("india", "indian"),
    ("canada", "canadian"),
    ("mexico", "mexican"),
    ("brazil", "brazilian"),
    ("australia", "australian"),
    ("facebook", "FB"),
    ("sql server", "mssql", "t-sql", "tsql"),
    ("javascript", "JS"),
    ("typescript", "TS"),
    ("github", "GH"),
    ("terraform", "TF"),
    ("power bi", "PBI"),
    ("postgres", "postgresql", "psql"),
    ("mongodb", "mongo"),
    ("kubernetes", "kube", "kubectl"),
    ("python", "py"),
    ("golang", "Go"),
    ("mac", "macos", "macbook", "osx", "os x"),
    ("salesforce", "SFDC"),
    ("microsoft", "MS"),
    ("office 365", "o365"),
    ("microsoft 365", "m365"),
    ("google sheets", "gsheets"),
    ("database", "DB"),
    ("ssl", "tls"),
    ("visual studio code", "vs code", "vscode"),
    ("openid connect", "OIDC"),
    ("node.js", "nodejs", "Node"),
    ("amazon web services", "AWS"),
    ("google cloud platform", "google cloud", "GCP"),
    ("azure active directory", "azure ad", "entra id", "microsoft entra id", "AAD"),
    ("microsoft teams", "ms teams", "Teams"),
    ("google workspace", "g suite", "gsuite"),
    # The states of the US by their postal codes, matched in capitals only ("IN", "OR", "ME" are
    # words in lower case); not "MS" (Microsoft, above) or "LA" (Los Angeles more often).
    *(
        (name, code)
        for code, name in (
            ("AL", "alabama"),
            ("AK", "alaska"),
            ("AZ", "arizona"),
            ("AR", "arkansas"),
            ("CA", "california"),
            ("CO", "colorado"),
            ("CT", "connecticut"),
            ("DE", "delaware"),
            ("FL", "florida"),
            ("GA", "georgia"),
            ("HI", "hawaii"),
            ("ID", "idaho"),
            ("IL", "illinois"),
            ("IN", "indiana"),
            ("IA", "iowa"),
            ("KS", "kansas"),
            ("KY", "kentucky"),
            ("ME", "maine"),
            ("MD", "maryland"),
            ("MA", "massachusetts"),
            ("MI", "michigan"),
            ("MN", "minnesota"),
            ("MO", "missouri"),
            ("MT", "montana"),
            ("NE", "nebraska"),
            ("NV", "nevada"),
            ("NH", "new hampshire"),
            ("NJ", "new jersey"),
            ("NM", "new mexico"),
            ("NY", "new york"),
            ("NC", "north carolina"),
            ("ND", "north dakota"),
            ("OH", "ohio"),
            ("OK", "oklahoma"),
            ("OR", "oregon"),
            ("PA", "pennsylvania"),
            ("RI", "rhode island"),
            ("SC", "south carolina"),
            ("SD", "south dakota"),
            ("TN", "tennessee"),
            ("TX", "texas"),
            ("UT", "utah"),
            ("VT", "vermont"),
            ("VA", "virginia"),
            ("WA", "washington"),
            ("WV", "west virginia"),
            ("WI", "wisconsin"),
            ("WY", "wyoming"),
            ("DC", "district of columbia"),
        )
    ),
)
_ALIAS_GROUP: Final[Mapping[str, int]] = {
    alias.lower(): index for index, group in enumerate(_ALIASES) for alias in group
}


def _aliases_at_each_word(aliases: Iterable[str], flags: int) -> re.Pattern[str]:
    """One scan for many aliases: at each word start, the longest of `aliases` that starts there."""
    ordered = sorted(set(aliases), key=len, reverse=True)
    return re.compile(r"(?=\b(" + "|".join(re.escape(alias) for alias in ordered) + r")\b)", flags)


# Every alias in two scans, not two a group: aliases in lower case in any case, the others
# ("US", "FB") in capitals only.
_ALIASES_ANY_CASE: Final = _aliases_at_each_word(
    (a for g in _ALIASES for a in g if a.islower()), re.IGNORECASE
)
_ALIASES_CAPITALS: Final = _aliases_at_each_word((a for g in _ALIASES for a in g if not a.islower()), 0)
# The groups an alias found names: its own, and those of the aliases it starts with, which the
# scan, taking the longest at a word, does not report ("microsoft 365" names Microsoft too).
_ALIAS_NAMES: Final[Mapping[str, frozenset[int]]] = {
    alias: frozenset(
        index
        for shorter, index in _ALIAS_GROUP.items()
        if alias == shorter or alias.startswith(shorter + " ")
    )
    for alias in _ALIAS_GROUP
}
# "U.S." -> "US.", "U.S.A." -> "USA.": initials written with stops.
_INITIAL_STOP: Final = re.compile(r"\b([A-Za-z])\.(?=[A-Za-z]\b)")


@_per_text()
def _aliases_found(text: str) -> frozenset[str]:
    """The aliases of `_ALIASES` that `text` names, in lower case."""
    folded = _INITIAL_STOP.sub(r"\1", _normalise(text))
    return frozenset(
        match.lower() for scan in (_ALIASES_ANY_CASE, _ALIASES_CAPITALS) for match in scan.findall(folded)
    )


@_per_text()
def _alias_groups(text: str) -> frozenset[int]:
    """The groups of `_ALIASES` that `text` names."""
    return frozenset(index for alias in _aliases_found(text) for index in _ALIAS_NAMES[alias])


# Languages an answer may be asked in.
_LANGUAGES: Final = (
    "english|french|german|spanish|italian|portuguese|dutch|swedish|norwegian|danish|finnish|polish|czech"
    "|russian|ukrainian|turkish|greek|arabic|hebrew|hindi|bengali|urdu|chinese|mandarin|cantonese"
    "|japanese|korean|vietnamese|thai|indonesian|malay|tagalog|swahili|romanian|hungarian"
)
# The language an answer is asked in: "summarise this contract in English", "translate it into
# German", "translate this email to Spanish"; not "Spanish is close to Portuguese", the language
# a text is in ("it's in Korean", "written in French") or a word's ("what does 'Rechnung' mean in
# German?", which asks in another language for its meaning).
_LANGUAGE_ASKED: Final = re.compile(
    r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )(?<!\bwritten )(?<!'s )(?<!\bmean )(?<!\bmeans )"
    rf"\b(?:in|into|(?:translat|convert)\w*\b[^.?!\n]{{0,60}}?\bto)\s+(?:plain\s+|simple\s+|formal\s+)?"
    rf"((?:british|american|brazilian|european|latin\s+american|canadian|swiss|mexican|simplified|traditional)\s+)?"
    rf"({_LANGUAGES})\b",
    re.IGNORECASE,
)
# A thing named by a capital letter after its noun: "Product A", "group B", "option C" (not "I").
# Not an initial ("J. Holm"), nor a letter that begins a word ("A-team", "B's").
_LETTER_NAME: Final = re.compile(r"\b([A-Za-z][a-z]+) ([A-HJ-Z])\b(?![-'’]\w|\.\s?[A-Z])")


@_per_text()
def _languages_asked(text: str) -> frozenset[tuple[str, str]]:
    """The languages `text` asks an answer in, as (variety or "", language): ("brazilian",
    "portuguese")."""
    return frozenset(
        (re.sub(r"\s+", " ", (match.group(1) or "").strip().lower()), match.group(2).lower())
        for match in _LANGUAGE_ASKED.finditer(_normalise(text))
    )


def _languages_unasked(own: frozenset[tuple[str, str]], other: frozenset[tuple[str, str]]) -> bool:
    """Whether `own` asks for a language `other` does not, a variety only against another variety
    ("Brazilian Portuguese" / "European Portuguese"; "Portuguese" / "Brazilian Portuguese" is a detail
    one adds)."""
    return any(
        not any(
            language == theirs and (variety == their_variety or not variety or not their_variety)
            for their_variety, theirs in other
        )
        for variety, language in own
    )


@_per_text()
def _letter_names(text: str) -> Mapping[str, frozenset[str]]:
    """Noun -> the letters that name things of it: "Product A and Product B" gives {"product": {"A", "B"}}."""
    normalised = _normalise(text)
    names: dict[str, set[str]] = {}
    for match in _LETTER_NAME.finditer(normalised):
        noun = match.group(1).lower()
        if noun in _NOT_A_PARTY or noun in _PREPOSITIONS:
            continue
        if match.group(2) == "A" and not _letter_named(normalised, match.start(2), match.end(2)):
            continue
        names.setdefault(_singular(noun), set()).add(match.group(2))
    return MappingProxyType({noun: frozenset(letters) for noun, letters in names.items()})


# Kinds of text one may ask for, each with its names: "a tweet" is not "a blog post", "an email"
# not "a Slack message" (a newsletter is an email). A generic word ("message", "note", "post",
# "article") names none.
_TEXT_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "email": ("email", "e-mail", "emails", "e-mails", "newsletter", "email newsletter", "news letter"),
    "chat": ("slack message", "slack post", "slack dm", "teams message", "chat message"),
    "sms": ("sms", "text message"),
    "tweet": ("tweet", "tweets", "x post", "twitter post", "twitter thread"),
    "linkedin": ("linkedin post", "linkedin message", "linkedin update"),
    "blog": ("blog post", "blog article", "blog"),
    "press": ("press release", "press statement"),
    "memo": ("memo", "memorandum"),
    "letter": ("letter",),
    "cover letter": ("cover letter",),
    "resignation letter": ("resignation letter", "letter of resignation"),
    "reference letter": ("reference letter", "recommendation letter", "letter of recommendation"),
    "caption": ("instagram caption", "instagram post", "caption"),
    "readme": ("readme",),
    "changelog": ("changelog", "release notes"),
    "user story": ("user story", "user stories"),
    "bug report": ("bug report",),
    "out of office": ("out-of-office reply", "out-of-office message", "out of office reply", "ooo reply"),
    "signature": ("email signature", "signature"),
    "white paper": ("white paper", "whitepaper"),
    "case study": ("case study",),
    "podcast": ("podcast script", "podcast outline"),
    "video": ("video script",),
    "job ad": ("job ad", "job advert", "job posting", "job listing", "job description", "job advertisement"),
    "deck": ("slide deck", "deck", "presentation", "slides"),
    "faq": ("faq", "faqs"),
}
# A kind of text asked for: after a verb of writing and up to three words, none a preposition
# ("write a short welcome email", "turn this into a tweet"); not one named otherwise ("the open
# rate of our newsletter", "draft a note about email etiquette").
_TEXT_KIND: Final = re.compile(
    r"\b(?:write|draft|compose|create|prepare|send|post|generate|produce|make|turn (?:this|it) into"
    r"|rewrite (?:this|it) as)\b(?:\s+(?:me|us))?(?:\s+(?!(?:about|for|on|to|of|with|in|from|regarding)\b)[\w-]+){0,3}?"
    r"\s+(?<!offer )("
    + "|".join(
        sorted((re.escape(name) for names in _TEXT_KINDS.values() for name in names), key=len, reverse=True)
    )
    + r")\b"
)
_KIND_OF: Final[Mapping[str, str]] = {name: kind for kind, names in _TEXT_KINDS.items() for name in names}


@_per_text()
def _text_kinds(text: str) -> frozenset[str]:
    return frozenset(_KIND_OF[name] for name in _TEXT_KIND.findall(_normalise(text).lower()))


def _kinds_unmatched(own: frozenset[str], other: frozenset[str]) -> bool:
    """Whether `own` asks for a kind of text `other` does not; "a letter" is any letter ("a cover
    letter")."""
    return any(
        not any(
            kind == theirs
            or ("letter" in (kind, theirs) and kind.endswith("letter") and theirs.endswith("letter"))
            for theirs in other
        )
        for kind in own
    )


# Things of one kind that are not one another, each with the words that name it: "drop a column" is
# not "drop a table", "a CPU limit" not "a CPU request". Words that may name the same thing are one
# member ("folder" / "directory", "limit" / "quota").
_SIBLINGS: Final[tuple[tuple[frozenset[str], ...], ...]] = tuple(
    tuple(frozenset(member.split("/")) for member in family.split())
    for family in (
        "column table row index schema view database",
        "branch tag commit stash fork",
        "merge rebase squash cherry-pick",
        "file folder/directory",
        "user group role",
        "invoice receipt quote/estimate requisition",
        "cpu memory/ram disk/storage gpu",
        "staging production/prod development/dev",
        "unit integration e2e/end-to-end smoke load",
        "limit/quota/cap request reservation",
    )
)
_SIBLING_OF: Final[Mapping[str, tuple[int, int]]] = {
    word: (family, index)
    for family, members in enumerate(_SIBLINGS)
    for index, member in enumerate(members)
    for word in member
}


def _sibling_in_a_slot(a: str, b: str) -> bool:
    """The same words but one thing named for another of its kind: "How do I drop a column in
    Snowflake?" / "How do I drop a table in Snowflake?", "unit tests" / "integration tests"."""
    apart = _the_word_apart(a, b)
    if apart is None:
        return False
    one, other = (_SIBLING_OF.get(_singular(word)) for word in apart)
    return one is not None and other is not None and one[0] == other[0] and one[1] != other[1]


def _named_apart(a: str, b: str) -> bool:
    """Each prompt asks for an answer in a language the other does not ("in English" / "in
    Japanese"), names a kind of text the other does not ("a tweet" / "a blog post"), one thing for
    another of its kind in the same words ("drop a column" / "drop a table"), or names by its letter
    a thing of one kind the other does not ("Product A" / "Product B")."""
    asked_a, asked_b = _languages_asked(a), _languages_asked(b)
    if _languages_unasked(asked_a, asked_b) and _languages_unasked(asked_b, asked_a):
        return True
    kinds_a, kinds_b = _text_kinds(a), _text_kinds(b)
    if _kinds_unmatched(kinds_a, kinds_b) and _kinds_unmatched(kinds_b, kinds_a):
        return True
    if _sibling_in_a_slot(a, b):
        return True
    formats_a, formats_b = _date_formats(a), _date_formats(b)
    if formats_a - formats_b and formats_b - formats_a:
        return True
    # Each names a letter the other does not: "Product A and B" names "B" alone, as no letter.
    letters_a, letters_b = _letter_names(a), _letter_names(b)
    return any(
        letters_a[noun] - letters_b[noun] and letters_b[noun] - letters_a[noun]
        for noun in letters_a.keys() & letters_b.keys()
    )


def different_entities(a: str, b: str) -> str | None:
    """A name or identifier was swapped for another: "NBA champions" vs "NFL champions", "in English"
    vs "in Japanese", "Product A" vs "Product B".

    Only a swap rejects: a name in one prompt and missing from the other ("Mount Everest"
    vs "Everest") is left to later stages, as paraphrases often drop or add one.
    """
    if _named_apart(a, b):
        return ENTITY
    ents_a, ents_b = entities(a), entities(b)
    if not ents_a or not ents_b:
        return None
    lex_a, lex_b = _lexicon(a), _lexicon(b)
    # A name both prompts give is found, however it is written ("';'" has no words to look up).
    missing_a = [e for e in dict.fromkeys(ents_a) if e not in ents_b and not _found_in(e, lex_b)]
    missing_b = [e for e in dict.fromkeys(ents_b) if e not in ents_a and not _found_in(e, lex_a)]
    if not missing_a or not missing_b:
        return None
    _drop_spelling_variants(missing_a, missing_b)
    # "Starter" / "Starter-tier", "Nearpod" / "Nearpod-based": one name, a word hyphened to it.
    hyphened = {
        name
        for x in missing_a
        for y in missing_b
        for name in (x, y)
        if _hyphened_to(x, y) or _hyphened_to(y, x)
    }
    missing_a[:] = [x for x in missing_a if x not in hyphened]
    missing_b[:] = [y for y in missing_b if y not in hyphened]
    # "PowerBI" / "Power BI", "SOC2" / "SOC 2": one name written as one word or as two or three.
    for missing, other_text, other_missing in ((missing_a, b, missing_b), (missing_b, a, missing_a)):
        for entity in list(missing):
            joined = _runs(other_text).get(re.sub(r"\W+", "", entity))
            if joined is not None:
                missing.remove(entity)
                other_missing[:] = [e for e in other_missing if e not in joined]
    # "U.S." and "America", "France" and "French", "MSSQL" and "SQL Server": one name.
    aliases_a, aliases_b = _alias_groups(a), _alias_groups(b)
    for missing, text, other_aliases in ((missing_a, a, aliases_b), (missing_b, b, aliases_a)):
        # The words of a name of several ("Azure AD" / "Microsoft Entra ID").
        said = {
            word
            for alias in _aliases_found(text)
            if _ALIAS_NAMES[alias] & other_aliases
            for word in alias.split()
        }
        missing[:] = [
            e for e in missing if _ALIAS_GROUP.get(e.replace(".", "")) not in other_aliases and e not in said
        ]
    # "GBP" and "British pounds" name one currency.
    currencies_a, currencies_b = _currency_words(a), _currency_words(b)
    for missing, own, other in (
        (missing_a, currencies_a, currencies_b),
        (missing_b, currencies_b, currencies_a),
    ):
        missing[:] = [e for e in missing if own.get(e) not in set(other.values())]
    # An acronym or a numeronym ("k8s") on one side and its spelled-out name on the other are the
    # same entity.
    for acronyms, other_words, other_missing in (
        (missing_a, lex_b.words, missing_b),
        (missing_b, lex_a.words, missing_a),
    ):
        shapes: _Shapes | None = None
        for acronym in list(acronyms):
            if not 2 <= len(acronym) <= 6:
                continue
            if acronym.isalpha():
                run = _acronym_of(acronym, other_words)
            else:
                shapes = _by_ends(other_words) if shapes is None else shapes
                run = _numeronym_of(acronym, shapes)
            if run:
                acronyms.remove(acronym)
                spelled = {other_words[i].lower() for i in run}
                other_missing[:] = [e for e in other_missing if e not in spelled]
    return ENTITY if missing_a and missing_b else None


# ---------------------------------------------------------------------------------------
# Direction, role order and antonyms

_STOPWORDS: Final = frozenset(
    {
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "some",
        "any",
        "me",
        "us",
        "it",
        "please",
        "be",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
    }
)


@_per_text()
def _content_tokens(text: str) -> tuple[str, ...]:
    """Words and units in order, lowercased, units canonical; numbers become their unit."""
    out: list[str] = []
    currencies = _currency_words(text)
    for token in _tokens(text):
        if token.kind == "num":
            if token.glued.lower() in _UNITS:
                out.append(_UNITS[token.glued.lower()])
            continue
        low = token.lower
        if low in _STOPWORDS:
            continue
        if low in currencies:
            # "Swiss francs" is one currency: one token, its code.
            if not out or out[-1] != currencies[low]:
                out.append(currencies[low])
            continue
        out.append(_UNITS.get(low, low))
    return tuple(out)


@_per_text()
def _counted_units(text: str) -> frozenset[str]:
    """Units written right after a number: "km" in "5 km" or "5km"."""
    tokens = _tokens(text)
    units = {_UNITS[t.glued.lower()] for t in tokens if t.kind == "num" and t.glued.lower() in _UNITS}
    for before, token in itertools.pairwise(tokens):
        if (before.kind == "num" or before.lower in _NUMBER_WORDS) and token.lower in _UNITS:
            units.add(_UNITS[token.lower])
    return frozenset(units)


_DIRECTION_LINKS: Final = frozenset({"to", "into", "2"})
_UNIT_NAMES: Final = frozenset(_UNITS.values())


# Nouns that name what is moved, not where from: "the Postgres database to MySQL".
_GENERIC_HEADS: Final = frozenset(
    [
        "query",
        "queries",
        "sql",
        "code",
        "script",
        "scripts",
        "file",
        "files",
        "data",
        "database",
        "databases",
        "db",
        "schema",
        "table",
        "tables",
        "syntax",
        "app",
        "function",
        "functions",
        "program",
        "project",
        "document",
        "config",
        "configuration",
        "dump",
        "backup",
        "cluster",
        "instance",
        "server",
        "model",
        "pipeline",
        "job",
        "jobs",
    ]
)


def _singular(word: str) -> str:
    """ "orders" -> "order", "queries" -> "query": enough to match a count's noun in either number."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


@_per_text()
def _directed_pairs(text: str) -> frozenset[tuple[str, str]]:
    tokens = _content_tokens(text)
    counted = _counted_units(text)
    pairs = set()
    for i in range(1, len(tokens) - 1):
        left, link, right = tokens[i - 1], tokens[i], tokens[i + 1]
        if link == "per":
            # "orders per customer" counts orders, "customers per order" customers: in any
            # number, a rate read the other way round ("miles per hour", "hours per mile").
            # The counted noun ends its compound; the unit may be one ("per support agent").
            for unit in tokens[i + 1 : i + 3]:
                pairs.add((_singular(left), _singular(unit)))
            continue
        # "5 km in miles" converts km to miles, but "ounces in a pound" converts pounds to
        # ounces: "in" gives a direction only after a number.
        counted_in_unit = link == "in" and left in counted and right in _UNIT_NAMES
        if link in _DIRECTION_LINKS or counted_in_unit:
            pairs.add((left, right))
            # "a BigQuery query into Oracle": the query is BigQuery's, BigQuery is the source.
            if link in _DIRECTION_LINKS and left in _GENERIC_HEADS and i >= 2:
                pairs.add((tokens[i - 2], right))
    # "USD/JPY": a pair of units or currencies written with a slash.
    for match in re.finditer(r"\b([A-Za-z]{1,4})\s*/\s*([A-Za-z]{1,4})\b", _normalise(text)):
        left, right = match.group(1).lower(), match.group(2).lower()
        if left in _UNITS and right in _UNITS:
            pairs.add((_UNITS[left], _UNITS[right]))
    return frozenset(pairs)


def reversed_direction(a: str, b: str) -> str | None:
    """The same two things in opposite directions: "km to miles" vs "miles to km"."""
    pairs_a, pairs_b = _directed_pairs(a), _directed_pairs(b)
    for left, right in pairs_a:
        if left != right and (right, left) in pairs_b and (left, right) not in pairs_b:
            return DIRECTION
    return None


_ROLE_LINKS: Final = frozenset(
    {"of", "to", "from", "in", "at", "by", "for", "with", "on", "into", "than", "over", "against"}
)


@_per_text()
def _role_triples(tokens: tuple[str, ...]) -> frozenset[tuple[str, str, str]]:
    """(head, link, object) for each link between two words. A head that stands for one named
    before under the same link is that one: "a unit test for X and one for Y" links "test" to both."""
    triples: list[tuple[str, str, str]] = []
    for i in range(1, len(tokens) - 1):
        head, link, obj = tokens[i - 1], tokens[i], tokens[i + 1]
        if link not in _ROLE_LINKS or head in _ROLE_LINKS or obj in _ROLE_LINKS:
            continue
        if head in _STANDS_FOR:
            earlier = next((earlier for earlier, its_link, _ in reversed(triples) if its_link == link), head)
            # Not a count against another ("three at the west end and one at the east end").
            if earlier not in _NUMBER_WORDS and not earlier[:1].isdigit():
                head = earlier
        triples.append((head, link, obj))
    return frozenset(triples)


def _linked_objects_swapped(tokens_a: tuple[str, ...], tokens_b: tuple[str, ...]) -> bool:
    """A word linked (by "of", "to", "from"...) to one object in one prompt and to another in the
    other, each object standing as the object of a link in both: they swapped roles, rather than
    a noun compound being reworded ("rows in table orders" vs "rows in orders table")."""
    triples_a, triples_b = _role_triples(tokens_a), _role_triples(tokens_b)
    # The objects of each link: a swap moves each object to the other's place, under the same
    # kind of link ("from Paris to Rome" / "from Rome to Paris": Paris and Rome stay objects of
    # "from" and "to"). A rewording that turns an object into a possessor ("the report for
    # project X" / "project X's report") leaves it the object of another link, or of none.
    links_a = {(link, obj) for _, link, obj in triples_a}
    links_b = {(link, obj) for _, link, obj in triples_b}
    by_head_b: dict[tuple[str, str], list[str]] = {}
    for head, link, obj in triples_b:
        by_head_b.setdefault((head, link), []).append(obj)
    for head, link, obj_a in triples_a:
        for obj_b in by_head_b.get((head, link), ()):
            if (
                obj_a != obj_b
                and (head, link, obj_b) not in triples_a
                and (head, link, obj_a) not in triples_b
                and any((other, obj_b) in links_a and (other, obj_a) in links_b for other in _ROLE_LINKS)
            ):
                return True
    return False


# Words that join list items, whose order rarely matters ("X, Y and Z", "X or Y").
_LIST_JOINS: Final = frozenset({",", ";", "(", ")", "&", "and", "or", "nor", "vs", "versus", "plus", "with"})
_EDGE: Final = ("^", "$")


@_per_text()
def _slots(tokens: tuple[str, ...]) -> Mapping[str, tuple[str, str, int]]:
    """Word -> (left neighbour, right neighbour, position), for words that occur once and are
    not list items."""
    counts: dict[str, int] = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    slots = {}
    for i, token in enumerate(tokens):
        if counts[token] != 1 or len(token) < 3 or token in _ROLE_LINKS or token in _LIST_JOINS:
            continue
        left = tokens[i - 1] if i > 0 else _EDGE[0]
        right = tokens[i + 1] if i + 1 < len(tokens) else _EDGE[1]
        if left in _LIST_JOINS or right in _LIST_JOINS:
            continue
        slots[token] = (left, right, i)
    return MappingProxyType(slots)


def _slot_taken(own: tuple[str, str, int], other: tuple[str, str, int]) -> bool:
    """`own` now sits where `other` sat: a shared content-word neighbour on the same side."""
    return any(
        mine == theirs and mine not in _ROLE_LINKS and mine not in _EDGE
        for mine, theirs in zip(own[:2], other[:2], strict=True)
    )


def _words_exchanged(tokens_a: tuple[str, ...], tokens_b: tuple[str, ...]) -> bool:
    """Two words exchanged their places: "dog bites man" vs "man bites dog"."""
    slots_a, slots_b = _slots(tokens_a), _slots(tokens_b)
    # (side, neighbour) -> words that had that neighbour in `a`: linear, not quadratic, in long prompts.
    by_neighbour: dict[tuple[int, str], list[str]] = {}
    for word, (left, right, _) in slots_a.items():
        by_neighbour.setdefault((0, left), []).append(word)
        by_neighbour.setdefault((1, right), []).append(word)
    for x, slot_bx in slots_b.items():
        slot_ax = slots_a.get(x)
        if slot_ax is None or slot_ax[:2] == slot_bx[:2]:
            continue
        for side, neighbour in ((0, slot_bx[0]), (1, slot_bx[1])):
            for y in by_neighbour.get((side, neighbour), ()):
                slot_by = slots_b.get(y)
                if y == x or slot_by is None or slots_a[y][:2] == slot_by[:2]:
                    continue
                if abs(slot_ax[2] - slots_a[y][2]) <= 1 or abs(slot_bx[2] - slot_by[2]) <= 1:
                    continue  # neighbours trading places: "big red" vs "red big"
                if _slot_taken(slot_bx, slots_a[y]) and _slot_taken(slot_by, slot_ax):
                    return True
    return False


# Where a sentence begins: the text's start, or after a full stop, a colon, a line break or a
# bullet, with any quotes or brackets before its first word.
_SENTENCE_START: Final = re.compile(r"(?:^|[.!?:;\n])[\s\"'(\[*]*(?:[-\u2022][\s\"'(\[*]*)?$")


def _letter_named(text: str, start: int, end: int) -> bool:
    """Whether the capital "A" at text[start:end] names something ("column A by column B", "Is A
    better than B?") rather than being the article: not where a sentence begins, nor before a
    word in capitals ("Is This A Good Idea?"). A middle initial ("Laurence A. Tisch") is part of
    a name, read as before without it."""
    if _SENTENCE_START.search(text[max(0, start - 8) : start]) is not None:
        return False
    before = re.search(r"([^\W\d_]+)\W*$", text[max(0, start - 40) : start])
    if text[end : end + 1] == "." and before is not None and before.group(1)[0].isupper():
        return False
    following = re.match(r"\s*([^\W\d_])", text[end : end + 16])
    return following is None or not following.group(1).isupper()


_ORDER_TOKEN: Final = re.compile(r"(?P<delimiter>'[^\w\s']{1,2}'|\"[^\w\s\"]{1,2}\")|[^\W_][\w'-]*|[,;()&]")


@_per_text()
def _order_tokens(text: str) -> tuple[str, ...]:
    """Lowercased words and list punctuation in order, determiners dropped (a capital "A" that
    names something is kept, as "A"), units canonical."""
    out = []
    normalised = _normalise(text)
    for match in _ORDER_TOKEN.finditer(normalised):
        word = match.group(0)
        if match.group("delimiter"):
            out.append(word)  # "replace '.' with ','": a quoted mark is a thing named
            continue
        if word == "A" and _letter_named(normalised, match.start(), match.end()):
            out.append(word)
            continue
        # "US", "IT": a name in capitals, not the word in lower case ("our US entity").
        if word.isupper() and len(word) > 1 and word.lower() in _STOPWORDS:
            out.append(word)
            continue
        word = word.lower()
        # A possessor is its name: "Bob's PR" trades places with "Alice" as "Bob" does.
        word = word[:-2] if word.endswith("'s") and len(word) > 3 else word
        if word not in _STOPWORDS:
            out.append(_UNITS.get(word, word))
    return tuple(out)


def _the_word_apart(a: str, b: str) -> tuple[str, str] | None:
    """The one word, in `_order_tokens`, that the two prompts say differently with every other
    word the same and in the same place, or None."""
    tokens_a, tokens_b = _order_tokens(a), _order_tokens(b)
    if len(tokens_a) != len(tokens_b):
        return None
    differing = [(x, y) for x, y in zip(tokens_a, tokens_b, strict=True) if x != y]
    return differing[0] if len(differing) == 1 else None


# The longest name (in words) `_spans_exchanged` looks for on each side.
_EXCHANGED_SPAN: Final = 3
# Words of a relation that reads the same both ways: "how does X differ from Y", "X compared to Y".
_SYMMETRIC: Final = frozenset(
    {"differ", "differs", "different", "difference", "differences", "compare", "compared", "comparing"}
    | {"comparison", "similar", "same", "equal", "equivalent", "like", "unlike", "related", "relate"}
    | {"relationship", "correlate", "correlation", "between", "interact", "together", "both"}
    | {"married", "marry", "stack", "versus", "compete", "competes", "match", "matches", "similarity"}
    | {"far", "distance", "independent", "independently"}
)


# Verbs after which "X with Y" has a direction: the one taken out, then the one put in.
_REPLACING: Final = frozenset({"replace", "replaces", "replaced", "replacing"})


def _spans_exchanged(tokens_a: tuple[str, ...], tokens_b: tuple[str, ...]) -> bool:
    """The same sentence with two names of up to three words exchanged across a link: "As a mentor,
    how do I prepare for a meeting with a mentee" vs "As a mentee, ... with a mentor", "the city
    council took over the water supply from the Water Board" vs the other way round.

    Not a swap: list items ("X, Y and Z"), neighbours ("red big"), a symmetric relation ("how does X
    differ from Y"), two phrases of one link reordered ("born in 1923 in Boston" / "in Boston in
    1923"), nor keywords with no link between them ("css dark mode in:title").
    """
    if len(tokens_a) != len(tokens_b) or tokens_a == tokens_b:
        return False
    start, end = shared_ends(tokens_a, tokens_b)
    end_a, end_b = len(tokens_a) - end, len(tokens_b) - end
    middle_a, middle_b = tokens_a[start:end_a], tokens_b[start:end_b]
    size = len(middle_a)
    for size_x in range(1, min(_EXCHANGED_SPAN, size - 2) + 1):
        for size_y in range(1, min(_EXCHANGED_SPAN, size - size_x - 1) + 1):
            x, between, y = middle_a[:size_x], middle_a[size_x : size - size_y], middle_a[size - size_y :]
            if len(between) < 1 or x == y or middle_b != y + between + x:
                continue
            joined = set(between) & _LIST_JOINS and len(between) <= 3
            # "replace tabs with spaces": after a verb of replacing, "with" names the new one.
            if between == ("with",) and start > 0 and tokens_a[start - 1] in _REPLACING:
                joined = False
            same_link = len(between) == 1 and start > 0 and tokens_a[start - 1] == between[0]
            if (
                not set(x + y) & (_ROLE_LINKS | _LIST_JOINS)
                and set(between) & _ROLE_LINKS
                and not set(between) & _SYMMETRIC
                and not joined
                and not same_link
                and _clauses_alike(tokens_a[:start], between, tokens_a[end_a:]) is not True
            ):
                return True
            if _parallel(tokens_a[:start], between, tokens_a[end_a:]):
                return True
    return False


# Words that mark a clause as the next of a list, not another subject: "an email to say thanks and
# another email to ask for feedback", "update the README and then update the CHANGELOG".
_NEXT_IN_A_LIST: Final = frozenset(
    {"another", "second", "also", "then", "separately", "separate", "next", "too", "other", "again"}
    | {"additionally", "one"}
    | {"finally", "afterwards", "afterward", "later", "plus", "likewise", "similarly", "same"}
    # `_order_tokens` writes "second" as the unit it also is.
    | {_UNITS["second"]}
)
# Words that stand for what the clause before named: "write a unit test for X and write one for Y".
_STANDS_FOR: Final = frozenset({"one", "ones", "another", "same"})
# Words that join two clauses: "group A saw the new layout and group B saw the old one".
_CLAUSE_JOINS: Final = frozenset({"and", "but", "while", "whereas", "whilst", ",", ";"})


def _clauses_alike(before: tuple[str, ...], between: tuple[str, ...], after: tuple[str, ...]) -> bool | None:
    """For two things exchanged, the first after `before` and the second after `between`, `after`
    following: whether the two clauses say the same around them, words that mark the next of a
    list aside ("a ticket for X bug and another ticket for Y bug": a list of two; not "invoices
    older than 30 days as overdue and invoices older than 90 days as delinquent"); None when no
    word joining two clauses comes between."""
    joins = [index for index, word in enumerate(between[:-1]) if word in _CLAUSE_JOINS]
    if not joins:
        return None
    said = between[joins[-1] + 1 :]
    lead = tuple(word for word in said if word not in _NEXT_IN_A_LIST)
    if lead and before[-len(lead) :] != lead and not (set(said) & _STANDS_FOR and _said_again(lead, before)):
        return False
    trail = between[: joins[0]]
    return after[: len(trail)] == trail


def _said_again(lead: tuple[str, ...], before: tuple[str, ...]) -> bool:
    """Whether `lead` says again, word for word in order, what ends `before`, with words left out
    where a word stood for them ("write one for" after "write a unit test for")."""
    if not before or before[-1] != lead[-1]:
        return False
    rest = iter(before)
    return all(word in rest for word in lead)


def _parallel(before: tuple[str, ...], between: tuple[str, ...], after: tuple[str, ...]) -> bool:
    """Whether two things exchanged, the first after `before` and the second after `between`,
    stand in two clauses alike: the same word leads to each ("group A saw X and group B saw Y",
    "price went up while volume went down"), so each is said of its own subject. Not where the
    clauses are alike up to the two ("there to enjoy us and there to pray for us", "always
    crowded, always crazy": a list of two, reordered), nor where the prompt compares the two
    ("compare sales in 2023 and sales in 2024")."""
    if not before or len(between) < 2 or before[-1] != between[-1] or before[-1] in _LIST_JOINS:
        return False
    if set(before + between) & _SYMMETRIC:
        return False
    return _clauses_alike(before, between, after) is False


# Personal pronouns by person: as the subject of a verb, as its object, and reflexive (both at once:
# "I quiz myself" has no second party).
_SUBJECT_PRONOUNS: Final[Mapping[str, str]] = {"i": "1s", "we": "1p", "he": "3m", "she": "3f", "they": "3p"}
_OBJECT_PRONOUNS: Final[Mapping[str, str]] = {
    "me": "1s",
    "us": "1p",
    "him": "3m",
    "her": "3f",
    "them": "3p",
    "myself": "1s",
    "ourselves": "1p",
    "himself": "3m",
    "herself": "3f",
    "themselves": "3p",
}
# Between a subject and its verb: auxiliaries, modals and adverbs ("we still owe", "I can't pay").
_BEFORE_VERB: Final = frozenset(
    {"do", "does", "did", "don't", "doesn't", "didn't", "can", "can't", "cannot", "could", "couldn't"}
    | {"should", "shouldn't", "will", "won't", "would", "wouldn't", "must", "may", "might", "to", "need"}
    | {"want", "have", "has", "had", "haven't", "hasn't", "hadn't", "also", "just", "really", "still"}
    | {"always", "never", "often", "usually", "already", "currently", "actually", "recently", "not"}
)
# A form of "be" before the verb, or before its subject ("are we required to ..."), makes it passive
# ("we were charged by our vendor" is "our vendor charged us"), unless the verb ends in -ing.
_BE: Final = frozenset(
    {"am", "are", "is", "was", "were", "be", "been", "being", "isn't", "aren't", "wasn't", "weren't"}
)
# Verbs too light to carry a role ("getting us answers" / "the answers we get").
_LIGHT_VERBS: Final = frozenset({"let", "get", "help", "make", "made", "have", "do"})
# What may stand between a verb and its object ("we owe our contractor").
_DETERMINERS: Final = frozenset(
    {"a", "an", "the", "my", "our", "your", "their", "his", "her", "its", "this", "that", "these", "those"}
)
# Verbs that read the same both ways round ("I met her" / "she met me").
_MUTUAL_VERBS: Final = frozenset(
    {"meet", "met", "date", "face", "play", "race", "fight", "resemble", "border", "trade", "marry"}
    | {"married", "match", "compete", "interact", "rival", "overlap", "equal", "rent", "lease"}
)
# Prepositions that could pass for a verb ("Is he near me?"); "like" is both, see `_pronoun_roles`.
_PREPOSITIONS: Final = frozenset(
    {"near", "unlike", "about", "as", "behind", "above", "below", "beside", "besides", "around"}
    | {"without", "within", "toward", "towards", "after", "before", "via", "per", "among", "past", "off"}
    | {"up", "down", "out", "through", "across", "along", "beyond", "under", "upon", "onto", "inside"}
)
# A prompt that names both directions at once ("should I text him first or vice versa?").
_BOTH_WAYS: Final = re.compile(r"\b(?:vice versa|other way (?:a)?round|or the reverse)\b", re.IGNORECASE)
# Words, and a bar for each break between clauses; numbers and symbols are left out.
_CLAUSE_ITEMS: Final = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[.!?;:,()\"]")
_CLAUSE_BREAK: Final = "|"
# Words that name no party and are no verb: breaks, auxiliaries, "be", function words, links.
_NOT_A_PARTY: Final = frozenset({_CLAUSE_BREAK}) | _BEFORE_VERB | _BE | _STOPWORDS | _ROLE_LINKS | _LIST_JOINS


def _verb_at(words: Sequence[str], index: int) -> frozenset[str] | None:
    """The lemmas of the word at `index` if it can be a verb that carries a role, else None."""
    if not 0 <= index < len(words):
        return None
    word = words[index]
    if word in _NOT_A_PARTY or word in _SUBJECT_PRONOUNS or word in _OBJECT_PRONOUNS or word in _PREPOSITIONS:
        return None
    lemmas = _lemmas(word)
    return None if lemmas & (_LIGHT_VERBS | _MUTUAL_VERBS) else lemmas


def _party_at(words: Sequence[str], index: int) -> str | None:
    """The party a word names, for a role: a pronoun's person, or a noun's singular."""
    if not 0 <= index < len(words):
        return None
    word = words[index]
    if word in _OBJECT_PRONOUNS:
        return _OBJECT_PRONOUNS[word]
    if word in _SUBJECT_PRONOUNS:
        return _SUBJECT_PRONOUNS[word]
    if word in _NOT_A_PARTY or word in ("you", "please"):
        return None
    return _singular(word)


@_per_text()
def _pronoun_roles(text: str) -> frozenset[tuple[str, str, str]]:
    """(subject, verb lemma, object) with a personal pronoun on one side, stated in full: "we owe
    our contractor" gives ("1p", "owe", "contractor"), "our contractor owes us" ("contractor", "owe",
    "1p"). A request ("prepare me for ..."), a passive and a light verb give none."""
    items = [
        _CLAUSE_BREAK if not m.group(0)[0].isalpha() else ("US" if m.group(0) == "US" else m.group(0).lower())
        for m in _CLAUSE_ITEMS.finditer(_normalise(text))
    ]
    roles: set[tuple[str, str, str]] = set()
    for i, word in enumerate(items):
        pronoun, _, contracted = word.partition("'")
        if pronoun in _SUBJECT_PRONOUNS:
            # The subject's verb and object: "we (still) owe (our) contractor".
            passive = contracted in ("re", "m") or (i > 0 and items[i - 1] in _BE)
            j = i + 1
            while j < len(items) and (items[j] in _BEFORE_VERB or items[j] in _BE):
                passive = passive or items[j] in _BE
                j += 1
            verb = _verb_at(items, j)
            if verb is None or (passive and not items[j].endswith("ing")):
                continue
            k = j + 1
            # "her" before a noun is a possessive: the noun is the object.
            while k + 1 < len(items) and items[k] in _DETERMINERS and _party_at(items, k + 1) is not None:
                k += 1
            # A party of two words ("we owe Acme Ltd") is read as each; not a possessor's ("we
            # rent Acme Ltd's office").
            second = (
                k + 1 < len(items) and not items[k + 1].endswith("'s") and _party_at(items, k) is not None
            )
            for obj in (_party_at(items, k), _party_at(items, k + 1) if second else None):
                if obj is not None:
                    roles.update((_SUBJECT_PRONOUNS[pronoun], lemma, obj) for lemma in verb)
        elif word in _OBJECT_PRONOUNS:
            # The object's verb and subject: "(our) contractor (does) owe us". A request has none.
            if word == "her" and _party_at(items, i + 1) is not None:
                continue
            verb = _verb_at(items, i - 1)
            j = i - 2
            while j >= 0 and items[j] in _BEFORE_VERB:
                j -= 1
            subject = _party_at(items, j)
            # "Is she like me?": after "is" the subject's word is no verb.
            if verb is not None and subject is not None and not (j > 0 and items[j - 1] in _BE):
                roles.update((subject, lemma, _OBJECT_PRONOUNS[word]) for lemma in verb)
                # A party of two words ("Acme Ltd owes us") is read as each.
                before = _party_at(items, j - 1)
                if before is not None and before not in _SUBJECT_PRONOUNS.values():
                    roles.update((before, lemma, _OBJECT_PRONOUNS[word]) for lemma in verb)
    return frozenset(roles)


# A question that asks for a party: "who" or "whom" where a clause begins, or "which" or "what"
# and its noun.
_WHO: Final = frozenset({"who", "whom"})
_WHICH: Final = frozenset({"which", "what"})
# Before the verb of "who" as its subject ("who will hire ...", "who has approved ..."): modals,
# "have" and adverbs, never "do" or "be" ("who was hired by ..." asks for the one hired).
_BEFORE_ASKED_VERB: Final = frozenset(
    {"will", "would", "can", "could", "should", "shall", "must", "may", "might", "has", "have", "had"}
    | {"also", "just", "really", "still", "always", "never", "often", "usually", "already", "currently"}
    | {"actually", "recently", "not"}
)
# What asks with "who" as the object: "who does Dana report to", "who will the board appoint".
# Not "have": "who has edit access" asks who holds it.
_ASKING_AUXILIARIES: Final = frozenset({"do", "does", "did"}) | (
    _BEFORE_ASKED_VERB - {"not", "has", "have", "had"}
)
# A preposition after the verb may lead to its object ("who reports to Dana"), unless it makes
# the relation mutual ("who works with Dana" is "who does Dana work with").
# Not "after": a verb that takes an object or none reads "after" as a time ("Which servers
# restarted after the update?" is "Which servers did the update restart?").
_OBJECT_LINKS: Final = frozenset({"to", "for", "from", "into", "about", "on", "at", "over"})


def _past(items: Sequence[str], index: int, skipped: frozenset[str], *, keep_last: bool = False) -> int:
    """The first index from `index` whose item is not one of `skipped` (with `keep_last`, never
    the last item: a determiner may be the party's last word)."""
    while index + keep_last < len(items) and items[index] in skipped:
        index += 1
    return index


# A role read in a question or a clause, with the end of it that the prompt asks for or names
# the clause after: (subject, verb lemma, object, "s" or "o").
_Asked = tuple[str, str, str, str]


def _asked_roles(
    items: Sequence[str],
    asked: str,
    after: int,
    roles: set[_Asked],
    *,
    inverted: bool = True,
    capitals: Sequence[bool] = (),
    as_subject: bool = True,
) -> None:
    """Add the roles of the party a question asks for, or a relative clause names (`asked`), whose
    words end before `after`. A clause that is not `inverted` (a question within a sentence, a
    relative clause) has its subject before its verb with no "do" before them: "which accounts a
    rep owns", "the people (who) Dana manages". `capitals` tells which items begin with a capital:
    two words of a party begin alike ("the user service", "Acme Ltd"; not "people Dana"). Without
    `as_subject`, only the object is read: a clause with no word to open it has its own subject."""
    # The one asked for as the subject: "who (will) report(s) (to) (the) X".
    j = _past(items, after, _BEFORE_ASKED_VERB)
    verb = _verb_at(items, j) if as_subject else None
    if verb is not None:
        k = j + 1
        if k < len(items) and items[k] in _OBJECT_LINKS:
            k += 1
        for at in (start := _past(items, k, _DETERMINERS, keep_last=True), start + 1):
            obj = _party_at(items, at)
            if obj is None:
                break
            roles.update((asked, lemma, obj, "s") for lemma in verb)
    # The one asked for as the object: "who does (the) (billing) X (still) report to".
    if inverted and not (after < len(items) and items[after] in _ASKING_AUXILIARIES):
        return
    subjects: list[str] = []
    for at in (start := _past(items, after + inverted, _DETERMINERS, keep_last=True), start + 1):
        subject = _party_at(items, at)
        if subject is None:
            break
        subjects.append(subject)
        verb_at = _past(items, at + 1, _BEFORE_ASKED_VERB)
        verb = _verb_at(items, verb_at)
        # Without "do" to mark it, a verb after a noun shows its tense: "the people Dana manages",
        # "the invoices Acme sent" (not "the first Winter Olympics").
        if verb is not None and (inverted or items[at] in _SUBJECT_PRONOUNS or _finite(items[verb_at])):
            # A party of two words ("the user service calls") is read as each.
            alike = not capitals or capitals[start] == capitals[at]
            roles.update(
                (party, lemma, asked, "o") for lemma in verb for party in (subjects if alike else [subject])
            )


# Verbs whose past tense does not end in "-ed" (`_finite`).
_IRREGULAR_PAST: Final = frozenset(
    {"sent", "made", "wrote", "built", "paid", "sold", "bought", "led", "ran", "took", "gave", "kept"}
    | {"held", "told", "won", "lost", "met", "did", "brought", "taught", "chose", "found", "left"}
)


def _finite(word: str) -> bool:
    """Whether `word` reads as a verb's present with "-s" or its past: "manages", "referred", "sent"."""
    return word in _IRREGULAR_PAST or word.endswith("ed") or (word.endswith("s") and not word.endswith("ss"))


def _names_a_subject(matches: Sequence[re.Match[str]], i: int) -> bool:
    """Whether the word at `i` can begin a clause's subject right after a noun: a subject pronoun
    ("the invoices we sent") or a name written with a capital after a word written without one
    ("the people Dana manages"; not "the first Winter Olympics" after "their", nor "YYYY-MM-DD")."""
    word, before = matches[i].group(0), matches[i - 1].group(0)
    if word.lower() in _SUBJECT_PRONOUNS:
        return True
    return (
        word[0].isupper()
        and word[1:] != word[1:].upper()
        and before.islower()
        and before not in _PREPOSITIONS
    )


# Words that open a relative clause after its noun: "the people who manage Dana", "the services
# that call the user service".
_RELATIVE: Final = frozenset({"who", "whom", "that", "which"})


def _asked_which(items: Sequence[str], i: int, roles: set[_Asked], *, inverted: bool) -> None:
    """The roles of "which" or "what" at `i` and the noun after it: "which (of our) clients", "what
    (two) teams"."""
    j = i + 1
    if j + 1 < len(items) and items[j] == "of" and items[j + 1] in _DETERMINERS:
        j += 2
    for end in (j, j + 1):
        head = _party_at(items, end)
        if head is None or items[end] in _ASKING_AUXILIARIES:
            break
        _asked_roles(items, _singular(items[end]), end + 1, roles, inverted=inverted)


@_per_text()
def _question_roles(text: str) -> frozenset[_Asked]:
    """(subject, verb lemma, object, the end asked for) of a question that asks for a party, the one
    asked for as "wh" ("who", "whom") or as its noun ("which of our clients"), or of a clause that
    names its noun: "who reports to Dana" gives ("wh", "report", "dana", "s"), "who does Dana report
    to" ("dana", "report", "wh", "o"), "which clients do we owe" ("1p", "owe", "client", "o"), "see
    which accounts a rep owns" ("rep", "own", "account", "o"), "the people Dana manages" ("dana",
    "manage", "people", "o"). A passive ("who was Dana hired by") gives none. Where the words allow
    both readings ("who will hire Dana" read as "who will [Hire] [Dana]"), both are given, and a
    party of two words ("the billing team") is read as each: a swap needs the other prompt to read
    the other way round."""
    matches = list(_CLAUSE_ITEMS.finditer(_normalise(text)))
    items = [_CLAUSE_BREAK if not m.group(0)[0].isalpha() else m.group(0).lower() for m in matches]
    capitals = [m.group(0)[0].isupper() for m in matches]
    roles: set[_Asked] = set()
    for i, word in enumerate(items):
        if i == 0 or items[i - 1] == _CLAUSE_BREAK:
            if word in _WHO:
                _asked_roles(items, "wh", i + 1, roles)
            elif word in _WHICH:
                _asked_which(items, i, roles, inverted=True)
                # "What" alone asks for a thing as "who" for a party: "What depends on the auth
                # service?" / "What does the auth service depend on?".
                if word == "what":
                    _asked_roles(items, "wh", i + 1, roles)
            continue
        before = items[i - 1]
        head = None if before in _NOT_A_PARTY or before in _OBJECT_PRONOUNS else _party_at(items, i - 1)
        if word in _RELATIVE and head is not None:
            # A relative clause: "the people who manage Dana", "the services that the user
            # service calls".
            _asked_roles(items, head, i + 1, roles, inverted=False, capitals=capitals)
        if word in _WHICH:
            # A question within a sentence: "see which accounts a rep owns".
            _asked_which(items, i, roles, inverted=False)
        elif (
            head is not None
            and word not in _RELATIVE
            and (word in _DETERMINERS or _names_a_subject(matches, i))
        ):
            # A relative clause with no word to open it: "the people Dana manages", "the invoices
            # we sent", "the services the user service calls".
            _asked_roles(items, head, i, roles, inverted=False, capitals=capitals, as_subject=False)
    # A party related to itself is a word read twice ("the services the user service calls").
    return frozenset(role for role in roles if role[0] != role[2])


def _asked_end_turned(a: str, b: str) -> bool:
    """The same relation asked for from its other end: "Which projects depend on the auth library?"
    / "Which libraries does the auth project depend on?", "see which accounts a rep owns" / "see
    which rep owns an account"."""
    roles_a, roles_b = _question_roles(a), _question_roles(b)
    for subject, verb, obj, end in roles_a:
        other = "o" if end == "s" else "s"
        if (
            subject != obj
            and "wh" not in (subject, obj)
            and (subject, verb, obj, other) in roles_b
            and (subject, verb, obj, end) not in roles_b
            and (subject, verb, obj, other) not in roles_a
        ):
            return True
    return False


def _pronoun_roles_swapped(a: str, b: str) -> bool:
    """The subject of a verb in one prompt is its object in the other, and the object its subject,
    with neither role kept beside it: "we owe our contractor" / "our contractor owes us", "can I email
    my manager" / "can my manager email me". "I like a girl. How will I know if she likes me?" keeps
    who is liked ("she likes me"), so against "How do I know if this girl likes me?" it swaps nothing."""
    if _BOTH_WAYS.search(a) or _BOTH_WAYS.search(b):
        return False
    roles_a = _pronoun_roles(a) | {role[:3] for role in _question_roles(a)}
    roles_b = _pronoun_roles(b) | {role[:3] for role in _question_roles(b)}
    kept_a = {(verb, "s", subject) for subject, verb, _ in roles_a} | {
        (verb, "o", obj) for _, verb, obj in roles_a
    }
    kept_b = {(verb, "s", subject) for subject, verb, _ in roles_b} | {
        (verb, "o", obj) for _, verb, obj in roles_b
    }
    for subject, verb, obj in roles_a:
        if (
            subject != obj
            and (obj, verb, subject) in roles_b
            and (verb, "s", subject) not in kept_b
            and (verb, "o", obj) not in kept_b
            and (verb, "s", obj) not in kept_a
            and (verb, "o", subject) not in kept_a
        ):
            return True
    return False


# Verbs of giving, sending and telling, whose participle before "by" names who did it and before
# "to" whom it went ("assigned by Lee" / "assigned to Lee"); not "filtered by" / "filtered to the
# EMEA region", "normalized by" / "to headcount", where "by" names a criterion.
_GIVEN_TO: Final = frozenset(
    {"assigned", "sent", "reported", "issued", "given", "paid", "sold", "delegated", "forwarded"}
    | {"addressed", "written", "submitted", "granted", "awarded", "transferred", "owed", "lent"}
    | {"shown", "offered", "escalated", "introduced", "referred", "handed", "returned", "mailed"}
    | {"emailed", "billed", "invoiced", "donated", "presented", "proposed", "leased", "sublet"}
    | {"licensed", "recommended", "supplied", "delivered", "shipped", "wired", "credited", "explained"}
)
# Nouns of an action whose "by" names who acts and "of" what is acted on ("our acquisition of
# Brightline" / "by Brightline"); not "distribution of" / "by priority", where "by" is "per".
_ACTED_ON: Final = frozenset(
    {"acquisition", "takeover", "buyout", "purchase", "review", "approval", "audit", "assessment"}
    | {"evaluation", "investigation", "interview", "rejection", "endorsement", "nomination"}
    | {"appointment", "criticism", "dismissal", "hiring", "termination", "sponsorship"}
)


def _agent_turned(a: str, b: str) -> bool:
    """The same words but who acts ("by") for whom it goes to ("to") or what is acted on ("of"):
    "the tickets assigned by Lee" / "assigned to Lee", "our acquisition of Brightline" / "our
    acquisition by Brightline". Not a quantity ("grew by 5%" / "grew to 5%" is `number`'s) nor a
    place ("close by the station" / "close to the station")."""
    tokens_a, tokens_b = _tokens(a), _tokens(b)
    if len(tokens_a) != len(tokens_b):
        return False
    differing = [i for i, (x, y) in enumerate(zip(tokens_a, tokens_b, strict=True)) if x.lower != y.lower]
    if len(differing) != 1 or differing[0] == 0 or _quantity_at(tokens_a, differing[0] + 1):
        return False
    i = differing[0]
    links = {tokens_a[i].lower, tokens_b[i].lower}
    before = tokens_a[i - 1].lower
    if links == {"by", "to"}:
        return before in _GIVEN_TO
    if links == {"by", "of"}:
        return before in _ACTED_ON
    return False


def swapped_roles(a: str, b: str) -> str | None:
    """The same words in roles traded: "flights from Paris to Rome" vs "from Rome to Paris",
    "X emigrated to A, then went to B" vs the other way round, "dog bites man" vs "man bites dog",
    "a meeting of a mentor with a mentee" vs "of a mentee with a mentor", "we owe our contractor"
    vs "our contractor owes us".

    Reordered list items ("X, Y and Z") and reworded noun compounds are not swaps.
    """
    tokens_a, tokens_b = _content_tokens(a), _content_tokens(b)
    if _linked_objects_swapped(tokens_a, tokens_b) or _pronoun_roles_swapped(a, b) or _asked_end_turned(a, b):
        return ORDER
    order_a, order_b = _order_tokens(a), _order_tokens(b)
    if _words_exchanged(order_a, order_b) or _spans_exchanged(order_a, order_b) or _agent_turned(a, b):
        return ORDER
    if _values_traded(a, b) or _owner_traded(a, b) or _negation_moved(a, b):
        return ORDER
    return None


# Whose thing it is: "my Google Doc" / "Maria's Google Doc".
_POSSESSIVE_PRONOUNS: Final[Mapping[str, str]] = {
    "my": "1s",
    "our": "1p",
    "your": "2",
    "his": "3m",
    "her": "3f",
    "their": "3p",
}
# A person a prompt names by a pronoun, in any role: "I", "me", "my" are the speaker.
_PERSONS: Final[Mapping[str, str]] = {
    **_SUBJECT_PRONOUNS,
    **_OBJECT_PRONOUNS,
    **_POSSESSIVE_PRONOUNS,
    "you": "2",
    "mine": "1s",
    "ours": "1p",
    "yours": "2",
}
_THIRD_PERSONS: Final = frozenset({"3m", "3f", "3p"})
# The asker, those with the asker, or the one asked: "my", "our", "your".
_PERSON_CODES: Final = frozenset(_PERSONS.values()) - _THIRD_PERSONS
# Overlapping: "my manager's calendar" has two ("manager" and "calendar").
_POSSESSOR: Final = re.compile(
    r"(?=(?<![\w-])(?:(my|our|your|his|her|their)|([^\W\d_][\w-]*)'s)\s+([^\W\d_][\w-]*))", re.IGNORECASE
)
# "Thursday's session", "this month's bill": a time, not an owner.
_TIME_OWNERS: Final = frozenset(
    {"today", "tomorrow", "yesterday", "tonight", "day", "week", "weekend", "month", "quarter", "year"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "morning", "night"}
    | {"january", "february", "march", "april", "may", "june", "july", "august", "september"}
    | {"october", "november", "december", "season", "decade"}
)
# The capitalised words right before a possessor: "Sony" in "Sony Music's".
_NAME_BEFORE: Final = re.compile(r"(?:\b[A-Z][\w-]*\s+)+$")
_REQUEST_VERB: Final = re.compile(_REQUEST_VERBS, re.IGNORECASE)
# "it's", "what's": a word and "is", not a possessor.
_NOT_POSSESSORS: Final = frozenset(
    {"it", "that", "what", "here", "there", "who", "where", "how", "when", "why", "he", "she", "let"}
)
_PERSON_WORD: Final = re.compile(r"[^\W\d_][\w-]*")


@_per_text()
def _possessions(text: str) -> Mapping[str, str]:
    """What `text` says someone has, by its first word, and whose: "my Google Doc" -> {"google":
    "1s"}, "Maria's report" -> {"report": "maria"}. A word had by two is left out."""
    normalised = _normalise(text)
    found: dict[str, set[str]] = {}
    for match in _POSSESSOR.finditer(normalised):
        pronoun, name, thing = match.groups()
        if name is not None and (name.lower() in _NOT_POSSESSORS or name.lower() in _TIME_OWNERS):
            continue
        if thing.lower() in _PERSONS or thing.lower() in _NUMBER_WORDS:
            continue
        owner = _POSSESSIVE_PRONOUNS[pronoun.lower()] if pronoun else name.lower()
        # "Sony Music's portfolio": the name is all its capitalised words.
        if name is not None and name[0].isupper():
            before = _NAME_BEFORE.search(normalised, max(0, match.start() - 60), match.start())
            words = before.group(0).split() if before else []
            # A request's first word is capitalised as grammar ("List Bea's tickets").
            if words and (_REQUEST_VERB.fullmatch(words[0]) or words[0].lower() in _STOPWORDS):
                words = words[1:]
            owner = " ".join([*words, owner]).lower()
        found.setdefault(thing.lower(), set()).add(owner)
    return MappingProxyType(
        {thing: next(iter(owners)) for thing, owners in found.items() if len(owners) == 1}
    )


@_per_text()
def _person_words(text: str) -> tuple[str, ...]:
    """The words of `text` in order, in lower case, hyphened ones whole ("closed-won")."""
    return tuple(word.lower() for word in _PERSON_WORD.findall(_normalise(text)))


@_per_text()
def _persons(text: str) -> frozenset[str]:
    """Who `text` names: a pronoun's person ("1s" for "I"), or a word as written, in lower case."""
    return frozenset(_PERSONS.get(word, word) for word in _person_words(text))


def _owner_traded(a: str, b: str) -> bool:
    """One thing had by one party in one prompt and by the other in the other, both named in
    each: "How do I give Maria edit access to my Google Doc?" / "How can I get edit rights on
    Maria's Google Doc?", "Can my manager see my calendar?" / "Can I see my manager's calendar?"."""
    owned_a = _possessions(a)
    if not owned_a:
        return False
    owned_b = _possessions(b)
    for thing in owned_a.keys() & owned_b.keys():
        owner_a, owner_b = owned_a[thing], owned_b[thing]
        if owner_a == owner_b or set(owner_a.split()) & set(owner_b.split()):
            continue
        # "his remarks" / "Konoike's remarks": a third person's pronoun may stand for the name.
        if owner_a in _THIRD_PERSONS or owner_b in _THIRD_PERSONS:
            continue
        if not (set(owner_a.split()) <= _persons(b) and set(owner_b.split()) <= _persons(a)):
            continue
        # "our CRM software for our shop" / "our shop's CRM software", "the reason of her
        # resignation" / "her resignation's reason": one thing said of the other, reworded.
        if _linked_by_of(a, thing, owner_b, owner_a) or _linked_by_of(b, thing, owner_a, owner_b):
            continue
        return True
    return False


# How far apart, in words, a thing and what it is "of" or "for" may stand.
_OF_SPAN: Final = 4


def _linked_by_of(text: str, thing: str, owner: str, own: str) -> bool:
    """Whether `text` joins `thing` and the last word of `owner` by "of" or "for", each side
    within a few words of it ("CRM software for our shop", "the reason of Alejandra's suicide"),
    or, where `own` (the thing's owner in `text`) is the asker, by a link of place ("my signature
    in my Outlook")."""
    words = _person_words(text)
    last = owner.split()[-1]
    places = {word: [i for i, w in enumerate(words) if w == word] for word in (thing, last)}
    # Where a thing is ("in", "on" ...) says whose only when the text gives it as the asker's
    # ("my signature in my Outlook"), not as another's ("my laptop's port ... on the server").
    links = _OWNING_LINKS if own in _PERSON_CODES else _OF_LINKS
    for link in (i for i, word in enumerate(words) if word in links):
        before, after = range(link - _OF_SPAN, link), range(link + 1, link + 1 + _OF_SPAN)
        # The thing, then the link, then its owner; or, by "of" or "for", the other way round
        # ("the reason of Alejandra's resignation").
        orders = ((thing, last), (last, thing)) if words[link] in _OF_LINKS else ((thing, last),)
        for x, y in orders:
            if any(i in before for i in places[x]) and any(i in after for i in places[y]):
                return True
    return False


# Links that say where or whose a thing is: "CRM software for our shop", "my password on my laptop".
_OF_LINKS: Final = frozenset({"of", "for"})
_OWNING_LINKS: Final = _OF_LINKS | {"in", "on", "from", "at"}


# Words between a negation and what it negates: "haven't been invoiced", "aren't yet marked".
_BEFORE_NEGATED: Final = frozenset(
    {"been", "being", "be", "yet", "ever", "even", "still", "actually", "really"}
)
# A negation that sets one thing against another follows one of these, auxiliaries aside: "but
# not in 2024", "who aren't in Workday", "with no matching orders"; not "why isn't Russia ...".
_CONTRAST_LEADS: Final = frozenset({"but", "that", "who", "which", "with", "and", "or", ","})
_NEGATED_SPAN: Final = 2
# The most words a negation's clause is read for.
_NEGATION_SCOPE: Final = 12


@_per_text()
def _negated_and_not(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The lemmas of the words `text` sets apart by a negation (up to two content words after a
    "not", "never", "n't", "no" or "without" that follows "but", "that", "who", ...), and of every
    word outside such a negation's clause."""
    words = re.findall(r"n't|[a-z0-9][a-z0-9-]*|[,;.!?():]", _prepared(text))
    negated: set[str] = set()
    others: set[str] = set()
    scope_end = 0  # words before this index are in a negation's clause
    for index, word in enumerate(words):
        if word not in _NEGATORS and word != "n't":
            if word[0].isalnum() and index >= scope_end:
                others.update(_lemmas(word))
            continue
        lead = index - 1
        while lead >= 0 and (words[lead] in _BE or words[lead] in _BEFORE_VERB):
            lead -= 1
        if word != "without" and (lead < 0 or words[lead] not in _CONTRAST_LEADS):
            continue
        taken = 0
        scope_end = index + 1
        for follower in words[index + 1 : index + 1 + _NEGATION_SCOPE]:
            if not follower[0].isalnum() or follower in _CLAUSE_JOINS:
                break
            scope_end += 1
            if taken == _NEGATED_SPAN or follower in _BE or follower in _BEFORE_VERB:
                continue
            if follower in _BEFORE_NEGATED or follower in _STOPWORDS or follower in _ROLE_LINKS:
                continue
            negated.update(_lemmas(follower))
            taken += 1
    return frozenset(negated), frozenset(others - negated)


def _negation_moved(a: str, b: str) -> bool:
    """Each prompt negates a thing the other says without negating it: "deals closed-won in
    Salesforce but not invoiced in NetSuite" / "deals invoiced in NetSuite that aren't marked
    closed-won in Salesforce", "customers who renewed but never upgraded" / "who upgraded but
    never renewed"."""
    # Over a pasted text, what the text says plainly stands beside the requests' negations.
    if len(a) > STATED_OTHERWISE_CHARS or len(b) > STATED_OTHERWISE_CHARS:
        return False
    negated_a, plain_a = _negated_and_not(a)
    if not negated_a:
        return False
    negated_b, plain_b = _negated_and_not(b)
    if not negated_b or negated_a == negated_b:
        return False
    return bool((negated_a - negated_b) & plain_b) and bool((negated_b - negated_a) & plain_a)


# A number as written, with its currency, decimals, scale or percent: "$3.2M", "120k", "1,500", "8%".
_VALUE_WRITTEN: Final = re.compile(
    r"(?<![\w.])[$€£¥]?\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:[kKmMbB]{1,2}|bn|%)(?![\w]))?(?![\w]|\.\w)"
)
_SKELETON_WORD: Final = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|#")


@_per_text()
def _value_skeleton(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The prompt's words in order with each number as "#", and its numbers in order as written."""
    normalised = _normalise(text)
    values = tuple(
        re.sub(r"[\s,]", "", match.group(0)).lower() for match in _VALUE_WRITTEN.finditer(normalised)
    )
    skeleton = tuple(_SKELETON_WORD.findall(_VALUE_WRITTEN.sub(" # ", normalised).lower()))
    return skeleton, values


def _values_traded(a: str, b: str) -> bool:
    """The same words and the same numbers, two of them in each other's places where words that
    are no list stand between them: each number is said of something else ("bookings were $3.2M
    and billings were $2.8M" / "$2.8M ... $3.2M", "revenue was 120k in March and 150k in April" /
    the other way round). Not a list reordered ("between 10 and 20" / "20 and 10"), nor a
    comparison ("compare sales in 2023 with sales in 2024")."""
    skeleton_a, values_a = _value_skeleton(a)
    if len(values_a) < 2:
        return False
    skeleton_b, values_b = _value_skeleton(b)
    if skeleton_a != skeleton_b or values_a == values_b or sorted(values_a) != sorted(values_b):
        return False
    if set(skeleton_a) & _SYMMETRIC:
        return False
    places = [index for index, word in enumerate(skeleton_a) if word == "#"]
    # Numbers joined by "of", "per", "x" ... are one amount ("15% of $2,000"): where each such
    # amount moves whole to another's place, the amounts are what is traded, not their numbers.
    units = _value_units(skeleton_a, places)
    units_a = [tuple(values_a[i] for i in unit) for unit in units]
    units_b = [tuple(values_b[i] for i in unit) for unit in units]
    if sorted(units_a) == sorted(units_b):
        spans = [(places[unit[0]], places[unit[-1]]) for unit in units]
        moved = [span for span, x, y in zip(spans, units_a, units_b, strict=True) if x != y]
    else:
        moved = [(place, place) for place, x, y in zip(places, values_a, values_b, strict=True) if x != y]
    for (first_start, first), (second, second_end) in itertools.pairwise(moved):
        between = set(skeleton_a[first + 1 : second]) - _LIST_JOINS - _STOPWORDS - _NEXT_IN_A_LIST - {"#"}
        # A label said again before each number is a list ("sales for store 12 and sales for
        # store 47"); one said of each alone is not ("bookings were ... and billings were ...").
        label = set(skeleton_a[max(0, first_start - 4) : first_start])
        label |= set(skeleton_a[second_end + 1 : second_end + 3])
        if between - label:
            return True
    return False


# What joins two numbers into one amount: "15% of $2,000", "$0.02 per 1,000", "3 x 4".
_AMOUNT_LINKS: Final = frozenset({"of", "per", "x", "times", "by"})


def _value_units(skeleton: tuple[str, ...], places: list[int]) -> list[list[int]]:
    """The prompt's numbers (indices into its values) grouped into amounts: runs of numbers
    each one word of `_AMOUNT_LINKS` after the one before."""
    units: list[list[int]] = [[0]]
    for index in range(1, len(places)):
        gap = skeleton[places[index - 1] + 1 : places[index]]
        if len(gap) == 1 and gap[0] in _AMOUNT_LINKS:
            units[-1].append(index)
        else:
            units.append([index])
    return units


_ANTONYMS: Final[tuple[tuple[str, str], ...]] = (
    ("buy", "sell"),
    ("purchase", "sell"),
    ("import", "export"),
    ("upload", "download"),
    ("ascending", "descending"),
    ("asc", "desc"),
    ("ascend", "descend"),
    ("increase", "decrease"),
    ("increase", "reduce"),
    ("encrypt", "decrypt"),
    ("encode", "decode"),
    ("compress", "decompress"),
    ("serialize", "deserialize"),
    ("serialise", "deserialise"),
    ("enable", "disable"),
    ("include", "exclude"),
    ("add", "remove"),
    ("push", "pull"),
    ("send", "receive"),
    ("open", "close"),
    ("start", "stop"),
    ("start", "end"),
    ("begin", "end"),
    ("win", "lose"),
    ("gain", "lose"),
    ("rise", "fall"),
    ("above", "below"),
    ("over", "under"),
    ("more", "less"),
    ("more", "fewer"),
    ("most", "least"),
    ("high", "low"),
    ("higher", "lower"),
    ("highest", "lowest"),
    ("upper", "lower"),
    ("max", "min"),
    ("maximum", "minimum"),
    ("maximize", "minimize"),
    ("maximise", "minimise"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("big", "small"),
    ("large", "small"),
    ("longest", "shortest"),
    ("long", "short"),
    ("fastest", "slowest"),
    ("fast", "slow"),
    ("best", "worst"),
    ("first", "last"),
    ("before", "after"),
    ("earliest", "latest"),
    ("oldest", "newest"),
    ("old", "new"),
    ("old", "young"),
    ("inner", "outer"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("input", "output"),
    ("positive", "negative"),
    ("true", "false"),
    ("horizontal", "vertical"),
    ("uppercase", "lowercase"),
    ("allow", "deny"),
    ("accept", "reject"),
    ("approve", "reject"),
    ("pass", "fail"),
    ("success", "failure"),
    ("valid", "invalid"),
    ("legal", "illegal"),
    ("possible", "impossible"),
    ("visible", "hidden"),
    ("public", "private"),
    ("local", "remote"),
    ("client", "server"),
    ("sync", "async"),
    ("synchronous", "asynchronous"),
    ("formal", "informal"),
    ("beginner", "expert"),
    ("beginner", "advanced"),
    ("junior", "senior"),
    ("male", "female"),
    ("man", "woman"),
    ("boy", "girl"),
    ("hot", "cold"),
    ("heating", "cooling"),
    ("summer", "winter"),
    ("day", "night"),
    ("morning", "evening"),
    ("light", "dark"),
    ("cheap", "expensive"),
    ("cheapest", "priciest"),
    ("borrow", "lend"),
    ("debit", "credit"),
    ("income", "expense"),
    ("profit", "loss"),
    ("inbound", "outbound"),
    ("incoming", "outgoing"),
    ("upgrade", "downgrade"),
    ("upvote", "downvote"),
    ("upstream", "downstream"),
    ("top", "bottom"),
    ("frontend", "backend"),
    ("prefix", "suffix"),
    ("head", "tail"),
    ("always", "never"),
    ("yes", "no"),
    ("all", "none"),
    ("everything", "nothing"),
    ("love", "hate"),
    ("pros", "cons"),
    ("advantage", "disadvantage"),
    ("agree", "disagree"),
    ("like", "dislike"),
    ("synonym", "antonym"),
    ("mean", "median"),
    ("encrypted", "plaintext"),
    ("good", "bad"),
    ("safe", "dangerous"),
    ("success", "error"),
    ("wet", "dry"),
    ("thick", "thin"),
    ("hard", "soft"),
    ("easy", "difficult"),
    ("easy", "hard"),
    ("import", "export"),
    ("lock", "unlock"),
    ("install", "uninstall"),
    ("mount", "unmount"),
    ("follow", "unfollow"),
    ("subscribe", "unsubscribe"),
    ("connect", "disconnect"),
    ("mute", "unmute"),
    ("solved", "unsolved"),
    ("before", "since"),
)
# Words opposite only where the two prompts say the same words in the same order besides
# (`_slot_turned`). Comparatives: "which is faster" / "which is slower", "a stronger dollar" / "a
# weaker dollar", where "A is faster than B" / "B is slower than A" say the same and "an easier way
# to write this" / "it is harder to read: a simpler way?" are another wording, for the model to
# judge. And the two sides of a kind: "read access" / "write access", "accounts payable" / "accounts
# receivable", "we're the licensor" / "we're the licensee", where "Write a summary of this article" /
# "Read this article and give me a summary" ask the same.
_SLOT_OPPOSITES: Final[tuple[tuple[str, str], ...]] = (
    ("faster", "slower"),
    ("bigger", "smaller"),
    ("larger", "smaller"),
    ("longer", "shorter"),
    ("better", "worse"),
    ("earlier", "later"),
    ("older", "newer"),
    ("older", "younger"),
    ("cheaper", "pricier"),
    ("easier", "harder"),
    ("stronger", "weaker"),
    ("heavier", "lighter"),
    ("wider", "narrower"),
    ("read", "write"),
    ("reads", "writes"),
    ("reading", "writing"),
    ("reader", "writer"),
    ("readers", "writers"),
    ("readable", "writable"),
    ("formal", "casual"),
    ("domestic", "international"),
    ("domestic", "foreign"),
    ("oral", "written"),
    ("verbal", "written"),
    ("internal", "external"),
    ("new", "existing"),
    ("new", "established"),
    ("new", "returning"),
    ("payable", "receivable"),
    ("gross", "net"),
    ("fixed", "variable"),
    ("direct", "indirect"),
    ("primary", "secondary"),
    ("primary", "replica"),
    ("source", "target"),
    ("source", "destination"),
    ("row", "column"),
    ("rows", "columns"),
    ("shallow", "deep"),
    ("stateful", "stateless"),
    ("temporary", "permanent"),
    ("full", "part"),
    ("remote", "onsite"),
    ("remote", "in-person"),
    ("remote", "in-office"),
    ("online", "offline"),
    ("online", "in-person"),
    ("virtual", "in-person"),
    ("personal", "business"),
    ("licensor", "licensee"),
    ("lessor", "lessee"),
    ("landlord", "tenant"),
    ("employer", "employee"),
    ("buyer", "seller"),
    ("buyers", "sellers"),
    ("borrower", "lender"),
    ("creditor", "debtor"),
    ("payer", "payee"),
    ("sender", "recipient"),
    ("mentor", "mentee"),
    ("plaintiff", "defendant"),
    ("host", "guest"),
    ("parent", "child"),
    ("upsell", "downsell"),
    ("onboarding", "offboarding"),
    ("onboard", "offboard"),
    ("ingress", "egress"),
    ("allowlist", "denylist"),
    ("whitelist", "blacklist"),
    ("pre", "post"),
    ("leading", "lagging"),
    ("ahead", "behind"),
    ("churn", "retention"),
    ("churned", "retained"),
    ("submit", "approve"),
    ("submits", "approves"),
    ("submitted", "approved"),
    ("submitting", "approving"),
    ("submission", "approval"),
    ("submissions", "approvals"),
    ("submitter", "approver"),
    ("submitters", "approvers"),
    # Filing or requesting is the other side of approving: "the steps to file an expense report" /
    # "to approve an expense report", "request PTO in Workday" / "approve PTO in Workday".
    ("file", "approve"),
    ("files", "approves"),
    ("filed", "approved"),
    ("filing", "approving"),
    ("request", "approve"),
    ("requests", "approves"),
    ("requested", "approved"),
    ("requesting", "approving"),
)
_OPPOSITES: Final[Mapping[str, frozenset[str]]] = {
    word: frozenset({y for x, y in _ANTONYMS if x == word} | {x for x, y in _ANTONYMS if y == word})
    for pair in _ANTONYMS
    for word in pair
}
_OPPOSITE_PAIRS: Final = frozenset(_ANTONYMS) | frozenset((y, x) for x, y in _ANTONYMS)
_OPPOSITE_IN_A_SLOT: Final = frozenset(_SLOT_OPPOSITES) | frozenset((y, x) for x, y in _SLOT_OPPOSITES)
_SLOT_OPPOSITE: Final[Mapping[str, frozenset[str]]] = {
    word: frozenset(y for x, y in _OPPOSITE_IN_A_SLOT if x == word) for word, _ in _OPPOSITE_IN_A_SLOT
}


def _turned_in_a_slot(one: str, other: str) -> bool:
    """Two words, or two compounds written with hyphens part for part ("read-heavy" / "write-heavy",
    "short-term" / "long-term"), that differ only by opposites."""
    if (one, other) in _OPPOSITE_IN_A_SLOT:
        return True
    parts_one, parts_other = one.split("-"), other.split("-")
    if len(parts_one) < 2 or len(parts_one) != len(parts_other):
        return False
    differing = [(x, y) for x, y in zip(parts_one, parts_other, strict=True) if x != y]
    return all(pair in _OPPOSITE_IN_A_SLOT or pair in _OPPOSITE_PAIRS for pair in differing)


def _slot_turned(a: str, b: str) -> bool:
    """The same words in the same order but one turned to its opposite: "Which is faster for reads,
    Redis or Memcached?" / "Which is slower ...?", "read access to the sales schema" / "write access
    ...", "a write-heavy workload" / "a read-heavy workload". One word only, or one among a few
    (`_slot_turned_among`): two turned may say the same ("Is a stateless service easier to scale
    than a stateful one?" / "Is a stateful service harder to scale than a stateless one?"), and
    two that trade places are `order`'s to read."""
    apart = _the_word_apart(a, b)
    if apart is not None:
        return _turned_in_a_slot(*apart)
    return _slot_turned_among(_order_tokens(a), _order_tokens(b))


# The most words, commas and "and" aside, each prompt may say in the place of the other's with one
# of them turned: "a formal email" / "a friendly, casual email".
_TURNED_AMONG: Final = 4
# Words that undo or soften a side named beside them: "less formal", "not formal", "rather than
# casual", "churn prevention".
_TURN_UNDONE: Final = frozenset(
    {"not", "no", "non", "never", "without", "less", "fewer", "lower", "rather", "than", "instead", "too"}
    | {"overly", "prevent", "prevents", "preventing", "prevention", "reduce", "reduces", "reducing"}
    | {"reduction", "avoid", "avoiding", "fight", "fighting", "stop", "stopping"}
)
_LIST_MARKS: Final = frozenset({",", ";", "&", "and"})


def _slot_turned_among(tokens_a: tuple[str, ...], tokens_b: tuple[str, ...]) -> bool:
    """The same words but for a few, among which one prompt says a side of a kind and the other
    its opposite ("Write a formal apology" / "Write a casual, light-hearted apology"), neither
    prompt both, and nothing beside them undoes it ("a less formal email")."""
    start, end = shared_ends(tokens_a, tokens_b)
    part_a, part_b = tokens_a[start : len(tokens_a) - end], tokens_b[start : len(tokens_b) - end]
    words_a = [word for word in part_a if word not in _LIST_MARKS]
    words_b = [word for word in part_b if word not in _LIST_MARKS]
    most = max(len(words_a), len(words_b))
    # Around them, at least as many words the same ("Write a summary of this article" / "Read this
    # article and give me a summary" say it in other words).
    if not words_a or not words_b or most > _TURNED_AMONG or start + end < most:
        return False
    if set(words_a + words_b) & _TURN_UNDONE:
        return False
    return any(
        _turned_in_a_slot(x, y) and x not in words_b and y not in words_a for x in words_a for y in words_b
    )


# A prefix that turns a word into its opposite: "mute"/"unmute", "able"/"disable".
_NEGATING_PREFIXES: Final = ("un", "dis", "non")


# Stances told in more than one way: a prompt that takes one side of a family, against one that
# takes the other, asks the opposite ("turn off notifications" / "enable notifications", "within a
# year" / "after more than a year").
_SWITCH_VERBS: Final = frozenset(
    {"turn", "turns", "turned", "turning", "switch", "switches", "switched", "switching"}
    | {"power", "powers", "powered", "powering", "shut", "shuts", "shutting"}
)
# A mode that is itself "off": "turn on silent mode" silences, so a prompt naming one takes no side.
_OFF_MODES: Final = frozenset({"silent", "mute", "muted", "airplane", "disturb", "quiet", "offline", "sleep"})
_ON_OFF: Final = re.compile(r"\b(?:on\s*/\s*off|off\s*/\s*on)\b", re.IGNORECASE)
_TOGGLE_WORDS: Final[Mapping[str, str]] = {
    "enable": "on",
    "activate": "on",
    "unmute": "on",
    "disable": "off",
    "deactivate": "off",
    "mute": "off",
    "silence": "off",
}
# A bound on a quantity, longest wording first: "no more than" is an upper bound.
_AT_MOST: Final = (
    "within, under, below, less than, fewer than, at most, up to, no more than, not more than, "
    "not exceeding, not over, not above, shorter than, lower than, smaller than"
)
_AT_LEAST: Final = (
    "over, above, beyond, after, exceeding, more than, greater than, at least, longer than, higher than, "
    "larger than, no less than, not less than, no fewer than, not fewer than, not under, not below, "
    "upwards of, in excess of"
)
_BOUNDS: Final[tuple[tuple[tuple[str, ...], str], ...]] = tuple(
    sorted(
        (
            (tuple(wording.split()), side)
            for side, wordings in (("at most", _AT_MOST), ("at least", _AT_LEAST))
            for wording in wordings.split(", ")
        ),
        key=lambda bound: -len(bound[0]),
    )
)
# Wordings that bound only a quantity right after them: "after a year" is at least a year, but
# "after less than a year" is bounded by its "less than".
_BOUNDS_BEFORE_A_QUANTITY: Final = frozenset({("after",)})
# The bounds by their first word, longest first: one look-up per word of a prompt.
_BOUNDS_BY_FIRST: Final[Mapping[str, tuple[tuple[tuple[str, ...], str], ...]]] = {
    first: tuple(bound for bound in _BOUNDS if bound[0][0] == first) for first in {b[0][0] for b in _BOUNDS}
}
# What may follow a bound for it to bound a quantity ("within a year", "over 5 years", "under
# $50"); "within the team" and "over the weekend" bound nothing.
_COUNTED_AFTER_ARTICLE: Final = frozenset(
    {"second", "minute", "hour", "day", "week", "month", "quarter", "year", "decade", "dozen"}
    | {"hundred", "thousand", "million", "billion", "dollar", "euro", "pound", "percent"}
)

# Words that end a switch verb's object: its particle cannot come after them.
_LINKS: Final = frozenset({"to", "for", "in", "at", "with", "from", "of", "into", "by", "and", "or"})


def _quantity_at(tokens: Sequence[_Token], index: int) -> bool:
    if index >= len(tokens):
        return False
    token = tokens[index]
    if token.kind == "num" or token.lower in _CURRENCY_SYMBOLS:
        return True
    if token.lower in _NUMBER_WORDS or token.lower in _MAGNITUDE_WORDS or token.lower == "half":
        return True
    if token.lower in {"a", "an", "one", "single"} and index + 1 < len(tokens):
        return bool(_lemmas(tokens[index + 1].lower) & _COUNTED_AFTER_ARTICLE)
    return False


# A scope: everything, or one thing ("delete all merged branches" / "delete a single branch"). Not
# "single" in a name ("single sign-on", "a single point of failure", "single-threaded").
# Nor "all" in a phrase of its own ("at all", "after all", "all-in-one", "free-for-all").
_SCOPE_ALL: Final = re.compile(
    r"(?<!-)\b(?<!at )(?<!after )(?<!above )(?<!all in )(?:all|every)\b(?![- ]in[- ]one|-|\s+right\b)"
)
_SCOPE_ONE: Final = re.compile(
    r"\b(?:(?:a |one )?single(?![- ](?:sign|point|page|source|responsibility|quote))(?!-)"
    r"|one specific|just one|only one)\b"
)


@_per_text()
def _stances(text: str) -> tuple[Mapping[str, frozenset[str]], frozenset[str]]:
    """Family -> the sides the prompt takes: "toggle" (on / off), "bound" (at most / at least, on
    a quantity), "scope" (all / one); and every side of a bound its words name, bounding a
    quantity or not."""
    tokens = _tokens(text)
    words = [t.lower for t in tokens]
    found: dict[str, set[str]] = {"toggle": set(), "bound": set(), "scope": set()}
    named: set[str] = set()
    index = 0
    while index < len(words):
        word = words[index]
        if word in _SWITCH_VERBS:
            # "turn off", "switch notifications on", "turn read receipts off", "shut down"; "turn
            # it off and on", "turn on/off" take both sides; not "switch to dark mode on Monday".
            for offset, particle in enumerate(words[index + 1 : index + 4], start=index + 1):
                if particle in {"on", "off"} or (particle == "down" and word.startswith("shut")):
                    found["toggle"].add("on" if particle == "on" else "off")
                    following = words[offset + 1 : offset + 3]
                    if following[:1] in (["and"], ["or"]) and following[1:] in (["on"], ["off"]):
                        found["toggle"].add(following[1])
                    break
                if particle in _LINKS:
                    break
        for lemma in _lemmas(word):
            if lemma in _TOGGLE_WORDS:
                found["toggle"].add(_TOGGLE_WORDS[lemma])
        for wording, side in _BOUNDS_BY_FIRST.get(word, ()):
            end = index + len(wording)
            if wording in _BOUNDS_BEFORE_A_QUANTITY and not _quantity_at(tokens, end):
                continue  # "after the meeting", "after less than a year": no bound of its own
            if tuple(words[index:end]) == wording:
                named.add(side)
                if _quantity_at(tokens, end):
                    found["bound"].add(side)
                index = end - 1
                break
        index += 1
    if _OFF_MODES.intersection(words) or _ON_OFF.search(text):
        found["toggle"] = {"on", "off"}
    lowered = _normalise(text).lower()
    if _SCOPE_ALL.search(lowered):
        found["scope"].add("all")
    if _SCOPE_ONE.search(lowered):
        found["scope"].add("one")
    return MappingProxyType({family: frozenset(sides) for family, sides in found.items()}), frozenset(named)


def _opposite_stances(a: str, b: str) -> bool:
    """Each prompt takes one side of a family, not the same one, and neither names the other's side
    ("a reading below 50 ... above that" takes both)."""
    (stances_a, named_a), (stances_b, named_b) = _stances(a), _stances(b)
    for family, sides_a in stances_a.items():
        sides_b = stances_b[family]
        one_side_each = len(sides_a) == 1 and len(sides_b) == 1 and sides_a != sides_b
        if one_side_each and (family != "bound" or not (named_a & sides_b or named_b & sides_a)):
            return True
    return False


# "non-binding", "non binding", "un-mute": a negating prefix written apart ("non" is no word of its own).
_PARTED_PREFIX: Final = re.compile(
    r"\b(" + "|".join(_NEGATING_PREFIXES) + r")-(?=[^\W\d_])|\b(non) (?=[^\W\d_])", re.IGNORECASE
)


def _prefixes_joined(text: str) -> str:
    """`text` with a negating prefix written apart joined to its word: "nonbinding", "unmute"."""
    return _PARTED_PREFIX.sub(lambda m: m.group(1) or m.group(2), text)


# Movements of a quantity, one way and the other: "revenue rose while costs fell".
_UP: Final = frozenset(
    {"rise", "up", "increase", "grow", "grew", "grown", "climb", "jump", "surge", "soar", "spike", "gain"}
)
_DOWN: Final = frozenset(
    {"fall", "fell", "fallen", "drop", "down", "decrease", "decline", "shrink", "shrank", "shrunk", "dip"}
    | {"plunge", "slump", "sink", "sank", "sunk", "lose"}
)
# Between what moves and its movement: "revenue has gone up", "costs went sharply down".
_BEFORE_MOVEMENT: Final = (
    frozenset({"go", "goes", "went", "gone", "going", "has", "have", "had", "been", "did", "does", "do"})
    | frozenset({"sharply", "slightly", "steadily", "significantly", "quickly", "slowly", "also", "both"})
    | _BE
    | _STOPWORDS
)


@_per_text()
def _movements(text: str) -> Mapping[str, str]:
    """What moves which way: "why did the stock rise even though earnings dropped" gives
    {"stock": "up", "earnings": "down"}. A thing said to move both ways is left out."""
    words = [m.group(0).lower() for m in _CLAUSE_ITEMS.finditer(_normalise(text))]
    seen: dict[str, set[str]] = {}
    for i, word in enumerate(words):
        lemmas = _lemmas(word)
        way = "up" if lemmas & _UP else "down" if lemmas & _DOWN else None
        if way is None:
            continue
        j = i - 1
        while j >= 0 and words[j] in _BEFORE_MOVEMENT:
            j -= 1
        if j >= 0 and words[j][0].isalpha() and words[j] not in _NOT_A_PARTY:
            seen.setdefault(_singular(words[j]), set()).add(way)
    return MappingProxyType({thing: ways.pop() for thing, ways in seen.items() if len(ways) == 1})


def _movements_exchanged(a: str, b: str) -> bool:
    """Two things move each the other way round: "the stock rose even though earnings dropped" /
    "the stock dropped even though earnings rose"."""
    moves_a, moves_b = _movements(a), _movements(b)
    flipped = [thing for thing, way in moves_a.items() if moves_b.get(thing, way) != way]
    return len(flipped) >= 2


_LESS: Final = re.compile(r"\bless\s+([a-z]+)\b", re.IGNORECASE)


def _less_as_more(text: str, other: str) -> str:
    """`text` with "less" before a word said as "more" before its opposite where `other` names that
    opposite ("make it less formal" against "make it more casual" is "make it more casual")."""
    if "less" not in text.lower():
        return text
    words = set(_words(other))

    def more(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        named = [
            o for o in _OPPOSITES.get(word, frozenset()) | _SLOT_OPPOSITE.get(word, frozenset()) if o in words
        ]
        return f"more {min(named)}" if named else match.group(0)

    return _LESS.sub(more, text)


# Words that take in every one of a kind: "every schema", "all users", "each region", "everyone";
# "whole" and "entire" after a determiner ("the whole company", not "a whole avocado").
_EVERY: Final = frozenset({"all", "every", "each", "everyone", "everybody", "everything"})
_WHOLE: Final = frozenset({"whole", "entire"})
_WHOLE_AFTER: Final = frozenset({"the", "our", "my", "your", "their", "this", "his", "her", "its"})
# "all" in a phrase that takes in no kind: "all over Europe", "all the time", "at all", "of all time".
_ALL_PHRASES: Final = (
    ("at", "all"),
    ("after", "all"),
    ("above", "all"),
    ("all", "over"),
    ("all", "along"),
    ("all", "around"),
    ("all", "right"),
    ("all", "about"),
    ("all", "time"),
    ("all", "in", "all"),
    ("all", "the", "time"),
    ("of", "all", "time"),
)
# Words that name one of a kind, or whose it is: "my home directory", "this workbook", "one user".
_ONE_OF_A_KIND: Final = frozenset(
    {"my", "our", "your", "his", "her", "their", "its", "this", "that", "these", "those", "one", "single"}
)
# Words that say how a kind is taken, not which of it: "revenue per region" / "for each region".
_TAKEN_HOW: Final = frozenset(
    {"per", "across", "throughout", "over", "by", "in", "on", "for", "of", "at", "only"}
)
_OF_WHAT_FOLLOWS: Final = frozenset({"a", "an", "the", "of", "on", "in", "at", "from"})
# Words that take in everything themselves: "if everyone went vegetarian" / "if the world went ...".
_EVERY_OTHERWISE: Final = frozenset({"world", "everywhere", "any", "anyone", "anybody", "anything"})
_SCOPE_WORD: Final = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
# The most words each prompt may say in the place of the other's.
_SCOPE_AMONG: Final = 4


@_per_text()
def _scope_words(text: str) -> tuple[str, ...]:
    """The prompt's words, lowercased, a hyphened word whole ("all-male"), a possessor its name."""
    words = _SCOPE_WORD.findall(_normalise(text).lower())
    return tuple(word[:-2] if word.endswith("'s") else word for word in words)


def _takes_every(words: tuple[str, ...], start: int, stop: int) -> bool:
    """Whether words[start:stop] open on a word that takes in every one of a kind (`_EVERY`, or
    `_WHOLE` after a determiner), in no phrase of `_ALL_PHRASES`: "every user", "the whole
    company", not "see the whole world" against "travel the world"."""
    for index in range(start, min(stop, start + 2)):
        word = words[index]
        if word in _WHOLE:
            if index > 0 and words[index - 1] in _WHOLE_AFTER:
                return True
            continue
        if index > start and words[start] not in _WHOLE_AFTER:
            return False
        if word not in _EVERY:
            continue
        if word == "all" and any(
            words[index - phrase.index("all") : index - phrase.index("all") + len(phrase)] == phrase
            for phrase in _ALL_PHRASES
            if index >= phrase.index("all")
        ):
            continue
        return True
    return False


def _scope_widened(a: str, b: str) -> bool:
    """The same words but for a few, where one prompt takes in every one of a kind and the other
    names one, or whose ("List all tables in the sales schema" / "... in every schema", "the disk
    usage of my home directory" / "of every user's home directory", "restart one pod" / "restart
    all pods", "for the finance team" / "for the whole company"). Not a word that only says how
    the kind is taken ("revenue per region" / "for each region"), nor one without the other
    ("unsubscribe from all emails" / "from emails")."""
    words_a = _scope_words(a)
    if not (_EVERY | _WHOLE).intersection(words_a):
        words_b = _scope_words(b)
        if not (_EVERY | _WHOLE).intersection(words_b):
            return False
    else:
        words_b = _scope_words(b)
    start, end = shared_ends(words_a, words_b)
    stop_a, stop_b = len(words_a) - end, len(words_b) - end
    part_a, part_b = words_a[start:stop_a], words_b[start:stop_b]
    if not part_a or not part_b or max(len(part_a), len(part_b)) > _SCOPE_AMONG or start + end < 3:
        return False
    # Over a pasted text, a word of the request may stand beside what the text says.
    if len(a) > STATED_OTHERWISE_CHARS or len(b) > STATED_OTHERWISE_CHARS:
        return False
    every_a, every_b = _takes_every(words_a, start, stop_a), _takes_every(words_b, start, stop_b)
    if every_a == every_b:
        return False
    every_part, one_part = (part_a, part_b) if every_a else (part_b, part_a)
    # "everyone on the team" / "my team", "all of our offices" / "our offices": every one of what
    # follows, the same thing.
    if every_part[-1] in _WHOLE_AFTER or every_part[-1] in _OF_WHAT_FOLLOWS:
        return False
    # The kind itself, in either ("all the formulae" / "formula"), names nothing.
    said_both = {lemma[:5] for word in every_part for lemma in _lemmas(word)}
    naming = [
        word
        for word in one_part
        if not {lemma[:5] for lemma in _lemmas(word)} & said_both
        and word not in _EVERY | _TAKEN_HOW | _EVERY_OTHERWISE
    ]
    return any(word in _ONE_OF_A_KIND or (word.isalpha() and word not in _STOPWORDS) for word in naming)


def opposite_words(a: str, b: str) -> str | None:
    """One prompt has a word and the other its opposite: "buy" vs "sell", "mute" vs "unmute", "turn
    off" vs "enable", "within a year" vs "after more than a year", "faster" vs "slower" or "read" vs
    "write" with every other word kept, "revenue rose while costs fell" vs "revenue fell while costs
    rose", every one of a kind vs one of it ("all schemas" / "the sales schema")."""
    if _opposite_stances(a, b) or _movements_exchanged(a, b) or _slot_turned(a, b) or _scope_widened(a, b):
        return ANTONYM
    # "less formal" says "more informal": against "more casual" it is no opposite.
    a, b = _less_as_more(a, b), _less_as_more(b, a)
    lemmas_a, lemmas_b = _lemma_set(a), _lemma_set(b)
    # The same lemmas with a prefix written apart joined to its word ("un-mute" is "unmute",
    # "non-binding" "nonbinding"): a word one prompt writes so is no opposite of the other's.
    joined_a, joined_b = _lemma_set(_prefixes_joined(a)), _lemma_set(_prefixes_joined(b))
    for one, two, joined, other_joined in (
        (lemmas_a, lemmas_b, joined_a, joined_b),
        (lemmas_b, lemmas_a, joined_b, joined_a),
    ):
        for word in one - two:
            if word in other_joined:
                continue
            if any(
                opposite in two and opposite not in one and opposite not in joined
                for opposite in _OPPOSITES.get(word, ())
            ):
                return ANTONYM
    for one, two, joined in ((lemmas_a, lemmas_b, joined_a), (lemmas_b, lemmas_a, joined_b)):
        for word in two - one:
            for prefix in _NEGATING_PREFIXES:
                base = word[len(prefix) :]
                if (
                    word.startswith(prefix)
                    and len(base) >= 4
                    and base in one
                    and word not in one
                    and word not in joined
                    and base not in two
                ):
                    return ANTONYM
    return None


# ---------------------------------------------------------------------------------------
# Code: what the models cannot read. Their vocabulary is uncased, so "tar -c" and "tar -C",
# "\\d" and "\\D" read alike to them, and the same-request shortcut folds case too.

# A word whose case is its meaning: a flag ("-C"), one with a character code is written with
# (a regex "\\D+", an identifier in backticks, "snake_case", "{x}"), once the punctuation of
# prose around it is taken off. Not a path, an acronym, a file's extension, a letter alone, an
# e-mail address or emphasis: "C:\\Temp", "A/B", "NASA", ".TMP" typed ".tmp", "C corp" typed
# "c corp", "John@Acme.com", "**Why**".
_CODE_LIKE: Final = re.compile(r"[\\`_${}\[\]<>=|~^]|^-\w")
_PROSE_MARKS: Final = "\"'.,;:!?()"
# A Windows path, whose case Windows ignores: "C:\\Temp", "\\\\server\\share".
_WINDOWS_PATH: Final = re.compile(r"^(?:[A-Za-z]:\\|\\\\)")


def _case_is_meaning(one: str, other: str) -> bool:
    """Two spellings of a word that differ in case only, where the case changes what it names."""
    one, other = one.strip(_PROSE_MARKS), other.strip(_PROSE_MARKS)
    if one == other or _WINDOWS_PATH.match(one):
        return False
    return _CODE_LIKE.search(one) is not None


# An operator: what code computes with. The models read "3 // 2" and "3 / 2", "x = 5" and
# "x == 5" as one request. A dash is a dash however typed ("1803 -- 1880", "1.5–2", "---"), and
# an arrow is an arrow whichever it is ("A -> B", "A => B").
_OPERATOR_CHARS: Final = frozenset("/*=<>!&|%^~+-.")
_ARROWS: Final = re.compile(r"-+>|=+>")
_DASHES: Final = re.compile(r"[\u2010-\u2015\u2212]")
# Hyphens typed for a dash: a word of them alone, or between two words ("well--known"); not
# at a word's edge, where they are code's ("i--", "--force").
_TYPED_DASH: Final = re.compile(r"^-{2,}$|(?<=\w)-{2,}(?=\w)")
_NOT_ALNUM: Final = re.compile(r"[\W_]+")
# A path in code: "./build", "../lib", "~/bin", "/etc/hosts".
_PATH: Final = re.compile(r"^[`'\"(]*(?:\.{1,2}/|~/|/)\w")
# Separators of prose, between words or alone: "30/60/90", "Tea - coffee", "Name: John | Age".
_SEPARATORS: Final = frozenset("-/|")


def _operators(word: str) -> str:
    """The operators of a word, a full stop at its end being prose's, not code's."""
    core = _TYPED_DASH.sub("-", _DASHES.sub("-", word.rstrip(_PROSE_MARKS)))
    return "".join(c for c in _ARROWS.sub("→", core) if c in _OPERATOR_CHARS)


def _looks_like_code(word: str) -> bool:
    """A word that is code's or an operand's: a number, a letter alone ("x", "i++"), a path, or
    one written with code's characters."""
    letters = _NOT_ALNUM.sub("", word)
    return (
        any(c.isdigit() for c in word)
        or len(letters) == 1
        or _CODE_LIKE.search(word) is not None
        or _PATH.match(word) is not None
    )


def _operator_is_meaning(one: str, other: str, beside: Sequence[str]) -> bool:
    """Two spellings of a word of code that differ in an operator only ("//" and "/", "x=5"
    and "x==5", "i++" and "i--"), not in a separator of prose ("30/60/90" and "30-60-90",
    "Tea - coffee" and "Tea / coffee"). A word of operators alone counts between operands
    (`beside`: the words around it)."""
    ops_one, ops_other = _operators(one), _operators(other)
    if not ops_one or not ops_other or ops_one == ops_other:
        return False
    if _NOT_ALNUM.sub("", one.casefold()) != _NOT_ALNUM.sub("", other.casefold()):
        return False
    if any(c.isalnum() for c in one + other):
        if set(ops_one + ops_other) <= _SEPARATORS:
            return False
        return _looks_like_code(one) or _looks_like_code(other)
    return any(_looks_like_code(word) for word in beside)


def _around(words: Sequence[str], start: int, end: int) -> list[str]:
    return [*words[max(start - 1, 0) : start], *words[end : end + 1]]


def different_code(a: str, b: str) -> str | None:
    """A word of code differs in case only (a flag, a regex, an identifier: "tar -c" vs "tar -C",
    "\\d" vs "\\D", "`Parse`" vs "`parse`"), in an operator ("3 // 2" vs "3 / 2"), or its
    operators trade places ("a && b || c" vs "a || b && c"). A prompt written in lower case, or
    with its dashes typed otherwise, is still the same request."""
    words_a, words_b = a.split(), b.split()
    matcher = SequenceMatcher(
        None, [w.casefold() for w in words_a], [w.casefold() for w in words_b], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs = zip(words_a[i1:i2], words_b[j1:j2], strict=True)
            if any(
                one != other and (_case_is_meaning(one, other) or _case_is_meaning(other, one))
                for one, other in pairs
            ):
                return CODE
        elif tag == "replace" and i2 - i1 == j2 - j1:
            for offset, (one, other) in enumerate(zip(words_a[i1:i2], words_b[j1:j2], strict=True)):
                if _operator_is_meaning(one, other, _around(words_a, i1 + offset, i1 + offset + 1)):
                    return CODE
    if _operators_moved(words_a, words_b) or _operands_exchanged(a, b):
        return CODE
    return None


def _operators_moved(words_a: list[str], words_b: list[str]) -> bool:
    """The same words in the same order, and the same operators between them in another order:
    "a && b || c" vs "a || b && c"."""

    def split(words: list[str]) -> tuple[list[str], list[str]]:
        operators = [_operators(w) for w in words if w and not any(c.isalnum() for c in w) and _operators(w)]
        others = [w.casefold() for w in words if any(c.isalnum() for c in w) or not _operators(w)]
        return operators, others

    operators_a, others_a = split(words_a)
    operators_b, others_b = split(words_b)
    return (
        others_a == others_b
        and operators_a != operators_b
        and sorted(operators_a) == sorted(operators_b)
        and any(_looks_like_code(word) for word in words_a)
    )


# Operators whose two sides may not trade places: "a - b" is not "b - a", "main..feature" not
# "feature..main". A minus sign and a slash are also prose's separators ("Paris - London",
# "read/write", "- a bullet"): they count only between operands of code (`_operand_of_code`), and
# between two bare numbers only spaced ("10 - 3", not "2019-2021", "12/25" or "Node 18/20"). Two or
# three dots count only glued to both sides ("main..feature", not an ellipsis).
_ORDERED_OPERATORS: Final = frozenset(
    {"<", ">", "<=", ">=", "<<", ">>", "%", "**", "^", "//", ":=", "-=", "+=", "*=", "/=", "<-"}
    | {"|>", "<|", "=~", "!~"}
)
_GLUED_OPERATORS: Final = frozenset({"..", "..."})
_SEPARATING_OPERATORS: Final = frozenset({"-", "/"})
# Tokens of code: a name or number (dotted ones whole: "df.price", "3.14"; a contraction whole:
# "don't"), a run of operators, a bracket, a separator; quotes, backticks and other marks are left
# out. An operator with a space on either side is marked with a leading space.
_CODE_TOKEN: Final = re.compile(r"\w+(?:'\w+)*(?:\.\w+)*|[/*=<>!&|%^~+\-.:]+|[()\[\]{},;]")
# How far past the first and last tokens that differ an exchanged operand may reach: "x[0] - x[1]"
# and "x[1] - x[0]" share their first two tokens.
_OPERAND_REACH: Final = 4
# The most tokens of one operand, and of two exchanged operands and their operator where the
# prompts differ: the search is quadratic in it, and operands are short.
_OPERAND_TOKENS: Final = 8
_EXCHANGE_TOKENS: Final = 40


@_per_text()
def _code_tokens(text: str) -> tuple[str, ...]:
    core = _ARROWS.sub(" to ", _TYPED_DASH.sub("-", _DASHES.sub("-", text)))
    tokens = []
    for match in _CODE_TOKEN.finditer(core):
        token = match.group(0)
        if token[0] in "/*=<>!&|%^~+-.:":
            glued = match.start() > 0 and not core[match.start() - 1].isspace()
            glued = glued and match.end() < len(core) and not core[match.end()].isspace()
            token = token if glued else " " + token
        tokens.append(token)
    return tuple(tokens)


def _operand(tokens: Sequence[str]) -> bool:
    """A side of an operator: a name, a number or a call or index of them, brackets balanced, no
    separator of clauses, at most `_OPERAND_TOKENS` tokens."""
    if len(tokens) > _OPERAND_TOKENS:
        return False
    depth = 0
    for token in tokens:
        if token in _OPENING:
            depth += 1
        elif token in _CLOSING:
            depth -= 1
            if depth < 0:
                return False
        elif not _word_of_code(token) and depth == 0:
            return False  # a separator or an operator outside brackets: more than one operand
    return depth == 0 and any(_word_of_code(token) for token in tokens)


_OPENING: Final = frozenset("([{")
_CLOSING: Final = frozenset(")]}")


def _word_of_code(token: str) -> bool:
    return token[0].isalnum() or token[0] == "_"


def _operand_of_code(tokens: Sequence[str]) -> bool:
    """An operand code or arithmetic is written with, every word of it code's: a number, a letter
    alone, a dotted name, a name with an underscore, or a name called or indexed ("len(x)",
    "x[0]"). Not a phrase of prose ("book a room", "I own the roadmap")."""
    for at, token in enumerate(tokens):
        if not _word_of_code(token):
            continue
        called = at + 1 < len(tokens) and tokens[at + 1] in {"(", "["}
        letter = len(token) == 1 and token.isalpha()
        if not (any(c.isdigit() for c in token) or letter or "." in token or "_" in token or called):
            return False
    return True


def _operands_exchanged(a: str, b: str) -> bool:
    """The two sides of an operator that reads one way traded places, every token kept: "a - b" vs
    "b - a", "x / y" vs "y / x", "if a < b" vs "if b < a", "git diff main..feature" vs
    "feature..main". Not "a + b" vs "b + a" nor "a == b" vs "b == a", which read both ways, nor
    prose's separators between words ("Paris - London" vs "London - Paris", bullets, "12/25")."""
    tokens_a, tokens_b = _code_tokens(a), _code_tokens(b)
    if len(tokens_a) != len(tokens_b) or tokens_a == tokens_b or sorted(tokens_a) != sorted(tokens_b):
        return False
    start, shared_end = shared_ends(tokens_a, tokens_b)
    end = len(tokens_a) - shared_end
    if end - start > _EXCHANGE_TOKENS:
        return False
    for first in range(max(0, start - _OPERAND_REACH), start + 1):
        for last in range(end, min(len(tokens_a), end + _OPERAND_REACH) + 1):
            window_a, window_b = tokens_a[first:last], tokens_b[first:last]
            for at, operator in enumerate(window_a):
                left, right = window_a[:at], window_a[at + 1 :]
                if window_b != (*right, operator, *left) or not (_operand(left) and _operand(right)):
                    continue
                if _reads_one_way(operator, left, right):
                    return True
    return False


def _reads_one_way(operator: str, left: Sequence[str], right: Sequence[str]) -> bool:
    """Whether `operator` (marked spaced or glued) between these operands reads one way only."""
    spaced, bare = operator.startswith(" "), operator.strip()
    if bare in _ORDERED_OPERATORS:
        return True
    if bare in _GLUED_OPERATORS:
        return not spaced
    if bare not in _SEPARATING_OPERATORS or not (_operand_of_code(left) and _operand_of_code(right)):
        return False
    numbers = all(len(side) == 1 and side[0].isdigit() for side in (left, right))
    return spaced or not numbers


# ---------------------------------------------------------------------------------------

# Most specific reason first: a reversed conversion also changes which number has which unit.
RULES: Final[Mapping[str, Rule]] = {
    DIRECTION: reversed_direction,
    NUMBER: different_numbers,
    TIME: different_time,
    NEGATION: different_negation,
    ANTONYM: opposite_words,
    ENTITY: different_entities,
    ORDER: swapped_roles,
    CODE: different_code,
}


def first_rejection(a: str, b: str, rules: Iterable[str] | None = None) -> str | None:
    """The reason of the first rule that tells `a` and `b` apart, or None if none does."""
    with one_decision():
        for name in RULES if rules is None else rules:
            reason = RULES[name](a, b)
            if reason is not None:
                return reason
        return None
