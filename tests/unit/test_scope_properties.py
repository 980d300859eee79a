"""Properties of prompt normalisation and the scope fingerprint, over generated inputs."""

from __future__ import annotations

import asyncio
import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cache.scope import (
    INLINE_CHARS,
    SCOPE_PARAMETERS,
    UNSCOPED_PARAMETERS,
    indentation,
    normalise_and_spell,
    normalise_prompt,
    read_text,
    scope_of,
    scope_of_request,
)
from app.errors import PayloadTooLarge, Unprocessable

# Prompts with something visible: one of invisible characters only is refused as empty.
text = st.text(min_size=1, max_size=80).filter(lambda t: normalise_prompt(t))
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=40)}
    ),
    max_size=4,
)


@given(text)
def test_normalising_twice_changes_nothing(prompt: str) -> None:
    # (Runs of 30 combining marks and more are cut for speed, and may come out otherwise the
    # second time; a text of 80 characters drawn at random holds none.)
    once = normalise_prompt(prompt)
    assert normalise_prompt(once) == once


@given(text, st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " \n\t \n", "\u2028"]))
def test_whitespace_runs_and_ends_do_not_matter(prompt: str, gap: str) -> None:
    spaced = gap + gap.join(prompt.split()) + gap
    assert normalise_prompt(spaced) == normalise_prompt(" ".join(prompt.split()))


@pytest.mark.parametrize(
    ("accented", "flat"),
    [("\n0\n¸\n", "0 ¸"), ("x\n´y z", "x ´y z")],
)
def test_a_spacing_accent_that_starts_a_line_is_not_an_indentation(accented: str, flat: str) -> None:
    """NFKC spells "¸" as a space and a cedilla: after a line break that space is the accent's."""
    assert normalise_prompt(accented) == normalise_prompt(flat)
    assert indentation(normalise_prompt(accented)) == ()


@pytest.mark.parametrize("indent", ["    ", "\t", "  "])
def test_a_real_indentation_before_an_accent_is_kept(indent: str) -> None:
    indented = normalise_prompt(f"a\n{indent}¸b")
    assert indented != normalise_prompt("a ¸b")
    assert indentation(indented)


@given(text, st.sampled_from(["\n    ", "\n\t", " \n\n  "]))
def test_a_lines_indentation_matters_and_is_not_read_by_the_models(prompt: str, indent: str) -> None:
    # Words of characters the normalisation drops (U+E0000, say) make blank lines: not layout.
    words = [word for word in prompt.split() if normalise_prompt(word)]
    flat, indented = " ".join(words), indent.join(words)
    if len(words) > 1:
        assert normalise_prompt(indented) != normalise_prompt(flat)
    assert read_text(normalise_prompt(indented)) == normalise_prompt(flat)


def test_code_indented_otherwise_is_another_prompt() -> None:
    ask = "What does this program print?\n\nfor i in range(3):\n    print(i)\n{}print('done')"
    after, inside = normalise_prompt(ask.format("")), normalise_prompt(ask.format("    "))
    assert after != inside
    assert indentation(after) == ("    ",)
    assert indentation(inside) == ("    ", "    ")
    # Trailing spaces, blank lines and line endings are not layout.
    assert normalise_prompt(ask.format("").replace("\n", "  \r\n\r\n")) == after


@given(text)
def test_unicode_composition_does_not_matter(prompt: str) -> None:
    assert normalise_prompt(unicodedata.normalize("NFD", prompt)) == normalise_prompt(prompt)


@given(st.text(alphabet="abcdefghij", min_size=1, max_size=20))
def test_case_is_kept(word: str) -> None:
    # Case can matter (identifiers, acronyms): "Set" and "SET" are different exact prompts.
    assert normalise_prompt(word.upper()) != normalise_prompt(word)


@given(messages, text, text)
def test_the_scope_ignores_the_last_turn_and_the_exact_hash_does_not(context: list, a: str, b: str) -> None:  # type: ignore[type-arg]
    first = scope_of("m", [*context, {"role": "user", "content": a}])
    second = scope_of("m", [*context, {"role": "user", "content": b}])
    assert first.scope_hash == second.scope_hash
    assert (first.exact_hash == second.exact_hash) == (normalise_prompt(a) == normalise_prompt(b))


@given(messages, text, st.text(min_size=1, max_size=20))
def test_any_change_to_the_context_or_model_changes_the_scope(context: list, prompt: str, extra: str) -> None:  # type: ignore[type-arg]
    base = scope_of("m", [*context, {"role": "user", "content": prompt}])
    longer = scope_of(
        "m", [*context, {"role": "system", "content": extra}, {"role": "user", "content": prompt}]
    )
    other_model = scope_of("m2", [*context, {"role": "user", "content": prompt}])
    assert base.scope_hash != longer.scope_hash
    assert base.scope_hash != other_model.scope_hash


@given(text, st.sampled_from(SCOPE_PARAMETERS), st.integers(min_value=2, max_value=5))
def test_every_output_shaping_parameter_is_in_the_scope(prompt: str, parameter: str, value: int) -> None:
    plain = scope_of("m", [{"role": "user", "content": prompt}])
    shaped = scope_of("m", [{"role": "user", "content": prompt}], {parameter: value})
    assert plain.scope_hash != shaped.scope_hash


@pytest.mark.parametrize(
    ("sent", "same"),
    [
        ({"n": 1}, True),
        ({"n": 1, "logprobs": False}, True),
        # An upstream of another kind may fill in penalties of its own for a request without them.
        ({"presence_penalty": 0}, False),
        ({"frequency_penalty": 0.0}, False),
        ({"n": 2}, False),
        ({"n": True}, False),
        ({"logprobs": 0}, False),
        ({"presence_penalty": 0.1}, False),
        ({"logprobs": True}, False),
    ],
)
def test_a_parameter_sent_at_the_apis_default_is_the_request_without_it(sent: dict, same: bool) -> None:  # type: ignore[type-arg]
    """One client sends `"n": 1`, another leaves it out: the same answer, one entry."""
    plain = scope_of("m", [{"role": "user", "content": "Summarise the incident report."}])
    other = scope_of("m", [{"role": "user", "content": "Summarise the incident report."}], sent)
    assert (plain.scope_hash == other.scope_hash) is same


@given(text, st.integers(min_value=-(2**50), max_value=2**50))
def test_a_whole_number_written_with_a_fraction_is_the_same_number(prompt: str, number: int) -> None:
    def scoped(value: object) -> bytes:
        schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": value}}}
        return scope_of(
            "m", [{"role": "user", "content": prompt}], {"top_k": value, "tools": [schema]}
        ).scope_hash

    assert scoped(number) == scoped(float(number))
    assert scoped(number) != scoped(number + 0.5)
    assert scoped(1) != scoped(True)


@given(text, st.floats(min_value=0, max_value=2), st.booleans())
def test_temperature_and_stream_are_not_in_the_scope(prompt: str, temperature: float, stream: bool) -> None:
    plain = scope_of("m", [{"role": "user", "content": prompt}])
    other = scope_of(
        "m", [{"role": "user", "content": prompt}], {"temperature": temperature, "stream": stream}
    )
    assert plain.scope_hash == other.scope_hash
    assert plain.exact_hash == other.exact_hash


@given(
    text,
    st.text(min_size=1, max_size=20).filter(lambda name: name not in UNSCOPED_PARAMETERS),
    st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=3), st.booleans()),
)
def test_a_field_the_cache_does_not_know_is_in_the_scope(prompt: str, name: str, value: object) -> None:
    """An upstream of another kind may read a field OpenAI has not (vLLM's guided_json, top_k):
    a request that sends one never shares entries with one that sends another value, or none."""
    plain = scope_of("m", [{"role": "user", "content": prompt}])
    other = scope_of("m", [{"role": "user", "content": prompt}], {name: value})
    assert plain.scope_hash != other.scope_hash


@given(
    text,
    st.sampled_from(
        sorted(UNSCOPED_PARAMETERS - {"model", "messages", "max_tokens", "max_completion_tokens"})
    ),
)
def test_delivery_and_bookkeeping_fields_are_not_in_the_scope(prompt: str, name: str) -> None:
    plain = scope_of("m", [{"role": "user", "content": prompt}])
    assert scope_of("m", [{"role": "user", "content": prompt}], {name: "x"}).scope_hash == plain.scope_hash


@given(text)
def test_each_output_limit_has_its_own_entries(prompt: str) -> None:
    def scope(limit: int | None) -> bytes:
        return scope_of("m", [{"role": "user", "content": prompt}], {"max_tokens": limit}).scope_hash

    # An answer cut at 200 tokens is not the answer to 256; one of 250 is too long for 200.
    assert scope(200) != scope(256)
    assert scope(200) != scope(2000)
    assert scope(None) != scope(100)
    assert scope(100) == scope(100)
    # max_completion_tokens wins; null is no limit, and leaves max_tokens the limit.
    newer = {"max_tokens": 5000, "max_completion_tokens": 100}
    null = {"max_tokens": 5, "max_completion_tokens": None}
    assert scope_of("m", [{"role": "user", "content": prompt}], newer).scope_hash == scope(100)
    assert scope_of("m", [{"role": "user", "content": prompt}], null).scope_hash == scope(5)


@given(text, st.lists(st.sampled_from("\u200b\u200c\u200d\u00ad\u2060\ufeff\u202e\u061c\ufe0f"), max_size=5))
def test_invisible_characters_do_not_matter(prompt: str, invisible: list[str]) -> None:
    sprinkled = "".join(invisible) + prompt[:1] + "".join(invisible) + prompt[1:]
    assert normalise_prompt(sprinkled) == normalise_prompt(prompt)
    assert (
        scope_of("m", [{"role": "user", "content": sprinkled}]).exact_hash
        == scope_of("m", [{"role": "user", "content": prompt}]).exact_hash
    )


def test_compatibility_forms_fold_and_a_prompt_of_invisible_characters_is_empty() -> None:
    assert normalise_prompt("\uff33hould I s\u200bell \ufb01ne stock?") == "Should I sell fine stock?"
    with pytest.raises(Unprocessable):
        scope_of("m", [{"role": "user", "content": "\u200b\u200c\u00ad \ufeff"}])


def test_folding_keeps_what_changes_the_meaning() -> None:
    # A superscript is a power, not a digit: "2³" is 8, "23" twenty-three. Subscripts fold.
    assert normalise_prompt("What is 2³?") == "What is 2^3?" != normalise_prompt("What is 23?")
    assert normalise_prompt("Simplify x² + x") == normalise_prompt("Simplify x^2 + x")
    assert normalise_prompt("What is H₂O?") == normalise_prompt("What is H2O?")
    # Tag letters tell the flags of England, Scotland and Wales apart; elsewhere they are invisible.
    scotland, wales = (
        "Which country is this flag: \U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in code) + "\U000e007f"
        for code in ("gbsct", "gbwls")
    )
    assert normalise_prompt(scotland) != normalise_prompt(wales)
    assert normalise_prompt("Should I s\U000e0065ell?") == "Should I sell?"


def test_long_runs_of_combining_marks_cost_linear_time() -> None:
    # Unicode's canonical ordering is quadratic in CPython's NFKC: this took minutes.
    started = time.process_time()
    folded = normalise_prompt("Explain this: a" + "\u0301\u0316" * 250_000)
    assert time.process_time() - started < 2
    assert folded.startswith("Explain this: ")
    assert len(folded) > 400_000
    assert normalise_prompt("cafe\u0301") == normalise_prompt("caf\u00e9")  # short runs compose as before


def test_words_spelt_in_latin_look_alikes_read_as_latin() -> None:
    # Cyrillic "е" for Latin "e": the same text to a reader, and to the rules that read it.
    assert normalise_prompt("Is the limit p\u0435r t\u0435nant?") == "Is the limit per tenant?"
    assert normalise_prompt("Should I s\u0435ll?") == normalise_prompt("Should I sell?")
    # Other scripts' own words and lone symbols keep their letters.
    for kept in ["Привет, как дела? Хор поёт.", "Translate 'Москва' into English.", "What is α + β?"]:
        assert normalise_prompt(kept) == kept
    # Whole words of one script, letters of the Latin script and a symbol beside one letter are
    # never taken for the Latin words they look like: "сор" is litter, "ı" is Turkish, σx a sigma.
    for own, latin in [("What does 'сор' mean?", "What does 'cop' mean?"), ("Kıl nedir?", "Kil nedir?")]:
        assert normalise_prompt(own) != normalise_prompt(latin)
    assert normalise_prompt("Compute σx and ρ0") == "Compute σx and ρ0"


async def test_a_long_prompt_is_scoped_off_the_event_loop_exactly_as_a_short_one_is_inline() -> None:
    """`scope_of_request` folds a last message of over INLINE_CHARS characters on a worker thread
    (the event loop keeps serving meanwhile): the same scope as `scope_of`, the same refusals."""
    long = "Is the API rate limit pеr tеnant? " + "Ünïcode wörds and more words. " * (INLINE_CHARS // 20)
    for content in ("Is the API rate limit pеr tеnant?", long, [{"type": "text", "text": long}]):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
        assert await scope_of_request("m", messages, {"temperature": 0}) == scope_of(
            "m", messages, {"temperature": 0}
        )
    # Meanwhile the event loop runs other work (inline, it could not run any before the end).
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    ticks = 0
    await scope_of_request("m", [{"role": "user", "content": "pаss word " * 50_000}])
    ticker.cancel()
    assert ticks > 0
    with pytest.raises(PayloadTooLarge):
        await scope_of_request("m", [{"role": "user", "content": "\ufdfa" * (INLINE_CHARS + 1)}])
    with pytest.raises(Unprocessable):
        await scope_of_request("m", [{"role": "user", "content": "\u200b" * (INLINE_CHARS + 1)}])


def test_where_the_text_sits_among_images_is_part_of_the_question() -> None:
    """ "Caption the image above" between two images asks about the first, after both about the
    second: the two were one entry. Text and one image, in either order, still share theirs."""
    first, second = (
        {"type": "image_url", "image_url": {"url": f"https://example.com/{name}.png"}} for name in ("a", "b")
    )
    caption = {"type": "text", "text": "Caption the image above in five words."}

    def exact(*parts: dict[str, object]) -> bytes:
        return scope_of("gpt-4o", [{"role": "user", "content": list(parts)}]).exact_hash

    assert exact(first, caption, second) != exact(first, second, caption)
    assert exact(first, second, caption) != exact(caption, first, second)
    assert exact(caption, first, caption) != exact(caption, caption, first)
    assert exact(caption, first) == exact(first, caption)
    assert exact(caption, first, {"type": "text", "text": " "}) == exact(caption, first)


def test_requests_without_the_newer_scope_fields_keep_the_hashes_their_entries_were_stored_under() -> None:
    """Each newer part of the scope is added only when a request has it, so that the entries
    stored before it still match. These hashes were computed by the scope of commit 7a4c7bf (before
    the layout of text among images counted, and while output limits shared classes, which re-keyed
    the requests that set one): a change here strands every stored entry."""
    image = {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
    text = {"type": "text", "text": "What does this chart show?"}
    blank = {"type": "text", "text": "  "}
    for messages, params, stored in [
        (
            [{"role": "user", "content": "What does this chart show?"}],
            {"max_tokens": None, "max_completion_tokens": None},
            "5ee0adedb6680a51b34345d3968956f3662feff8b4075d1434887550568517ba",
        ),
        (
            [{"role": "user", "content": [text, image]}],
            {},
            "8cb056cb1be1523a2630df272b6c533159b330c29c1835de1b1aa30d8377cbfd",
        ),
        (
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [image, text, blank]}],
            {"temperature": 0},
            "779d8d3b7161460e1992886c671f6073608d9072ea220e823adb5d02629c6ca2",
        ),
    ]:
        assert scope_of("gpt-4o", messages, params).exact_hash.hex() == stored


def test_a_word_read_as_latin_keeps_its_spelling_apart() -> None:
    """The spelling of a word read as Latin is what tells "pаypal.com" (Cyrillic "а") from the
    real domain; words of one script and plain Latin ones have none to keep."""
    assert normalise_and_spell("Is p\u0430ypal.com safe? Is p\u0435r us\u0435r fine?") == (
        "Is paypal.com safe? Is per user fine?",
        ("p\u0430ypal", "p\u0435r", "us\u0435r"),
    )
    for plain in ["Is paypal.com safe?", "Translate 'Москва' into English.", "What is α + β?"]:
        assert normalise_and_spell(plain) == (normalise_prompt(plain), ())
