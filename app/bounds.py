"""Bounds that every edge shares: times and whole numbers that Postgres and Python both hold.

A value a client sends reaches SQL only inside these bounds, so that it is a 4xx problem detail
at the edge and never an overflow in a conversion or a driver error in a query (a `500`). Times
are the admin API's and the dashboard's (`GET /admin/stats?since=`, purges' `created_before`,
prices' `effective_from`, the dashboard's purge form); whole numbers are parsed from text only
by `whole_number` and bounded by their column (BIGINT: ledger ids, counts); text filters hold no
NUL character (`query_text`); names shown to people (tenants, keys, namespaces) hold only
characters that show (`hidden_characters`); a request carries at most one Authorization header
(`only_authorization`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from app.errors import BadRequest, Unauthorized

# Python's datetime holds years 1 to 9999, Postgres's timestamptz far more; the driver (asyncpg)
# reads the first and the last microsecond of Python's range as -infinity and infinity, so a time
# stays a whole second inside them. Converted to UTC first: 0001-01-01T00:00:00+14:00 is a day
# before Python's first, 9999-12-31T23:59:59-14:00 a day after its last.
EARLIEST_TEXT, LATEST_TEXT = "0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z"
EARLIEST, LATEST = datetime.fromisoformat(EARLIEST_TEXT), datetime.fromisoformat(LATEST_TEXT)
TIME_RANGE = f"{EARLIEST_TEXT} to {LATEST_TEXT}"

MAX_BIGINT = 2**63 - 1  # BIGINT, the ledger's ids and the quotas' counts


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` (spaces around it aside) as a whole number from `low` to `high`, or None. ASCII digits
    only: `str.isdigit()` takes "²" and other digits `int()` refuses, and a number parsed from a
    query or a header must never be a 500. No more digits than `high` has (leading zeros aside), so
    a huge string is never converted."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text.lstrip("0")) <= len(str(high))):
        return None
    value = int(text)
    return value if low <= value <= high else None


def utc_time(at: datetime, name: str) -> datetime:
    """`at` in UTC (a time without a zone is read as UTC), or ValueError when it falls outside
    `TIME_RANGE` once converted; the conversion itself never overflows."""
    try:
        utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:  # past year 1 or 9999 once the offset is taken off
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"'{name}' must be a time from {TIME_RANGE} (in UTC); {at.isoformat()} is not.")
    return utc


def query_text(value: str, name: str) -> str:
    """Text from a query string or a form as a filter: one Postgres can hold (no NUL character,
    which a text column refuses with an error), else a 400."""
    if "\x00" in value:
        raise BadRequest(f"'{name}' must not contain NUL characters.")
    return value


def query_time(at: datetime | None, name: str) -> datetime | None:
    """A time from a query string or a form, bounded as `utc_time` says: outside, a 400."""
    if at is None:
        return None
    try:
        return utc_time(at, name)
    except ValueError as exc:
        raise BadRequest(str(exc), extra={"earliest": EARLIEST_TEXT, "latest": LATEST_TEXT}) from exc


def time_text(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 time sent as text (a form's field), bounded as `query_time` bounds it; a bare
    number, which a datetime decoder would read as seconds since 1970, is a 400 like any other
    text that is not a time."""
    if text is None or not text.strip():
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(
            f"'{name}' must be an ISO 8601 time (2026-12-01T09:30:00Z), not {text[:40]!r}."
        ) from None
    return query_time(at, name)


# Characters a shown name must not hold: controls, format characters (a zero-width space, a
# right-to-left override), line and paragraph separators, private-use and surrogate code points;
# but the joiners that emoji sequences and Persian or Indic words need.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
JOINERS = frozenset({"\u200c", "\u200d"})
# Letters that show as nothing (Hangul fillers, the blank Braille pattern).
_BLANK_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` that do not show, as "U+XXXX", in order of code point: a name
    that holds one reads as blank, or as another name, in the dashboard and the CLI."""
    return sorted(
        {
            f"U+{ord(c):04X}"
            for c in text
            if c not in JOINERS and (unicodedata.category(c) in _HIDDEN_CATEGORIES or c in _BLANK_LETTERS)
        }
    )


def only_authorization(sent: Sequence[str]) -> str | None:
    """The request's one Authorization header (None: none). Two are a 401: a proxy in front may
    read the last where Déjà would read the first, and each would act for another key."""
    if len(sent) > 1:
        raise Unauthorized("More than one Authorization header; send one, 'Authorization: Bearer <key>'.")
    return sent[0] if sent else None
