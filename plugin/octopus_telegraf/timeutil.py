"""Exact integer-nanosecond time handling. Never float seconds, never the host's time zone."""

import re
from datetime import date, datetime, timedelta, timezone

from dateutil import tz

LONDON = tz.gettz("Europe/London")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
NS_PER_SECOND = 1_000_000_000
HALF_HOUR_NS = 1800 * NS_PER_SECOND


def datetime_to_ns(moment: datetime) -> int:
    """An aware datetime to nanoseconds since the epoch; a naive one is London local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return (moment - EPOCH) // _MICROSECOND * 1000


_NAIVE_EPOCH = datetime(1970, 1, 1)
_OFFSET = re.compile(r"(?:Z|([+-])(\d\d):?(\d\d))")
_offset_ns: dict[str, int] = {}  # "+01:00" -> 3600e9; filled as offsets are met


def iso_to_ns(text: str) -> int:
    """Parse the API's ISO 8601 times (`Z`, `+01:00`, `+0100`, or none = London) to epoch ns."""
    # Fast path for the API's own shape, `YYYY-MM-DDTHH:MM:SS` + offset: naive arithmetic, no tzinfo.
    suffix = text[19:]
    offset = _offset_ns.get(suffix)
    if offset is None and (match := _OFFSET.fullmatch(suffix)):
        sign = -1 if match[1] == "-" else 1
        offset = _offset_ns[suffix] = sign * (int(match[2] or 0) * 3600 + int(match[3] or 0) * 60) * NS_PER_SECOND
    if offset is not None and len(text) > 19 and text[10] == "T":
        try:
            since = datetime.fromisoformat(text[:19]) - _NAIVE_EPOCH
            return (since.days * 86400 + since.seconds) * NS_PER_SECOND - offset
        except ValueError:
            pass
    return _general_iso_to_ns(text)


def _general_iso_to_ns(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # Python 3.10's fromisoformat knows neither `Z` nor `+0100`; the parser is imported only then.
        from dateutil import parser

        moment = parser.isoparse(text)
    return datetime_to_ns(moment)


def ns_to_utc_z(ns: int) -> str:
    """Epoch ns to `2024-02-27T00:00:00Z`: the API reads a `+` in a query as a space."""
    moment = EPOCH + timedelta(microseconds=ns // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def london_midnight_ns(day: date) -> int:
    return datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=LONDON))


def parse_date_or_datetime(text: str) -> int:
    """A setting's `2024-01-31` (London midnight) or ISO datetime (naive = London) to epoch ns."""
    text = text.strip()
    if len(text) == 10:
        return london_midnight_ns(date.fromisoformat(text))
    return iso_to_ns(text)


def floor_half_hour(ns: int) -> int:
    return ns - ns % HALF_HOUR_NS


def london_day_start(moment_ns: int) -> int:
    local = datetime.fromtimestamp(moment_ns // NS_PER_SECOND, tz=LONDON)
    return london_midnight_ns(local.date())


def london_days(start_ns: int, end_ns: int) -> list[int]:
    """London midnights of every day touched by [start, end): days of 23, 24 or 25 hours."""
    day = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=LONDON).date()
    days = []
    while (midnight := london_midnight_ns(day)) < end_ns:
        days.append(midnight)
        day += timedelta(days=1)
    return days
