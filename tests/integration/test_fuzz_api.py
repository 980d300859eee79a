"""Schemathesis against Déjà's own OpenAPI document: generated requests (valid and not) to
every operation must never get a 5xx, and every documented response must match its schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, ServerThread

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def fuzz(deja: ServerThread, token: str, *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{deja.url}/schema/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "20",
            "--generation-deterministic",  # the same requests every run: failures reproduce
            "--phases",
            "examples,coverage,fuzzing",
            *selection,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="session")
def fuzz_tenant_key(database_url: str) -> str:
    """A tenant made the way an operator makes one: `deja tenants create`."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "tenants", "create", f"fuzz-{os.getpid()}"],
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(result.stdout)["api_key"])


def test_tenant_routes_never_answer_5xx_or_off_schema(deja: ServerThread, fuzz_tenant_key: str) -> None:
    result = fuzz(deja, fuzz_tenant_key, "--exclude-path-regex", "^/admin")
    assert result.returncode == 0, result.stdout[-6000:]


def test_admin_routes_never_answer_5xx_or_off_schema(deja: ServerThread) -> None:
    result = fuzz(deja, ADMIN_TOKEN, "--include-path-regex", "^/admin")
    assert result.returncode == 0, result.stdout[-6000:]
