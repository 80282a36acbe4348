"""Centre-local time: business days and timestamps as devices read them."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def iso(value: datetime | None, tz: str) -> str | None:
    return None if value is None else value.astimezone(zone(tz)).isoformat(timespec="seconds")


def business_date(now: datetime, tz: str) -> date:
    return now.astimezone(zone(tz)).date()


def day_start(now: datetime, tz: str) -> datetime:
    """Midnight of the business day containing ``now``, in the centre's time zone."""
    return now.astimezone(zone(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
