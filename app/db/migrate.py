"""Schema migrations, run programmatically (`deja migrate`, `deja serve`, tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.embedded import resolve_database_url
from app.db.engine import engine_url
from app.resources import alembic_ini, migrations_dir
from app.settings import Settings, get_settings


def _base_config() -> Config:
    """alembic.ini and migrations/ from the package (a wheel) or the checkout, wherever the
    process was started."""
    cfg = Config(str(alembic_ini()))
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("prepend_sys_path", "")  # import `app` as installed, not from the cwd
    return cfg


def alembic_config(url: str | None = None) -> Config:
    cfg = _base_config()
    cfg.attributes["database_url"] = url or resolve_database_url(get_settings())
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_base_config()).get_current_head()
    assert head is not None, "migrations/ has no revisions"
    return head


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(_base_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def is_older(revision: str, than: str) -> bool:
    """Whether `revision` (an id, a prefix of one, `base` or `head`) comes before `than`."""
    script = ScriptDirectory.from_config(_base_config())
    target = script.get_revision(revision)
    order = revisions()
    position = -1 if target is None else order.index(target.revision)
    return position < order.index(than)


def revision_of(url: str) -> str | None:
    """The schema revision of the database at `url` (None: no schema yet)."""

    async def read() -> str | None:
        engine = create_async_engine(engine_url(url))
        try:
            return await schema_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision; raises when the database cannot be reached."""
    async with engine.connect() as connection:
        return await current_revision(connection)


async def current_revision(connection: AsyncConnection) -> str | None:
    exists = await connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return None
    version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return str(version) if version is not None else None


def database_url(
    settings: Settings, *, migrate: bool = True, say: Callable[[str], None] | None = None
) -> str:
    """The configured database, or the embedded one (started or joined), at the schema head
    unless `migrate` is off. `say` is told where the data is, before anything starts."""
    if say is not None:
        say(where_data_lives(settings))
    url = resolve_database_url(settings)
    if migrate:
        upgrade(url)
    return url


def where_data_lives(settings: Settings) -> str:
    if settings.database_url:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).render_as_string(hide_password=True)
        return f"database {database} (DEJA_DATABASE_URL); local state in {settings.data_dir}"
    return f"data directory {settings.data_dir} (embedded Postgres; DEJA_DATA_DIR to change)"
