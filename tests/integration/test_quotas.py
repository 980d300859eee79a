"""Quotas hold under concurrency, refuse with 429 + Retry-After, and /v1/usage tells what is left."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import re
import uuid
import zlib
from decimal import Decimal
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.ledger.models import Quota
from tests.conftest import ServerThread, TenantKey


async def set_quota(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, period: str, **limits: object
) -> None:
    async with transaction(sessionmaker, system=True) as session:
        session.add(Quota(tenant_id=tenant_id, period=period, **limits))


async def test_concurrent_requests_cannot_overspend_a_dollar_quota(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("quota")
    limit = Decimal("0.0005")
    await set_quota(sessionmaker, tenant.tenant_id, "month", max_cost_usd=limit)

    async def ask(i: int) -> httpx.Response:
        return await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": "gpt-4o-mini",
                "max_tokens": 100,
                "messages": [
                    {"role": "user", "content": f"Write release note number {i} for build {uuid.uuid4().hex}"}
                ],
            },
        )

    responses = await asyncio.gather(*[ask(i) for i in range(50)])
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}
    assert 0 < codes.count(200) < 50
    refused = [r for r in responses if r.status_code == 429]
    for response in refused:
        assert int(response.headers["retry-after"]) > 0
        problem = response.json()
        assert problem["quota"] == {"period": "month", "limit": "cost"}
        assert "quota is exhausted" in problem["detail"] or "too little left" in problem["detail"]

    await deja.settle()  # the answers' bookings are written just after them
    async with transaction(sessionmaker, system=True) as session:
        booked = (
            await session.execute(
                text("SELECT coalesce(sum(cost_usd), 0), count(*) FROM ledger WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
        ).one()
        counters = (
            await session.execute(
                text(
                    "SELECT cost_usd, reserved_cost_usd FROM usage_counters WHERE tenant_id = :t AND period = 'month'"
                ),
                {"t": tenant.tenant_id},
            )
        ).one()
    # One ledger row per request, refused ones included.
    assert booked[1] == 50
    # Reservations are settled: nothing stays reserved, and what was booked is what the counter says.
    assert counters.reserved_cost_usd == 0
    assert counters.cost_usd == booked[0]
    # The real spend never passes the limit by more than one reservation (~$0.00007 here).
    assert booked[0] <= limit + Decimal("0.0001")

    usage = (await http.get("/v1/usage", headers=tenant.headers)).json()
    month = next(p for p in usage["periods"] if p["period"] == "month")
    assert Decimal(str(month["limits"]["cost_usd"])) == limit
    assert Decimal(str(month["cost_usd"])) == booked[0]
    assert Decimal(str(month["remaining"]["cost_usd"])) == max(limit - booked[0], Decimal(0))


async def test_request_quota_counts_upstream_calls_not_hits(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("quota")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_requests=2)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is our on-call policy?"}]}
    first = await http.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert first.headers["x-cache"] == "MISS"
    for _ in range(3):  # hits are free
        assert (await http.post("/v1/chat/completions", headers=tenant.headers, json=body)).headers[
            "x-cache"
        ] == "HIT"
    other = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Where are the runbooks kept?"}],
    }
    assert (await http.post("/v1/chat/completions", headers=tenant.headers, json=other)).status_code == 200
    third = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Who owns the billing service?"}],
    }
    refused = await http.post("/v1/chat/completions", headers=tenant.headers, json=third)
    assert refused.status_code == 429
    assert refused.json()["quota"] == {"period": "day", "limit": "requests"}
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    usage = (await http.get("/v1/usage", headers=tenant.headers)).json()
    day = next(p for p in usage["periods"] if p["period"] == "day")
    assert day["requests"] == 2
    assert day["remaining"]["requests"] == 0


async def test_identical_requests_sent_together_are_answered_by_one_call_whatever_the_quota(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A quota with room for one call, and six identical requests at once: one call answers
    them all. Each reserved in its lookup before it could join the one that led, so most were
    refused (429, Retry-After of hours) while their twins were served from that very call."""
    tenant = await make_tenant("together")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_requests=1)
    body = {
        "model": "gpt-slow",
        "messages": [{"role": "user", "content": f"Summarise Q3 {uuid.uuid4().hex[:6]}"}],
    }
    answers = await asyncio.gather(
        *(http.post("/v1/chat/completions", headers=tenant.headers, json=body) for _ in range(6))
    )
    assert [a.status_code for a in answers] == [200] * 6, [a.text[:200] for a in answers]
    assert sorted(a.headers["x-cache"] for a in answers) == ["HIT"] * 5 + ["MISS"]
    assert len({a.json()["choices"][0]["message"]["content"] for a in answers}) == 1


async def test_usage_without_quotas_shows_no_limits(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant()
    usage = (await http.get("/v1/usage", headers=tenant.headers)).json()
    assert usage["tenant_id"] == str(tenant.tenant_id)
    assert {p["period"] for p in usage["periods"]} == {"day", "month"}
    assert all(p["limits"] == {"requests": None, "tokens": None, "cost_usd": None} for p in usage["periods"])


async def test_token_quota_holds_whatever_max_tokens_says_and_on_the_bypass_path(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("quota")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=3000)

    def body(i: int, **extra: object) -> dict[str, object]:
        content = f"Explain topic number {i} in detail, please."
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}

    # Negative, absurd or wrongly typed limits are refused before anything is reserved.
    for limits in [{"max_tokens": -1_000_000_000}, {"max_tokens": 1e30}, {"max_completion_tokens": 0}]:
        response = await http.post("/v1/chat/completions", headers=tenant.headers, json=body(0, **limits))
        assert response.status_code == 422, response.text
    # No max_tokens: the model's own output limit (16,384 for gpt-4o-mini) is reserved: too much here.
    response = await http.post("/v1/chat/completions", headers=tenant.headers, json=body(1, temperature=2))
    assert response.status_code == 429
    assert response.json()["quota"] == {"period": "day", "limit": "tokens"}
    assert "daily tokens quota" in response.json()["detail"]
    # `max_tokens: null` next to a real limit takes the real one; bypassed requests count like any other.
    served = 0
    for i in range(12):
        response = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json=body(i + 2, temperature=2, max_tokens=None, max_completion_tokens=300),
        )
        assert response.status_code in (200, 429), response.text
        if response.status_code == 200:
            assert response.headers["x-cache"] == "BYPASS"
            served += 1
    async with transaction(sessionmaker, system=True) as session:
        used = (
            await session.execute(
                text(
                    "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM ledger WHERE tenant_id = :t"
                ),
                {"t": tenant.tenant_id},
            )
        ).scalar_one()
    assert served >= 1
    assert used <= 3000


async def test_usage_shows_plain_decimals(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant()
    for period in (await http.get("/v1/usage", headers=tenant.headers)).json()["periods"]:
        assert period["cost_usd"] == "0"
        assert period["reserved_cost_usd"] == "0"


async def test_a_full_monthly_quota_refuses_a_miss_and_leaves_the_day_as_it_was(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    # A miss reserves in both periods at once: the month refusing must undo the day's part too.
    tenant = await make_tenant("quota-month")
    await set_quota(sessionmaker, tenant.tenant_id, "month", max_tokens=1_000)
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Summarise the incident review of last Tuesday"}],
    }
    assert (await http.post("/v1/chat/completions", headers=tenant.headers, json=body)).status_code == 200
    before = {p["period"]: p for p in (await http.get("/v1/usage", headers=tenant.headers)).json()["periods"]}

    other = {
        **body,
        "max_tokens": 990,  # what the first used, plus this, is more than the month allows
        "messages": [{"role": "user", "content": "Which teams own the payment services?"}],
    }
    refused = await http.post("/v1/chat/completions", headers=tenant.headers, json=other)

    assert refused.status_code == 429
    assert refused.json()["quota"] == {"period": "month", "limit": "tokens"}
    after = {p["period"]: p for p in (await http.get("/v1/usage", headers=tenant.headers)).json()["periods"]}
    assert after["day"]["requests"] == before["day"]["requests"] == 1
    assert after["day"]["tokens"] == before["day"]["tokens"]
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        reserved = (
            await session.execute(
                text("SELECT sum(reserved_tokens) AS held, count(*) AS rows FROM usage_counters")
            )
        ).one()
        holds = (await session.execute(text("SELECT count(*) FROM quota_reservations"))).scalar_one()
    assert (reserved.held, reserved.rows, holds) == (0, 2, 0)


async def test_a_token_quota_counts_what_the_tokenizer_cannot_split_and_the_tool_definitions(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A word of 400,000 characters is one unknown token to the shipped WordPiece tokenizer, and
    about 100,000 to a provider's: it was let past a 2,000-token quota and booked at 100,014
    prompt tokens. Tool definitions are prompt tokens too."""
    tenant = await make_tenant("quota-words")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=2000)
    word = "".join(f"{i:x}" for i in range(80_000))[:400_000]
    tools = [
        {"type": "function", "function": {"name": f"tool_{i}", "description": "Looks a record up. " * 60}}
        for i in range(20)
    ]
    for content, extra in [
        (f"Summarise this identifier: {word}", {}),
        ("Which tool fits?", {"tools": tools}),
    ]:
        response = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "max_tokens": 5}
            | extra,
        )
        assert response.status_code == 429, response.text[:300]
        assert response.json()["quota"] == {"period": "day", "limit": "tokens"}
    # Within the quota, the same tools are served.
    small = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Which?"}], "max_tokens": 5}
        | {"tools": tools[:2]},
    )
    assert small.status_code == 200, small.text[:300]


async def test_characters_the_tokenizer_drops_still_count_against_the_quota_and_the_prompt_limit(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """The shipped tokenizer's normaliser drops zero-width and format characters, soft hyphens,
    controls, unassigned code points and combining marks, which the model still reads: 100,000 of
    them counted as no token, so that concurrent requests with `max_tokens` set overspent a
    3,000-token day quota 75 times, and 300,000 zero-width spaces passed the 200,000-token prompt
    limit; whitespace the same. Scripts whose vowels are combining marks (Thai, Hindi) count as
    before."""

    async def ask(tenant: TenantKey, content: str) -> httpx.Response:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "max_tokens": 5}
        # As UTF-8, not \u escapes: 300,000 of them fit the body limit.
        return await http.post(
            "/v1/chat/completions",
            headers={**tenant.headers, "Content-Type": "application/json"},
            content=json.dumps(body, ensure_ascii=False).encode(),
        )

    padded = await make_tenant("quota-invisible")
    await set_quota(sessionmaker, padded.tenant_id, "day", max_tokens=3000)
    for dropped in ("\u200b", "\u2060", "\u00ad", "\u0301", "\ufe0f", "\x07", "\u0378", "\U000e0041"):
        response = await ask(padded, f"Summarise this: a{dropped * 10_000}b")
        assert response.status_code == 429, (hex(ord(dropped)), response.text[:300])
        assert response.json()["quota"] == {"period": "day", "limit": "tokens"}
    # Beside Chinese characters, which the normaliser spaces apart, as much as alone; and
    # whitespace, which WordPiece reads as nothing and a BPE tokenizer does not.
    for content in ("\u4e2d\u2060\u2060" * 1200, "Summarise this:" + "\t " * 5_000, "\n" + " \n" * 5_000):
        padding = await ask(padded, content)
        assert padding.status_code == 429, (content[:20], padding.text[:300])
    too_long = await ask(padded, "\u200b" * 300_000)
    assert too_long.status_code == 413, too_long.text[:300]
    estimated = re.search(r"about (\d+) tokens", too_long.json()["detail"])
    assert estimated is not None, too_long.json()["detail"]
    # Counted until past the limit, no further: the rest could not make it less too long.
    assert int(estimated.group(1)) > 200_000

    # About 2,400 tokens of Thai, 600 of its characters vowel and tone marks: within 3,000.
    thai = await make_tenant("quota-thai")
    await set_quota(sessionmaker, thai.tenant_id, "day", max_tokens=3000)
    fine = await ask(thai, "ภาษาไทยเป็นภาษาที่สวยงาม " * 200)
    assert fine.status_code == 200, fine.text[:300]


async def test_every_field_a_message_carries_counts_in_the_estimate(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """600 KB of text in a tool call's id, in arguments sent as an object, beside an image's URL
    or an audio clip's data, or as a predicted output, was estimated at a few tokens: past a
    5,000-token quota, where the same text as content is refused."""
    tenant = await make_tenant("quota-fields")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=5000)
    text = "The quick brown fox jumps over the lazy dog. " * 2_000  # about 20,000 tokens
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    image = {"url": "https://example.com/a.png", "detail": "low"}
    audio = {"data": base64.b64encode(b"\0" * 4).decode(), "format": "mp3"}
    cases: dict[str, dict[str, Any]] = {
        "a tool call's id": {"tool_calls": [{**call, "id": text}]},
        "arguments as an object": {
            "tool_calls": [{**call, "function": {"name": "f", "arguments": {"q": text}}}]
        },
        "a key beside a call": {"tool_calls": [{**call, "function": {**call["function"], "note": text}}]},
        "a key beside an image": {"content": [{"type": "image_url", "image_url": {**image, "alt": text}}]},
        "a key beside audio": {
            "content": [{"type": "input_audio", "input_audio": {**audio, "transcript": text}}]
        },
    }
    for case, fields in cases.items():
        messages = [
            {"role": "user", "content": "Which record?"},
            {"role": "assistant", "content": None} | fields
            if "tool_calls" in fields
            else {"role": "user"} | fields,
        ]
        if "tool_calls" in fields:
            messages.append({"role": "tool", "tool_call_id": "call_1", "content": "none"})
        response = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "gpt-4o", "messages": messages, "max_tokens": 5},
        )
        assert response.status_code == 429, (case, response.text[:300])
    predicted = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "Fix the typo."}],
            "prediction": {"type": "content", "content": text},
            "max_tokens": 5,
        },
    )
    assert predicted.status_code == 429, predicted.text[:300]


async def test_an_image_counts_the_tokens_a_provider_counts_for_it_not_its_data_urls_characters(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A 300 KB photo in a data URL is 400,000 characters of base64, which the tokenizer read as
    about 270,000 tokens: past the 200,000-token prompt limit (413) and any token quota. OpenAI
    counts it for gpt-4o as at most 1,445 tokens (85 at "detail": "low"), for gpt-4o-mini as at
    most 48,169 (2,833 at "low")."""
    tenant = await make_tenant("quota-images")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=2000)
    photo = "data:image/jpeg;base64," + base64.b64encode(random.Random(7).randbytes(300_000)).decode()

    async def ask(detail: str, model: str = "gpt-4o") -> httpx.Response:
        image = {"type": "image_url", "image_url": {"url": photo, "detail": detail}}
        return await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": model,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": f"What is this? ({detail}, {model})"}, image],
                    }
                ],
                "max_tokens": 5,
            },
        )

    low = await ask("low")
    assert low.status_code == 200, low.text[:300]
    # Of the 2,000 a day, about 1,900 are left: enough for gpt-4o at any detail (1,445 at most),
    # not for gpt-4o-mini even at "low" (2,833).
    high = await ask("high")
    assert high.status_code == 200, high.text[:300]
    for detail in ("low", "high"):
        mini = await ask(detail, "gpt-4o-mini")
        assert mini.status_code == 429, mini.text[:300]
        assert mini.json()["quota"] == {"period": "day", "limit": "tokens"}


async def test_audio_and_files_count_what_a_provider_counts_for_them_not_their_base64(
    http: httpx.AsyncClient,
    deja: ServerThread,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A 600 KB recording or PDF is 800,000 characters of base64, which the tokenizer read as
    about 540,000 tokens: past the 200,000-token prompt limit (413) and any token quota. A second
    of audio counts 10 tokens and takes at least 1,000 bytes (MP3 at 8 kbit/s), so 300 KB of audio
    counts at most 3,000 tokens and 600 KB at most 6,000; a file counts its pages, each (for
    gpt-4o) an image of at most 1,445 tokens and 1,000 of text, and one when none can be found."""
    tenant = await make_tenant("quota-media")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=5000)

    def recording(size: int) -> dict[str, object]:
        data = base64.b64encode(random.Random(size).randbytes(size)).decode()
        return {"type": "input_audio", "input_audio": {"data": data, "format": "mp3"}}

    async def ask(part: dict[str, object], note: str) -> httpx.Response:
        response = await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": [{"type": "text", "text": note}, part]}],
                "max_tokens": 5,
            },
        )
        # Its booking settles the reservation just after the response: the next request counts
        # what it used, not what it reserved (on a busy machine the writer can lag behind).
        await deja.settle()
        return response

    short = await ask(recording(300_000), "Transcribe this.")
    assert short.status_code == 200, short.text[:300]

    def file_part(data: bytes) -> dict[str, object]:
        encoded = "data:application/pdf;base64," + base64.b64encode(data).decode()
        return {"type": "file", "file": {"filename": "q3.pdf", "file_data": encoded}}

    document = await ask(file_part(random.Random(3).randbytes(600_000)), "Summarise this.")
    assert document.status_code == 200, document.text[:300]
    # What the two booked is what the model counted (a few tokens here): nearly 5,000 are left,
    # not enough for a recording of up to 6,000 tokens.
    long = await ask(recording(600_000), "Transcribe this too.")
    assert long.status_code == 429, long.text[:300]
    assert long.json()["quota"] == {"period": "day", "limit": "tokens"}
    # A PDF counts its pages: three (7,335 tokens) are past what is left; 300 pages kept in a
    # compressed object stream (733,500) are past the 200,000-token prompt limit, where each
    # counted one page before.
    three = io.BytesIO()
    pages = [Image.new("RGB", (200, 280), (255, 255, 255)) for _ in range(3)]
    pages[0].save(three, "PDF", save_all=True, append_images=pages[1:])
    refused = await ask(file_part(three.getvalue()), "Summarise these pages.")
    assert refused.status_code == 429, refused.text[:300]
    objects = zlib.compress(b" ".join([b"<< /Type /Page /Parent 2 0 R >>"] * 300))
    packed = b"%PDF-1.5\n5 0 obj\n<< /Type /ObjStm /N 300 /Filter /FlateDecode >>\nstream\n" + objects
    too_long = await ask(file_part(packed + b"\nendstream\nendobj\n%%EOF\n"), "Summarise the book.")
    assert too_long.status_code == 413, too_long.text[:300]


def _picture(kind: str, size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, kind)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_an_image_in_a_data_url_counts_the_tiles_of_its_own_size(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """Ten scanned pages of 512 x 512 pixels sent to gpt-4o-mini are one tile each, 8,500 tokens
    (2,833 + 5,667): 85,000 in all. Counted at the most an image of that family may count
    (48,169), they were 481,690 tokens, a 413 past the 200,000-token prompt limit. A photo of
    1024 x 768 is four tiles once scaled to 768 on its short side, 25,501; an image whose size
    its URL does not show still counts the most."""
    tenant = await make_tenant("quota-image-sizes")
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_tokens=100_000)

    async def ask(urls: list[str], note: str) -> httpx.Response:
        parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        return await http.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "text", "text": note}, *parts]}],
                "max_tokens": 5,
            },
        )

    pages = await ask([_picture("PNG", (512, 512))] * 10, "Transcribe these pages.")
    assert pages.status_code == 200, pages.text[:300]
    # Each request is reserved alone against the 100,000 (the model booked a few tokens): three
    # photos fit (76,503), four do not (102,004); three images of unknown size do not (144,507).
    photo = _picture("JPEG", (1024, 768))
    assert (await ask([photo] * 3, "Compare these photos.")).status_code == 200
    assert (await ask([photo] * 4, "Compare these four.")).status_code == 429
    unknown = "data:image/jpeg;base64," + base64.b64encode(random.Random(5).randbytes(3000)).decode()
    assert (await ask([unknown] * 3, "Compare these.")).status_code == 429


async def test_a_tenant_deleted_while_its_key_is_remembered_gets_a_401_never_a_500(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """Another worker deleted the tenant; this one still remembers its key for a few seconds.
    Every miss then failed to reserve, and the refusal, naming no quota, raised a KeyError: a 500."""
    tenant = await make_tenant("deleted-elsewhere")
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is the wiki?"}]}
    assert (await http.post("/v1/chat/completions", headers=tenant.headers, json=ask)).status_code == 200
    async with transaction(sessionmaker, system=True) as session:  # as the other worker's deletion left it
        await session.execute(
            text("UPDATE tenants SET status = 'deleted' WHERE id = :t"), {"t": tenant.tenant_id}
        )
        await session.execute(
            text("DELETE FROM usage_counters WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
    other = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Who approves travel?"}]}
    refused = await http.post("/v1/chat/completions", headers=tenant.headers, json=other)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    # A refresh reserves in a transaction of its own: it was answered (200), the key's tenant gone.
    refresh = await http.post(
        "/v1/chat/completions", headers={**tenant.headers, "Cache-Control": "no-cache"}, json=other
    )
    assert refresh.status_code == 401, refresh.text
    entry = {"model": "gpt-4o-mini", "prompt": "Who approves travel?", "response": "Your manager."}
    stored = await http.post("/v1/cache/entries", headers=tenant.headers, json=entry)
    assert stored.status_code == 401, stored.text


async def test_a_tenant_erased_with_its_ledger_while_its_key_is_remembered_gets_a_401_never_a_500(
    http: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """Another worker erased the tenant, ledger and row (`include_ledger=true`); this one still
    remembers its key. The miss's reservation finds no tenant (its counters' foreign key would
    refuse them): a 401, with or without the cache, never a 500."""
    tenant = await make_tenant("erased-elsewhere")
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is the wiki?"}]}
    assert (await http.post("/v1/chat/completions", headers=tenant.headers, json=ask)).status_code == 200
    async with transaction(sessionmaker, system=True) as session:  # as the other worker's erasure left it
        for table in ("api_keys", "quotas", "usage_counters", "cache_entries", "ledger"):
            await session.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": tenant.tenant_id})  # noqa: S608
        await session.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": tenant.tenant_id})
    for headers in (tenant.headers, {**tenant.headers, "Cache-Control": "no-cache"}):
        for prompt in ("Where is the wiki?", "Who approves travel?"):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
            refused = await http.post("/v1/chat/completions", headers=headers, json=body)
            assert refused.status_code == 401, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
    # Storing through the cache API stored nothing and answered 201 with an id of no entry.
    entry = {"model": "gpt-4o-mini", "prompt": "Where is the wiki?", "response": "On Confluence."}
    refused = await http.post("/v1/cache/entries", headers=tenant.headers, json=entry)
    assert refused.status_code == 401, refused.text


async def test_a_cost_quota_holds_a_spoken_answer_at_its_audio_price(
    http: httpx.AsyncClient,
    make_tenant,
    deja: ServerThread,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    """A spoken answer's tokens cost eight times its text's (gpt-4o-audio-preview: $80 against $10
    a million): reserved at the text rate, a request the quota could not pay for passed it, and
    its booking could overrun it. Each side is now reserved at its dearer rate."""
    tenant = await make_tenant("spoken-quota")
    # 100 tokens of answer: $0.001 as text, $0.008 as audio.
    await set_quota(sessionmaker, tenant.tenant_id, "day", max_cost_usd=Decimal("0.004"))

    def spoken(i: int) -> dict[str, Any]:
        return {
            "model": "gpt-4o-audio-preview",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": f"Read out note {i} {uuid.uuid4().hex}"}],
            "modalities": ["text", "audio"],
            "audio": {"voice": "alloy", "format": "wav"},
        }

    refused = await http.post("/v1/chat/completions", headers=tenant.headers, json=spoken(0))
    assert refused.status_code == 429, refused.text
    assert "cost quota" in refused.json()["detail"]
    # Room for one such answer: it passes.
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text("UPDATE quotas SET max_cost_usd = 0.01 WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
    answered = await http.post("/v1/chat/completions", headers=tenant.headers, json=spoken(1))
    assert answered.status_code == 200, answered.text
