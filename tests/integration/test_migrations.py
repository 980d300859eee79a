"""The migrations upgrade and downgrade cleanly, and agree with the models."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import migrate
from app.db.embedded import APP_ROLE, EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch_database(embedded_pg: EmbeddedPostgres) -> str:
    """An empty database of its own, so that downgrading never disturbs other tests."""
    name = f"migr_{uuid.uuid4().hex[:8]}"
    embedded_pg.server.psql(f"CREATE DATABASE {name} OWNER {APP_ROLE};")
    embedded_pg.server.psql(f"\\c {name}\nCREATE EXTENSION IF NOT EXISTS vector;")
    return embedded_pg.url.replace("/deja?", f"/{name}?")


def _tables(pg: EmbeddedPostgres, url: str) -> set[str]:
    database = url.split("@/")[1].split("?")[0]
    out = pg.server.psql(f"\\c {database}\nSELECT tablename FROM pg_tables WHERE schemaname = 'public';")
    # psql's aligned output: a header, a rule, the rows, a count; rows are bare table names.
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*[a-z_]+\s*", line)} - {"tablename"}


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


def test_partitioning_carries_rows_across_upgrade_and_downgrade(
    embedded_pg: EmbeddedPostgres, scratch_database: str
) -> None:
    """Migration 0080 rebuilds cache_entries as 16 partitions and its downgrade rebuilds the plain
    table: entries, their aliases and labels, the view reading them and row-level security all
    come through both ways."""
    before = ScriptDirectory.from_config(migrate.alembic_config(scratch_database)).get_revision("0080")
    assert before is not None
    assert isinstance(before.down_revision, str)
    migrate.upgrade(scratch_database, before.down_revision)
    tenants = asyncio.run(_fill(scratch_database))
    expected = asyncio.run(_entries(scratch_database, tenants))
    assert sum(len(rows) for rows in expected.values()) == 5
    indexes = asyncio.run(_indexes(scratch_database))
    assert "ix_cache_entries_hnsw_minilm_l6_v2_int8" in indexes

    migrate.upgrade(scratch_database, "0080")
    assert asyncio.run(_kind(scratch_database)) == ("p", 16)
    assert asyncio.run(_indexes(scratch_database)) == indexes
    assert asyncio.run(_entries(scratch_database, tenants)) == expected
    asyncio.run(_cascade_still_holds(scratch_database, tenants[0]))

    migrate.downgrade(scratch_database, before.down_revision)
    assert asyncio.run(_kind(scratch_database)) == ("r", 0)
    assert asyncio.run(_indexes(scratch_database)) == indexes
    after_one_delete = asyncio.run(_entries(scratch_database, tenants))
    assert sum(len(rows) for rows in after_one_delete.values()) == 4
    asyncio.run(_cascade_still_holds(scratch_database, tenants[1]))
    migrate.upgrade(scratch_database)
    assert asyncio.run(_kind(scratch_database)) == ("p", 16)


SYSTEM = "SELECT set_config('deja.system', 'on', true)"


def _tenant(tenant_id: uuid.UUID) -> str:
    return f"SELECT set_config('deja.tenant_id', '{tenant_id}', true)"


async def _fill(url: str) -> list[uuid.UUID]:
    """Two tenants: three entries and two, an alias and a label on each tenant's first entry."""
    engine = create_async_engine(url)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    async with engine.begin() as conn:
        await conn.execute(text(SYSTEM))
        for number, tenant in enumerate(tenants):
            await conn.execute(
                text("INSERT INTO tenants (id, name) VALUES (:id, :name)"),
                {"id": tenant, "name": f"m{tenant.hex}"},
            )
            for entry in range(3 - number):
                vector = "[" + ",".join(["0.1"] * 383 + [str(entry)]) + "]"
                entry_id = (
                    await conn.execute(
                        text(
                            "INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, embedder, "
                            "embedding, response, hit_count) VALUES (:t, 'gpt-4o-mini', '\\x01', :h, :p, "
                            "'minilm-l6-v2-int8', CAST(:v AS halfvec), '{}', :hits) RETURNING id"
                        ),
                        {
                            "t": tenant,
                            "h": uuid.uuid4().bytes,
                            "p": f"prompt {entry}",
                            "v": vector,
                            "hits": entry,
                        },
                    )
                ).scalar_one()
                if entry == 0:
                    await conn.execute(
                        text(
                            "INSERT INTO cache_aliases (tenant_id, namespace, exact_hash, entry_id, similarity) "
                            "VALUES (:t, '', '\\x02', :e, 0.95)"
                        ),
                        {"t": tenant, "e": entry_id},
                    )
                    await conn.execute(
                        text(
                            "INSERT INTO cache_labels (tenant_id, entry_id, request_id, source, judge, correct, "
                            "similarity, scorer, score) VALUES (:t, :e, :r, 'feedback', 'feedback', true, 0.9, "
                            "'cosine', 0.9)"
                        ),
                        {"t": tenant, "e": entry_id, "r": uuid.uuid4().hex},
                    )
    await engine.dispose()
    return tenants


async def _entries(url: str, tenants: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[object, ...]]]:
    """Each tenant's entries as its own context sees them (with their alias and label counts), and
    as the analytics view shows them."""
    engine = create_async_engine(url)
    seen: dict[uuid.UUID, list[tuple[object, ...]]] = {}
    async with engine.connect() as conn:
        for tenant in tenants:
            async with conn.begin():
                await conn.execute(text(_tenant(tenant)))
                rows = (
                    await conn.execute(
                        text(
                            "SELECT e.id, e.tenant_id, e.prompt, e.hit_count, e.embedding::text, "
                            "(SELECT count(*) FROM cache_aliases a WHERE a.entry_id = e.id), "
                            "(SELECT count(*) FROM cache_labels l WHERE l.entry_id = e.id), "
                            "(SELECT v.hit_count FROM analytics.top_entries v WHERE v.entry_id = e.id) "
                            "FROM cache_entries e ORDER BY e.prompt"
                        )
                    )
                ).all()
                seen[tenant] = [tuple(row) for row in rows]
                assert all(row[1] == tenant for row in rows)  # row-level security: its own rows only
    await engine.dispose()
    return seen


async def _kind(url: str) -> tuple[str, int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        kind = (
            await conn.execute(
                text("SELECT relkind::text FROM pg_class WHERE oid = 'cache_entries'::regclass")
            )
        ).scalar()
        parts = (
            await conn.execute(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'cache_entries'::regclass")
            )
        ).scalar()
    await engine.dispose()
    return str(kind), int(parts or 0)


async def _indexes(url: str) -> set[str]:
    """The entries' indexes and keys, by name (on a partitioned table: the parent's)."""
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'cache_entries'::regclass"
                )
            )
        ).scalars()
        found = set(names)
    await engine.dispose()
    return found


async def _cascade_still_holds(url: str, tenant: uuid.UUID) -> None:
    """Deleting an entry deletes its alias and its label: the foreign keys point at the new table."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(_tenant(tenant)))
        entry = (
            await conn.execute(text("SELECT entry_id FROM cache_aliases WHERE tenant_id = :t"), {"t": tenant})
        ).scalar_one()
        await conn.execute(
            text("DELETE FROM cache_entries WHERE id = :e AND tenant_id = :t"), {"e": entry, "t": tenant}
        )
        for table in ("cache_aliases", "cache_labels"):
            count = text(f"SELECT count(*) FROM {table} WHERE entry_id = :e")  # noqa: S608 (constants)
            left = (await conn.execute(count, {"e": entry})).scalar()
            assert left == 0, table
    await engine.dispose()
