"""The migrations upgrade and downgrade cleanly, and agree with the models."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from alembic import command

from app.db import migrate
from app.db.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]


def _tables(pg: EmbeddedPostgres, url: str) -> set[str]:
    database = url.split("@/")[1].split("?")[0]
    out = pg.server.psql(f"\\c {database}\nSELECT tablename FROM pg_tables WHERE schemaname = 'public';")
    # psql's aligned output: a header, a rule, the rows, a count; rows are bare table names.
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*[a-z_]+\s*", line)} - {"tablename"}


def _psql(pg: EmbeddedPostgres, url: str) -> Callable[[str], str]:
    """psql on the database `url` names, as the superuser: no row-level security."""
    database = url.split("@/")[1].split("?")[0]
    return lambda sql: pg.server.psql(f"\\c {database}\n{sql}")


def test_upgrade_then_downgrade_then_upgrade(embedded_pg: EmbeddedPostgres, scratch_database: str) -> None:
    migrate.upgrade(scratch_database)
    assert {"tenants", "api_keys", "cache_entries", "ledger", "prices", "quotas", "audit_log"} <= _tables(
        embedded_pg, scratch_database
    )
    command.check(migrate.alembic_config(scratch_database))  # models and migrations agree
    migrate.downgrade(scratch_database, "base")
    assert _tables(embedded_pg, scratch_database) == {"alembic_version"}
    migrate.upgrade(scratch_database)
    assert "cache_entries" in _tables(embedded_pg, scratch_database)


def test_alembic_check_cli_is_clean(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=ROOT,
        env={"DEJA_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_downgrading_the_static_probe_drops_the_functions_the_service_created(
    embedded_pg: EmbeddedPostgres, scratch_database: str
) -> None:
    """Migration 0140's per-embedder probe functions are created at start-up, not by the migration;
    its downgrade still removes every one of them and leaves 0080's function working."""
    database = scratch_database.split("@/")[1].split("?")[0]

    def functions() -> list[str]:
        out = embedded_pg.server.psql(
            f"\\c {database}\nSELECT proname FROM pg_proc WHERE proname ~ '^deja_(ensure_)?semantic_probe' "
            "ORDER BY proname;"
        )
        return re.findall(r"deja_\w+", out)

    migrate.upgrade(scratch_database)
    embedded_pg.server.psql(
        f"\\c {database}\nSELECT deja_ensure_semantic_probe('minilm-l6-v2-int8', 384), "
        "deja_ensure_semantic_probe('another-embedder', 768);"
    )
    assert len(functions()) == 4
    migrate.downgrade(scratch_database, "0130")
    assert functions() == ["deja_semantic_probe"]
    probed = embedded_pg.server.psql(
        f"\\c {database}\nSELECT count(*) AS found FROM deja_semantic_probe(gen_random_uuid(), '', "
        "'\\x00'::bytea, 'minilm-l6-v2-int8', 384, array_fill(0.1, ARRAY[384])::halfvec, 5, 64, NULL, 0);"
    )
    assert re.search(r"^\s*0\s*$", probed, re.MULTILINE)


def test_names_that_differ_only_in_case_keep_the_oldest_spelling_and_the_others_are_renamed(
    embedded_pg: EmbeddedPostgres, scratch_database: str
) -> None:
    """Before 0200 "Acme" and "acme" could both exist; after it they are one name, so the later
    tenants get their id appended and the oldest keeps its name; a new case variant is refused."""
    psql = _psql(embedded_pg, scratch_database)

    migrate.upgrade(scratch_database, "0190")
    psql(
        "INSERT INTO tenants (id, name, created_at) VALUES "
        "('00000000-0000-4000-8000-000000000001', 'Acme', now() - interval '2 days'), "
        "('00000000-0000-4000-8000-000000000002', 'acme', now() - interval '1 day'), "
        "('00000000-0000-4000-8000-000000000003', 'ACME', now()), "
        "('00000000-0000-4000-8000-000000000004', 'Straße', now()), "
        "('00000000-0000-4000-8000-000000000005', 'other', now());"
    )
    migrate.upgrade(scratch_database)
    names = psql("SELECT id || '=' || name AS row FROM tenants ORDER BY id;")
    assert "0001=Acme" in names
    assert "0002=acme (00000000-0000-4000-8000-000000000002)" in names
    assert "0003=ACME (00000000-0000-4000-8000-000000000003)" in names
    assert "0004=Straße" in names
    assert "0005=other" in names
    audited = psql("SELECT filters->>'was' AS was FROM audit_log WHERE actor = 'migration 0200' ORDER BY 1;")
    assert re.findall(r"^\s*(\w+)\s*$", audited, re.MULTILINE)[1:] == ["ACME", "acme"], audited
    psql("INSERT INTO tenants (name) VALUES ('STRASSE');")  # refused: psql reports it on stderr
    assert re.search(
        r"^\s*1\s*$", psql("SELECT count(*) FROM tenants WHERE name ILIKE 'stra%';"), re.MULTILINE
    )
    migrate.downgrade(scratch_database, "0190")
    assert "0002=acme (00000000-0000-4000-8000-000000000002)" in psql(
        "SELECT id || '=' || name AS row FROM tenants ORDER BY id;"
    )


def test_namespaces_stored_before_names_were_normalised_take_the_normalised_name(
    embedded_pg: EmbeddedPostgres, scratch_database: str
) -> None:
    """An entry filed under "team-a " (or a decomposed "café") before 0220 was found by no lookup
    or purge, which read "team-a" ("café" composed); analysts saw two namespaces for one."""
    psql = _psql(embedded_pg, scratch_database)

    migrate.upgrade(scratch_database, "0210")
    psql(
        "INSERT INTO tenants (id, name) VALUES ('00000000-0000-4000-8000-0000000000aa', 'ns');"
        "INSERT INTO cache_entries (id, tenant_id, namespace, model, scope_hash, exact_hash, prompt, response) "
        "VALUES ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000aa', ' team-a ', 'm', 'x', 'a', 'p', '{}'),"
        " ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-0000000000aa', 'cafe' || U&'\\0301', 'm', 'x', 'b', 'p', '{}'),"
        " ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-0000000000aa', 'team-b', 'm', 'x', 'c', 'p', '{}');"
        "INSERT INTO cache_aliases (tenant_id, namespace, exact_hash, entry_id, similarity) VALUES "
        "('00000000-0000-4000-8000-0000000000aa', ' team-a ', 'z', '00000000-0000-4000-8000-000000000001', 0.9),"
        " ('00000000-0000-4000-8000-0000000000aa', 'team-b', 'z', '00000000-0000-4000-8000-000000000003', 0.9);"
        "INSERT INTO ledger (tenant_id, request_id, requested_model, namespace, cache_status, latency_ms, "
        "http_status) VALUES ('00000000-0000-4000-8000-0000000000aa', 'r1', 'm', 'team-a' || chr(9), 'miss', 1, 200);"
    )
    migrate.upgrade(scratch_database)
    entries = psql("SELECT '[' || namespace || ']' AS ns FROM cache_entries ORDER BY id;")
    assert re.findall(r"\[[^]]*\]", entries) == ["[team-a]", "[café]", "[team-b]"], entries
    assert "[team-a]" in psql("SELECT '[' || namespace || ']' AS ns FROM ledger;")
    aliases = psql("SELECT '[' || namespace || ']' AS ns FROM cache_aliases;")
    assert re.findall(r"\[[^]]*\]", aliases) == ["[team-b]"], aliases


def test_two_processes_migrating_one_fresh_database_at_once_both_succeed(scratch_database: str) -> None:
    """`deja serve` migrates on start, and a `deja` command started beside it on a fresh database
    did too: the second died on the schema version's duplicate key, and took the server with it."""
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from app.db import migrate; migrate.upgrade(sys.argv[1])",
                scratch_database,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    command.check(migrate.alembic_config(scratch_database))  # one schema, at the head
