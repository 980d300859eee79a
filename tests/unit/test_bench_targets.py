"""The throughput targets of `deja bench` are rates at a latency bound: the best run within it."""

from __future__ import annotations

from app.toolkit.bench.http import ClassResult
from app.toolkit.bench.report import best_within
from app.toolkit.bench.runner import sweep_connections


def run(name: str, rate: float, p99_ms: float) -> ClassResult:
    """A 10-second run of `rate` requests a second whose p99 is `p99_ms` (2% of them that slow)."""
    completed = int(rate * 10)
    fast = completed - completed // 50
    return ClassResult(
        name=name,
        target="deja",
        latencies_ms=[1.0] * fast + [p99_ms] * (completed - fast),
        completed_in_window=completed,
        seconds=10.0,
    )


def test_the_highest_rate_within_the_bound_counts_whatever_the_connections() -> None:
    failing = run("exact hit, 8 connections", 700, 5)
    failing.errors = 3  # fast, but with errors: not a rate at the bound
    classes = [
        run("exact hit", 650, 149),  # the configured concurrency: faster, but past the bound
        run("exact hit, 2 connections", 300, 8),
        run("exact hit, 4 connections", 610, 48),
        failing,
        run("semantic hit, 8 connections", 900, 10),  # another class
        run("exact hit, 1 client", 2000, 1),  # not a throughput run
    ]
    best = best_within(classes, "exact hit", p99_ms=50)
    assert best is not None
    assert (best.name, round(best.throughput)) == ("exact hit, 4 connections", 610)


def test_no_run_within_the_bound_gives_none() -> None:
    classes = [run("semantic hit", 56, 520), run("semantic hit, 2 connections", 30, 90)]
    assert best_within(classes, "semantic hit", p99_ms=50) is None
    assert best_within(classes, "exact hit", p99_ms=50) is None


def test_the_sweep_doubles_from_two_below_the_concurrency() -> None:
    assert sweep_connections(16) == [2, 4, 8]
    assert sweep_connections(8) == [2, 4]
    assert sweep_connections(2) == []
