"""How long a grant holds, as providers give it and read it.

A provider grants consent "valid until 2027-12-31": through that whole day, UTC. The ledger
stores the first moment the grant no longer holds, ``Consent.expires_at`` = 2028-01-01
00:00 UTC (an exclusive end), which is what the consent rule compares with the clock
(``expires_at <= now``: expired). Pages therefore show the day *before* a midnight end,
never the stored moment itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from portal.db import stored_utc

__all__ = ["expiry_after", "last_valid_day"]

_INSTANT = timedelta(microseconds=1)


def expiry_after(last_day: date) -> datetime:
    """The stored end of a grant valid through ``last_day`` (UTC): the next midnight."""
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=UTC)


def last_valid_day(expires_at: datetime) -> date:
    """The last day (UTC) on which a grant ending at ``expires_at`` still holds."""
    return (stored_utc(expires_at) - _INSTANT).date()
