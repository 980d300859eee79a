"""Circuit breakers, one per upstream and model: skip a model that keeps failing at an upstream,
probe it after a cool-down."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed: every call passes. Open after `failure_threshold` consecutive failures: calls are
    refused until `cooldown_s` has passed. Half-open: one probe passes; its success closes the
    breaker, its failure opens it again.

    Every `allow()` that returns True must be answered by `record_success`, `record_failure` or
    `release` (no verdict, e.g. the caller went away), or a half-open breaker stays blocked.
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        # How the last failed call ended: named to the requests the open breaker skips.
        self.last_failure = ""

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._set(BreakerState.HALF_OPEN)
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        self._probe_in_flight = False

    def idle_past_cooldown(self) -> bool:
        """Open, its cool-down over, and no probe asked since: nobody has asked for its model."""
        return self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s

    def reset(self) -> None:
        """Closed, as new: nothing it saw counts any more."""
        self._failures = 0
        self._probe_in_flight = False
        self.last_failure = ""
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)


class ModelBreakers:
    """The breakers of one upstream, one per model it is asked for: a model that keeps failing
    there (overloaded, withdrawn, rate-limited on its own) is skipped while the upstream's other
    models are still asked. An upstream that is down opens each model's breaker as that model's
    own calls fail.

    Model names come from requests, so at most `max_models` breakers are kept: past that the
    least recently asked closed one is forgotten (an open one only when none is closed). An open
    breaker whose model nobody asked for during its cool-down is forgotten too, whenever the
    upstream is next asked for any model: it would let that model's next call through anyway, and
    it no longer counts as open (`state`, the breaker gauge).
    """

    def __init__(self, make: Callable[[str], CircuitBreaker], *, max_models: int = 256) -> None:
        self._make = make
        self._max_models = max_models
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()

    def of(self, model: str) -> CircuitBreaker:
        self._forget_idle(but=model)
        breaker = self._breakers.get(model)
        if breaker is not None:
            self._breakers.move_to_end(model)
            return breaker
        if len(self._breakers) >= self._max_models:
            closed = (m for m, b in self._breakers.items() if b.state is BreakerState.CLOSED)
            # Forgotten, its model is asked again: reported closed, as it now is.
            self._breakers.pop(next(closed, next(iter(self._breakers)))).reset()
        breaker = self._breakers[model] = self._make(model)
        return breaker

    def _forget_idle(self, but: str | None = None) -> None:
        for name in [m for m, b in self._breakers.items() if m != but and b.idle_past_cooldown()]:
            self._breakers.pop(name).reset()

    def not_closed(self) -> dict[str, BreakerState]:
        """The models whose breaker is open or half-open, with its state."""
        self._forget_idle()
        return {m: b.state for m, b in self._breakers.items() if b.state is not BreakerState.CLOSED}

    @property
    def state(self) -> BreakerState:
        """Open when some model's breaker is open, else half-open when one is, else closed."""
        states = set(self.not_closed().values())
        for state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            if state in states:
                return state
        return BreakerState.CLOSED
