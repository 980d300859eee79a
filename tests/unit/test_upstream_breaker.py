"""The circuit breaker's states, on a clock the tests move."""

from __future__ import annotations

from app.upstream import BreakerState, CircuitBreaker


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # Read through a call so that type checkers do not narrow the state between steps.
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, 10.0, clock=Clock())

    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the run is broken
    breaker.record_failure()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_one_probe_after_the_cool_down() -> None:
    clock, changes = Clock(), list[BreakerState]()
    breaker = CircuitBreaker(1, 10.0, clock=clock, on_change=changes.append)
    breaker.record_failure()

    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()

    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probe_opens_again_for_a_full_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, 10.0, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now = 10.0
    assert breaker.allow()

    breaker.record_failure()

    assert state_of(breaker) is BreakerState.OPEN
    clock.now = 19.0
    assert not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()


def test_released_probe_lets_another_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.allow()

    breaker.release()  # the caller went away without a verdict

    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
