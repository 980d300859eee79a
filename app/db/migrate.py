"""Schema migrations, run programmatically (`deja migrate`, `deja serve`, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.embedded import resolve_database_url
from app.resources import alembic_ini, migrations_dir
from app.settings import get_settings


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
