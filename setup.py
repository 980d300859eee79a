"""Only here to put the migrations, the Alembic config and the SQL files into the wheel.

They stay at the top of the repository (`migrations/`, `sql/`, `alembic.ini`), where Alembic and
analysts expect them; a built package carries a copy in `app/_resources/`, where
`app.resources` finds them. Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("alembic.ini", "migrations", "sql")


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        target = Path(self.build_lib) / "app" / "_resources"
        for name in RESOURCES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    target / name,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithResources})
