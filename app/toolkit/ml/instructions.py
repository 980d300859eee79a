"""Pairs of short instructions, the requests people send with a pasted text: the same request
reworded (same answer) or another request (another answer), alone or over one shared text.

Over a long shared text the cross-encoder reads only the two instructions (`pair_window`), and
"Draft a reply to this." / "List the action items." are short, alike in form and about the same
object: a model that never saw such pairs scores them as the same request. Each task here is one
request phrased several ways; pairs of two tasks of one group ("Rewrite this more formally." /
"Rewrite this more casually.") are the hardest. About a quarter of the tasks are held out by a
stable hash of their id: their pairs are the validation slice, and training never sees their
phrasings.

The shared texts are sentences of real prose (the training files' sentences), so that the model
learns to read the instructions, not the text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.toolkit.ml.pairs import Pair, noise


@dataclass(frozen=True)
class Task:
    """One request: phrasings that all need the same answer. `{obj}` is what the text is."""

    id: str
    group: str
    phrasings: tuple[str, ...]


def parse_tasks(spec: str) -> list[Task]:
    """Tasks of a spec of one task a line, "group | id | phrasing || phrasing ..." (lines starting
    with # and blank ones are skipped)."""
    tasks = []
    for line in spec.strip().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        group, task_id, phrasings = (part.strip() for part in line.split(" | ", 2))
        tasks.append(Task(task_id, group, tuple(p.strip() for p in phrasings.split(" || "))))
    return tasks


def _tasks() -> list[Task]:
    spec = """
summary | summarise | Summarise this {obj}. || Give me a summary of this {obj}. || Sum this up. || Write a short summary of the {obj}. || TL;DR this {obj}. || Can you summarize the {obj} below? || What's the gist of this {obj}? || Boil this {obj} down to a few sentences.
summary | headline | Suggest a title for this {obj}. || Give this {obj} a headline. || What would be a good title for this? || Write a heading for this {obj}. || Come up with a title for the {obj} below.
summary | one_line | Summarise this {obj} in one sentence. || Give me a one-line summary of this. || Sum up the {obj} in a single sentence. || One sentence: what does this {obj} say?
summary | bullets | Turn this {obj} into bullet points. || Rewrite this as a bulleted list. || Make a bullet list out of this {obj}. || Convert the {obj} below into bullets.
reply | reply | Draft a reply to this {obj}. || Write a response to this {obj}. || Help me answer this {obj}. || How should I respond to this? || Reply to this {obj} for me. || Write back to this {obj}.
reply | decline | Draft a polite reply declining this. || Write a response saying no to this {obj}. || Help me turn this down politely. || Decline this {obj} in a reply.
reply | follow_up | Write a follow-up to this {obj}. || Draft a follow-up message about this. || Send a follow-up on this {obj} - draft it for me.
extract | action_items | List the action items in this {obj}. || What action items come out of this {obj}? || Pull out the to-dos from this {obj}. || Extract the tasks from this {obj}. || Which action items does this {obj} contain? || What needs to be done, according to this {obj}?
extract | dates | Extract the dates from this {obj}. || List every date mentioned in this {obj}. || Which dates does this {obj} mention? || Pull out all the dates in this.
extract | names | List the people mentioned in this {obj}. || Who is named in this {obj}? || Extract the names of people from this. || Which people does this {obj} mention?
extract | numbers | List the figures in this {obj}. || Pull out every number mentioned here. || Extract the numbers from this {obj}. || What numbers does this {obj} give?
extract | questions | Find the open questions in this {obj}. || What questions does this {obj} leave unanswered? || List the unresolved questions in this. || What is still open in this {obj}?
extract | decisions | List the decisions made in this {obj}. || What was decided here? || Extract the decisions from this {obj}. || Which decisions does this {obj} record?
tone | formal | Rewrite this more formally. || Make this {obj} sound more formal. || Make this more professional. || Give this {obj} a more formal tone. || Rephrase this in a formal register.
tone | casual | Rewrite this more casually. || Make this {obj} sound more relaxed. || Make this friendlier and less stiff. || Give this {obj} a casual tone. || Rephrase this in a more informal way.
tone | sentiment | Is this {obj} positive or negative? || What is the sentiment of this {obj}? || Classify the tone of this as positive, negative or neutral. || Does this {obj} sound happy or unhappy?
length | shorten | Shorten this {obj}. || Make this shorter. || Cut this {obj} down. || Trim this to half its length. || Condense this {obj}.
length | expand | Expand this {obj}. || Make this longer and more detailed. || Flesh this {obj} out. || Add more detail to this {obj}.
edit | proofread | Proofread this {obj}. || Fix the grammar and spelling in this. || Check this {obj} for typos. || Correct any mistakes in this {obj}. || Clean up the spelling and grammar here.
edit | simplify | Simplify this {obj}. || Rewrite this in plain language. || Make this {obj} easier to understand. || Explain this {obj} in simpler words.
understand | explain | Explain this {obj}. || What does this {obj} mean? || Help me understand this. || Walk me through what this {obj} says.
understand | risks | What are the risks here? || List the risks in this {obj}. || What could go wrong, based on this {obj}? || Which risks does this {obj} raise?
understand | critique | What is weak about this {obj}? || Critique this {obj}. || Point out the flaws in this. || Give me critical feedback on this {obj}.
understand | quiz | Write three quiz questions about this {obj}. || Make a short quiz from this. || Turn this {obj} into quiz questions.
translate | french | Can you translate the {obj} into French? || Put this {obj} in French. || What is this {obj} in French? || Give me a French version of this.
translate | german | Can you translate the {obj} into German? || Put this {obj} in German. || What is this {obj} in German? || Give me a German version of this.
translate | spanish | Can you translate the {obj} into Spanish? || Put this {obj} in Spanish. || What is this {obj} in Spanish? || Give me a Spanish version of this.
publish | tweet | Write a tweet about this {obj}. || Turn this into a tweet. || Draft a post for X about this {obj}. || Make this {obj} a tweet.
publish | linkedin | Write a LinkedIn post about this {obj}. || Turn this into a LinkedIn update. || Draft a LinkedIn post from this {obj}.
publish | status | Turn this {obj} into a status update. || Write a status update from this. || Make a team status update out of this {obj}.
publish | faq | Write an FAQ from this {obj}. || Turn this into frequently asked questions. || Make an FAQ section out of this {obj}.
"""
    return parse_tasks(spec)


TASKS = _tasks()
# Eighty more tasks in sixteen groups (summaries for an audience or a length, replies, rewrites,
# conversions, checks, code, data, meetings, support, sales ...), trained on when asked.
MORE_TASKS_FILE = Path(__file__).parent / "data" / "instruction_tasks_more.txt"


def more_tasks() -> list[Task]:
    return parse_tasks(MORE_TASKS_FILE.read_text(encoding="utf-8"))


# What the text is, as an instruction names it; one noun serves both prompts of a pair.
OBJECTS = ("text", "passage", "paragraph", "note", "message", "email", "article", "update", "document")


def in_validation(task: Task) -> bool:
    """About a quarter of the tasks are held out, chosen by a stable hash of their id."""
    return hashlib.sha256(f"instruction:{task.id}".encode()).digest()[0] % 4 == 0


# Where the instructions stand, drawn one per pair: both alone, both before one pasted text, both
# after it, or on different sides of it ("Summarise this: TEXT" / "TEXT Give me a summary.").
PLACEMENTS = ("alone", "alone", "before", "after")
ACROSS = ("across",)


class InstructionPairs:
    """Draws labelled instruction pairs from a set of tasks and texts; a seed gives the same pairs."""

    def __init__(
        self,
        tasks: Sequence[Task],
        texts: Sequence[str],
        seed: int,
        placements: Sequence[str] = PLACEMENTS,
    ) -> None:
        self.tasks = list(tasks)
        self.texts = [text for text in texts if 30 <= len(text) <= 400]
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
        self.placements = tuple(placements)

    def _say(self, phrasing: str, obj: str, strength: float) -> str:
        return noise(phrasing.replace("{obj}", obj), self.rng, strength)

    def _text(self) -> str:
        """A pasted text: one to five sentences of prose."""
        return " ".join(self.rng.sample(self.texts, self.rng.randint(1, 5)))

    def _over_text(self, first: str, second: str) -> tuple[str, str, str]:
        """The two instructions alone, or both before, both after or on two sides of one text."""
        where = self.rng.choice(self.placements) if self.texts else "alone"
        if where == "alone":
            return first, second, where
        text = self._text()
        if where == "across":
            # The first before the text, the second after it (`_ordered` then swaps half of them).
            joiner = self.rng.choice((" ", "\n\n", ":\n"))
            lead = first.rstrip(".?!") if joiner.startswith(":") else first
            return lead + joiner + text, text + self.rng.choice((" ", "\n\n")) + second, where
        if where == "before":
            joiner = self.rng.choice((" ", "\n\n", ":\n"))
            if joiner.startswith(":"):
                first, second = first.rstrip(".?!"), second.rstrip(".?!")
            return first + joiner + text, second + joiner + text, where
        joiner = self.rng.choice((" ", "\n\n"))
        return text + joiner + first, text + joiner + second, where

    def positive(self) -> Pair:
        task = self.rng.choice(self.tasks)
        # One phrasing twice a fifth of the time: a request retyped, with other noise.
        if self.rng.random() < 0.2:
            first_phrasing = second_phrasing = self.rng.choice(task.phrasings)
        else:
            first_phrasing, second_phrasing = self.rng.sample(task.phrasings, 2)
        obj = self.rng.choice(OBJECTS)
        first, second, where = self._over_text(
            self._say(first_phrasing, obj, 0.3), self._say(second_phrasing, obj, 0.6)
        )
        return Pair(*self._ordered(first, second), 1, f"reworded, {where}", task.id)

    def negative(self) -> Pair:
        task = self.rng.choice(self.tasks)
        siblings = [other for other in self.tasks if other.group == task.group and other.id != task.id]
        others = [other for other in self.tasks if other.id != task.id]
        other = self.rng.choice(siblings if siblings and self.rng.random() < 0.5 else others)
        obj = self.rng.choice(OBJECTS)
        first, second, where = self._over_text(
            self._say(self.rng.choice(task.phrasings), obj, 0.3),
            self._say(self.rng.choice(other.phrasings), obj, 0.6),
        )
        kind = "sibling" if other.group == task.group else "other"
        return Pair(*self._ordered(first, second), 0, f"{kind}, {where}", task.id)

    def _ordered(self, first: str, second: str) -> tuple[str, str]:
        return (first, second) if self.rng.random() < 0.5 else (second, first)

    def pairs(self, count: int) -> list[Pair]:
        pairs = [self.positive() if index % 2 == 0 else self.negative() for index in range(count)]
        return [pair for pair in pairs if pair.first.casefold() != pair.second.casefold() or pair.label]


def instruction_pairs(
    count: int,
    texts: Sequence[str],
    seed: int,
    *,
    validation: bool,
    placements: Sequence[str] = PLACEMENTS,
    more: bool = False,
) -> list[Pair]:
    """`count` pairs (half the same request) of the training or the held-out tasks, over `texts`,
    placed as `placements` draws; with `more`, of MORE_TASKS_FILE's tasks too."""
    tasks = [task for task in [*TASKS, *(more_tasks() if more else ())] if in_validation(task) == validation]
    return InstructionPairs(tasks, texts, seed, placements).pairs(count)
