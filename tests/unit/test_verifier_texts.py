"""What the verifier reads of two prompts too long to be read whole (`compared_texts`), and which
candidates it reads first when the embedder cannot tell them apart."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from app.cache.repository import StoredEntry
from app.cache.service import TIED_FETCH, nearest_or_tied
from app.cache.verifier import Candidate, VerifierPolicy, build_verifier
from app.cache.verifier.texts import (
    MODEL_INPUT_CHARS,
    PAIR_CONTEXT_CHARS,
    STORED_CHARS_READ,
    Compared,
    compared_texts,
    read_candidates,
    word_nearest_first,
)

VOCABULARY = [
    "the",
    "report",
    "from",
    "to",
    "Berlin",
    "Lisbon",
    "3,000",
    "4.5",
    "not",
    "owes",
    "us",
    "Q3",
    "é",
    "日本",
    "?",
    "!",
    ".",
    "A" * 1100,  # a blob: no space to cut at for longer than the shared text kept
]
WORDS = st.sampled_from(VOCABULARY)
# A long text of words (900 to 1,800 of them: mostly 4,000 to 8,000 characters), and edits
# anywhere in it: a prompt and a look-alike or rewording of it.
text = (
    st.integers(min_value=0)
    .map(random.Random)
    .map(lambda rng: [rng.choice(VOCABULARY[:-1]) for _ in range(rng.randint(900, 1800))])
)
edit = st.tuples(st.integers(min_value=0), st.sampled_from(["insert", "replace", "delete", "glue"]), WORDS)


# A long text, normalised as the service hands it.
LONG_TEXT = ("the notes of the review, " * 200).strip()


class RecordingScorer:
    """Refuses every pair, and records them."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.pairs += pairs
        return [0.0] * len(pairs)


def _cut(query: str, stored: str) -> tuple[str, str]:
    compared = compared_texts(query, stored)
    assert compared is not None
    return compared.query, compared.stored


def _long_candidate(query: str, stored: str, similarity: float) -> Candidate:
    """A stored prompt as the service hands it to the verifier beside a long new prompt."""
    query_part, stored_part = _cut(query, stored)
    return Candidate(entry_id=uuid.uuid4(), prompt=stored_part, similarity=similarity, query=query_part)


def edited(words: list[str], edits: list[tuple[int, str, str]]) -> str:
    words = list(words)
    for at, how, word in edits:
        index = at % (len(words) + 1)
        if how == "insert" or index == len(words):
            words.insert(index, word)
        elif how == "replace":
            words[index] = word
        elif how == "delete":
            del words[index]
        else:  # a word changed inside: "report" -> "reports", "3,000" -> "3,0001"
            words[index] += word[:1]
    return " ".join(words)


@settings(max_examples=200, deadline=None)
@given(text, st.lists(edit, max_size=3), st.lists(edit, max_size=3))
def test_what_is_left_out_is_the_same_in_both_prompts(
    words: list[str], query_edits: list[tuple[int, str, str]], stored_edits: list[tuple[int, str, str]]
) -> None:
    query, stored = edited(words, query_edits), edited(words, stored_edits)
    compared = compared_texts(query, stored)
    if compared is None:
        # Not read: the difference does not fit, and the texts past what the models read differ.
        assert query[MODEL_INPUT_CHARS:] != stored[MODEL_INPUT_CHARS:]
        return
    query_part, stored_part = compared.query, compared.stored
    assert len(query_part) <= MODEL_INPUT_CHARS
    assert len(stored_part) <= MODEL_INPUT_CHARS
    # Both are cut at the same place from the start, and the rest is one shared end: the parts
    # stand at one offset of both texts with the same text before and after them (where a part
    # recurs, as in two equal texts, at one of its places).
    fits = [
        start
        for start in range(len(query) - len(query_part) + 1)
        if query.startswith(query_part, start)
        and query[:start] == stored[:start]
        and stored.startswith(stored_part, start)
        and stored[start + len(stored_part) :] == query[start + len(query_part) :]
    ]
    assert fits
    # Nothing the two differ in is left out, and where the texts stop short, the stage that
    # takes closing punctuation for no change knows it.
    agreeing = [start for start in fits if (start + len(query_part) < len(query)) == compared.cut_short]
    assert agreeing
    start = agreeing[0]
    before, after = query[:start], query[start + len(query_part) :]
    read_as_before = query[MODEL_INPUT_CHARS:] == stored[MODEL_INPUT_CHARS:] and start == 0
    if read_as_before and query_part == query[:MODEL_INPUT_CHARS]:
        assert stored_part == stored[:MODEL_INPUT_CHARS]
    else:  # cut where they differ: at a space, so no word or number is split
        assert before == "" or before.endswith(" ")
        assert after == "" or after.startswith(" ")


def test_short_prompts_are_read_whole() -> None:
    query, stored = "Summarise the notes.", "Summarize the notes below, please."
    assert compared_texts(query, stored) == Compared(query, stored)
    at_the_limit = "word " * (MODEL_INPUT_CHARS // 5 - 1) + "word" + "!" * (MODEL_INPUT_CHARS % 5 + 1)
    assert len(at_the_limit) == MODEL_INPUT_CHARS
    assert compared_texts(at_the_limit, at_the_limit[:-1]) == Compared(at_the_limit, at_the_limit[:-1])
    assert compared_texts(at_the_limit, at_the_limit + "!") != Compared(at_the_limit, at_the_limit + "!")


def test_long_prompts_are_cut_to_where_they_differ_with_the_text_around_it() -> None:
    text = " ".join(f"Line {n} of the incident log says the queue was at {n * 7} items." for n in range(200))
    query, stored = f"Summarise this log. {text}", f"Give me a summary of this log. {text}"
    query_part, stored_part = _cut(query, stored)
    assert query_part.startswith("Summarise this log. Line 0")
    assert stored_part.startswith("Give me a summary of this log. Line 0")
    assert query_part[len("Summarise") :] == stored_part[len("Give me a summary of") :]
    assert PAIR_CONTEXT_CHARS - 80 <= len(query_part) <= PAIR_CONTEXT_CHARS + len("Summarise this ")
    # The same after the text: the request and the end of the text before it.
    query_part, stored_part = _cut(f"{text} What was the peak?", f"{text} When was it quietest?")
    assert query_part.endswith("items. What was the peak?")
    assert stored_part.endswith("items. When was it quietest?")
    assert query_part[: -len("What was the peak?")] == stored_part[: -len("When was it quietest?")]


def test_prompts_that_differ_beyond_what_the_models_read_are_not_compared() -> None:
    first = " ".join(f"item {n}" for n in range(1000))
    second = " ".join(f"item {n + 1}" for n in range(1000))
    assert compared_texts(first, second) is None
    # A long prompt and a short one share too little to be read side by side.
    assert compared_texts(first, "item 0 item 1") is None
    # One word longer than the models read cannot be cut at a space.
    assert compared_texts("x" * 5000, "x" * 5001) is None


def test_long_differences_keep_less_of_the_shared_text_and_the_rest_is_read_as_before() -> None:
    text = " ".join(f"w{n}" for n in range(1500))
    # Differences 3,700 characters apart: the shared text around them shrinks to fit.
    query, stored = f"Hello, {text}", f"Hi, {text.replace('w700 ', 'w700x ')}"
    query_part, stored_part = _cut(query, stored)
    assert query_part.startswith("Hello, w0 ")
    assert "w700 " in query_part
    assert "w700x " in stored_part
    assert max(len(query_part), len(stored_part)) <= MODEL_INPUT_CHARS
    # No space to cut at (Chinese, Japanese): two prompts whose text past what the models read is
    # the same are read up to there, as they always were, and stop short.
    document = "会议纪要：" + "本季度的迁移工作比计划晚了两周。" * 400
    compared = compared_texts(f"请总结以下内容。{document}", f"请翻译以下内容。{document}")
    assert compared is not None
    assert compared.cut_short
    assert compared.query.startswith("请总结")
    assert len(compared.query) == MODEL_INPUT_CHARS


def test_a_cut_that_stops_short_never_passes_for_the_prompt_but_for_closing_punctuation() -> None:
    text = " ".join(f"w{n}" for n in range(1500))
    blob = "A" * 2000  # no space after the difference: the cut ends where the blob starts
    compared = compared_texts(
        f"{text} Is the tone formal? {blob} end", f"{text} Is the tone formal! {blob} end"
    )
    assert compared is not None
    assert compared.cut_short
    candidate = Candidate(uuid.uuid4(), compared.stored, 0.99, query=compared.query, cut_short=True)
    scorer = RecordingScorer()
    verdict = build_verifier(scorer).decide(compared.query, [candidate], VerifierPolicy())
    # The model reads the pair (and refuses it here): "?" against "!" mid-prompt is a change.
    assert scorer.pairs == [(compared.query, compared.stored)]
    assert not verdict.hit


def test_cuts_read_as_before_never_pass_for_the_prompt_but_for_spacing() -> None:
    # Read up to the 4,096th character (the difference is too long to cut), the query's text ends
    # in a space the stored one does not have there: "no table" against "notable". The "ß" of
    # the opening folds to "ss" and lines the two up again.
    filler = " ".join(["the report of the week"] * 200)[:4084] + "x"
    query = f"Straße {filler} no table in the appendix, please summarise it."
    stored = f"Strasse {filler} notable in the appendix, please summarise it."
    compared = compared_texts(query, stored)
    assert compared is not None
    assert compared.cut_short
    assert compared.query.endswith(" no ")
    candidate = Candidate(uuid.uuid4(), compared.stored, 0.99, query=compared.query, cut_short=True)
    scorer = RecordingScorer()
    build_verifier(scorer).decide(compared.query, [candidate], VerifierPolicy())
    assert scorer.pairs == [(compared.query, compared.stored)]


def test_among_candidates_the_embedder_cannot_tell_apart_the_nearest_in_words_comes_first() -> None:
    text = LONG_TEXT
    query = f"{text} What are the action items here?"

    # Within the embedder's noise of each other (`TIE`).
    reply, risks, items = (
        _long_candidate(query, f"{text} {request}", similarity)
        for request, similarity in (
            ("Draft a reply to this.", 0.999),
            ("What are the main risks?", 0.998),
            ("List the action items.", 0.995),
        )
    )
    assert word_nearest_first(query, [reply, risks, items])[0] == items
    # Cosine first: the words only order what the embedder could not.
    farther = replace(items, similarity=0.95)
    assert word_nearest_first(query, [farther, reply]) == [reply, farther]


def test_a_short_prompts_candidates_keep_the_cosines_order() -> None:
    # The most words shared would put the swap first: its words are the prompt's own.
    paraphrase = Candidate(entry_id=uuid.uuid4(), prompt="5 kilometres in miles", similarity=0.951)
    swap = Candidate(entry_id=uuid.uuid4(), prompt="convert 5 miles to km", similarity=0.95)
    assert word_nearest_first("convert 5 km to miles", [swap, paraphrase]) == [paraphrase, swap]


def test_a_swap_of_two_words_is_not_nearer_in_words_than_a_rewording() -> None:
    text = LONG_TEXT
    query = f"{text} How do I migrate the database from Postgres to MySQL?"

    swap = _long_candidate(query, f"{text} How do I migrate the database from MySQL to Postgres?", 0.999)
    reworded = _long_candidate(
        query, f"{text} How do I move the database from Postgres over to MySQL?", 0.995
    )
    assert word_nearest_first(query, [swap, reworded]) == [reworded, swap]


def test_a_lookup_reads_its_nearest_entry_however_long_and_the_others_within_a_bound() -> None:
    # Two tied entries of about 730,000 characters each: the text read of both would pass the bound.
    text = " ".join(["the log of the night"] * (STORED_CHARS_READ // 30))
    query = f"{text} List the action items."
    reply = (uuid.uuid4(), f"{text}\n\nDraft a reply to this.", 0.999)
    items = (uuid.uuid4(), f"{text}\n\nList the action items!", 0.998)

    assert [c.entry_id for c in read_candidates(query, [items, reply], top_k=5)] == [reply[0]]
    both = read_candidates(query, [items, reply], top_k=5, max_chars=2 * STORED_CHARS_READ)
    # Read, the entry that asks the same comes first; each stored prompt is read normalised and
    # cut to where it differs from the new one.
    assert [c.entry_id for c in both] == [items[0], reply[0]]
    assert both[0].prompt.endswith("night List the action items!")
    assert len(both[0].prompt) <= MODEL_INPUT_CHARS


def test_tied_entries_are_fetched_again_only_when_a_lookup_would_read_more_of_them() -> None:
    def stored(prompt: str, similarity: float) -> StoredEntry:
        return StoredEntry(
            id=uuid.uuid4(),
            prompt=prompt,
            model="m",
            namespace="default",
            response={},
            prompt_tokens=1,
            completion_tokens=1,
            created_at=datetime.now(UTC),
            expires_at=None,
            hit_count=0,
            flagged=False,
            similarity=similarity,
        )

    def nearest(prompt_length: int, spread: float) -> list[int]:
        asked: list[int] = []

        async def fetch(k: int) -> list[StoredEntry]:
            asked.append(k)
            return [stored("x" * prompt_length, 0.99 - spread * i / k) for i in range(k)]

        asyncio.run(nearest_or_tied(fetch, 5, LONG_TEXT))
        return asked

    assert nearest(5_000, spread=0.001) == [5, 5 * TIED_FETCH]  # tied: more of them
    assert nearest(5_000, spread=0.05) == [5]  # the embedder told them apart
    # Five tied prompts that already hold more text than a lookup reads: no more are fetched.
    assert nearest(STORED_CHARS_READ // 4, spread=0.001) == [5]
