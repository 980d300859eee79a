"""What an operator sees when `deja` is set up wrongly: one line naming the setting, the file or the
database, never a traceback and never a secret; and an exit code an init system can act on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.db import migrate


def deja(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEJA_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DEJA_PORT", "abc", "DEJA_PORT: Input should be a valid integer"),
        ("DEJA_WORKERS", "-2", "DEJA_WORKERS: Input should be greater than or equal to 1"),
        ("DEJA_ADMIN_TOKEN", "shortsecret123", "DEJA_ADMIN_TOKEN: at least 16 characters"),
        ("DEJA_UI__SESSION_SECRET", "tooshort", "DEJA_UI__SESSION_SECRET: at least 32 characters"),
        ("DEJA_LIMITS__TIMEOUT_S", "-5", "DEJA_LIMITS__TIMEOUT_S: Input should be greater than 0"),
        ("DEJA_DATABASE_URL", "mysql://u:hunter2@h/d", "DEJA_DATABASE_URL: Déjà connects with asyncpg"),
        ("DEJA_DATABASE_URL", "postgresql://u:hunter2@h:port/d", "DEJA_DATABASE_URL: not a database URL"),
    ],
)
def test_a_refused_setting_is_one_line_naming_its_variable_and_not_its_value(
    variable: str, value: str, says: str
) -> None:
    result = deja("tenants", "list", env={variable: value})

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"deja: {says}")
    assert value not in result.stderr


def test_a_misspelt_setting_is_named_and_a_clients_variable_is_left_alone(tmp_path: Path) -> None:
    result = deja(
        "prices",
        "list",
        env={
            "DEJA_CACHE__TOPK": "3",
            "DEJA_CONFIGG": "deja.toml",
            "DEJA_API_KEY": "a client's key",
            "DEJA_BASE_URL": "http://127.0.0.1:8000/v1",
            "DEJA_DATABASE_URL": f"postgresql://deja:pw@127.0.0.1:{closed_port()}/deja",
        },
    )

    assert (
        "DEJA_CACHE__TOPK is not a setting, and is ignored: did you mean DEJA_CACHE__TOP_K?" in result.stderr
    )
    assert "DEJA_CONFIGG is not a setting, and is ignored: did you mean DEJA_CONFIG?" in result.stderr
    assert "DEJA_API_KEY" not in result.stderr
    assert "DEJA_BASE_URL" not in result.stderr


def test_a_database_url_as_providers_write_it_connects(database_url: str) -> None:
    """`postgres://…?sslmode=…` is what hosted Postgres hands out; asyncpg calls sslmode `ssl`."""
    given = database_url.replace("postgresql+asyncpg://", "postgres://", 1) + "&sslmode=disable"

    result = deja("prices", "list", env={"DEJA_DATABASE_URL": given})

    assert result.returncode == 0, result.stderr
    assert '"model": "gpt-4o-mini"' in result.stdout


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password() -> None:
    port = closed_port()
    result = deja(
        "tenants", "list", env={"DEJA_DATABASE_URL": f"postgres://deja:S3CRETPW@127.0.0.1:{port}/deja"}
    )

    assert result.returncode == 1
    where, why = result.stderr.strip().splitlines()
    assert where.startswith(
        f"deja: database postgresql+asyncpg://deja:***@127.0.0.1:{port}/deja (DEJA_DATABASE_URL)"
    )
    assert why == (
        "deja: the database refused or could not be reached: ConnectionRefusedError: "
        f"[Errno 111] Connect call failed ('127.0.0.1', {port})"
    )


@pytest.mark.parametrize(
    ("option", "value"), [("--port", "99999"), ("--port", "0"), ("--workers", "0"), ("--workers", "500")]
)
def test_serve_refuses_a_port_or_a_worker_count_out_of_range(option: str, value: str) -> None:
    result = deja("serve", option, value)

    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr


def test_a_broken_router_config_stops_serve_before_a_database_is_started(tmp_path: Path) -> None:
    config = tmp_path / "deja.toml"
    config.write_text('[[upstreams]]\nname = "a"\n[[routes]]\nmodel = "m"\nprimary = "b"\n', encoding="utf-8")
    data_dir = tmp_path / "data"

    result = deja(
        "serve",
        "--port",
        str(closed_port()),
        env={"DEJA_CONFIG": str(config), "DEJA_DATA_DIR": str(data_dir)},
    )

    assert result.returncode == 1
    assert result.stderr.strip() == f"deja: {config}: route 'm': unknown upstream 'b' (declared: a)"
    assert not data_dir.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_exits_non_zero_when_its_workers_fail_to_start(workers: str) -> None:
    """uvicorn's supervisor gives up when a worker fails at start-up and exits 0, which an init
    system takes for a clean stop; `deja serve` exits 3 whatever the worker count, and its log
    says why in one line before the traceback."""
    result = deja(
        "serve",
        "--workers",
        workers,
        "--port",
        str(closed_port()),
        "--no-migrate",
        env={"DEJA_DATABASE_URL": f"postgresql+asyncpg://deja:pw@127.0.0.1:{closed_port()}/deja"},
        timeout=180,
    )

    assert result.returncode == 3
    assert result.stderr.rstrip().endswith("deja: the server did not start (the log above says why)")
    failures = [json.loads(line) for line in result.stderr.splitlines() if '"start-up failed"' in line]
    assert failures
    assert failures[0]["reason"].startswith("ConnectionRefusedError: ")


def test_migrate_says_where_the_schema_is_and_goes_back_only_when_asked(scratch_database: str) -> None:
    env = {"DEJA_DATABASE_URL": scratch_database}
    head = migrate.head_revision()
    older = migrate.revisions()[-2]

    assert deja("migrate", env=env).stdout.strip() == f"schema at {head}"

    refused = deja("migrate", older, env=env)
    assert refused.returncode == 1
    assert f"the schema is at {head}, after {older}: nothing done" in refused.stderr
    assert migrate.revision_of(scratch_database) == head

    for bogus in ("bogus", "+1"):
        unknown = deja("migrate", bogus, env=env)
        assert unknown.returncode == 1
        assert f"Can't locate revision identified by '{bogus}'" in unknown.stderr
        assert "Traceback" not in unknown.stderr
    assert migrate.revision_of(scratch_database) == head
    nowhere = deja("migrate", "--downgrade", env=env)
    assert nowhere.returncode == 2
    assert "name the revision to go back to" in nowhere.stderr

    back = deja("migrate", older, "--downgrade", env=env)
    assert (back.returncode, back.stdout.strip()) == (0, f"schema at {older}")
    assert migrate.revision_of(scratch_database) == older
    assert deja("migrate", env=env).stdout.strip() == f"schema at {head}"


def test_a_period_that_is_not_one_lists_those_that_are() -> None:
    result = deja("quotas", "set", "00000000-0000-0000-0000-000000000000", "week")

    assert result.returncode == 2
    assert "'week' is not a period: day or month" in result.stderr
