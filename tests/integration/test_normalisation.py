"""Invisible characters and compatibility forms do not steer matching; the model still reads
exactly what the client wrote."""

from __future__ import annotations

import httpx

from tests.conftest import TenantKey


def chat(content: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "max_tokens": 50}


async def test_a_zero_width_character_cannot_turn_sell_into_a_hit_on_buy(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    tenant: TenantKey = await make_tenant("norm")
    stored = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json=chat("Should I buy Tesla stock today?")
    )
    assert stored.headers["x-cache"] == "MISS"

    buy_answer = stored.json()["choices"][0]["message"]["content"]

    first = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json=chat("Should I s\u200bell Tesla stock today?")
    )
    assert first.headers["x-cache"] == "MISS"
    assert first.json()["choices"][0]["message"]["content"] != buy_answer
    # Another invisible character, the same "sell" question: it finds the "sell" answer, never the "buy" one.
    second = await http.post(
        "/v1/chat/completions", headers=tenant.headers, json=chat("Should I s\u00adell Tesla stock today?")
    )
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["x-cache-entry"] == first.headers["x-cache-entry"]

    # The same question with invisible characters and full-width letters is the same question.
    same = await http.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json=chat("\ufeffShould I b\u200buy \uff34esla\u2060 stock today?"),
    )
    assert same.headers["x-cache"] == "HIT"
    assert same.headers["x-cache-tier"] == "exact"


async def test_a_prompt_of_invisible_characters_only_is_empty(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    """The cache API refuses a prompt with nothing to look up; a chat request with none (invisible
    characters, an image alone) is the model's to answer, uncached. It was refused with 422."""
    tenant: TenantKey = await make_tenant("norm")
    for path, body in [
        ("/v1/cache/lookup", {"model": "gpt-4o-mini", "prompt": "\u200b \u200c"}),
        ("/v1/cache/entries", {"model": "gpt-4o-mini", "prompt": "\u2060", "response": "x"}),
    ]:
        response = await http.post(path, headers=tenant.headers, json=body)
        assert response.status_code == 422, (path, response.text)
        assert "no visible text" in response.json()["detail"]
    image = {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
    for content in ["\u200b\u200c\u200d\u2060\ufeff\u00ad", [image], [{"type": "text", "text": " "}, image]]:
        for _ in range(2):  # and again: nothing was stored to serve
            response = await http.post(
                "/v1/chat/completions",
                headers=tenant.headers,
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]},
            )
            assert response.status_code == 200, response.text[:300]
            assert response.headers["x-cache"] == "BYPASS"


async def test_the_model_reads_the_clients_own_text(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant: TenantKey = await make_tenant("norm")
    refresh = {**tenant.headers, "Cache-Control": "no-cache"}
    plain = await http.post("/v1/chat/completions", headers=refresh, json=chat("Name a colour."))
    marked = await http.post("/v1/chat/completions", headers=refresh, json=chat("Name a\u200b colour."))
    # The stand-in model answers from the exact text it receives: different text, different answer.
    assert (
        plain.json()["choices"][0]["message"]["content"] != marked.json()["choices"][0]["message"]["content"]
    )


async def test_long_prompts_that_differ_past_what_the_models_read_never_share_an_answer(
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant: TenantKey = await make_tenant("norm")
    boilerplate = "Please review the attached contract carefully and list every risk you find. " * 80
    first = boilerplate + "Clause 9: the supplier may terminate at any time without notice."
    second = boilerplate + "Clause 9: neither party may terminate before the end of the term."
    stored = await http.post("/v1/chat/completions", headers=tenant.headers, json=chat(first))
    assert stored.headers["x-cache"] == "MISS"
    other = await http.post("/v1/chat/completions", headers=tenant.headers, json=chat(second))
    assert other.headers["x-cache"] == "MISS"  # same first 6,000 characters, a different contract
    again = await http.post("/v1/chat/completions", headers=tenant.headers, json=chat(first))
    assert again.headers["x-cache"] == "HIT"


async def test_a_number_is_one_value_however_the_client_writes_it(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """JSON lets a client write 40 as `40`, `40.0` or `4e1`; an upstream reads one value. A tool's
    schema or a field for another kind of upstream (vLLM's `top_k`) written one way missed the
    entries of the other (the scope was hashed as written)."""
    tenant: TenantKey = await make_tenant("numbers")

    def ask(top_k: object, minimum: object, penalty: object = 0) -> dict[str, object]:
        schema = {"type": "object", "properties": {"id": {"type": "integer", "minimum": minimum}}}
        tool = {"type": "function", "function": {"name": "lookup_order", "parameters": schema}}
        body = chat("Which orders shipped late last week?")
        return {**body, "top_k": top_k, "presence_penalty": penalty, "tools": [tool]}

    stored = await http.post("/v1/chat/completions", headers=tenant.headers, json=ask(40, 1))
    assert stored.headers["x-cache"] == "MISS", stored.text
    for top_k, minimum, penalty in ((40.0, 1.0, 0.0), (40, 1.0, -0.0), (4e1, 1, 0)):
        same = await http.post(
            "/v1/chat/completions", headers=tenant.headers, json=ask(top_k, minimum, penalty)
        )
        assert same.headers["x-cache"] == "HIT", (top_k, minimum, penalty)
        # The same call, under an id of its own (each replay's tool calls get new ids).
        [call] = same.json()["choices"][0]["message"]["tool_calls"]
        [first] = stored.json()["choices"][0]["message"]["tool_calls"]
        assert call["function"] == first["function"]
        assert call["id"] != first["id"]
    # Another value is another request; so is `true` for 1.
    for top_k, minimum, penalty in ((40.5, 1, 0), (40, 1, 0.25), (40, True, 0)):
        other = await http.post(
            "/v1/chat/completions", headers=tenant.headers, json=ask(top_k, minimum, penalty)
        )
        assert other.headers["x-cache"] == "MISS", (top_k, minimum, penalty)
