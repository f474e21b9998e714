"""Exact integer-nanosecond time handling. Never float seconds, never the host's time zone."""

import re
from datetime import date, datetime, timedelta, timezone
from operator import add, itemgetter

from dateutil import tz

LONDON = tz.gettz("Europe/London")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
NS_PER_SECOND = 1_000_000_000
HALF_HOUR_NS = 1800 * NS_PER_SECOND
LARGEST_NS = 2**62  # about the year 2116: a later time is damage, and would overflow InfluxDB's int64 ns


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


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK = re.compile(r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:?[0-9]{2})")
_day_ns: dict[str, int] = {}  # "2024-03-31" -> its midnight UTC
_clock_ns: dict[str, int] = {}  # "T01:30:00+01:00" -> ns after the date's midnight UTC (here 1800e9)


_date_part = itemgetter(slice(None, 10))
_clock_part = itemgetter(slice(10, None))


def iso_times_to_ns(texts) -> list[int] | None:
    """iso_to_ns of many times in the API's own shape (`2024-03-31T01:30:00+01:00`) at once: a
    day's text and a clock's text are each worked out once, then added. None when a time is in any
    other shape: iso_to_ns them one by one."""
    days, clocks = _day_ns, _clock_ns
    try:
        dates, times = list(map(_date_part, texts)), list(map(_clock_part, texts))
    except TypeError:  # not text
        return None
    if len(days) > 20000 or len(clocks) > 20000:  # what a long-running process met lately is enough
        days.clear()
        clocks.clear()
    for day in set(dates).difference(days):
        days[day] = _exactly(f"{day}T00:00:00Z") if _DAY.fullmatch(day) else None
    for clock in set(times).difference(clocks):
        clocks[clock] = _exactly(f"1970-01-01{clock}") if _CLOCK.fullmatch(clock) else None
    try:
        return list(map(add, map(days.__getitem__, dates), map(clocks.__getitem__, times)))
    except TypeError:  # None + ...: a time in another shape
        return None


def _exactly(text: str) -> int | None:
    try:
        return iso_to_ns(text)
    except (ValueError, OverflowError):
        return None


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


def ns_to_utc_minute_z(ns: int) -> str:
    """Epoch ns to `2024-02-27T00:30Z`, to the minute: the Carbon Intensity API's times."""
    return ns_to_utc_z(ns)[:16] + "Z"


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


HOUR_NS = 3600 * NS_PER_SECOND
DAY_NS = 86400 * NS_PER_SECOND
_london_midnight_of: dict[int, int] = {}  # days since 1970-01-01 -> London's midnight of that date


def london_day_start(moment_ns: int) -> int:
    """The London midnight that began the day of `moment_ns`: the midnight of its UTC date, or of the
    next (23:00 UTC in summer) or previous date. Each date's midnight is worked out once."""
    date_index = moment_ns // DAY_NS
    for index in (date_index + 1, date_index, date_index - 1):
        midnight = _london_midnight_of.get(index)
        if midnight is None:
            if len(_london_midnight_of) > 100_000:
                _london_midnight_of.clear()
            midnight = _london_midnight_of[index] = london_midnight_ns(date(1970, 1, 1) + timedelta(days=index))
        if midnight <= moment_ns:
            return midnight
    raise AssertionError("unreachable: London is within a day of UTC")


def london_minute_of_day(moment_ns: int) -> int:
    """The minute of London's wall clock at `moment_ns` (00:30 on a clock-change day is 30, whatever the
    hours the day has had)."""
    local = datetime.fromtimestamp(moment_ns // NS_PER_SECOND, LONDON)
    return local.hour * 60 + local.minute


def next_london_midnight(day_ns: int) -> int:
    """The London midnight after the one at `day_ns` (23, 24 or 25 hours on)."""
    return london_day_start(day_ns + 26 * HOUR_NS)


def london_days(start_ns: int, end_ns: int) -> list[int]:
    """London midnights of every day touched by [start, end): days of 23, 24 or 25 hours."""
    days = []
    day = london_day_start(start_ns)
    while day < end_ns:
        days.append(day)
        day = next_london_midnight(day)
    return days


def london_date(moment_ns: int) -> str:
    """The London date: an agreement from London midnight in summer is 23:00 UTC the day before."""
    return datetime.fromtimestamp(moment_ns // NS_PER_SECOND, tz=LONDON).date().isoformat()
