"""What must match exactly before two prompts are compared by meaning (docs/caching.md).

Only the last user turn is compared by meaning. Everything else that shapes the answer is
the *scope*: the model, every earlier message (system prompt included), and the request
parameters that change what a correct answer looks like. Two requests in different scopes
never share an entry. The namespace and the tenant are separate columns, matched exactly too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from confusable_homoglyphs.confusables import confusables_data

from app.bounds import hidden_characters
from app.errors import PayloadTooLarge, Unprocessable

# Longest namespace name, in characters; a name as sent may be longer by the white space around
# it and the accents that NFC composes (`namespace_name`), within MAX_NAMESPACE_INPUT.
MAX_NAMESPACE: Final = 200
MAX_NAMESPACE_INPUT: Final = 4 * MAX_NAMESPACE


def namespace_name(text: str) -> str:
    """A namespace as entries are filed, looked up and purged under it: in one Unicode form and
    without the white space around it ("team-a " and "team-a" are one namespace, and "café" is
    one however the client composed its accent); a 422 past MAX_NAMESPACE characters or holding
    a character that does not show (NUL, which Postgres text cannot hold, and the controls and
    format characters that make a namespace read as blank, or as another, in the dashboard)."""
    name = unicodedata.normalize("NFC", text).strip()
    if len(name) > MAX_NAMESPACE:
        raise Unprocessable(f"The cache namespace must be text of at most {MAX_NAMESPACE} characters.")
    if hidden := hidden_characters(name):
        raise Unprocessable(
            "The cache namespace holds only characters that show: no control, format, separator or "
            f"private ones ({', '.join(hidden)})."
        )
    return name


# Bump when the fingerprint's definition changes: old entries then simply stop matching.
SCOPE_VERSION = 1

# Parameters that change what a correct answer is: a different tool set, output format,
# sample count, seed, stop sequence or token-level shaping needs its own entry.
SCOPE_PARAMETERS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "n",
    "seed",
    "stop",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
)
# Not in the scope, on purpose: temperature and top_p (a policy decides whether a request is
# cacheable at all), stream and stream_options (a stored answer replays either way), user,
# metadata, store, service_tier, safety_identifier, prompt_cache_key and the like (bookkeeping,
# not content); and what the scope reads otherwise (the model, the messages, the output
# limit). Déjà's own `cache` controls never reach the scope (the pipeline takes them out).
UNSCOPED_PARAMETERS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        # Other servers' own: vLLM's request id, scheduling priority and prefix-cache salt,
        # Ollama's keep_alive.
        "request_id",
        "priority",
        "cache_salt",
        "keep_alive",
    }
)
# Any other field of the request is in the scope too, as `other` (left out when there is none,
# so the hashes of requests without one stay as they were): an upstream of another kind may read
# it (vLLM's guided_json or top_k, Ollama's options) and answer otherwise.

# The output limit is in the scope as given, not in classes of nearby limits: an answer cut at
# 100 tokens is not the answer to a request that allows 200, and an answer of 900 tokens is more
# than a request that allows 300 may be sent. An app sends the same limit each time, so its
# repeats still share an entry.

# Parameters sent at the value the API takes when they are left out ask for the same answer as
# a request without them ("n": 1 from one client, no "n" from another): left out of the scope.
# (Not the penalties: a llama.cpp or Ollama upstream fills in penalties of its own configuration
# for a request without them, so 0 sent is not always what none sent means.)
_API_DEFAULTS: Final[Mapping[str, object]] = {"n": 1, "logprobs": False}


def _at_default(name: str, value: object) -> bool:
    default = _API_DEFAULTS.get(name)
    if default is None:
        return False
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    return isinstance(value, int | float) and value == default


_WHITESPACE = re.compile(r"\s+")
# Line breaks, as str.splitlines counts them, and the other whitespace (spaces, tabs: a line's
# indentation). Possessive runs, each tried only where a run of whitespace starts: linear time.
_BREAKS = "\n\r\v\f\x1c-\x1e\x85\u2028\u2029"
_BREAK_CHARS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK_RUN = re.compile(rf"(?<!\s)[^\S{_BREAKS}]*+(?:[{_BREAKS}]([^\S{_BREAKS}]*+))++")
# A run without a line break that is not one space already: two or more, or a tab (or another
# such space) alone.
_SPACE_RUN = re.compile(r"(?<!\s)(?:[^\S\n]{2,}+|[^\S\n ])")
_INDENTED_BREAK = re.compile(r"\n[^\S\n]++")
# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt): characters that render
# as nothing (zero-width space and joiners, soft hyphen, word joiner, BOM, bidi controls,
# variation selectors, tags). Left in, "s\u200bell" reads as "sell" to a person but not to the
# embedder, the verifier or a hash.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# But tags are what tells one subdivision's flag from another: a black flag, tag letters, a
# cancel tag (England, Scotland and Wales). Their letters are kept, as visible letters.
_FLAG = re.compile("\U0001f3f4([\U000e0020-\U000e007e]+)\U000e007f")
_GRAPHEME_JOINER = "\u034f"  # default-ignorable: removed after NFKC with the rest


def _character_class(chars: list[str]) -> str:
    """A regular-expression character class of `chars` (in code point order), as ranges."""
    ranges: list[list[int]] = []
    for code in map(ord, chars):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return (
        "["
        + "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in ranges)
        + "]"
    )


# Every code point of planes 0 to 2 and 14, and those with a decomposition: built once at import
# for the character tables below.
_CHARS = [chr(code) for code in (*range(0x30000), *range(0xE0000, 0xE1000))]
_DECOMPOSED = [char for char in _CHARS if unicodedata.decomposition(char)]


def _marks_and_superscripts() -> tuple[list[str], list[str]]:
    """The non-starters (combining marks, and characters whose compatibility decomposition starts
    with one) and the superscripts, in code point order."""
    combining, decomposition = unicodedata.combining, unicodedata.decomposition
    starts_with_mark = {c for c in _DECOMPOSED if combining(unicodedata.normalize("NFKD", c)[0])}
    return (
        [char for char in _CHARS if combining(char) or char in starts_with_mark],
        [char for char in _DECOMPOSED if decomposition(char).startswith("<super>")],
    )


_NON_STARTERS, _SUPERSCRIPT = _marks_and_superscripts()


def _expansions() -> dict[str, int]:
    """The characters NFKC spells out as three or more (U+FDFA as 18), and by how many more."""
    grown = {char: len(unicodedata.normalize("NFKC", char)) - 1 for char in _DECOMPOSED}
    return {char: extra for char, extra in grown.items() if extra >= 2}


_EXPANSIONS = _expansions()
_EXPANDING = re.compile(_character_class(sorted(_EXPANSIONS)))
_EXPANDING_BMP = re.compile(_character_class(sorted(c for c in _EXPANSIONS if c <= "\uffff")))
# A prompt may grow this much under NFKC (twice its length, and a little): past it, the work of
# matching it is the expansion's, not the request's (1 MB of U+FDFA is 18 MB to fold).
MAX_GROWTH_FACTOR = 2
MAX_GROWTH_SLACK = 4096


def compatibility_growth(text: str) -> int:
    """How many characters NFKC adds to `text` spelling out its compatibility characters (those
    that grow by two or more), counted without folding it."""
    if text.isascii():
        return 0
    expanding = _EXPANDING_BMP if max(text) <= "\uffff" else _EXPANDING
    return sum(_EXPANSIONS[char] for char in expanding.findall(text))


# Unicode sorts each run of combining marks by class, and CPython's NFKC does so in quadratic
# time: 240 KB of alternating accents took 15 s of CPU. Unicode's stream-safe format (UAX #15)
# bounds runs at 30 marks with a grapheme joiner after each 30, which NFKC does not reorder across.
_LONG_MARK_RUN = re.compile(_character_class(_NON_STARTERS) + "{30}")
# The same within the Basic Multilingual Plane, for texts with no character past it (most): a
# class the engine tests as a bitmap rather than range by range, ten times faster.
_LONG_MARK_RUN_BMP = re.compile(_character_class([c for c in _NON_STARTERS if c <= "\uffff"]) + "{30}")
# NFKC folds superscripts into plain characters: "2³" would read "23". A superscript is kept
# apart by a caret ("2^3", as it is typed); subscripts fold ("H₂O" is "H2O").
_SUPERSCRIPTS = re.compile(_character_class(_SUPERSCRIPT) + "+")


# Scripts whose letters are drawn like Latin ones (UTS #39's confusables): a word mixing them
# with Latin letters is how a look-alike spelling hides a word.
_LOOKALIKE_SCRIPTS = ("CYRILLIC ", "GREEK ", "ARMENIAN ")


def _latin_lookalikes() -> dict[int, str]:
    """Letters of the Cyrillic, Greek and Armenian scripts that look like one Latin letter
    (Unicode's confusables data, UTS #39: Cyrillic "е" and Latin "e"), as a str.translate table.
    Not digits, symbols or letters of the Latin script itself (Turkish "ı" is a letter of its own)."""
    table: dict[int, str] = {}
    for char, homoglyphs in confusables_data.items():
        if (
            len(char) != 1
            or not char.isalpha()
            or not unicodedata.name(char, "").startswith(_LOOKALIKE_SCRIPTS)
        ):
            continue
        latin = next(
            (h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalpha()), None
        )
        # What NFKC folds never reaches the table.
        if latin is not None and unicodedata.normalize("NFKC", char) == char:
            table[ord(char)] = latin
    return table


_LOOKALIKES = _latin_lookalikes()
# A word mixing a Latin letter with a letter outside ASCII, tried once, from its start (classes
# of ASCII and its complement: fast for the regular-expression engine).
_MIXED_WORD = re.compile(r"(?<!\w)\w*?(?:[A-Za-z][^\W\x00-\x7f]|[^\W\x00-\x7f][A-Za-z])\w*+")
_LATIN_LETTERS = re.compile("[A-Za-z]")


def _fold_lookalikes(text: str, spelt: list[str]) -> str:
    """A word spelt in Latin letters and look-alikes of them reads as the Latin word it passes for
    ("pеr tеnant" with Cyrillic "е" is "per tenant", which the verifier's rules then read): a
    word with two Latin letters or more, every other letter of which looks like a Latin one.
    Words of one script ("сор", "Москва"), a symbol beside one letter ("σx") and words with a
    letter of another kind keep their letters; the word alone decides. Each word folded is added
    to `spelt` as it was spelt."""

    def fold(word: re.Match[str]) -> str:
        spelling = word.group()
        folded = spelling.translate(_LOOKALIKES)
        if folded == spelling or not folded.isascii() or len(_LATIN_LETTERS.findall(spelling)) < 2:
            return spelling
        spelt.append(spelling)
        return folded

    return _MIXED_WORD.sub(fold, text)


def normalise_prompt(text: str) -> str:
    """The text a prompt is matched by: invisible characters removed (a flag's tag letters kept),
    compatibility forms folded (NFKC: full-width letters, ligatures; a superscript marked by a
    caret), words spelt with Latin look-alikes read as Latin (`_fold_lookalikes`), trimmed, runs
    of whitespace collapsed to one space but for a line's indentation, which is kept with the
    line break before it (in code and YAML it is meaning). Case is kept: it can matter (code,
    identifiers, acronyms), and the semantic tier handles the rest. Linear in the text's length
    whatever it holds. The model always receives the client's own text."""
    return normalise_and_spell(text)[0]


def normalise_and_spell(text: str) -> tuple[str, tuple[str, ...]]:
    """`normalise_prompt(text)`, and the words it read as Latin though they are spelt with
    look-alike letters of other scripts, as spelt ("pаypal" with a Cyrillic "а"). Two prompts
    that read alike but spell such words otherwise are not one question ("is pаypal.com safe?"
    is a phishing domain's): neither is an exact hit of the other (`Scope.spellings`), and the
    verifier never serves one for the other (`app.cache.verifier.texts.read_candidates`)."""
    spelt: list[str] = []
    if not text.isascii():  # every step but the spacing leaves ASCII as it is
        text = _IGNORABLE.sub("", _FLAG.sub(_visible_tags, text))
        long_runs = _LONG_MARK_RUN_BMP if max(text, default="") <= "\uffff" else _LONG_MARK_RUN
        text = long_runs.sub(lambda run: run.group() + _GRAPHEME_JOINER, text)
        text = unicodedata.normalize("NFKC", _SUPERSCRIPTS.sub(lambda run: "^" + run.group(), text))
        text = _fold_lookalikes(_IGNORABLE.sub("", text), spelt)
    if any(char in text for char in _BREAK_CHARS):  # a scan a character, skipped for one line
        text = _BREAK_RUN.sub(_indented_or_space, text)
    return _SPACE_RUN.sub(" ", text).strip(), tuple(spelt)


def read_text(normalised: str) -> str:
    """What the models and the verifier's rules read of a normalised prompt: its words, every run
    of whitespace one space (they read no layout; `indentation` is compared apart). A normalised
    prompt's only runs that are not one space already are its indented line breaks."""
    return _INDENTED_BREAK.sub(" ", normalised)


def indentation(normalised: str) -> tuple[str, ...]:
    """The indentation of a normalised prompt's indented lines, in order."""
    return tuple(_INDENT.findall(normalised))


_INDENT = re.compile(r"\n([^\S\n]+)")


def _indented_or_space(run: re.Match[str]) -> str:
    """A run of whitespace with a line break in it: the last line break and the indentation after
    it, when the next line is indented; else one space."""
    indent = run.group(1)
    # One space before a combining mark is what NFKC made of a spacing accent at the line's
    # start ("¸" is " " and a cedilla): part of its first character, not an indentation.
    following = run.string[run.end() : run.end() + 1]
    if indent == " " and following and unicodedata.combining(following):
        return " "
    return "\n" + indent if indent else " "


def _visible_tags(flag: re.Match[str]) -> str:
    return "\U0001f3f4" + "".join(chr(ord(tag) - 0xE0000) for tag in flag.group(1))


def requested_limit(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Unprocessable("max_tokens must be a positive integer.")
    return value


def _is_text(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)


def message_text(content: Any) -> tuple[str, list[Any]]:
    """The text of a message's content, and its non-text parts (images, audio, files)."""
    if isinstance(content, str):
        return content, []
    if content is None:
        return "", []
    if isinstance(content, list):
        texts: list[str] = []
        other: list[Any] = []
        for part in content:
            if _is_text(part):
                texts.append(part["text"])
            else:
                other.append(part)
        return "\n".join(texts), other
    raise Unprocessable("A message's content must be a string or a list of content parts.")


@dataclass(frozen=True, slots=True)
class Scope:
    model: str
    prompt: str  # the last user turn, as sent
    normalised_prompt: str  # `normalise_prompt`: what the exact hash is of
    read_prompt: str  # `read_text`: what the embedder and the verifier read
    scope_hash: bytes
    exact_hash: bytes
    # The words read as Latin though spelt with look-alikes of other scripts (`normalise_and_spell`),
    # in the exact hash too.
    spellings: tuple[str, ...] = ()


def by_value(payload: Any) -> Any:
    """`payload` with every whole float as the integer it equals: JSON writes one number as
    `0`, `0.0` or `0e0` as a client pleases, and each is one value to an upstream. Booleans,
    fractions and infinities stay as they are."""
    if isinstance(payload, float):
        return int(payload) if payload.is_integer() else payload
    if isinstance(payload, Mapping):
        return {key: by_value(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [by_value(value) for value in payload]
    return payload


def _digest(payload: Any) -> bytes:
    canonical = json.dumps(
        by_value(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).digest()


# A last user message longer than this is folded on a worker thread (`scope_of_request`).
INLINE_CHARS: Final = 16_384


async def scope_of_request(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None
) -> Scope:
    """`scope_of` for a request being served: on a worker thread when the last message is long.
    Folding a MiB of prompt can take over half a second of one core (look-alike words, accented
    Latin); inline, the event loop, and every other request of the process, would wait that long,
    where on a thread it gets a turn every few tens of milliseconds (`python scripts/fold_wait.py`)."""
    if _last_text_chars(messages) <= INLINE_CHARS:
        return scope_of(model, messages, params)
    return await asyncio.to_thread(scope_of, model, messages, params)


def _last_text_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    content = messages[-1].get("content") if messages and isinstance(messages[-1], Mapping) else None
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return 0


def _layout(content: Any, attachments: list[Any]) -> str | None:
    """Where the last turn's text sits among its other parts ("t" text, "a" another part), when
    that can change what the text refers to: with two or more other parts ("Caption the image
    above" between two images, or after both), or text on both sides of one. None for text and
    one image in either order, which share their entries as they did before the layout counted."""
    if not isinstance(content, list) or not attachments:
        return None
    # A blank text part says nothing, and leaves the layout as it was without it.
    kinds = "".join(("t" if part["text"].strip() else "") if _is_text(part) else "a" for part in content)
    runs = re.sub(r"(.)\1+", r"\1", kinds)
    return kinds if len(attachments) >= 2 or len(runs) > 2 else None


class NothingToLookUp(Unprocessable):
    """The last user message holds no text to look up (an image alone, blank text): the cache
    API refuses it, a chat request goes to the model uncached."""


def scope_of(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None
) -> Scope:
    """The scope and hashes of a chat request; the last message must be the user's."""
    if not model:
        raise Unprocessable("A model is required.")
    if not messages:
        raise Unprocessable("At least one message is required.")
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "user":
        raise Unprocessable("The last message must have the role 'user' to be looked up in the cache.")
    prompt, attachments = message_text(last.get("content"))
    growth = compatibility_growth(prompt)
    if growth > MAX_GROWTH_FACTOR * len(prompt) + MAX_GROWTH_SLACK:
        raise PayloadTooLarge(
            f"The last user message grows by {growth} characters once its compatibility characters "
            f"are spelt out (NFKC); at most {MAX_GROWTH_FACTOR} times its length and "
            f"{MAX_GROWTH_SLACK} more are matched."
        )
    normalised, spellings = normalise_and_spell(prompt)
    if not normalised:
        if last.get("content") is None:
            raise Unprocessable("The last user message has no content.")
        raise NothingToLookUp("The last user message has no visible text.")
    params = params or {}
    shaping = {
        name: params[name]
        for name in SCOPE_PARAMETERS
        if params.get(name) is not None and not _at_default(name, params[name])
    }
    other = {
        name: value
        for name, value in params.items()
        if value is not None and name not in UNSCOPED_PARAMETERS and name not in SCOPE_PARAMETERS
    }
    # max_completion_tokens wins over max_tokens, as upstream; a null one is no limit given.
    tokens = params.get("max_completion_tokens")
    if tokens is None:
        tokens = params.get("max_tokens")
    fingerprint = {
        "v": SCOPE_VERSION,
        "model": model,
        # Earlier turns verbatim: a different conversation is a different question.
        "context": [dict(m) for m in messages[:-1]],
        # The last turn's non-text parts (an image, a file) must match exactly too.
        "attachments": attachments,
        "last_name": last.get("name"),
        "params": shaping,
    }
    if (limit := requested_limit(tokens)) is None:
        # The key of the classes limits once shared: requests without a limit keep their hashes.
        fingerprint["max_tokens_class"] = None
    else:
        fingerprint["max_tokens"] = limit
    if other:
        fingerprint["other"] = other
    if (layout := _layout(last.get("content"), attachments)) is not None:
        fingerprint["layout"] = layout
    scope_hash = _digest(fingerprint)
    # Without look-alike spellings (nearly every prompt), the hash it always was.
    spelt = normalised + ("\x00" + "\x00".join(spellings) if spellings else "")
    exact_hash = hashlib.sha256(scope_hash + spelt.encode()).digest()
    return Scope(
        model=model,
        prompt=prompt,
        normalised_prompt=normalised,
        read_prompt=read_text(normalised),
        scope_hash=scope_hash,
        exact_hash=exact_hash,
        spellings=spellings,
    )
