"""The whole UTC hours of a stats window: the part the hourly rollup answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.ledger.rollup import whole_hours

Z = UTC


@pytest.mark.parametrize(
    ("since", "until", "first", "end"),
    [
        (None, None, None, None),
        (
            datetime(2026, 3, 1, 4, tzinfo=Z),
            datetime(2026, 3, 1, 8, tzinfo=Z),
            datetime(2026, 3, 1, 4, tzinfo=Z),
            datetime(2026, 3, 1, 8, tzinfo=Z),
        ),
        (
            datetime(2026, 3, 1, 4, 10, tzinfo=Z),
            datetime(2026, 3, 1, 6, 30, tzinfo=Z),
            datetime(2026, 3, 1, 5, tzinfo=Z),
            datetime(2026, 3, 1, 6, tzinfo=Z),
        ),
        # A zone half an hour off UTC: 10:00 in Kolkata is 04:30 UTC.
        (
            datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            None,
            datetime(2026, 3, 1, 5, tzinfo=Z),
            None,
        ),
        # Without a zone: UTC.
        (datetime(2026, 3, 1, 4, 0, 1), None, datetime(2026, 3, 1, 5, tzinfo=Z), None),  # noqa: DTZ001
        # The calendar's last hour has no next one: no whole hour after it.
        (datetime(9999, 12, 31, 23, 30, tzinfo=Z), None, datetime.max.replace(tzinfo=Z), None),
    ],
)
def test_whole_hours(
    since: datetime | None, until: datetime | None, first: datetime | None, end: datetime | None
) -> None:
    assert whole_hours(since, until) == (first, end)
