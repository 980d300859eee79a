"""Server time of every dashboard page on real volumes: 100,000 cache entries and 1,000,000
ledger rows over 30 days, in a fresh embedded Postgres migrated to head.

    python scripts/dashboard_timing.py [--entries 100000] [--ledger 1000000] [--runs 5]

It loads the rows with SQL (generate_series), starts Déjà on a loopback port, signs in as
admin and as the largest tenant, times the first overview (which rolls the ledger up), then
prints the median and slowest of `--runs` requests per page (after one warm-up), measured by
the client over loopback: an upper bound of server time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import threading
import time
import uuid

import httpx
import uvicorn
from sqlalchemy import text

from app.asgi import create_app
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings, UISettings
from app.tenants.repository import KeyRepository, TenantRepository
from app.toolkit.scratch import scratch_database

ADMIN_TOKEN = "timing-admin-token"  # noqa: S105 (a throwaway instance)
TENANTS = 10
BIG_SHARE = 0.9  # the largest tenant holds this share of entries and requests

ENTRIES = text(
    """
    INSERT INTO cache_entries (tenant_id, namespace, model, scope_hash, exact_hash, prompt, response,
        prompt_tokens, completion_tokens, cost_usd, created_at, expires_at, hit_count, last_hit_at, flagged)
    SELECT CASE WHEN i % 100 < :big_pct THEN CAST(:big AS uuid) ELSE (CAST(:others AS uuid[]))[1 + i % :n_others] END,
           (ARRAY['', 'docs', 'billing', 'support'])[1 + i % 4],
           (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku'])[1 + i % 3],
           decode(md5('s' || (i % 5000)), 'hex'), decode(md5('e' || i), 'hex'),
           'How do I ' || (ARRAY['reset', 'export', 'import', 'archive', 'share'])[1 + i % 5] || ' the '
             || (ARRAY['invoice', 'report', 'dashboard', 'project', 'ticket'])[1 + (i / 5) % 5]
             || ' number ' || i || ' for the ' || md5(i::text) || ' team?',
           jsonb_build_object('id', 'chatcmpl-' || i, 'object', 'chat.completion', 'model', 'gpt-4o-mini',
             'choices', jsonb_build_array(jsonb_build_object('index', 0, 'finish_reason', 'stop',
               'message', jsonb_build_object('role', 'assistant', 'content', 'Answer ' || md5(i::text))))),
           40, 120, 0.0000900000,
           now() - make_interval(secs => (i * 37) % (60 * 86400)),
           now() + interval '7 days', i % 17, CASE WHEN i % 17 > 0 THEN now() - make_interval(secs => i % 86400) END,
           i % 200 = 0
    FROM generate_series(1, :count) AS i
    """
)
LEDGER = text(
    """
    INSERT INTO ledger (tenant_id, request_id, created_at, booked_at, requested_model, used_model, namespace, cache_status,
        similarity, prompt_tokens, completion_tokens, cost_usd, avoided_cost_usd, latency_ms,
        upstream_latency_ms, http_status, priority)
    SELECT CASE WHEN i % 100 < :big_pct THEN CAST(:big AS uuid) ELSE (CAST(:others AS uuid[]))[1 + i % :n_others] END,
           'timing-' || i,
           now() - make_interval(secs => (i * 7) % (30 * 86400)),
           now() - make_interval(secs => (i * 7) % (30 * 86400)),  -- booked as they were answered
           'gpt-4o-mini', 'gpt-4o-mini', '',
           s.status,
           CASE s.status WHEN 'hit' THEN CASE WHEN i % 3 = 0 THEN 1.0 ELSE 0.93 END END,
           CASE WHEN s.status = 'miss' THEN 40 ELSE 0 END, CASE WHEN s.status = 'miss' THEN 120 ELSE 0 END,
           CASE WHEN s.status = 'miss' THEN 0.0000780000 ELSE 0 END,
           CASE WHEN s.status = 'hit' THEN 0.0000780000 ELSE 0 END,
           CASE WHEN s.status = 'hit' THEN 3 + i % 5 ELSE 200 + i % 300 END,
           CASE WHEN s.status = 'miss' THEN 190 + i % 300 END,
           CASE WHEN s.status = 'error' THEN 502 ELSE 200 END, 5
    FROM generate_series(1, :count) AS i,
         LATERAL (SELECT CASE WHEN i % 100 < 45 THEN 'hit' WHEN i % 100 < 95 THEN 'miss'
                              WHEN i % 100 < 98 THEN 'bypass' ELSE 'error' END AS status) AS s
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(settings: Settings, entries: int, ledger: int) -> tuple[str, uuid.UUID, str]:
    """The tenants, keys and rows; the big tenant's key and id, and one of its request ids."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings)
    sessionmaker = create_sessionmaker(engine)
    run = uuid.uuid4().hex[:6]
    async with transaction(sessionmaker, system=True) as session:
        tenants = [await TenantRepository(session).create(f"timing-{run}-{i}") for i in range(TENANTS)]
        _, big_key = await KeyRepository(session).issue(tenants[0].id)
    params = {
        "big": str(tenants[0].id),
        "others": [t.id for t in tenants[1:]],
        "n_others": TENANTS - 1,
        "big_pct": int(BIG_SHARE * 100),
    }
    started = time.perf_counter()
    async with transaction(sessionmaker, system=True) as session:
        await session.execute(text("SET LOCAL statement_timeout = 0"))
        await session.execute(ENTRIES, {**params, "count": entries})
        await session.execute(LEDGER, {**params, "count": ledger})
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("ANALYZE cache_entries"))
        await connection.execute(text("ANALYZE ledger"))
    print(f"loaded {entries:,} entries and {ledger:,} ledger rows in {time.perf_counter() - started:.0f} s")
    await engine.dispose()
    return big_key.key, tenants[0].id, "timing-2"


def sign_in(client: httpx.Client, token: str) -> None:
    page = client.get("/ui/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post("/ui/login", data={"token": token, "_csrf_token": csrf.group(1)})
    assert response.status_code == 303, response.text
    assert "deja_session" in client.cookies


def time_pages(client: httpx.Client, pages: list[str], runs: int) -> list[tuple[str, float, float]]:
    rows = []
    for path in pages:
        response = client.get(path)  # warm-up
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        rows.append((path, statistics.median(times), max(times)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with scratch_database("deja-timing-") as scratch:
        settings = Settings(
            database_url=scratch.url,
            data_dir=scratch.folder / "state",
            admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
            log_level="WARNING",
            ui=UISettings(secure_cookies=False),  # httpx sends Secure cookies over HTTPS only
        )
        big_key, big_id, request_id = asyncio.run(load(settings, args.entries, args.ledger))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with (
            httpx.Client(base_url=base, timeout=60) as admin,
            httpx.Client(base_url=base, timeout=60) as tenant,
        ):
            sign_in(admin, ADMIN_TOKEN)
            sign_in(tenant, big_key)
            started = time.perf_counter()
            admin.get("/ui/overview").raise_for_status()  # rolls the whole ledger up, once
            first_view_ms = (time.perf_counter() - started) * 1000
            entry = re.search(r'data-entry="([0-9a-f-]{36})"', admin.get("/ui/entries").text)
            assert entry is not None
            results = [
                ("admin", *row)
                for row in time_pages(
                    admin,
                    [
                        "/ui/overview",
                        f"/ui/overview?tenant={big_id}",
                        "/ui/tenants",
                        f"/ui/tenants/{big_id}",
                        "/ui/entries",
                        f"/ui/entries?tenant={big_id}",
                        f"/ui/entries?tenant={big_id}&q=archive+the+ticket&namespace=docs&model=gpt-4o",
                        f"/ui/entries?tenant={big_id}&older_than_days=30",
                        f"/ui/entries/{entry.group(1)}",
                        f"/ui/purge?tenant={big_id}&namespace=docs&older_than_days=30",
                        "/ui/wrong-hits",
                        "/ui/requests",
                        "/ui/requests?status=error",
                        f"/ui/requests/{request_id}",
                        "/ui/quality",
                    ],
                    args.runs,
                )
            ]
            results += [
                ("tenant", *row)
                for row in time_pages(
                    tenant,
                    ["/ui/overview", "/ui/entries", "/ui/entries?q=export", "/ui/wrong-hits", "/ui/requests"],
                    args.runs,
                )
            ]
        server.should_exit = True
        thread.join(timeout=30)

    print(f"first overview (rolls up {args.ledger:,} ledger rows): {first_view_ms:.0f} ms")
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\n| viewer | page | median ms | slowest ms (of {args.runs}) |\n|---|---|---|---|")
    for viewer, path, median, slowest in results:
        shown = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", path)
        print(f"| {viewer} | `{shown}` | {median:.0f} | {slowest:.0f} |")


if __name__ == "__main__":
    main()
