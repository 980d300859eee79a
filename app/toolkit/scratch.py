"""A throwaway embedded Postgres for the measuring tools: a temporary folder, a server started in
it and migrated; stopped and removed afterwards, whatever happened."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.db import migrate
from app.db.embedded import EmbeddedPostgres, start_embedded


@dataclass(frozen=True, slots=True)
class ScratchDatabase:
    embedded: EmbeddedPostgres
    # The temporary folder: the server's files under `pg/`; room for anything else a tool keeps.
    folder: Path

    @property
    def url(self) -> str:
        return self.embedded.url

    @property
    def postmaster_pid(self) -> int:
        """The server's main process (its CPU, with its children's, is Postgres's)."""
        pid = postmaster_pid(self.folder / "pg")
        if pid is None:
            raise RuntimeError("the scratch server has no postmaster.pid")
        return pid


def postmaster_pid(pgdata: Path) -> int | None:
    """The main process of the Postgres whose data directory is `pgdata`, if it runs."""
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def scratch_database(prefix: str) -> Iterator[ScratchDatabase]:
    """A fresh, migrated embedded Postgres in a new temporary folder named `prefix...`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        embedded = start_embedded(folder)
        try:
            migrate.upgrade(embedded.url)
            yield ScratchDatabase(embedded, folder)
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
