"""When a one-round-trip call fails, the request path falls back to a transaction for an outage or
a function whose migration has not run, and raises anything else."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from app.db.fastpath import missing_function, unavailable


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    error = asyncpg.PostgresError.new({"C": sqlstate, "M": "test", "S": "ERROR"})
    assert error.sqlstate == sqlstate
    return error


def test_an_outage_falls_back_without_disabling_the_function() -> None:
    gone = postgres_error("57P01")  # admin shutdown: the server is going away

    assert unavailable(gone, "deja_reserve_miss", "misses reserve in transactions")
    assert not missing_function(gone)


def test_a_missing_function_falls_back_and_says_which(caplog: pytest.LogCaptureFixture) -> None:
    missing = postgres_error("42883")

    with caplog.at_level(logging.WARNING):
        assert unavailable(missing, "deja_reserve_miss", "misses reserve in transactions")
    assert missing_function(missing)
    assert "deja_reserve_miss is missing (migrations not applied)" in caplog.text


def test_any_other_error_is_raised_by_the_caller() -> None:
    assert not unavailable(postgres_error("23505"), "deja_reserve_miss", "-")  # a unique violation
    assert not unavailable(ValueError("bad"), "deja_reserve_miss", "-")
