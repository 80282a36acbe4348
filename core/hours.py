"""A centre's opening hours and closed days, as its provisioning file (and, later, its
admin pages) gives them: one place that reads, checks and answers "open when?".

Hours are per weekday, a list of ``"HH:MM-HH:MM"`` ranges in the centre's time zone::

    [centre.hours]
    mon = ["07:30-11:30", "13:30-17:00"]
    sat = ["07:30-11:30"]

Weekdays not given are closed; a centre that gives no hours at all keeps the usual hours
of Vietnamese public offices, Monday to Friday 07:30-11:30 and 13:30-17:00. Closed days
(public holidays, a day the centre moves) are ISO dates: ``closed_days = ["2026-09-02"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = {day: ["07:30-11:30", "13:30-17:00"] for day in WEEKDAYS[:5]}
_RANGE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


class HoursError(ValueError):
    """A schedule that cannot be read; the message says why, in Vietnamese (``en``: in
    English)."""

    def __init__(self, vi: str, en: str):
        super().__init__(vi)
        self.vi, self.en = vi, en


@dataclass(frozen=True)
class OpeningHours:
    """Weekday (0 = Monday) -> ((opens, closes), ...) in local time, and closed dates."""

    week: tuple[tuple[tuple[time, time], ...], ...]
    closed: frozenset[date]

    @classmethod
    def parse(cls, hours: dict | None, closed_days: list | None = None) -> OpeningHours:
        """From the provisioning file's (or the store's) form; raises HoursError."""
        if hours is None:
            hours = DEFAULT_HOURS
        if not isinstance(hours, dict):
            raise HoursError(
                '“hours” phải là một bảng theo ngày: mon = ["07:30-11:30"]',
                "'hours' must be a table by weekday: mon = [\"07:30-11:30\"]",
            )
        for day in hours:
            if day not in WEEKDAYS:
                days = ", ".join(WEEKDAYS)
                raise HoursError(
                    f"ngày lạ “{day}” trong “hours” (dùng {days})",
                    f"unknown day '{day}' in 'hours' (use {days})",
                )
        week = []
        for day in WEEKDAYS:
            ranges = hours.get(day, [])
            if not isinstance(ranges, list):
                raise HoursError(
                    f"“hours.{day}” phải là danh sách khoảng giờ",
                    f"'hours.{day}' must be a list of ranges",
                )
            parsed = []
            for text in ranges:
                match = _RANGE.fullmatch(text) if isinstance(text, str) else None
                if match is None:
                    raise HoursError(
                        f"khoảng giờ “{text}” ({day}) phải có dạng 07:30-11:30",
                        f"the range '{text}' ({day}) must look like 07:30-11:30",
                    )
                h1, m1, h2, m2 = map(int, match.groups())
                if h2 == 24 and m2:
                    raise HoursError(
                        f"khoảng giờ “{text}” ({day}) vượt quá 24:00",
                        f"the range '{text}' ({day}) goes past 24:00",
                    )
                opens = time(h1, m1)
                closes = time(23, 59, 59) if h2 == 24 else time(h2, m2)
                if closes <= opens:
                    raise HoursError(
                        f"khoảng giờ “{text}” ({day}) kết thúc trước khi bắt đầu",
                        f"the range '{text}' ({day}) ends before it starts",
                    )
                if parsed and opens < parsed[-1][1]:
                    raise HoursError(
                        f"các khoảng giờ của {day} phải tăng dần, không chồng nhau",
                        f"the ranges of {day} must go forward without overlapping",
                    )
                parsed.append((opens, closes))
            week.append(tuple(parsed))
        closed = set()
        for text in closed_days or []:
            try:
                closed.add(date.fromisoformat(text))
            except (TypeError, ValueError):
                raise HoursError(
                    f"ngày nghỉ “{text}” phải có dạng 2026-09-02",
                    f"the closed day '{text}' must look like 2026-09-02",
                ) from None
        return cls(tuple(week), frozenset(closed))

    def ranges(self, day: date) -> tuple[tuple[time, time], ...]:
        """The day's opening ranges (none on a closed day)."""
        return () if day in self.closed else self.week[day.weekday()]

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        local = at.astimezone(zone)
        now = local.time()
        return any(a <= now < b for a, b in self.ranges(local.date()))

    def periods(self, day: date, minutes: int, zone: ZoneInfo):
        """The day's opening time cut into periods of ``minutes`` (aware datetimes, the
        last of a range cut short at closing time); for appointment slots."""
        step = timedelta(minutes=minutes)
        for opens, closes in self.ranges(day):
            start = datetime.combine(day, opens, zone)
            end = datetime.combine(day, closes, zone)
            while start < end:
                yield start, min(start + step, end)
                start += step

    def upcoming(self, at: datetime, zone: ZoneInfo, days: int):
        """The opening ranges (aware datetimes) that end after ``at``, from its day on for
        ``days`` days."""
        today = at.astimezone(zone).date()
        for k in range(days):
            day = today + timedelta(days=k)
            for opens, closes in self.ranges(day):
                start = datetime.combine(day, opens, zone)
                end = datetime.combine(day, closes, zone)
                if end > at:
                    yield start, end

    def next_open(self, at: datetime, zone: ZoneInfo, days: int = 366) -> datetime | None:
        """When it opens next after ``at`` (within ``days``; None: not in that time)."""
        for start, _ in self.upcoming(at, zone, days):
            if start > at:
                return start
        return None


def when_words(at: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """A moment as a citizen reads it, ``(vi, en)``: "07:30 thứ Ba 08/12/2026",
    "07:30 Tuesday 08/12/2026" (in the centre's time zone)."""
    local = at.astimezone(zone)
    vi_day = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
    en_day = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    wd = local.weekday()
    hm, dmy = local.strftime("%H:%M"), local.strftime("%d/%m/%Y")
    return f"{hm} {vi_day[wd]} {dmy}", f"{hm} {en_day[wd]} {dmy}"
