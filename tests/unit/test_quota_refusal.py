"""A refused reservation always names a limit, even when the counters moved before they were read."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from app.ledger.quotas import _exceeded

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _quota(**values: object) -> SimpleNamespace:
    state: dict[str, object] = {
        "period": "day",
        "requests": 0,
        "tokens": 0,
        "reserved_tokens": 0,
        "cost_usd": Decimal(0),
        "reserved_cost_usd": Decimal(0),
        "max_requests": None,
        "max_tokens": None,
        "max_cost_usd": None,
    }
    state.update(values)
    return SimpleNamespace(**state)


def test_a_full_request_quota_is_named() -> None:
    refusal = _exceeded(_quota(requests=10, max_requests=10), 50, Decimal("0.001"), AT)

    assert "daily requests quota is exhausted: 10 of 10 requests used" in str(refusal)
    assert refusal.retry_after_s == 12 * 3600 + 1


def test_a_request_quota_released_before_the_read_still_refuses_clearly() -> None:
    # Another process released a reservation between the refusal and this read: no counter is
    # over its limit any more, and the period has no cost limit to name.
    refusal = _exceeded(_quota(requests=9, max_requests=10), 50, Decimal("0.001"), AT)

    assert "daily requests quota is exhausted" in str(refusal)


def test_a_cost_quota_is_named_with_its_figures() -> None:
    refusal = _exceeded(
        _quota(cost_usd=Decimal("0.9"), max_cost_usd=Decimal("1"), max_tokens=10**6), 50, Decimal("0.2"), AT
    )

    assert (
        "daily cost quota has too little left for this request: $0.900000 of $1.000000 used or reserved"
        in str(refusal)
    )
    spent = _exceeded(_quota(cost_usd=Decimal("1"), max_cost_usd=Decimal("1")), 50, Decimal("0.2"), AT)
    assert "daily cost quota is exhausted: $1.000000 of $1.000000" in str(spent)
