"""`GET /v1/models` in OpenAI's shape for tenant keys, and API docs that need no CDN."""

from __future__ import annotations

import re

import httpx
import openai

from tests.conftest import ADMIN_HEADERS, ServerThread


async def test_models_list_is_openai_shaped_and_needs_a_tenant_key(
    http: httpx.AsyncClient, deja: ServerThread, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    assert (await http.get("/v1/models")).status_code == 401
    assert (await http.get("/v1/models", headers=ADMIN_HEADERS)).status_code == 403
    tenant = await make_tenant("models")
    body = (await http.get("/v1/models", headers=tenant.headers)).json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    # Routes of the test configuration, and priced models (served by the default route).
    assert by_id["gpt-broken"]["owned_by"] == "fake"
    assert by_id["gpt-slow"]["owned_by"] == "slow"
    assert by_id["gpt-4o-mini"]["owned_by"] == "fake"
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in body["data"])

    client = openai.AsyncOpenAI(base_url=f"{deja.url}/v1", api_key=tenant.api_key, max_retries=0)
    listed = [m.id async for m in client.models.list()]
    assert listed == sorted(by_id)
    one = await client.models.retrieve("gpt-slow")
    assert (one.id, one.owned_by) == ("gpt-slow", "slow")
    missing = await http.get("/v1/models/no-such-model", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_swagger_ui_loads_nothing_from_elsewhere(http: httpx.AsyncClient) -> None:
    for path in ("/schema", "/schema/swagger"):
        page = await http.get(path)
        assert page.status_code == 200
        # No other site may frame the docs (they had no such header).
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert assets
        assert [a for a in assets if not a.startswith("/static/swagger-ui/")] == []
        for asset in assets:
            fetched = await http.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 500
    assert (await http.get("/schema/openapi.json")).json()["paths"]["/v1/models"]
