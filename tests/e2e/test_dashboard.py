"""The dashboard in a real Chromium (Debian's, driven by Playwright) against Déjà over HTTP.

Set DEJA_SCREENSHOT_DIR to save a screenshot of every page; the ones in docs/dashboard.md come
from `DEJA_SCREENSHOT_DIR=docs/dashboard pytest tests/e2e/test_dashboard.py`.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.resources import quality_dir
from tests.conftest import ADMIN_HEADERS, ADMIN_TOKEN, ServerThread, TenantKey

MODEL = "gpt-4o-mini"
CHROMIUM = os.environ.get("DEJA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("DEJA_SCREENSHOT_DIR")
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & "quotes"'


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def context(browser: Browser, deja: ServerThread) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=deja.url, viewport={"width": 1280, "height": 900})
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of destructive buttons
    return page


# GET /admin/stats over a window holding every ledger row.
EVERY_ROW = {"since": "1970-01-01T00:00:00Z"}
# Each tenant's figures read from the ledger's rows themselves, not from the hourly rollup.
LEDGER_FIGURES = text(
    """
    SELECT l.tenant_id, count(*) AS requests, count(*) FILTER (WHERE l.cache_status = 'hit') AS hits,
           coalesce(sum(l.cost_usd), 0) AS cost_usd
      FROM ledger l JOIN tenants t ON t.id = l.tenant_id
     GROUP BY l.tenant_id
    """
)


async def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:  # Playwright makes the directory
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/ui/login")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/ui/overview$"))


async def request(http: httpx.AsyncClient, tenant: TenantKey, prompt: str) -> dict:  # type: ignore[type-arg]
    response = await http.post("/v1/requests", headers=tenant.headers, json={"input": prompt, "model": MODEL})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def store(
    http: httpx.AsyncClient, tenant: TenantKey, prompt: str, answer: str, namespace: str = ""
) -> str:
    body = {"model": MODEL, "prompt": prompt, "response": answer, "namespace": namespace}
    response = await http.post("/v1/cache/entries", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def cell(page: Page, row: str, field: str) -> str:
    return (await page.locator(f'{row} [data-field="{field}"]').inner_text()).strip()


async def audit(http: httpx.AsyncClient, tenant: TenantKey) -> list[dict]:  # type: ignore[type-arg]
    response = await http.get(
        "/admin/audit", params={"tenant_id": str(tenant.tenant_id)}, headers=ADMIN_HEADERS
    )
    return response.json()  # type: ignore[no-any-return]


async def test_sign_in_sets_a_strict_expiring_cookie_and_sign_out_ends_it(
    page: Page, context: BrowserContext, http: httpx.AsyncClient
) -> None:
    await page.goto("/ui/overview")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await shot(page, "login")

    await page.fill("input[name=token]", "dj_not-a-key")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("That token or key is not valid.")

    await sign_in(page, ADMIN_TOKEN)
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["deja_session"]
    assert session["httpOnly"]
    assert session["secure"]
    assert session["sameSite"] == "Strict"
    assert time.time() < session["expires"] <= time.time() + 8 * 3600 + 60
    assert ADMIN_TOKEN not in session["value"]
    assert ADMIN_TOKEN not in page.url
    assert cookies["deja_csrf"]["httpOnly"]
    assert cookies["deja_csrf"]["sameSite"] == "Strict"

    await page.click("text=Sign out")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await page.goto("/ui/overview")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    # A copy of the cookie taken before signing out signs no one in either: the session ended
    # where it is checked, not only in this browser (it worked for the rest of its 8 hours).
    copied = await http.get("/ui/overview", headers={"Cookie": f"deja_session={session['value']}"})
    assert copied.status_code in (302, 303), copied.status_code
    assert copied.headers["location"].endswith("/ui/login")


async def test_a_forged_session_cookie_is_sent_to_sign_in(http: httpx.AsyncClient) -> None:
    """Whatever the cookie holds (garbage, no signature, a signature in other letters than
    ASCII), a page answers with the sign-in page, never a 500."""
    for forged in ("garbage", "a.b", "e30.0000", "a.%E9", "a.\u00e9t\u00e9", "\u00e9.\u00e9"):
        response = await http.get("/ui/overview", headers={"Cookie": f"deja_session={forged}".encode()})
        assert response.status_code in (302, 303), (forged, response.status_code)
        assert response.headers["location"].endswith("/ui/login"), forged


async def test_revoking_the_key_ends_its_session_at_the_next_click(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-revoked")
    await sign_in(page, tenant.api_key)
    revoked = await http.delete(f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    await page.click("nav >> text=Entries")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))


async def test_admin_overview_shows_the_figures_of_admin_stats(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-overview")
    await request(http, tenant, "Name three primary colours.")
    await request(http, tenant, "Name three primary colours.")  # an exact hit
    await request(http, tenant, "What is the capital of France?")
    stats = (await http.get("/admin/stats", params=EVERY_ROW, headers=ADMIN_HEADERS)).json()
    mine = next(s for s in stats["tenants"] if s["tenant_id"] == str(tenant.tenant_id))

    await sign_in(page, ADMIN_TOKEN)
    row = f'[data-testid=stats] tr[data-tenant="{tenant.tenant_id}"]'
    assert await cell(page, row, "requests") == str(mine["requests"]) == "3"
    assert await cell(page, row, "hits") == str(mine["hits"]) == "1"
    assert await cell(page, row, "misses") == str(mine["misses"]) == "2"
    assert await cell(page, row, "hit_rate") == f"{mine['hit_rate'] * 100:.1f}%" == "33.3%"
    assert await cell(page, row, "cost_usd") == f"${float(mine['cost_usd']):,.6f}"
    assert await cell(page, row, "avoided_cost_usd") == f"${float(mine['avoided_cost_usd']):,.6f}"
    assert await cell(page, row, "cache_entries") == str(mine["cache_entries"]) == "2"
    # The hourly chart draws this tenant's hit and misses among everyone's.
    await expect(page.locator("figure.chart rect.exact").first).to_be_visible()

    await page.select_option("select[name=tenant]", str(tenant.tenant_id))
    await expect(page).to_have_url(re.compile(f"tenant={tenant.tenant_id}"))
    assert await page.locator("[data-testid=stats] tbody tr").count() == 1
    await shot(page, "overview")


async def test_overview_rebuilt_from_the_rollup_still_matches_the_ledger(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
    deja: ServerThread,
) -> None:
    tenant = await make_tenant("ui-rollup")
    for prompt in ("Explain our SLA.", "Explain our SLA.", "List the holidays.", "Explain our SLA."):
        await request(http, tenant, prompt)
    await deja.settle()  # the bookings are written after the responses: all four rows exist now
    # Two of its requests happened and were booked three hours ago: closed hours, which the
    # overview rolls up. A third happened then too but was booked now, as a row replayed from
    # the spool after an outage: it is read live, in its own hour, and rolled up later.
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text(
                "UPDATE ledger SET created_at = now() - interval '3 hours', "
                "booked_at = now() - interval '3 hours' WHERE id IN "
                "(SELECT id FROM ledger WHERE tenant_id = :t ORDER BY id LIMIT 2)"
            ),
            {"t": tenant.tenant_id},
        )
        await session.execute(
            text(
                "UPDATE ledger SET created_at = now() - interval '3 hours' WHERE id = "
                "(SELECT id FROM ledger WHERE tenant_id = :t ORDER BY id OFFSET 2 LIMIT 1)"
            ),
            {"t": tenant.tenant_id},
        )
        # Start the rollup over, as after emptying it: every closed hour is rolled up again.
        await session.execute(text("DELETE FROM ledger_hourly"))
        await session.execute(text("UPDATE ledger_rollup_mark SET rolled_up_until = DEFAULT"))
        # Every ledger row read, not the rollup the page reads.
        stats = (await session.execute(LEDGER_FIGURES)).all()

    await sign_in(page, ADMIN_TOKEN)
    for _ in range(2):  # rolled up on the first load, read from the rollup on the second
        await page.goto("/ui/overview")
        for expected in stats:
            row = f'[data-testid=stats] tr[data-tenant="{expected.tenant_id}"]'
            assert await cell(page, row, "requests") == str(expected.requests), expected
            assert await cell(page, row, "hits") == str(expected.hits), expected
            assert await cell(page, row, "cost_usd") == f"${float(expected.cost_usd):,.6f}", expected
    async with transaction(sessionmaker, system=True) as session:
        rolled = await session.scalar(
            text("SELECT sum(requests) FROM ledger_hourly WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
    assert rolled == 2


async def test_a_tenant_sees_only_its_own_data(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    mine, other = await make_tenant("ui-mine"), await make_tenant("ui-other")
    my_entry = await store(http, mine, "How do I rotate my API key?", "Open settings, then keys.")
    other_entry = await store(http, other, "Secret roadmap of the other tenant", "Do not show")
    other_request = (await request(http, other, "Another tenant's request"))["request_id"]

    await sign_in(page, mine.api_key)
    await expect(page.get_by_test_id("who")).to_have_text(f"tenant {mine.name}")
    assert await page.locator("[data-testid=stats] tbody tr").count() == 1
    await expect(page.locator("nav")).not_to_contain_text("Tenants")
    # Asking for another tenant in the URL changes nothing: the session decides.
    await page.goto(f"/ui/entries?tenant={other.tenant_id}")
    await expect(page.locator(f'tr[data-entry="{my_entry}"]')).to_be_visible()
    await expect(page.locator("[data-testid=entries]")).not_to_contain_text("Secret roadmap")
    await shot(page, "entries-tenant")

    for path, status in [
        (f"/ui/entries/{other_entry}", 404),
        (f"/ui/requests/{other_request}", 404),
        ("/ui/tenants", 403),
        (f"/ui/tenants/{other.tenant_id}", 403),
        (f"/ui/purge?tenant={other.tenant_id}", 403),
    ]:
        response = await page.goto(path)
        assert response is not None
        assert response.status == status, path
        await expect(page.locator("body")).not_to_contain_text("Secret roadmap")

    # Deleting another tenant's entry through a forged form: not found, and it is still there.
    await page.goto(f"/ui/entries?q={uuid.uuid4().hex}")
    token = await page.locator("input[name=_csrf_token]").first.get_attribute("value")
    status = await page.evaluate(
        """async ([id, token]) => (await fetch(`/ui/entries/${id}/delete`, {method: "POST",
            headers: {"content-type": "application/x-www-form-urlencoded"},
            body: new URLSearchParams({_csrf_token: token})})).status""",
        [other_entry, token],
    )
    assert status == 404
    still = await http.get(f"/v1/cache/entries/{other_entry}", headers=other.headers)
    assert still.status_code == 200


async def test_admin_issues_and_revokes_a_key(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-keys")
    await sign_in(page, ADMIN_TOKEN)
    await page.click("nav >> text=Tenants")
    await expect(page.locator(f'tr[data-tenant="{tenant.tenant_id}"]')).to_contain_text("1 live, 0 revoked")
    await shot(page, "tenants")
    await page.click(f"text={tenant.name}")

    await page.fill("input[name=name]", "ci runner")
    await page.click("text=Issue a key")
    new_key = (await page.get_by_test_id("issued-key").inner_text()).strip()
    assert new_key.startswith("dj_")
    assert new_key not in page.url
    await shot(page, "tenant")
    usage = await http.get("/v1/usage", headers={"Authorization": f"Bearer {new_key}"})
    assert usage.status_code == 200

    row = page.locator("[data-testid=keys] tr", has_text="ci runner")
    await row.locator("text=Revoke").click()
    await expect(page.locator("[data-testid=keys] tr", has_text="ci runner")).not_to_contain_text("live")
    refused = await http.get("/v1/usage", headers={"Authorization": f"Bearer {new_key}"})
    assert refused.status_code == 401

    actions = [(a["action"], a["actor"], a["rows_affected"]) for a in await audit(http, tenant)]
    assert ("key.issue", "admin-token", 1) in actions
    assert ("key.revoke", "admin-token", 1) in actions


async def test_purge_shows_the_count_before_deleting(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-purge")
    for i in range(3):
        await store(http, tenant, f"Release note {i} for the docs", f"note {i}", namespace="docs")
    kept = await store(http, tenant, "Which plan includes SSO?", "Enterprise", namespace="billing")

    await sign_in(page, ADMIN_TOKEN)
    await page.goto(f"/ui/entries?tenant={tenant.tenant_id}&q=sso+plan")  # words, in any order and case
    await expect(page.locator("[data-testid=entries] tbody tr")).to_have_count(1)
    await page.fill("input[name=q]", "")
    await page.fill("input[name=namespace]", "docs")
    await page.click("text=Find")
    await expect(page.locator("[data-testid=entries] tbody tr")).to_have_count(3)
    await shot(page, "entries")
    await page.get_by_test_id("purge").click()
    await expect(page.get_by_test_id("purge-count")).to_have_text("3 entries match these filters now.")
    await shot(page, "purge")
    # Nothing is gone before the confirmation.
    assert (await http.get(f"/v1/cache/entries/{kept}", headers=tenant.headers)).status_code == 200
    await page.click("text=Delete 3 entries")
    await expect(page.get_by_test_id("purged")).to_have_text("Deleted 3 entries.")

    await page.goto(f"/ui/entries?tenant={tenant.tenant_id}")
    rows = page.locator("[data-testid=entries] tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("Which plan includes SSO?")
    purge = next(a for a in await audit(http, tenant) if a["action"] == "cache.purge")
    assert (purge["actor"], purge["rows_affected"], purge["filters"]["namespace"]) == (
        "admin-token",
        3,
        "docs",
    )


async def test_wrong_hits_are_kept_or_deleted_in_one_click(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-review")
    keep = await store(http, tenant, "What is the refund window?", "30 days from delivery.")
    drop = await store(http, tenant, "How many seats in the Team plan?", "Unlimited seats.")
    for prompt, reported in (
        ("What is the refund window?", "What is the refund window for <b>opened</b> items?"),
        ("How many seats in the Team plan?", None),
    ):
        served = await request(http, tenant, prompt)
        assert served["cache"]["status"] == "HIT"
        report = {"request_id": served["request_id"], "correct": False, "prompt": reported}
        flagged = await http.post("/v1/cache/feedback", headers=tenant.headers, json=report)
        assert flagged.json()["flagged"] is True

    await sign_in(page, tenant.api_key)
    await page.click("nav >> text=Wrong hits")
    review = page.locator(f'article[data-entry="{keep}"]')
    await expect(review.get_by_test_id("hit-prompt")).to_have_text(
        "What is the refund window for <b>opened</b> items?"
    )
    await expect(page.locator(f'article[data-entry="{drop}"]').get_by_test_id("hit-prompt")).to_have_text(
        "not reported"
    )
    await expect(review.get_by_test_id("prompt")).to_have_text("What is the refund window?")
    await expect(review.get_by_test_id("answer")).to_have_text("30 days from delivery.")
    await expect(review.locator("table")).to_contain_text("1.0000")  # the request that hit it
    await shot(page, "wrong-hits")

    await review.locator("text=Keep: the answer is right").click()
    await expect(page.locator(f'article[data-entry="{keep}"]')).to_have_count(0)
    await page.locator(f'article[data-entry="{drop}"] >> text=Delete').click()
    await expect(page.get_by_test_id("no-wrong-hits")).to_be_visible()

    assert (await request(http, tenant, "What is the refund window?"))["cache"]["status"] == "HIT"
    assert (await http.get(f"/v1/cache/entries/{drop}", headers=tenant.headers)).status_code == 404
    actions = {a["action"]: a["actor"] for a in await audit(http, tenant)}
    assert actions["cache.keep"] == actions["cache.delete"] == f"key:{tenant.key_id}"


async def test_hostile_text_shows_as_text(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-hostile")
    entry = await store(http, tenant, HOSTILE, HOSTILE, namespace="<b>ns</b>")
    await sign_in(page, ADMIN_TOKEN)

    await page.goto(f"/ui/entries?tenant={tenant.tenant_id}")
    await expect(page.locator(f'tr[data-entry="{entry}"] td.prompt a')).to_have_text(HOSTILE)
    await page.goto(f"/ui/entries/{entry}")
    await expect(page.get_by_test_id("prompt")).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("answer")).to_have_text(HOSTILE)
    await expect(page.locator("body")).to_contain_text("<b>ns</b>")
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("main script, main img, main b").count() == 0
    await shot(page, "entry")


async def test_requests_and_a_request_detail(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-requests")
    miss = await request(http, tenant, "Summarise the onboarding guide.")
    hit = await request(http, tenant, "Summarise the onboarding guide.")

    await sign_in(page, tenant.api_key)
    await page.click("nav >> text=Requests")
    await expect(
        page.locator(f'tr[data-request="{miss["request_id"]}"] [data-field=cache_status]')
    ).to_have_text("miss")
    await expect(
        page.locator(f'tr[data-request="{hit["request_id"]}"] [data-field=cache_status]')
    ).to_have_text("hit")
    await page.select_option("select[name=status]", "hit")
    await page.click("text=Show")
    await expect(page.locator("[data-testid=requests] tbody tr")).to_have_count(1)
    await shot(page, "requests")

    await page.click(f"text={hit['request_id']}")
    detail = page.get_by_test_id("request")
    await expect(detail.locator("[data-field=cache_status]")).to_have_text("hit")
    await expect(detail).to_contain_text(f"{hit['cache']['entry_id']}")
    await shot(page, "request")


async def test_quality_page_shows_the_policy_and_the_measured_figures(
    page: Page,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-quality")
    await sign_in(page, tenant.api_key)
    await page.click("nav >> text=Quality")
    await expect(page.get_by_test_id("policy")).to_contain_text("cross-encoder min score")
    await expect(page.get_by_test_id("policy")).to_contain_text("min score below cosine 0.8")
    # docs/quality.md's headline: Déjà on the held-out chat pairs, as scripts/quality.sh measured it.
    measured = json.loads((quality_dir() / "langcache_held_out.json").read_text())["runs"][0]["deja"]
    ours = page.locator("[data-testid=quality] tr", has_text="langcache_held_out").filter(has_text="Déjà")
    await expect(ours).to_contain_text(f"{measured['precision']:.3f}")
    await expect(ours).to_contain_text(f"{measured['recall']:.3f}")
    # Every set the script measures is on the page, the report-only ones among them.
    for report_only in ("paws_test", "long_prompts"):
        await expect(page.locator("[data-testid=quality] tr", has_text=report_only).first).to_be_visible()
    await shot(page, "quality")


async def test_forms_without_the_csrf_token_are_refused(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-csrf")
    await sign_in(page, ADMIN_TOKEN)
    status = await page.evaluate(
        """async (id) => (await fetch(`/ui/keys/${id}/revoke`, {method: "POST",
            headers: {"content-type": "application/x-www-form-urlencoded"}, body: ""})).status""",
        str(tenant.key_id),
    )
    assert status == 403
    assert (await http.get("/v1/usage", headers=tenant.headers)).status_code == 200


async def test_bad_input_is_a_4xx_page(page: Page) -> None:
    await sign_in(page, ADMIN_TOKEN)
    for path, status in [
        ("/ui/entries?older_than_days=-1", 400),
        ("/ui/entries?older_than_days=soon", 400),
        ("/ui/entries?q=%00", 400),
        # Hyphens that start a word negate it: past 32, Postgres gave up (a 500).
        (f"/ui/entries?q={'-' * 33}x", 200),
        (f"/ui/entries?q={'-' * 100}x+or+{'-' * 99}y", 200),
        (f"/ui/entries?q=%22{'-' * 40}x%22", 200),
        (f"/ui/entries?q=({'-' * 40}x", 200),
        (f"/ui/entries?q={'(-' * 40}x", 200),
        (f"/ui/entries?q={'-a+' * 40}x", 200),
        ("/ui/requests?status=maybe", 400),
        ("/ui/requests?before=zero", 400),
        ("/ui/requests?before=1e3", 400),  # a decoder's number, no ledger id anyone typed
        ("/ui/entries?older_than_days=%C2%B2", 400),  # "²": a digit to str.isdigit(), not to int()
        ("/ui/entries?older_than_days=%EF%BC%91", 400),  # a full-width "1"
        ("/ui/entries?older_than_days=36501", 400),
        ("/ui/requests?before=9223372036854775808", 400),  # past BIGINT, the ledger's ids
        ("/ui/requests?before=99999999999999999999", 400),
        ("/ui/requests?before=9223372036854775807", 200),
        (f"/ui/entries/{uuid.uuid4()}", 404),
        ("/ui/entries/not-a-uuid", 404),
        (f"/ui/tenants/{uuid.uuid4()}", 404),
        (f"/ui/purge?tenant={uuid.uuid4()}", 404),
        ("/ui/purge", 400),
    ]:
        response = await page.goto(path)
        assert response is not None
        assert response.status == status, (path, response.status)


async def test_a_purge_form_with_a_time_out_of_range_is_a_4xx_page(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-purge-edge")
    kept = await store(http, tenant, "What is our refund window?", "30 days.")
    await sign_in(page, ADMIN_TOKEN)
    await page.goto(f"/ui/entries?tenant={tenant.tenant_id}")
    token = await page.locator("input[name=_csrf_token]").first.get_attribute("value")
    for form, status in [
        ({"created_before": "0001-01-01T00:00:00+14:00"}, 400),
        ({"created_before": "9999-12-31T23:59:59-14:00"}, 400),
        # A bare number is no time (a decoder would read seconds since 1970), as in the admin API.
        ({"created_before": "1700000000"}, 400),
        ({"created_before": "2026-01-01T00:00:00Z"}, 200),
        # A filter the form does not take is refused, not left out of the filter: "modle" would
        # have purged every model's entries.
        ({"modle": "gpt-4o-mini"}, 400),
        ({"older_than": "30"}, 400),
        # A form with an age but no cutoff purges by the age its audit entry names, not every age.
        ({"older_than_days": "30"}, 200),
    ]:
        answered = await page.evaluate(
            """async ([tenant, form, token]) => (await fetch("/ui/purge", {method: "POST",
                headers: {"content-type": "application/x-www-form-urlencoded"},
                body: new URLSearchParams({_csrf_token: token, tenant, ...form})})).status""",
            [str(tenant.tenant_id), form, token],
        )
        assert answered == status, (form, answered)
    still = await http.get(f"/v1/cache/entries/{kept}", headers=tenant.headers)
    assert still.status_code == 200, "an entry created seconds ago was purged as older than 30 days"


async def test_a_tenant_session_gets_403_on_admin_pages_whatever_it_sends(
    page: Page,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    tenant = await make_tenant("ui-not-admin")
    await sign_in(page, tenant.api_key)
    for path, status in [
        ("/ui/purge", 403),
        ("/ui/purge?tenant=not-a-uuid", 403),
        (f"/ui/purge?tenant={tenant.tenant_id}&older_than_days=%C2%B2&model={'m' * 300}", 403),
        ("/ui/tenants", 403),
        # Its own pages check what it sends as an admin's do.
        ("/ui/entries?older_than_days=%C2%B2", 400),
        ("/ui/requests?before=99999999999999999999", 400),
    ]:
        response = await page.goto(path)
        assert response is not None
        assert response.status == status, (path, response.status)
    token = await page.locator("input[name=_csrf_token]").first.get_attribute("value")
    for form in ({}, {"tenant": "not-a-uuid"}, {"tenant": str(tenant.tenant_id)}):
        answered = await page.evaluate(
            """async ([form, token]) => (await fetch("/ui/purge", {method: "POST",
                headers: {"content-type": "application/x-www-form-urlencoded"},
                body: new URLSearchParams({_csrf_token: token, ...form})})).status""",
            [form, token],
        )
        assert answered == 403, (form, answered)


LARGE_ANSWER = "Answer begins here. " + "x" * 1_000_000
LARGE_REPORTED = "Reported prompt begins here. " + "r" * 200_000
LARGE_PROMPT = "Stored prompt begins here " + "lorem ipsum dolor " * 12_000


async def test_pages_read_an_excerpt_of_large_texts_never_the_whole(
    page: Page,
    http: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Entries with a 1 MB answer, a 200 KB reported prompt and a 200 KB prompt, flagged: every
    page stays a few kilobytes per entry (Postgres cuts the texts), showing the start of each."""
    tenant = await make_tenant("ui-large")
    entries = [await store(http, tenant, f"Question {i} to grow", f"answer {i}") for i in range(5)]
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(
            text(
                """
                UPDATE cache_entries
                   SET prompt = :prompt, wrong_hit_prompt = :reported, flagged = true, feedback_wrong = 1,
                       response = jsonb_build_object('choices', jsonb_build_array(
                           jsonb_build_object('message', jsonb_build_object('content', CAST(:answer AS text)))))
                 WHERE tenant_id = :t
                """
            ),
            {
                "t": tenant.tenant_id,
                "prompt": LARGE_PROMPT,
                "reported": LARGE_REPORTED,
                "answer": LARGE_ANSWER,
            },
        )
    stored = 5 * (len(LARGE_ANSWER) + len(LARGE_REPORTED) + len(LARGE_PROMPT))
    assert stored > 7_000_000

    for token in (ADMIN_TOKEN, tenant.api_key):
        await sign_in(page, token)
        scope = f"?tenant={tenant.tenant_id}" if token == ADMIN_TOKEN else ""
        for path, most in [
            (f"/ui/wrong-hits{scope}", 60_000),
            (f"/ui/entries{scope}", 60_000),
            (f"/ui/entries/{entries[0]}", 90_000),
        ]:
            response = await page.request.get(path)
            assert response.status == 200, path
            assert len(await response.body()) < most, (path, len(await response.body()))
        await page.click("text=Sign out")

    await sign_in(page, tenant.api_key)
    await page.goto("/ui/wrong-hits")
    review = page.locator(f'article[data-entry="{entries[0]}"]')
    for field, start in (
        ("answer", "Answer begins here. x"),
        ("hit-prompt", "Reported prompt begins"),
        ("prompt", "Stored prompt"),
    ):
        shown = await review.get_by_test_id(field).inner_text()
        assert shown.startswith(start), field
        assert shown.endswith("…"), field
        assert len(shown) == 301, field
    await page.goto(f"/ui/entries/{entries[0]}")
    answer = await page.get_by_test_id("answer").inner_text()
    assert answer.startswith("Answer begins here. x")
    assert answer.endswith("…")
    assert len(answer) == 20_001
    completion = await page.get_by_test_id("completion").text_content()
    assert completion is not None
    assert completion.startswith('{"choices": [{"message": {"content": "Answer begins')
    assert len(completion) == 20_001
