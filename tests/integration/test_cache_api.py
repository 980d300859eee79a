"""The native cache API as a client uses it: store, look up (exact and by meaning), read,
delete, report wrong hits; namespaces, TTLs and tenants kept apart."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from tests.conftest import ADMIN_HEADERS

MODEL = "gpt-4o-mini"


async def store(
    http: httpx.AsyncClient, headers: dict[str, str], prompt: str, answer: str, **extra: object
) -> str:
    response = await http.post(
        "/v1/cache/entries",
        headers=headers,
        json={"model": MODEL, "prompt": prompt, "response": answer, **extra},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def lookup(http: httpx.AsyncClient, headers: dict[str, str], prompt: str, **extra: object) -> dict:  # type: ignore[type-arg]
    response = await http.post(
        "/v1/cache/lookup", headers=headers, json={"model": MODEL, "prompt": prompt, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def answer_of(result: dict) -> str:  # type: ignore[type-arg]
    return str(result["response"]["choices"][0]["message"]["content"])


async def test_exact_prompt_hits_with_the_stored_answer(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "What is the capital of France?", "Paris.")
    result = await lookup(http, t.headers, "  What is the capital   of France? ")
    assert result["hit"] is True
    assert result["tier"] == "exact"
    assert result["entry_id"] == entry_id
    assert result["similarity"] == 1.0
    assert answer_of(result) == "Paris."


async def test_paraphrase_hits_by_meaning(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "How do I undo the last git commit?", "git reset --soft HEAD~1")
    result = await lookup(http, t.headers, "how can I undo my last commit in git")
    assert result["hit"] is True
    assert result["tier"] == "semantic"
    assert result["entry_id"] == entry_id
    assert 0.8 < result["similarity"] < 1.0


async def test_look_alike_with_reversed_direction_misses(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "convert 5 km to miles", "3.11 miles")
    result = await lookup(http, t.headers, "convert 5 miles to km")
    assert result["hit"] is False
    assert result["response"] is None
    assert result["similarity"] > 0.8  # close by cosine, and still refused


async def test_who_asked_for_in_the_other_role_misses(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    # The same words, one asking for Dana's reports and the other for Dana's manager: the
    # cross-encoder served the first pair at 0.94 (and refuses the second by itself).
    t = await make_tenant()
    for stored, asked in [
        ("Who reports to Dana in the platform team?", "Who does Dana report to in the platform team?"),
        ("Who does the billing team report to?", "Who reports to the billing team?"),
    ]:
        await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is False, (asked, result)
    await store(http, t.headers, "Who hired Dana?", "Sam did.")
    assert (await lookup(http, t.headers, "Who hired Dana?"))["hit"] is True


async def test_roles_in_a_clause_and_the_kind_or_length_of_text_asked_for_miss(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """Look-alikes the cross-encoder served at 0.94 to 0.99: roles traded in a relative clause or
    asked for from the other end, who acts against whom it goes to, the other side of a kind, the
    length, kind or language of the text asked for, one thing named for another of its kind. The
    rules refuse them; the same clause reworded still hits."""
    t = await make_tenant()
    ids = {}
    for stored, asked in [
        ("List the people Dana manages", "List the people who manage Dana"),
        ("Which projects depend on the auth library?", "Which libraries does the auth project depend on?"),
        ("Show the tickets assigned by Lee", "Show the tickets assigned to Lee"),
        ("Show me how to read a JSON file with Python", "Show me how to write a JSON file with Python"),
        ("Draft a one-paragraph summary of the incident", "Draft a one-page summary of the incident"),
        ("Write a short email declining the meeting", "Write a short Slack message declining the meeting"),
        ("Summarize this Japanese contract in English", "Summarize this Japanese contract in Japanese"),
        ("How do I drop a column in Snowflake?", "How do I drop a table in Snowflake?"),
    ]:
        ids[stored] = await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is False, (asked, result)
    result = await lookup(http, t.headers, "List the people who Dana manages")
    assert result["hit"] is True, result
    assert result["entry_id"] == ids["List the people Dana manages"]


async def test_things_traded_between_clauses_or_a_date_pattern_miss_and_numbers_in_other_notations_hit(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """Look-alikes the cross-encoder served at 0.83 to 0.997 (two things traded between clauses
    alike, another date pattern, another numbered form) miss; paraphrases that wrote a number
    otherwise ("Net-30" / "net 30", "first" / "1st", "1 M" / "1M", "32 GiB" / "32GiB"), which the
    rules used to refuse, hit."""
    t = await make_tenant()
    for stored, asked in [
        (
            "In our pilot, team A used the new checklist and team B used the old one. Team A finished"
            " faster. What does that say about the new checklist?",
            "In our pilot, team A used the old checklist and team B used the new one. Team A finished"
            " faster. What does that say about the new checklist?",
        ),
        (
            "How do I display dates as YYYY-MM-DD in Google Sheets?",
            "How do I display dates as DD/MM/YYYY in Google Sheets?",
        ),
        (
            "What's the deadline for filing Form 1099-NEC for 2024?",
            "What's the deadline for filing Form 1099-MISC for 2024?",
        ),
    ]:
        await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is False, (asked, result)
    for stored, asked in [
        ("What does a Net-30 term on an invoice mean?", "What does a net 30 term on an invoice mean?"),
        (
            "Draft a subject line for applicants who didn't pass the first screening round",
            "draft a subject line for applicants who did not pass the 1st screening round",
        ),
        (
            "How many ml of 1 M NaCl do I need for 250 ml of 100 mM solution?",
            "how many ml of 1M NaCl do i need for 250ml of 100mM solution",
        ),
        (
            "Is 32 GiB of memory enough for a local Kafka cluster?",
            "Is 32GiB of memory enough for a local Kafka cluster?",
        ),
    ]:
        entry_id = await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is True, (asked, result)
        assert result["entry_id"] == entry_id


async def test_numbers_or_an_owner_traded_or_another_clock_miss_and_other_names_of_one_product_hit(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """Look-alikes the cross-encoder served at 0.95 to 1.0 (two numbers traded between what each
    is said of, a thing had by the other party, a 12-hour clock for a 24-hour one) miss;
    paraphrases the rules used to refuse (a product by another name, a list whose second clause
    says "one" for the thing of the first) hit."""
    t = await make_tenant()
    for stored, asked in [
        (
            "What's our book-to-bill ratio for Q2 if bookings were $4.1M and billings were $3.6M?",
            "What's our book-to-bill ratio for Q2 if bookings were $3.6M and billings were $4.1M?",
        ),
        (
            "How do I give Tomas comment access to my Google Sheet?",
            "how can I get comment rights on Tomas's google sheet",
        ),
        ("Convert the log timestamps to HH:mm", "Convert the log timestamps to hh:mm a"),
    ]:
        await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is False, (asked, result)
    for stored, asked in [
        (
            "How do I check when the SSL certificate on billing.example.org expires?",
            "Is there a command to see when the TLS cert for billing.example.org runs out?",
        ),
        (
            "Write a unit test for parse_invoice and write one for parse_receipt",
            "Write a unit test for parse_receipt and write one for parse_invoice",
        ),
    ]:
        entry_id = await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is True, (asked, result)
        assert result["entry_id"] == entry_id


async def test_every_one_of_a_kind_misses_and_numbers_stated_otherwise_hit(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """A look-alike the cross-encoder served at 0.91 (one user's folder / every user's) misses;
    paraphrases the number rule refused hit: a list of two amounts reordered, read as numbers
    traded, and "the two" said of two things the other prompt names."""
    t = await make_tenant()
    await store(
        http, t.headers, "How do I check the disk space used by my home folder on Ubuntu?", "Run du -sh ~"
    )
    result = await lookup(
        http, t.headers, "How do I check the disk space used by every user's home folder on Ubuntu?"
    )
    assert result["hit"] is False, result
    for stored, asked in [
        ("What is 15% of $2,000 and 20% of $3,000?", "What is 20% of $3,000 and 15% of $2,000?"),
        (
            "What's the difference between a purchase order and an invoice?",
            "A purchase order and an invoice: how are these two documents different?",
        ),
    ]:
        entry_id = await store(http, t.headers, stored, f"About {stored}")
        result = await lookup(http, t.headers, asked)
        assert result["hit"] is True, (asked, result)
        assert result["entry_id"] == entry_id


async def test_different_number_misses(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "bulk close 5 tickets in the queue", "done")
    assert (await lookup(http, t.headers, "bulk close 50 tickets in the queue"))["hit"] is False


# A text longer than the pairs the verifier reads; a prompt pastes it and asks about it.
NOTES = (
    "The quarterly review covered the migration of the billing service to the new cluster, the"
    " hiring plan for the support team in Lisbon, and the budget for the customer conference in"
    " October. The migration finished two weeks late because the payment provider changed its"
    " API; the team added retries and a second region. Support hired four of the six people it"
    " planned, and the conference budget grew by ten percent after the venue raised its prices."
    " The board asked for a plan to cut cloud costs and for a monthly report on churn. Finance"
    " noted that the support team's overtime fell once the new hires started, that the Lisbon"
    " office lease ends in March, and that two customers asked for invoices in euros. The next"
    " review is in January; each team lead sends a one-page update a week before it."
)


async def test_another_question_about_one_long_text_misses(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    # Both prompts embed alike (the models' windows end inside the text): only a verifier that
    # reads where they differ tells the two requests apart.
    t = await make_tenant()
    await store(http, t.headers, f"{NOTES} What should the team do first?", "Cut cloud costs.")
    for question in ("Translate these notes into French.", "Who asked for a monthly report?"):
        result = await lookup(http, t.headers, f"{NOTES} {question}")
        assert result["hit"] is False, question
        assert result["similarity"] > 0.9


async def test_a_reworded_instruction_over_one_long_text_hits(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, f"Summarise the following notes. {NOTES}", "A summary.")
    result = await lookup(http, t.headers, f"Give me a summary of the following notes. {NOTES}")
    assert result["hit"] is True
    assert (result["tier"], result["entry_id"]) == ("semantic", entry_id)


async def test_a_request_over_one_pasted_text_reworded_on_its_other_side_hits(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # Read as their two requests, the text left out, by the cross-encoder trained on such pairs
    # (the general one gives this rewording 0.28 and refuses it); another audience still misses.
    t = await make_tenant()
    entry_id = await store(
        http,
        t.headers,
        f"Write a two-line summary of these notes for the executive team: {NOTES}",
        "A summary.",
    )
    result = await lookup(http, t.headers, f"{NOTES}\nCondense this for the executives in two lines.")
    assert (result["hit"], result["tier"], result["entry_id"]) == (True, "semantic", entry_id)
    await store(http, t.headers, f"{NOTES}\nTurn these notes into a short email to the team.", "An email.")
    other = await lookup(http, t.headers, f"{NOTES}\nTurn these notes into a short email to the board.")
    assert other["hit"] is False
    assert other["similarity"] > 0.95


async def test_another_question_after_a_text_longer_than_the_models_read_misses(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # Past the first 4,096 characters no model reads a prompt whole: two that differ only there
    # embed alike, and are read where they differ.
    t = await make_tenant()
    text = " ".join([NOTES] * 8)
    await store(http, t.headers, f"{text} What should the team do first?", "Cut cloud costs.")
    result = await lookup(http, t.headers, f"{text} Who asked for a monthly report?")
    assert result["hit"] is False
    assert result["similarity"] > 0.99


async def test_a_longer_instruction_before_a_text_longer_than_the_models_read_hits(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # The rewording is longer, so every character of the text after it moves: the two are still
    # read where they differ, and one answer serves both.
    t = await make_tenant()
    text = " ".join([NOTES] * 8)
    entry_id = await store(http, t.headers, f"Summarise the following notes. {text}", "A summary.")
    result = await lookup(http, t.headers, f"Give me a summary of the following notes. {text}")
    assert (result["hit"], result["tier"], result["entry_id"]) == (True, "semantic", entry_id)
    added = await lookup(
        http, t.headers, f"Summarise the following notes. {text} Then translate it into French."
    )
    assert added["hit"] is False


async def test_a_mark_changed_inside_a_long_prompt_is_not_taken_for_closing_punctuation(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # The two are read where they differ, up to a run of characters without a space: what is
    # read ends with the question mark, though the prompts go on past it.
    t = await make_tenant()
    text = " ".join([NOTES] * 8)
    blob = "QUJD" * 500
    await store(http, t.headers, f"{text} Is the tone formal? {blob} Reply in one word.", "Yes.")
    result = await lookup(http, t.headers, f"{text} Is the tone formal! {blob} Reply in one word.")
    assert result["hit"] is False


async def test_code_indented_otherwise_is_never_served_for_it(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    # The models read words, not layout: these two read alike to them, and print different things.
    t = await make_tenant()
    ask = "What does this Python program print?\n\nfor i in range(3):\n    print(i)\n{}print('done')"
    stored = await store(http, t.headers, ask.format(""), "0, 1, 2, then done.")
    moved = await lookup(http, t.headers, ask.format("    "))
    assert moved["hit"] is False
    # Spacing that is not indentation matches as before, and the semantic tier reads the same
    # layout (case aside, the same prompt) but never another.
    same = await lookup(http, t.headers, ask.format("").replace("\n", " \r\n"))
    assert (same["hit"], same["tier"], same["entry_id"]) == (True, "exact", stored)
    lower = await lookup(http, t.headers, ask.format("").lower())
    assert (lower["hit"], lower["tier"], lower["entry_id"]) == (True, "semantic", stored)
    assert (await lookup(http, t.headers, ask.format("    ").lower()))["hit"] is False


async def test_a_look_alike_letter_from_another_script_does_not_hide_a_word(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # With Cyrillic "е" in "pеr tеnant", the models read other tokens and the rules another
    # word: the answer about limits per user was served.
    t = await make_tenant()
    await store(http, t.headers, "Is the API rate limit per user?", "Yes, per user.")
    spoofed = await lookup(http, t.headers, "Is the API rate limit p\u0435r t\u0435nant?")
    assert spoofed["hit"] is False


async def test_a_word_spelt_with_look_alike_letters_is_another_question(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """ "Is pаypal.com safe?" with a Cyrillic "а" asks about a phishing domain: it was an exact hit
    of the question about the real one (the look-alike read as Latin before hashing), and the
    models read the two alike too. Neither tier serves one spelling for another now; the same
    spelling is an exact hit of itself."""
    t = await make_tenant()
    real = "Is paypal.com a safe site to enter my password on?"
    spoofed = real.replace("paypal", "p\u0430ypal")
    stored = await store(http, t.headers, real, "Yes: it is PayPal's own domain.")
    assert (await lookup(http, t.headers, spoofed))["hit"] is False
    assert (await lookup(http, t.headers, spoofed.lower().replace("?", " ?")))["hit"] is False
    phishing = await store(
        http, t.headers, spoofed, "No: the second letter is Cyrillic, a look-alike domain."
    )
    found = await lookup(http, t.headers, spoofed)
    assert (found["hit"], found["tier"], found["entry_id"]) == (True, "exact", phishing)
    found = await lookup(http, t.headers, real)
    assert (found["hit"], found["tier"], found["entry_id"]) == (True, "exact", stored)
    # Another word spelt alike: "per usеr" is read as "per user", and not served its answer.
    await store(http, t.headers, "Is the API rate limit per user?", "Yes, per user.")
    assert (await lookup(http, t.headers, "Is the API rate limit per us\u0435r?"))["hit"] is False


# Requests about a text with another wording each (one answer serves both), and other requests.
REQUESTS = [
    ("Translate this into French.", None),
    ("Who is responsible for what?", None),
    ("What questions should I ask about this?", None),
    ("Shorten this to one paragraph.", None),
    ("Summarise this in three bullet points.", "Give me a three-bullet summary of this."),
    ("List the action items.", "What are the action items here?"),
    ("Draft a reply to this.", "Write a response to this."),
    ("What are the main risks?", "Which risks stand out here?"),
    ("Rewrite this in a more formal tone.", "Make this sound more formal."),
    ("What deadlines are mentioned?", "Which dates or deadlines does this mention?"),
]


async def test_many_requests_after_one_long_text_each_find_their_own_answer(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    # The embedder reads the text's opening alone, so all ten prompts embed alike: the nearest
    # entries tie, and the verifier must still be handed the one that asks the same.
    t = await make_tenant()
    text = " ".join([NOTES] * 8)
    entries = {asked: await store(http, t.headers, f"{text} {asked}", asked) for asked, _ in REQUESTS}
    for asked, reworded in REQUESTS:
        if reworded is not None:
            result = await lookup(http, t.headers, f"{text} {reworded}")
            assert (result["hit"], result["entry_id"]) == (True, entries[asked]), reworded


async def test_other_model_or_context_is_another_scope(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "Summarise our refund policy", "30 days.")
    other_model = await http.post(
        "/v1/cache/lookup",
        headers=t.headers,
        json={"model": "gpt-4o", "prompt": "Summarise our refund policy"},
    )
    assert other_model.json()["hit"] is False
    with_system = await http.post(
        "/v1/cache/lookup",
        headers=t.headers,
        json={
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Summarise our refund policy"},
            ],
        },
    )
    assert with_system.json()["hit"] is False


async def test_namespaces_are_separate(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "What is our VPN address?", "vpn.a.example", namespace="team-a")
    assert (await lookup(http, t.headers, "What is our VPN address?", namespace="team-b"))["hit"] is False
    assert (await lookup(http, t.headers, "What is our VPN address?"))["hit"] is False
    assert (await lookup(http, t.headers, "What is our VPN address?", namespace="team-a"))["hit"] is True


async def test_tenants_never_see_each_others_entries(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    entry_id = await store(http, a.headers, "What is the launch date of project Falcon?", "March 3rd.")
    assert (await lookup(http, b.headers, "What is the launch date of project Falcon?"))["hit"] is False
    assert (await http.get(f"/v1/cache/entries/{entry_id}", headers=b.headers)).status_code == 404
    assert (await http.delete(f"/v1/cache/entries/{entry_id}", headers=b.headers)).status_code == 404
    feedback = await http.post(
        "/v1/cache/feedback", headers=b.headers, json={"entry_id": entry_id, "correct": False}
    )
    assert feedback.status_code == 404
    # a's entry is untouched by b's attempts
    assert (await lookup(http, a.headers, "What is the launch date of project Falcon?"))["hit"] is True


async def test_entry_can_be_read_and_deleted(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "Where is the style guide?", "In the wiki.", ttl_seconds=600)
    entry = (await http.get(f"/v1/cache/entries/{entry_id}", headers=t.headers)).json()
    assert entry["prompt"] == "Where is the style guide?"
    assert entry["expires_at"] is not None
    assert (await http.delete(f"/v1/cache/entries/{entry_id}", headers=t.headers)).status_code == 204
    assert (await http.get(f"/v1/cache/entries/{entry_id}", headers=t.headers)).status_code == 404
    assert (await lookup(http, t.headers, "Where is the style guide?"))["hit"] is False


async def test_expired_entries_are_not_served(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "What is today's lunch menu?", "Soup.", ttl_seconds=1)
    assert (await lookup(http, t.headers, "What is today's lunch menu?"))["hit"] is True
    await asyncio.sleep(1.2)
    assert (await lookup(http, t.headers, "What is today's lunch menu?"))["hit"] is False


async def test_wrong_hit_feedback_stops_the_entry_serving(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "Who approves travel expenses?", "Your manager.")
    ok = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": entry_id, "correct": True}
    )
    assert ok.json() == {"entry_id": entry_id, "flagged": False}
    assert (await lookup(http, t.headers, "Who approves travel expenses?"))["hit"] is True
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": entry_id, "correct": False}
    )
    assert wrong.json() == {"entry_id": entry_id, "flagged": True}
    assert (await lookup(http, t.headers, "Who approves travel expenses?"))["hit"] is False


async def test_a_stricter_threshold_turns_a_semantic_hit_into_a_miss(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    await store(http, t.headers, "How do I undo the last git commit?", "git reset --soft HEAD~1")
    assert (await lookup(http, t.headers, "how can I undo my last commit in git"))["hit"] is True
    assert (await lookup(http, t.headers, "how can I undo my last commit in git", threshold=0.999))[
        "hit"
    ] is False
    # A looser threshold than the tenant's cannot loosen the decision.
    assert (await lookup(http, t.headers, "convert 5 km to miles", threshold=0.0))["hit"] is False


async def test_below_cosine_0_8_only_a_sure_model_serves(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "Create JSON with keys title,author", "{}")
    await store(http, t.headers, "Who is the president of France?", "The president.")
    # A paraphrase that embeds at 0.75: the cross-encoder is sure of it.
    result = await lookup(http, t.headers, "Return JSON fields: title and author")
    assert (result["hit"], result["entry_id"]) == (True, entry_id)
    assert 0.7 < result["similarity"] < 0.8
    # A look-alike at 0.76: the model does not rate it above the strict threshold.
    result = await lookup(http, t.headers, "Name the prime minister of France")
    assert result["hit"] is False
    # A tenant that closes the band (its floor at 0.8) misses the paraphrase too.
    patched = await http.patch(
        f"/admin/tenants/{t.tenant_id}", headers=ADMIN_HEADERS, json={"settings": {"min_similarity": 0.8}}
    )
    assert patched.status_code == 200, patched.text
    assert (await lookup(http, t.headers, "Return JSON fields: title and author"))["hit"] is False


async def test_a_rewording_near_cosine_one_is_served_when_the_model_does_not_object(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    default, closed = await make_tenant(), await make_tenant()
    # A tenant that closes the reworded tier.
    patched = await http.patch(
        f"/admin/tenants/{closed.tenant_id}",
        headers=ADMIN_HEADERS,
        json={"settings": {"cross_encoder_reworded_above": 1.0}},
    )
    assert patched.status_code == 200, patched.text
    stored = [
        await store(http, t.headers, "Why do cats purr?", "To communicate, mostly contentment.")
        for t in (default, closed)
    ]
    # Worded apart (a third of the words shared), at cosine 0.96: the model rates it about 0.58,
    # under the usual threshold (0.7), above the reworded one (0.7 - 0.35).
    result = await lookup(http, default.headers, "How come cats purr?")
    assert (result["hit"], result["entry_id"]) == (True, stored[0])
    assert result["similarity"] > 0.9
    assert (await lookup(http, closed.headers, "How come cats purr?"))["hit"] is False


async def test_bad_requests_are_4xx_problems(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    cases = [
        {"model": MODEL},  # neither prompt nor messages
        {"model": MODEL, "prompt": "a", "messages": [{"role": "user", "content": "a"}]},
        {"model": MODEL, "messages": [{"role": "assistant", "content": "a"}]},
        {"model": MODEL, "prompt": "   "},
        {"model": MODEL, "prompt": "a", "threshold": 2},
        {"model": "", "prompt": "a"},
        {"prompt": "a"},
    ]
    for body in cases:
        response = await http.post("/v1/cache/lookup", headers=t.headers, json=body)
        assert 400 <= response.status_code < 500, (body, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
    nul = await http.post(
        "/v1/cache/entries", headers=t.headers, json={"model": MODEL, "prompt": "a\u0000b", "response": "x"}
    )
    assert nul.status_code == 422
    assert "NUL" in nul.json()["detail"]
    not_json = await http.post("/v1/cache/lookup", headers=t.headers, content=b"{nope")
    assert not_json.status_code == 400
    bad_id = await http.get(f"/v1/cache/entries/{uuid.uuid4()}", headers=t.headers)
    assert bad_id.status_code == 404
    bad_response = await http.post(
        "/v1/cache/entries", headers=t.headers, json={"model": MODEL, "prompt": "a", "response": {"x": 1}}
    )
    assert bad_response.status_code == 422
    # No answer to serve, or token counts no request has: refused, as an upstream's would be.
    message = {"role": "assistant", "content": "Fine."}
    for response in (
        "  ",
        {"choices": [{"message": {"role": "assistant", "content": None}}]},
        {"choices": [{"message": {"role": "assistant", "content": ""}}]},
        {"choices": [{"message": message}], "usage": {"prompt_tokens": -1}},
        {"choices": [{"message": message}], "usage": {"completion_tokens": "lots"}},
        {"choices": [{"message": message}], "usage": {"prompt_tokens": 1.5}},
    ):
        refused = await http.post(
            "/v1/cache/entries", headers=t.headers, json={"model": MODEL, "prompt": "a", "response": response}
        )
        assert refused.status_code == 422, (response, refused.text)
    refusal = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    kept = await http.post(
        "/v1/cache/entries",
        headers=t.headers,
        json={"model": MODEL, "prompt": "a", "response": {"choices": [{"message": refusal}]}},
    )
    assert kept.status_code == 201, kept.text


async def test_hits_are_counted_on_the_entry(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    t = await make_tenant()
    entry_id = await store(http, t.headers, "Where is the VPN guide?", "On the wiki.")
    for _ in range(3):
        assert (await lookup(http, t.headers, "Where is the VPN guide?"))["hit"] is True
    # Counted in memory and written in batches; reading the entry shows every hit either way.
    entry = (await http.get(f"/v1/cache/entries/{entry_id}", headers=t.headers)).json()
    assert entry["hit_count"] == 3
    await asyncio.sleep(1.5)  # past the flush interval: now written to the row
    entry = (await http.get(f"/v1/cache/entries/{entry_id}", headers=t.headers)).json()
    assert entry["hit_count"] == 3


async def test_an_entry_read_while_its_hits_are_being_written_shows_every_hit(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # The counts a flush is writing are in neither the process's memory nor the row until the
    # write commits: the entry was read as 0 hits while 3 were on their way to it.
    t = await make_tenant()
    entry_id = await store(http, t.headers, "Where is the expense policy?", "On the wiki.")
    async with transaction(sessionmaker, system=True) as blocker:
        # Hold the row: the next flush takes the three hits and waits on it.
        await blocker.execute(text("SELECT 1 FROM cache_entries WHERE id = :id FOR UPDATE"), {"id": entry_id})
        for _ in range(3):
            assert (await lookup(http, t.headers, "Where is the expense policy?"))["hit"] is True
        await asyncio.sleep(1.5)  # past the flush interval: the write is under way
        reading = asyncio.create_task(http.get(f"/v1/cache/entries/{entry_id}", headers=t.headers))
        await asyncio.sleep(0.3)
    entry = (await reading).json()
    assert entry["hit_count"] == 3


async def test_the_entry_a_miss_names_can_be_deleted_flagged_or_purged_at_once(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """A miss's answer is stored just after its response: deleting, flagging or purging the
    entry its X-Cache-Entry names right away used to find nothing (404, or 0 purged), and the
    entry, stored a moment later, then served."""
    tenant = await make_tenant("at-once")

    async def miss(prompt: str) -> str:
        response = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": MODEL, "messages": [{"role": "user", "content": prompt}]},
        )
        assert response.headers["x-cache"] == "MISS", response.text
        return response.headers["x-cache-entry"]

    deleted = await http.delete(
        f"/v1/cache/entries/{await miss('Where are the runbooks?')}", headers=tenant.headers
    )
    assert deleted.status_code == 204, deleted.text
    flagged = await http.post(
        "/v1/cache/feedback",
        headers=tenant.headers,
        json={"entry_id": await miss("Who owns the billing service?"), "correct": False},
    )
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["flagged"] is True
    await miss("What is the on-call rota?")
    purged = await http.delete(f"/admin/tenants/{tenant.tenant_id}/cache", headers=ADMIN_HEADERS)
    assert purged.json() == {"deleted": 2}  # the two not deleted
    for prompt in ("Where are the runbooks?", "Who owns the billing service?", "What is the on-call rota?"):
        again = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": MODEL, "messages": [{"role": "user", "content": prompt}]},
        )
        assert again.headers["x-cache"] == "MISS", prompt


async def test_a_misspelt_field_is_refused_and_a_wrong_one_named_in_the_detail(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """`"ttl": 60` for `ttl_seconds` was dropped without a word (the entry lived the default
    week), and a wrong type said only "Validation failed for POST /v1/cache/lookup": the reason
    sat in `errors`, which the OpenAI SDK does not show."""
    t = await make_tenant()
    body = {"model": "gpt-4o-mini", "prompt": "Where is the wiki?", "response": "At /wiki."}
    misspelt = await http.post("/v1/cache/entries", headers=t.headers, json=body | {"ttl": 60})
    assert misspelt.status_code == 400, misspelt.text
    assert "ttl" in misspelt.json()["detail"]
    assert "ttl" in misspelt.json()["error"]["message"]
    wrong = await http.post("/v1/cache/lookup", headers=t.headers, json={"model": "gpt-4o-mini", "prompt": 5})
    assert wrong.status_code == 400, wrong.text
    assert "prompt" in wrong.json()["detail"]
    assert "Expected `str | null`, got `int`" in wrong.json()["detail"]
    feedback = await http.post("/v1/cache/feedback", headers=t.headers, json={"correct": True, "entry": "x"})
    assert feedback.status_code == 400, feedback.text
    assert (await http.post("/v1/cache/entries", headers=t.headers, json=body)).status_code == 201


async def test_a_tenants_delete_and_wrong_hit_flag_through_the_api_are_audited(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """The dashboard audited a deletion, the API did not: what a tenant removed or stopped
    serving through the API left no trace in the audit log."""
    t = await make_tenant()
    flagged = await store(http, t.headers, "Who approves expenses?", "The finance lead.")
    deleted = await store(http, t.headers, "Where is the style guide?", "On the wiki.")
    wrong = await http.post(
        "/v1/cache/feedback", headers=t.headers, json={"entry_id": flagged, "correct": False}
    )
    assert wrong.status_code == 200, wrong.text
    assert (await http.delete(f"/v1/cache/entries/{deleted}", headers=t.headers)).status_code == 204
    audit = await http.get("/admin/audit", params={"tenant_id": str(t.tenant_id)}, headers=ADMIN_HEADERS)
    actions = {(row["action"], row["filters"]["entry_id"], row["actor"]) for row in audit.json()}
    assert actions >= {
        ("cache.flag", flagged, f"key:{t.key_id}"),
        ("cache.delete", deleted, f"key:{t.key_id}"),
    }


async def test_code_that_differs_in_the_case_of_a_flag_or_in_an_operator_is_another_question(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """The models read no case and few symbols: "tar -c" got "tar -C"'s answer at similarity 1,
    whatever the threshold, "3 / 2" got "3 // 2"'s and "b - a" got "a - b"'s. The `code` rule
    refuses them (and `order` a column named "A" divided by "B" the other way round); a prompt asked
    again in lower case is still the same question."""
    t = await make_tenant()
    for stored, asked in [
        ("What does tar -C do?", "What does tar -c do?"),
        ("What does the Python regex `\\d+` match?", "What does the Python regex `\\D+` match?"),
        ("In Go, is the function `Parse` exported?", "In Go, is the function `parse` exported?"),
        ("What does grep -R foo . do?", "What does grep -r foo . do?"),
        ("What does 3 // 2 return in Python?", "What does 3 / 2 return in Python?"),
        ("In JavaScript, why is x = 5 true?", "In JavaScript, why is x == 5 true?"),
        # The two sides of an operator traded: the models served both at scores of 0.78 to 1.
        ("In Python, what does a - b return when a = 10?", "In Python, what does b - a return when a = 10?"),
        ("Explain `if a < b: swap(a, b)`", "Explain `if b < a: swap(a, b)`"),
        ("What does `git diff main..feature` show?", "What does `git diff feature..main` show?"),
        (
            "In Excel, how do I divide column A by column B?",
            "In Excel, how do I divide column B by column A?",
        ),
    ]:
        await store(http, t.headers, stored, f"About {stored}")
        found = await lookup(http, t.headers, asked)
        assert found["hit"] is False, (asked, found)
    await store(http, t.headers, "What is the capital of France?", "Paris.")
    again = await lookup(http, t.headers, "what is the capital of france")
    assert again["hit"] is True
