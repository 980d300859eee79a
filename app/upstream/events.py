"""Hooks the router calls as it works, so metrics and logs can be attached without a dependency here."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Protocol

from app.upstream.breaker import BreakerState


class Outcome(StrEnum):
    """How one attempt at one upstream ended."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"  # 429
    SERVER_ERROR = "server_error"  # 5xx, 408, 409, a broken or unreadable answer
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, reset, DNS
    REJECTED = "rejected"  # 400-class for the request itself: passed on to the client
    AUTH = "auth"  # 401/403: the upstream's key is wrong
    NOT_FOUND = "not_found"  # 404: e.g. the model is unknown there
    REFUSED = "refused"  # any other 4xx
    EMPTY = "empty"  # neither content nor tool calls
    BREAKER_OPEN = "breaker_open"  # skipped without a call
    NO_KEY = "no_key"  # the upstream's key variable is not set: skipped without a call
    STREAM_BROKEN = "stream_broken"  # failed after the first chunk went out


class RouterEvents(Protocol):
    def attempt(self, upstream: str, model: str, outcome: Outcome, latency_s: float) -> None:
        """One attempt ended (skips have latency 0)."""

    def retry(self, upstream: str, model: str, attempt: int, outcome: Outcome, delay_s: float) -> None:
        """Attempt number `attempt` failed with `outcome`; the next one starts after `delay_s`."""

    def fallback(self, from_upstream: str, to_upstream: str, to_model: str, outcome: Outcome) -> None:
        """The request moves on to the next target after `outcome` at `from_upstream`."""

    def breaker_changed(self, upstream: str, model: str, state: BreakerState) -> None:
        """The breaker of `model` at `upstream` moved to `state`."""

    def queued(self, upstream: str, priority: int, waited_s: float) -> None:
        """A request got a concurrency slot at `upstream` after `waited_s` (0 when one was free)."""


class NoRouterEvents:
    """Does nothing; subclass it and override only the hooks you need."""

    def attempt(self, upstream: str, model: str, outcome: Outcome, latency_s: float) -> None:
        return None

    def retry(self, upstream: str, model: str, attempt: int, outcome: Outcome, delay_s: float) -> None:
        return None

    def fallback(self, from_upstream: str, to_upstream: str, to_model: str, outcome: Outcome) -> None:
        return None

    def breaker_changed(self, upstream: str, model: str, state: BreakerState) -> None:
        return None

    def queued(self, upstream: str, priority: int, waited_s: float) -> None:
        return None


class RouterCounters(NoRouterEvents):
    """Counts events in memory: for tests, debugging, or a metrics exporter to read."""

    def __init__(self) -> None:
        self.attempts: Counter[tuple[str, Outcome]] = Counter()
        self.retries: Counter[str] = Counter()
        self.fallbacks: Counter[tuple[str, str]] = Counter()
        self.breaker_transitions: list[tuple[str, str, BreakerState]] = []
        self.queue_order: list[tuple[str, int]] = []

    def attempt(self, upstream: str, model: str, outcome: Outcome, latency_s: float) -> None:
        self.attempts[(upstream, outcome)] += 1

    def retry(self, upstream: str, model: str, attempt: int, outcome: Outcome, delay_s: float) -> None:
        self.retries[upstream] += 1

    def fallback(self, from_upstream: str, to_upstream: str, to_model: str, outcome: Outcome) -> None:
        self.fallbacks[(from_upstream, to_upstream)] += 1

    def breaker_changed(self, upstream: str, model: str, state: BreakerState) -> None:
        self.breaker_transitions.append((upstream, model, state))

    def queued(self, upstream: str, priority: int, waited_s: float) -> None:
        self.queue_order.append((upstream, priority))
