"""Tenant B can neither read, hit, purge, count nor infer tenant A's data, through any endpoint."""

from __future__ import annotations

import httpx

from tests.conftest import TenantKey

PROMPT = "What is the acquisition target code-named Bluebird worth?"


async def _a_with_an_entry(http: httpx.AsyncClient, make_tenant) -> tuple[TenantKey, str, str]:  # type: ignore[no-untyped-def]
    a = await make_tenant("iso-a")
    response = await http.post(
        "/v1/chat/completions",
        headers=a.headers,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert response.headers["x-cache"] == "MISS"
    return a, response.headers["x-cache-entry"], response.headers["x-request-id"]


async def test_same_prompt_from_another_tenant_is_a_miss_with_its_own_entry(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    _, entry_a, _ = await _a_with_an_entry(http, make_tenant)
    b = await make_tenant("iso-b")
    seen = []
    for body in (
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": True},
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    ):
        response = await http.post("/v1/chat/completions", headers=b.headers, json=body)
        seen.append(response.headers["x-cache"])
        assert response.headers.get("x-cache-entry") != entry_a
    assert seen == ["MISS", "HIT"]  # b's first request made b's own entry, which b then hits
    lookup = await http.post(
        "/v1/cache/lookup",
        headers=b.headers,
        json={"model": "gpt-4o-mini", "prompt": PROMPT, "namespace": ""},
    )
    assert lookup.json()["entry_id"] != entry_a


async def test_another_tenants_entry_and_request_ids_are_unknown(
    http: httpx.AsyncClient, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    a, entry_a, request_a = await _a_with_an_entry(http, make_tenant)
    b = await make_tenant("iso-b")
    assert (await http.get(f"/v1/cache/entries/{entry_a}", headers=b.headers)).status_code == 404
    assert (await http.delete(f"/v1/cache/entries/{entry_a}", headers=b.headers)).status_code == 404
    for ref in ({"entry_id": entry_a}, {"request_id": request_a}):
        feedback = await http.post("/v1/cache/feedback", headers=b.headers, json={**ref, "correct": False})
        assert feedback.status_code == 404
    # A's entry still serves A.
    again = await http.post(
        "/v1/chat/completions",
        headers=a.headers,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["x-cache-entry"] == entry_a


async def test_tenant_keys_cannot_purge_count_or_list(http: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = await _a_with_an_entry(http, make_tenant)
    b = await make_tenant("iso-b")
    for method, path in (
        ("DELETE", f"/admin/tenants/{a.tenant_id}/cache"),
        ("DELETE", f"/admin/tenants/{a.tenant_id}"),
        ("GET", f"/admin/tenants/{a.tenant_id}"),
        ("GET", "/admin/stats"),
        ("GET", "/admin/tenants"),
        ("GET", "/admin/audit"),
    ):
        assert (await http.request(method, path, headers=b.headers)).status_code == 403, path
    usage = (await http.get("/v1/usage", headers=b.headers)).json()
    assert usage["tenant_id"] == str(b.tenant_id)
    assert all(p["requests"] == 0 for p in usage["periods"])
