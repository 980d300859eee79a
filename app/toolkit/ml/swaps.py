"""Pairs that teach the verifier which reorders change the answer, made from real prompts.

A bag of words cannot tell "migrate from Postgres to MySQL" from "migrate from MySQL to
Postgres"; a cross-encoder can, if it is shown both kinds of reorder. Each transformation
here takes a real sentence (a training-file sentence or a prompt of the project's intents)
and returns a variant with its label:

- negatives: the two ends of a direction swapped (from/to, into/out of, A -> B, to/from a
  person), two parties' roles exchanged (manager/report, buyer/seller, ...), the two sides of
  a contrast or comparison swapped (A but not B, A rather than B, A more than B), a word
  replaced by its opposite (up/down, increase/decrease, buy/sell) or two opposites exchanged;
- positives: reorders that keep every role: a conditional clause moved to the other end, a
  phrase of time, place or tool ("this week", "in the Berlin office", "in Excel") moved to the front,
  two coordinated items swapped (A and B), "the X of Y" as "Y's X", "X for Y" as "Y's X",
  an active sentence with two parties made passive.

Every function is deterministic for its random generator; a transformation that does not
apply returns None.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Variant:
    text: str
    label: int  # 1 = the same answer, 0 = another answer
    kind: str


# A short noun phrase: up to four words, none of them a word that starts a new phrase.
_STOP: Final = (
    r"(?:to|into|from|in|on|at|by|with|without|for|and|or|but|than|of|out|onto|via|over|then|while|when|"
    r"if|because|so|that|which|who|is|are|was|were|be|the|a|an)"
)
_WORD: Final = rf"(?!{_STOP}\b)[\w$€£%.+#'-]+"
_NP: Final = rf"(?:(?:the|a|an|my|our|your|their|his|her) )?{_WORD}(?: {_WORD}){{0,3}}"


def _swap_spans(text: str, match: re.Match[str], first: str, second: str) -> str:
    start_a, end_a = match.span(first)
    start_b, end_b = match.span(second)
    a, b = text[start_a:end_a], text[start_b:end_b]
    return text[:start_a] + b + text[end_a:start_b] + a + text[end_b:]


_DIRECTED: Final = [
    re.compile(rf"\bfrom (?P<a>{_NP}) (?:to|into|onto) (?P<b>{_NP})", re.IGNORECASE),
    re.compile(
        rf"\b(?:convert|migrate|move|translate|transfer|port|switch|upgrade|change) (?P<a>{_NP}) "
        rf"(?:to|into) (?P<b>{_NP})",
        re.IGNORECASE,
    ),
    re.compile(rf"(?P<a>\b{_WORD}) ?(?:->|=>|→) ?(?P<b>{_WORD}\b)"),
    re.compile(rf"\bout of (?P<a>{_NP}) (?:and )?into (?P<b>{_NP})", re.IGNORECASE),
]

_CONTRAST: Final = [
    re.compile(rf"(?P<a>\b{_NP}) but (?:not|never|no) (?P<b>{_NP})", re.IGNORECASE),
    re.compile(rf"(?P<a>\b{_NP}) (?:rather than|instead of) (?P<b>{_NP})", re.IGNORECASE),
    re.compile(
        rf"(?P<a>\b{_NP}) (?:is|are|was|were)? ?(?:more|less|bigger|smaller|larger|better|worse|"
        rf"older|younger|higher|lower|faster|slower|cheaper|taller|richer|stronger) than (?P<b>{_NP})",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?P<a>\b{_NP}) (?:beat|beats|defeated|defeats|replaced|replaces|succeeded|"
        rf"precedes|preceded|follows|followed) (?P<b>{_NP})",
        re.IGNORECASE,
    ),
]

# Two parties whose roles differ: exchanging them (or naming the other) changes the answer.
PARTIES: Final[tuple[tuple[str, str], ...]] = (
    ("manager", "direct report"),
    ("boss", "employee"),
    ("employer", "employee"),
    ("customer", "supplier"),
    ("client", "vendor"),
    ("buyer", "seller"),
    ("sender", "recipient"),
    ("landlord", "tenant"),
    ("teacher", "student"),
    ("doctor", "patient"),
    ("parent", "child"),
    ("lender", "borrower"),
    ("host", "guest"),
    ("interviewer", "candidate"),
    ("author", "reviewer"),
    ("seller", "customer"),
    ("team lead", "new hire"),
    ("husband", "wife"),
    ("father", "son"),
    ("mother", "daughter"),
)

# Opposites: one replaced by the other asks for another answer.
OPPOSITES: Final[tuple[tuple[str, str], ...]] = (
    ("up", "down"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("increasing", "decreasing"),
    ("rise", "fall"),
    ("rose", "fell"),
    ("buy", "sell"),
    ("bought", "sold"),
    ("buying", "selling"),
    ("import", "export"),
    ("upload", "download"),
    ("enable", "disable"),
    ("before", "after"),
    ("above", "below"),
    ("more", "less"),
    ("higher", "lower"),
    ("highest", "lowest"),
    ("maximum", "minimum"),
    ("best", "worst"),
    ("add", "remove"),
    ("open", "close"),
    ("win", "lose"),
    ("won", "lost"),
    ("accept", "reject"),
    ("include", "exclude"),
    ("inside", "outside"),
    ("encrypt", "decrypt"),
    ("push", "pull"),
    ("first", "last"),
    ("oldest", "newest"),
    ("earliest", "latest"),
    ("cheapest", "most expensive"),
    ("gain", "loss"),
    ("profit", "loss"),
    ("positive", "negative"),
    ("true", "false"),
    ("easy", "hard"),
    ("lend", "borrow"),
    ("hire", "fire"),
    ("hired", "fired"),
    ("ascending", "descending"),
    ("inbound", "outbound"),
    ("pros", "cons"),
    ("advantages", "disadvantages"),
    ("strengths", "weaknesses"),
    ("love", "hate"),
    ("men", "women"),
    ("male", "female"),
    ("success", "failure"),
    ("legal", "illegal"),
    ("possible", "impossible"),
    ("always", "never"),
    ("everyone", "no one"),
)
_OPPOSITE: Final = {a: b for a, b in OPPOSITES} | {b: a for a, b in OPPOSITES}
_OPPOSITE_WORD: Final = re.compile(
    r"\b(" + "|".join(sorted((re.escape(w) for w in _OPPOSITE), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def _keep_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def reverse_direction(text: str, rng: random.Random) -> Variant | None:
    for pattern in rng.sample(_DIRECTED, len(_DIRECTED)):
        match = pattern.search(text)
        if match and match.group("a").lower() != match.group("b").lower():
            return Variant(_swap_spans(text, match, "a", "b"), 0, "direction")
    # "an email to my manager" and "an email from my manager" have other senders.
    match = re.search(r"\b(to|from) (my|our|the|your|his|her|their) (\w+)", text, re.IGNORECASE)
    if match and match.group(3).lower() not in {"left", "right", "top", "bottom", "end", "start"}:
        other = "from" if match.group(1).lower() == "to" else "to"
        start, end = match.span(1)
        return Variant(text[:start] + _keep_case(match.group(1), other) + text[end:], 0, "direction")
    return None


_DETERMINER: Final = re.compile(r"^(?:the|a|an|my|our|your|their|his|her) ", re.IGNORECASE)
# A side that starts with one of these is a clause ("I download X", "can I lose weight"), not a
# thing: swapping it with the other side garbles the sentence instead of exchanging two things.
# Pronouns, question words and auxiliaries: a phrase that starts with one is a clause.
_CLAUSE_WORDS: Final = frozenset(
    [
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "how",
        "what",
        "why",
        "when",
        "where",
        "who",
        "which",
        "can",
        "could",
        "do",
        "does",
        "did",
        "is",
        "are",
        "was",
        "were",
        "will",
        "would",
        "should",
        "be",
        "been",
        "get",
        "got",
    ]
)
_NOT_A_THING: Final = _CLAUSE_WORDS | frozenset(
    [
        "me",
        "us",
        "them",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "being",
        "one",
        "someone",
        "something",
        "people",
    ]
)


def _things(a: str, b: str) -> bool:
    """Both sides name a thing of the same shape: one or two words after an optional determiner."""
    words_a, words_b = _DETERMINER.sub("", a).split(), _DETERMINER.sub("", b).split()
    return (
        a.lower() != b.lower()
        and 1 <= len(words_a) <= 2
        and len(words_a) == len(words_b)
        and words_a[0][:1].isalpha()
        and words_b[0][:1].isalpha()
        and words_a[0].lower() not in _NOT_A_THING
        and words_b[0].lower() not in _NOT_A_THING
    )


# Words after which a thing can start ("use A instead of B", "or A rather than B").
_BEFORE_A_THING: Final = frozenset(
    [
        "to",
        "into",
        "from",
        "in",
        "on",
        "at",
        "by",
        "with",
        "for",
        "and",
        "or",
        "of",
        "via",
        "over",
        "use",
        "uses",
        "using",
        "choose",
        "chose",
        "prefer",
        "prefers",
        "preferred",
        "like",
        "likes",
        "pick",
        "buy",
        "learn",
        "say",
        "says",
        "said",
        "is",
        "are",
        "was",
        "were",
    ]
)


def _bounded(text: str, start: int, end: int) -> bool:
    """The swapped span starts after a boundary word or punctuation and ends at one."""
    before = text[:start].split()
    after = re.match(r"\s*([\w'-]+|[^\w\s]|$)", text[end:])
    following = after.group(1).lower() if after else ""
    starts = not before or not before[-1][-1:].isalnum() or before[-1].lower() in _BEFORE_A_THING
    ends = following == "" or not following[:1].isalnum() or re.fullmatch(_STOP, following) is not None
    return starts and ends


def swap_contrast(text: str, rng: random.Random) -> Variant | None:
    for pattern in rng.sample(_CONTRAST, len(_CONTRAST)):
        for match in pattern.finditer(text):
            # The left side is matched greedily: try it shortened to the right side's length.
            a, b = match.group("a"), match.group("b")
            words_b = _DETERMINER.sub("", b).split()
            words_a = a.split()
            keep = len(words_b) + (
                1 if _DETERMINER.match(" ".join(words_a[-len(words_b) - 1 :]) + " ") else 0
            )
            start_a = match.start("a") + len(a) - len(" ".join(words_a[-keep:]))
            a = text[start_a : match.end("a")]
            if _things(a, b) and _bounded(text, start_a, match.end("b")):
                swapped = (
                    text[:start_a] + b + text[match.end("a") : match.start("b")] + a + text[match.end("b") :]
                )
                return Variant(swapped, 0, "contrast")
    return None


def _party_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word)}(s|'s)?\b", re.IGNORECASE)


def swap_roles(text: str, rng: random.Random) -> Variant | None:
    """Both parties named: exchange them. One named: name its counterpart instead."""
    for one, two in rng.sample(PARTIES, len(PARTIES)):
        first, second = _party_pattern(one).search(text), _party_pattern(two).search(text)
        if first and second:
            # The first party's place takes the second's name as written here, and the other way round.
            early, late = sorted((first, second), key=lambda match: match.start())
            texts = {
                id(first): two + (first.group(1) or ""),
                id(second): _keep_case(second.group(0), one) + (second.group(1) or ""),
            }
            return Variant(
                text[: early.start()]
                + texts[id(early)]
                + text[early.end() : late.start()]
                + texts[id(late)]
                + text[late.end() :],
                0,
                "role",
            )
        if first or second:
            found, other = (first, two) if first else (second, one)
            assert found is not None
            start, end = found.span()
            replacement = _keep_case(found.group(0), other) + (found.group(1) or "")
            return Variant(text[:start] + replacement + text[end:], 0, "role")
    return None


def opposite(text: str, rng: random.Random) -> Variant | None:
    """One word replaced by its opposite; with two opposites in the sentence, both exchanged."""
    found = list(_OPPOSITE_WORD.finditer(text))
    if not found:
        return None
    pairs = [
        (a, b)
        for a in found
        for b in found
        if a.start() < b.start() and _OPPOSITE[a.group(0).lower()] == b.group(0).lower()
    ]
    if pairs and rng.random() < 0.6:
        a, b = rng.choice(pairs)
        text = (
            text[: a.start()]
            + _keep_case(a.group(0), b.group(0).lower())
            + text[a.end() : b.start()]
            + _keep_case(b.group(0), a.group(0).lower())
            + text[b.end() :]
        )
        return Variant(text, 0, "opposite-exchanged")
    match = rng.choice(found)
    replacement = _keep_case(match.group(0), _OPPOSITE[match.group(0).lower()])
    return Variant(text[: match.start()] + replacement + text[match.end() :], 0, "opposite")


# --- positives: reorders that keep every role

_CONDITION: Final = re.compile(
    r"^(?P<main>[^,?.!]{8,}?),? (?P<cond>(?:if|when|whenever|once|unless|before|after|while) [^,?.!]{4,}?)"
    r"(?P<end>[?.!]*)$",
    re.IGNORECASE,
)
_LEADING_CONDITION: Final = re.compile(
    r"^(?P<cond>(?:if|when|whenever|once|unless|before|after|while) [^,?.!]{4,}?), (?P<main>[^?.!]{4,}?)"
    r"(?P<end>[?.!]*)$",
    re.IGNORECASE,
)


def move_clause(text: str, rng: random.Random) -> Variant | None:
    """'Do X if Y?' <-> 'If Y, do X?': the same question."""
    match = _LEADING_CONDITION.match(text.strip())
    if match:
        main = match.group("main")
        return Variant(
            f"{main[:1].upper()}{main[1:]} {match.group('cond')[:1].lower()}"
            f"{match.group('cond')[1:]}{match.group('end')}",
            1,
            "clause-moved",
        )
    match = _CONDITION.match(text.strip())
    if match and not re.search(r"\b(?:what|how|which|who|why|where)\b", match.group("cond"), re.IGNORECASE):
        cond, main = match.group("cond"), match.group("main")
        if main.split()[0] not in {"I", "Python", "SQL"} and not main.split()[0].isupper():
            main = main[:1].lower() + main[1:]
        return Variant(f"{cond[:1].upper()}{cond[1:]}, {main}{match.group('end')}", 1, "clause-moved")
    return None


# A phrase that says when, where or in what a question holds; it reads the same at either end.
_MONTH: Final = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DAY: Final = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_SETTING: Final = (
    r"(?:(?:this|next|last|every) (?:week|month|quarter|year|sprint|weekend|morning|evening|"
    rf"{_DAY}|{_MONTH})|today|tomorrow|yesterday|tonight|right now|"
    rf"(?:in|during|for|by|before|after|until) (?:Q[1-4](?: \d{{4}})?|H[12](?: \d{{4}})?|\d{{4}}|"
    rf"{_MONTH}(?: \d{{4}})?|the (?:first|second|third|last|next|past) (?:\w+ )?(?:week|month|quarter|"
    rf"year|half|days|weeks|months)s?)|on {_DAY}s?|"
    r"(?:in|at|for) (?:the |our |my )?[A-Z][\w&-]*(?: [A-Z][\w&-]*){0,2}"
    r"(?: (?:office|team|site|region|branch|department|store|warehouse|plant|account|project))?|"
    r"(?:in|using|with) (?:Python|SQL|Excel|Postgres|PostgreSQL|MySQL|Java|JavaScript|TypeScript|Go|Rust|"
    r"pandas|Kubernetes|Terraform|AWS|Azure|GCP|Jira|Slack|Salesforce|Google Sheets))"
)
_TRAILING_SETTING: Final = re.compile(rf"^(?P<main>[^,;:]{{10,}}?),? (?P<setting>{_SETTING})(?P<end>[?.!]*)$")
_LEADING_SETTING: Final = re.compile(
    rf"^(?P<setting>{_SETTING}),? (?P<main>[^,;:]{{10,}}?)(?P<end>[?.!]*)$", re.IGNORECASE
)
# First words that lose their capital when a phrase moves in front of them.
_LOWERABLE: Final = frozenset(
    (  # noqa: SIM905 - a list of words reads better as words
        "what who whom whose how when where which why can could do does did is are was were should would "
        "will shall may please write draft give show tell list summarise summarize explain find create "
        "compare calculate send prepare make get set book check help any the a an"
    ).split()
)
# The first words of a setting phrase, lower-cased when it moves to the end of the sentence.
_SETTING_OPENERS: Final = frozenset(
    (  # noqa: SIM905 - a list of words reads better as words
        "this next last every today tomorrow yesterday tonight right in during for by before after until "
        "on at using with"
    ).split()
)


def front_setting(text: str, rng: random.Random) -> Variant | None:
    """'Who is on call this week?' <-> 'This week, who is on call?'; 'How do I pivot in Excel?'
    <-> 'In Excel, how do I pivot?': the same question with its when, where or what-in moved."""
    stripped = text.strip()
    match = _LEADING_SETTING.match(stripped)
    if match:
        setting, main = match.group("setting"), match.group("main")
        if setting.split()[0].lower() in _SETTING_OPENERS:
            setting = setting[:1].lower() + setting[1:]
        return Variant(f"{main[:1].upper()}{main[1:]} {setting}{match.group('end')}", 1, "setting-moved")
    match = _TRAILING_SETTING.match(stripped)
    if not match or re.search(r"\b(?:from|to|than|between|versus|vs)\b$", match.group("main"), re.IGNORECASE):
        return None
    setting, main = match.group("setting"), match.group("main")
    first = main.split()[0]
    if first.lower() in _LOWERABLE and first != "I":
        main = first.lower() + main[len(first) :]
    return Variant(f"{setting[:1].upper()}{setting[1:]}, {main}{match.group('end')}", 1, "setting-moved")


_COORDINATED: Final = re.compile(
    r"(?<!between )(?<!from )\b(?P<a>[A-Za-z][\w+#.-]*) (?P<conj>and|or|&) (?P<b>[A-Za-z][\w+#.-]*)\b"
)
_BETWEEN: Final = re.compile(rf"\bbetween (?P<a>{_NP}) and (?P<b>{_NP})", re.IGNORECASE)
_NOT_ITEMS: Final = _CLAUSE_WORDS | frozenset(
    ["also", "just", "not", "so", "that", "then", "there", "here", "this"]
)


def _whole_items(text: str, match: re.Match[str]) -> bool:
    """Both words are whole items: no modifier before the first, nothing glued after the second
    ("PeopleSoft products and customers" or "aha moment" are not two items of one word)."""
    before = text[: match.start()].split()
    after = re.match(r"\s*([\w'-]+|[^\w\s]|$)", text[match.end() :])
    previous_ok = (
        not before or not before[-1][-1:].isalnum() or re.fullmatch(_STOP, before[-1].lower()) is not None
    )
    following = after.group(1).lower() if after else ""
    next_ok = (
        following == ""
        or not following[:1].isalnum()
        or (re.fullmatch(_STOP, following) is not None and following not in {"then", "later", "after"})
    )
    return previous_ok and next_ok


def swap_coordinated(text: str, rng: random.Random) -> Variant | None:
    """'A and B' <-> 'B and A', 'between A and B' <-> 'between B and A': nothing changes roles."""
    match = _BETWEEN.search(text)
    if match:
        return Variant(_swap_spans(text, match, "a", "b"), 1, "coordination-swapped")
    candidates = [
        m
        for m in _COORDINATED.finditer(text)
        if m.group("a").lower() not in _NOT_ITEMS
        and m.group("b").lower() not in _NOT_ITEMS
        and m.group("a").lower() != m.group("b").lower()
        and m.group("a").lower() not in _OPPOSITE
        and m.group("b").lower() not in _OPPOSITE
        and _whole_items(text, m)
    ]
    if not candidates:
        return None
    return Variant(_swap_spans(text, rng.choice(candidates), "a", "b"), 1, "coordination-swapped")


_OF_NAME: Final = re.compile(r"\bthe (?P<x>[a-z]+) of (?P<y>(?:[A-Z][\w.-]*)(?: [A-Z][\w.-]*){0,2})\b")
_FOR_TEAM: Final = re.compile(
    r"\b(?P<det>the|a|an|our) (?P<x>[a-z]+(?: [a-z]+)?) for (?P<y>(?:the|our|my) [a-z]+(?: team| department)?)\b"
)


def possessive(text: str, rng: random.Random) -> Variant | None:
    """'the capital of France' -> "France's capital"; 'a budget for the sales team' -> "the sales team's budget"."""
    match = _OF_NAME.search(text)
    if match:
        y = match.group("y")
        return Variant(
            f"{text[: match.start()]}{y}'s {match.group('x')}{text[match.end() :]}", 1, "possessive"
        )
    match = _FOR_TEAM.search(text)
    if match and rng.random() < 0.8:
        y = match.group("y")
        owner = y[:1].upper() + y[1:] if match.start() == 0 else y
        return Variant(
            f"{text[: match.start()]}{owner}'s {match.group('x')}{text[match.end() :]}", 1, "possessive"
        )
    return None


# Regular verbs two parties take in active/passive: "the manager approves the report".
_ACTIVE: Final = re.compile(
    r"\b(?P<s>(?:the|my|our|a|an|your) [a-z]+(?: [a-z]+)?) (?P<v>approves|approved|reviews|reviewed|pays|paid|"
    r"contacts|contacted|emails|emailed|invoices|invoiced|hires|hired|trains|trained|rejects|rejected|"
    r"interviews|interviewed|supports|supported|notifies|notified|assigns|assigned|calls|called) "
    r"(?P<o>(?:the|my|our|a|an|your) [a-z]+(?: [a-z]+)?)(?P<rest>[^\w]|$)"
)
_PARTICIPLE: Final = {
    "approves": "approved",
    "reviews": "reviewed",
    "pays": "paid",
    "contacts": "contacted",
    "emails": "emailed",
    "invoices": "invoiced",
    "hires": "hired",
    "trains": "trained",
    "rejects": "rejected",
    "interviews": "interviewed",
    "supports": "supported",
    "notifies": "notified",
    "assigns": "assigned",
    "calls": "called",
}


def passive(text: str, rng: random.Random) -> Variant | None:
    """'the manager approves the expense' -> 'the expense is approved by the manager'."""
    match = _ACTIVE.search(text)
    if not match:
        return None
    verb = match.group("v")
    present = verb in _PARTICIPLE
    participle = _PARTICIPLE.get(verb, verb)
    object_ = match.group("o")
    if match.start() == 0:
        object_ = object_[:1].upper() + object_[1:]
    subject = match.group("s")
    subject = subject[:1].lower() + subject[1:]
    clause = f"{object_} {'is' if present else 'was'} {participle} by {subject}"
    return Variant(text[: match.start()] + clause + match.group("rest") + text[match.end() :], 1, "passive")


NEGATIVE_TRANSFORMS: Final[tuple[Callable[[str, random.Random], Variant | None], ...]] = (
    reverse_direction,
    swap_roles,
    swap_contrast,
    opposite,
)
POSITIVE_TRANSFORMS: Final[tuple[Callable[[str, random.Random], Variant | None], ...]] = (
    move_clause,
    front_setting,
    swap_coordinated,
    possessive,
    passive,
)


@dataclass(frozen=True)
class SwapPair:
    first: str
    second: str
    label: int
    kind: str


def transform_all(sentences: Iterable[str], seed: int, *, per_sentence: int = 2) -> list[SwapPair]:
    """Up to `per_sentence` variants of every sentence that a transformation applies to."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    pairs: list[SwapPair] = []
    for sentence in sentences:
        text = " ".join(sentence.split())
        if not 3 <= len(text.split()) <= 60:
            continue
        transforms = list(NEGATIVE_TRANSFORMS + POSITIVE_TRANSFORMS)
        rng.shuffle(transforms)
        made = 0
        for transform in transforms:
            variant = transform(text, rng)
            if variant is None or variant.text.lower() == text.lower():
                continue
            first, second = (text, variant.text) if rng.random() < 0.5 else (variant.text, text)
            pairs.append(SwapPair(first, second, variant.label, variant.kind))
            made += 1
            if made == per_sentence:
                break
    return pairs


# Work prompts with two parties, written for this generator: {a} and {b} are two roles of one
# PARTIES pair. Exchanging them, or turning "to" into "from", asks for another text.
ROLE_FRAMES: Final[tuple[str, ...]] = (
    "Write an email to my {a} asking for feedback on the {b}'s proposal",
    "Draft a message from the {a} to the {b} about the late payment",
    "How should the {a} respond when the {b} disputes an invoice?",
    "What does the {a} owe the {b} if the contract is cancelled early?",
    "Can the {a} cancel the agreement without telling the {b}?",
    "Template for a thank-you note to the {b} from the {a}",
    "The {a} approves the {b}'s request, what happens next?",
    "Who pays the fees, the {a} or the {b}?",
    "What should the {a} ask the {b} in the first meeting?",
    "How do I tell my {a} that the {b} missed the deadline?",
    "Write a complaint from the {a} about the {b}",
    "Checklist for the {a} before handing the keys to the {b}",
    "What rights does the {a} have if the {b} breaks the contract?",
    "Draft a reminder to the {a} that the {b} is waiting for the signed contract",
    "How can the {a} get a refund from the {b}?",
    "The {a} reviews the {b} every quarter: what should the review cover?",
)


def role_frames(seed: int, count: int) -> list[SwapPair]:
    """Pairs from ROLE_FRAMES: parties exchanged or redirected (negatives) and passive or
    possessive rewrites that keep them (positives)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    pairs: list[SwapPair] = []
    while len(pairs) < count:
        frame = rng.choice(ROLE_FRAMES)
        a, b = rng.choice(PARTIES)
        if rng.random() < 0.5:
            a, b = b, a
        text = frame.format(a=a, b=b)
        roll = rng.random()
        if roll < 0.4:
            variant: Variant | None = Variant(frame.format(a=b, b=a), 0, "role")
        elif roll < 0.6:
            variant = reverse_direction(text, rng)
        else:
            variant = passive(text, rng) or possessive(text, rng) or move_clause(text, rng)
        if variant is None or variant.text.lower() == text.lower():
            continue
        first, second = (text, variant.text) if rng.random() < 0.5 else (variant.text, text)
        pairs.append(SwapPair(first, second, variant.label, variant.kind))
    return pairs
