"""Telling "the database is unreachable" apart from every other database error.

An outage must not fail requests (docs/reliability.md): callers catch exactly these and degrade
(BYPASS, spooled ledger rows). A bug (a bad statement, a constraint) must still surface.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# SQLSTATE classes: 08 connection exception, 57 operator intervention (shutdown, cannot connect now,
# a statement cancelled by its timeout), 53 insufficient resources (too many connections).
_OUTAGE_SQLSTATE_CLASSES = ("08", "57", "53")
# The statement ran past `statement_timeout` (or was cancelled): the database is there, but slow.
QUERY_CANCELED = "57014"


def database_error_of(error: BaseException) -> BaseException | None:
    """The database error in `error`'s chain, if any (SQLAlchemy's or the driver's own)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.StatementError) or type(current).__module__.startswith("asyncpg"):
            return current
        current = current.__cause__ or current.__context__
    return None


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, SQLAlchemy's or the driver's own; None for anything else."""
    original = getattr(error, "orig", None)
    sqlstate = (
        getattr(original, "sqlstate", None)
        or getattr(getattr(original, "__cause__", None), "sqlstate", None)
        or getattr(error, "sqlstate", None)
    )
    return sqlstate if isinstance(sqlstate, str) else None


def describe_database_error(error: BaseException) -> str:
    """A database error as its class and SQLSTATE: never its message, which may quote the
    statement's parameters (asyncpg's "invalid input for query argument $1: '<the value>'")."""
    original = getattr(error, "orig", None)
    sqlstate = sqlstate_of(error)
    cause = type(getattr(original, "__cause__", None) or original or error).__name__
    return f"{cause} (SQLSTATE {sqlstate})" if sqlstate else cause


def is_statement_timeout(error: BaseException) -> bool:
    """A statement cancelled by `statement_timeout`: an outage to the request paths (they degrade),
    but work that can be split (a purge's batches) can retry in smaller pieces. Not a statement an
    operator cancelled (the same SQLSTATE, told apart by Postgres's message)."""
    database_error = database_error_of(error)
    return (
        database_error is not None
        and sqlstate_of(database_error) == QUERY_CANCELED
        and "statement timeout" in str(getattr(database_error, "orig", None) or database_error)
    )


def is_database_outage(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError | OSError | ConnectionError):
        return True
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa_exc.InterfaceError):
            return True
        sqlstate = sqlstate_of(error)
        if sqlstate is not None and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
        cause = getattr(error.orig, "__cause__", None)
        return isinstance(cause, OSError | ConnectionError) or type(cause).__name__ in {
            "ConnectionDoesNotExistError",
            "InterfaceError",
            "InternalClientError",
        }
    return False
