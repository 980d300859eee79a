"""Files Déjà reads at run time that are not Python modules: the Alembic config, the migrations
and the SQL views and example queries.

In the repository they live at the top (`alembic.ini`, `migrations/`, `sql/`); a built wheel
carries a copy inside the package (`app/_resources/`, put there by setup.py). Both are found
from this package's own location, never from the working directory or site-packages.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def resource_root() -> Path:
    """The folder holding `alembic.ini`, `migrations/` and `sql/`."""
    bundled = _PACKAGE / "_resources"
    if (bundled / "alembic.ini").is_file():
        return bundled  # an installed wheel
    checkout = _PACKAGE.parent
    if (checkout / "alembic.ini").is_file() and (checkout / "pyproject.toml").is_file():
        return checkout  # a source checkout (editable install, tests)
    raise RuntimeError(
        f"Déjà's migrations are missing: neither {bundled} nor a source checkout around {_PACKAGE} "
        "has alembic.ini. Reinstall the package (pip install deja)."
    )


def alembic_ini() -> Path:
    return resource_root() / "alembic.ini"


def migrations_dir() -> Path:
    return resource_root() / "migrations"


def sql_dir() -> Path:
    return resource_root() / "sql"
