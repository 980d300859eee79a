"""Alembic environment: async, on the URL `app.db.migrate` resolves (DEJA_DATABASE_URL or the
embedded Postgres)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.cache.models import hnsw_index_name
from app.db.engine import engine_url
from app.db.registry import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
# Alembic cannot compare expression indexes with an operator class (the HNSW ones); it says so
# and skips them, which is what we want: they are declared identically in models and migrations.
warnings.filterwarnings("ignore", message=r".*detected to include an operator clause.*")
DEFAULT_HNSW = hnsw_index_name("minilm-l6-v2-int8")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # HNSW indexes for non-default embedders are made at start-up for the configured
    # embedder (app.cache.repository.ensure_embedding_index), not by migrations.
    return not (
        type_ == "index" and name and name.startswith("ix_cache_entries_hnsw_") and name != DEFAULT_HNSW
    )


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from app.db.embedded import resolve_database_url
        from app.settings import get_settings

        url = resolve_database_url(get_settings())
    return str(url)


# What both modes compare and migrate.
_CONFIGURE: dict[str, Any] = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "include_object": include_object,
}


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, **_CONFIGURE)
    with context.begin_transaction():
        context.run_migrations()


# One migrating process at a time: `deja serve` migrates on start, and so may a `deja` command
# started beside it on a fresh database; the second waits here, then finds the schema current.
MIGRATION_LOCK = 0x64656A61  # "deja"
log = logging.getLogger("alembic.runtime.migration")


def _lock(connection: Connection) -> None:
    """Take the migration lock, trying again every half second: a waiter holds no transaction
    (no snapshot for a migration to wait on, no statement for a timeout to cancel)."""
    waiting = False
    while True:
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK}
        ).scalar()
        connection.commit()  # the lock is the session's: it outlives this transaction
        if taken:
            return
        if not waiting:
            waiting = True
            log.warning("another process is migrating this database; waiting for it")
        time.sleep(0.5)


def _run(connection: Connection) -> None:
    _lock(connection)
    try:
        context.configure(connection=connection, transaction_per_migration=True, **_CONFIGURE)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()


async def run_migrations_online() -> None:
    engine = create_async_engine(engine_url(_url()))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
