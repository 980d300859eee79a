"""The circuit breaker's states, on a clock the tests move."""

from __future__ import annotations

from app.upstream import BreakerState, CircuitBreaker
from app.upstream.breaker import ModelBreakers


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


def test_model_breakers_keep_a_bounded_number_and_forget_closed_ones_first() -> None:
    changes: list[tuple[str, BreakerState]] = []

    def make(model: str) -> CircuitBreaker:
        return CircuitBreaker(1, 10.0, clock=Clock(), on_change=lambda state: changes.append((model, state)))

    breakers = ModelBreakers(make, max_models=2)
    breakers.of("a").record_failure()  # open
    breakers.of("b").record_success()
    breakers.of("c")  # "b", closed, is forgotten before "a", open
    assert breakers.not_closed() == {"a": BreakerState.OPEN}
    assert breakers.state is BreakerState.OPEN
    breakers.of("c").record_failure()
    breakers.of("d")  # every breaker kept is open: the least recently asked goes, reported closed
    assert breakers.not_closed() == {"c": BreakerState.OPEN}
    assert changes == [("a", BreakerState.OPEN), ("c", BreakerState.OPEN), ("a", BreakerState.CLOSED)]
    assert state_of(breakers.of("a")) is BreakerState.CLOSED  # asked again, as new


def test_an_open_breaker_nobody_asks_for_is_forgotten_after_its_cool_down() -> None:
    """A model asked for five times and failing, then never again (a name a client made up, a
    judge model switched away from): its breaker, and the upstream's gauge, stayed open."""
    clock, changes = Clock(), []

    def make(model: str) -> CircuitBreaker:
        return CircuitBreaker(1, 10.0, clock=clock, on_change=lambda state: changes.append((model, state)))

    breakers = ModelBreakers(make)
    breakers.of("made-up").record_failure()
    clock.now += 9.0
    breakers.of("gpt-4o").record_success()
    assert breakers.state is BreakerState.OPEN  # still in its cool-down
    clock.now += 1.0
    assert breakers.state is BreakerState.CLOSED
    assert breakers.not_closed() == {}
    assert changes == [("made-up", BreakerState.OPEN), ("made-up", BreakerState.CLOSED)]
    # One asked for again after its cool-down is probed, as before: not forgotten.
    breakers.of("gpt-4o").record_failure()
    clock.now += 10.0
    assert breakers.of("gpt-4o").allow()
    assert breakers.not_closed() == {"gpt-4o": BreakerState.HALF_OPEN}
