"""What the verifier reads of two prompts, and which candidates it reads first.

Both sides of a pair are normalised text as the models read it (`app.cache.scope.read_text`). A prompt longer
than the models read is cut before any stage sees it: two such prompts are both cut to where
they differ (`compared_texts`). And when the embedder cannot tell candidates apart (it reads the
first 256 tokens of a prompt, so ten requests after one long text embed alike), the models read
those nearest the new prompt in words first (`word_nearest_first`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Final

from app.cache.scope import indentation, normalise_and_spell, read_text
from app.cache.verifier.base import Candidate, words

# The embedder reads at most 256 tokens of a prompt; with whitespace collapsed (normalise_prompt)
# that many take far fewer characters, so a prompt is cut here before any model input is built: a
# 100,000-character prompt costs what a 700-word one does, whatever the tokenizers do with it.
MODEL_INPUT_CHARS: Final = 4096
# Two prompts too long to be read whole are read where they differ, with at most this many
# characters of the text they share on either side of the difference.
PAIR_CONTEXT_CHARS: Final = 1024
# A prompt this long may run past the 256 tokens the embedder reads (English takes 4 to 5
# characters a token): its nearest entries may tie, the embedder having read only the text they
# share.
LONG_PROMPT_CHARS: Final = 1024
# Cosines this close to the nearest are within the embedder's own noise: the same text embedded
# beside others moves by less (int8 activations are scaled per batch; test_onnx_models.py).
TIE: Final = 0.01
# The tie is broken on the first this many words of each differing part: a request, not a text.
WORDS_COMPARED: Final = 64
# Characters of stored prompts one lookup normalises and compares, its nearest entry's included
# (which is always read, however long): as much text as one request body carries by default.
# Normalising costs about 0.15 ms a thousand characters of prose, so twenty tied entries of a
# megabyte each would cost about three seconds.
STORED_CHARS_READ: Final = 1_048_576


def model_text(prompt: str) -> str:
    """What the models read of a normalised prompt on its own (`MODEL_INPUT_CHARS`)."""
    return prompt[:MODEL_INPUT_CHARS]


@dataclass(frozen=True, slots=True)
class Compared:
    """What the verifier reads of a pair: the new prompt's text and the stored one's."""

    query: str
    stored: str
    # The texts stop before the prompts end (a cut): what closes them is not the prompts' own
    # closing punctuation.
    cut_short: bool = False


def compared_texts(query: str, stored: str) -> Compared | None:
    """The two normalised prompts as the verifier reads them: whole when both fit
    MODEL_INPUT_CHARS. Otherwise the part where they differ, widened to whole words, with up to
    PAIR_CONTEXT_CHARS of the text they share before and after it (less when the difference is
    long), cut at a space; the text left out is the same in both, so no difference is hidden.
    When the difference does not fit, or cannot be cut at a space, two prompts whose text past
    MODEL_INPUT_CHARS is the same are read up to there. None otherwise: the pair is not read,
    and the candidate is not served."""
    if len(query) <= MODEL_INPUT_CHARS and len(stored) <= MODEL_INPUT_CHARS:
        return Compared(query, stored)
    start = shared_start(query, stored)
    end = shared_end(query, stored, min(len(query), len(stored)) - start)
    # Whole words: from the space before the first difference to the space after the last one.
    left = query.rfind(" ", 0, start) + 1
    right = query.find(" ", len(query) - end)
    right = len(query) if right < 0 else right
    longest = max(right, len(stored) - (len(query) - right)) - left
    if longest > MODEL_INPUT_CHARS:
        if query[MODEL_INPUT_CHARS:] == stored[MODEL_INPUT_CHARS:]:
            return Compared(query[:MODEL_INPUT_CHARS], stored[:MODEL_INPUT_CHARS], cut_short=True)
        return None
    # The shared text around the difference: as much as fits, up to PAIR_CONTEXT_CHARS a side.
    context = min(PAIR_CONTEXT_CHARS, (MODEL_INPUT_CHARS - longest) // 2)
    first = 0 if left <= context else _after_space(query, left - context, left)
    last = len(query) if right + context >= len(query) else _before_space(query, right, right + context)
    # query[:first] and query[last:] are the start and end both prompts share.
    return Compared(
        query[first:last], stored[first : len(stored) - (len(query) - last)], cut_short=last < len(query)
    )


def read_candidates(
    query: str,
    neighbours: Iterable[tuple[uuid.UUID, str, float]],
    top_k: int,
    *,
    layout: tuple[str, ...] = (),
    spellings: tuple[str, ...] = (),
    max_chars: int = STORED_CHARS_READ,
) -> list[Candidate]:
    """The candidates the verifier reads for a new prompt (`query`, its `read_text`; `layout`, the
    `indentation` of its lines), of the nearest stored entries (id, prompt as stored, cosine):
    each stored prompt normalised and cut with the query (`compared_texts`; a pair that cannot be
    read is left out), nearest in words first among ties (`word_nearest_first`), at most top_k
    of them. A stored prompt whose lines are indented otherwise is left out: the models read no
    layout, and in code or YAML it is meaning; so is one that spells a word with look-alike
    letters otherwise (`spellings`, `normalise_and_spell`): the models read both as one word. The nearest entry is always read; the others,
    nearest first, while the stored text read stays within `max_chars`."""
    model_query = model_text(query)
    candidates: list[Candidate] = []
    read = 0
    for entry_id, prompt, similarity in sorted(neighbours, key=lambda n: n[2], reverse=True):
        read += len(prompt)
        if read > max_chars and read > len(prompt):
            break
        stored, spelt = normalise_and_spell(prompt)
        if indentation(stored) != layout or spelt != spellings:
            continue
        texts = compared_texts(query, read_text(stored))
        if texts is not None:
            own = None if texts.query == model_query else texts.query
            candidates.append(
                Candidate(entry_id, texts.stored, similarity, query=own, cut_short=texts.cut_short)
            )
    return word_nearest_first(model_query, candidates)[:top_k]


def tied(query: str, nearest: float, other: float) -> bool:
    """A long prompt's candidate at cosine `other` ties with its nearest, at `nearest`: the
    embedder could not tell the two apart."""
    return len(query) >= LONG_PROMPT_CHARS and other >= nearest - TIE


def word_nearest_first(query: str, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Nearest first by cosine; but a long prompt's candidates that tie with the nearest
    (`tied`) come first, the one whose words where it differs from the prompt are most alike
    theirs, in order, first (`_words_alike`). Short prompts keep the cosine's order: the
    embedder read the whole of them."""
    ordered = sorted(candidates, key=lambda c: c.similarity, reverse=True)
    if len(ordered) < 2 or not tied(query, ordered[0].similarity, ordered[1].similarity):
        return ordered
    ties = [c for c in ordered if tied(query, ordered[0].similarity, c.similarity)]
    return (
        sorted(ties, key=lambda c: _words_alike(c.beside(query), c.prompt), reverse=True)
        + ordered[len(ties) :]
    )


def _words_alike(first: str, second: str) -> float:
    """How alike, word by word and in order, the parts the two texts do not share at their start
    and end are (their first WORDS_COMPARED words). In order: a look-alike that swaps two words
    ("from Berlin to Lisbon" / "from Lisbon to Berlin") keeps every word but not their order."""
    start = shared_start(first, second)
    end = shared_end(first, second, min(len(first), len(second)) - start)
    words_a, words_b = (
        words(text)[:WORDS_COMPARED]
        for text in (first[start : len(first) - end], second[start : len(second) - end])
    )
    return SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()


def shared_start(first: str, second: str) -> int:
    """How many characters the two texts share at their start (a binary search over slices, each
    compared in C: linear in the texts' length, with no Python step per character)."""
    low, high = 0, min(len(first), len(second))
    while low < high:
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def shared_end(first: str, second: str, at_most: int) -> int:
    """How many characters, up to `at_most`, the two texts share at their end."""
    low, high = 0, at_most
    while low < high:
        middle = (low + high + 1) // 2
        if first[len(first) - middle :] == second[len(second) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low


def _after_space(text: str, start: int, stop: int) -> int:
    """Just after the first space in text[start:stop]; `stop` when there is none."""
    space = text.find(" ", start, stop)
    return stop if space < 0 else space + 1


def _before_space(text: str, start: int, stop: int) -> int:
    """The last space in text[start:stop]; `start` when there is none."""
    space = text.rfind(" ", start, stop)
    return start if space < 0 else space
