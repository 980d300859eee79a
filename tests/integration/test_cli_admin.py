"""`deja tenants` and `deja keys` go through the same service as the admin API: every change is
audited, deleted tenants are hidden and get no keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx

from tests.conftest import ADMIN_HEADERS


def deja(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def audit_of(http: httpx.AsyncClient, tenant_id: str) -> list[dict]:  # type: ignore[type-arg]
    response = await http.get("/admin/audit", params={"tenant_id": tenant_id}, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_cli_changes_are_audited_and_deleted_tenants_hidden(
    database_url: str, http: httpx.AsyncClient
) -> None:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    created = deja(database_url, "tenants", "create", name)
    assert created.returncode == 0, created.stderr
    assert "deja: database" in created.stderr  # says where it works
    tenant = json.loads(created.stdout)
    tenant_id = tenant["tenant_id"]
    assert (
        await http.get("/v1/usage", headers={"Authorization": f"Bearer {tenant['api_key']}"})
    ).status_code == 200

    issued = deja(database_url, "keys", "create", "--tenant", tenant_id, "--name", "ci")
    assert issued.returncode == 0, issued.stderr
    key_id = json.loads(issued.stdout)["key_id"]
    revoked = deja(database_url, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr

    audit = await audit_of(http, tenant_id)
    assert [(e["action"], e["actor"].startswith("cli:")) for e in reversed(audit)] == [
        ("tenant.create", True),
        ("key.issue", True),
        ("key.revoke", True),
    ]

    deleted = await http.delete(f"/admin/tenants/{tenant_id}", headers=ADMIN_HEADERS)
    assert deleted.status_code == 200, deleted.text
    listed = deja(database_url, "tenants", "list")
    assert listed.returncode == 0, listed.stderr
    assert tenant_id not in listed.stdout
    everything = deja(database_url, "tenants", "list", "--include-deleted")
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert {"tenant_id": tenant_id, "status": "deleted"}.items() <= next(
        r for r in rows if r["tenant_id"] == tenant_id
    ).items()

    refused = deja(database_url, "keys", "create", "--tenant", tenant_id)
    assert refused.returncode == 1
    assert "is deleted" in refused.stderr
    unknown = deja(database_url, "keys", "create", "--tenant", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert "No tenant" in unknown.stderr


async def test_cli_quotas_and_prices_use_the_ledger_service(
    database_url: str, http: httpx.AsyncClient
) -> None:
    tenant_id = json.loads(deja(database_url, "tenants", "create", f"cliq-{uuid.uuid4().hex[:8]}").stdout)[
        "tenant_id"
    ]
    quota = deja(
        database_url, "quotas", "set", tenant_id, "day", "--max-requests", "7", "--max-cost-usd", "1.25"
    )
    assert quota.returncode == 0, quota.stderr
    assert json.loads(quota.stdout)["max_requests"] == 7
    via_api = (await http.get(f"/admin/tenants/{tenant_id}/quotas", headers=ADMIN_HEADERS)).json()
    assert [(q["period"], q["max_requests"], q["max_cost_usd"]) for q in via_api] == [
        ("day", 7, "1.2500000000")
    ]
    model = f"cli-model-{uuid.uuid4().hex[:6]}"
    price = deja(database_url, "prices", "add", model, "--input-per-mtok", "0.5", "--output-per-mtok", "1.5")
    assert price.returncode == 0, price.stderr
    prices = (await http.get("/admin/prices", headers=ADMIN_HEADERS)).json()
    assert any(p["model"] == model and p["input_per_mtok"] == "0.500000" for p in prices)
    audit = await audit_of(http, tenant_id)
    assert audit[0]["action"] == "quota.put"
    assert audit[0]["actor"].startswith("cli:")


async def test_admin_keys_are_listed_by_the_api_and_the_cli(
    database_url: str, http: httpx.AsyncClient
) -> None:
    """An admin key acts on every tenant, and no route, page or command listed them: their ids
    showed only in audit entries."""
    issued = deja(database_url, "keys", "create", "--admin", "--name", "ops on-call")
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)
    listed = await http.get("/admin/keys", headers=ADMIN_HEADERS)
    assert listed.status_code == 200, listed.text
    mine = next(k for k in listed.json() if k["key_id"] == key["key_id"])
    assert (mine["role"], mine["prefix"], mine["name"], mine["tenant_id"]) == (
        "admin",
        key["prefix"],
        "ops on-call",
        None,
    )
    assert key["api_key"] not in listed.text
    assert all(k["role"] == "admin" for k in listed.json())
    printed = deja(database_url, "keys", "admins")
    assert printed.returncode == 0, printed.stderr
    assert key["key_id"] in {json.loads(line)["key_id"] for line in printed.stdout.splitlines()}
    assert key["api_key"] not in printed.stdout
