"""A page's rows, parsed and chosen: the API's JSON rows to (starts, ends, values) columns, every row
checked (shape, finite, order, 1970-2116, not in the future); a half-hour listed twice resolved to its
last value; and the half-hours new or changed since printed, within the point budget."""

import math
from itertools import compress
from operator import itemgetter, lt, ne

from octopus_telegraf.api.pagestream import row_start_text
from octopus_telegraf.base.timeutil import HOUR_NS, LARGEST_NS, NS_PER_SECOND, iso_times_to_ns, iso_to_ns

FUTURE_SLACK_NS = 3600 * NS_PER_SECOND  # consumption is measured, never forecast


_ROW_FIELDS = itemgetter("consumption", "interval_start", "interval_end")


def parse_rows(results: list, on_bad, now_ns: int) -> tuple[list[int], list[int], list[float]]:
    """(starts ns, ends ns, consumptions) of the rows as the page stream decodes them, sorted by
    start; `on_bad(reason)` for each unusable row. A half-hour listed twice keeps its last value, so
    every gather agrees on one."""
    columns = _contiguous_rows(results, now_ns)
    return columns if columns is not None else rows_one_by_one(results, on_bad, now_ns)


def rows_one_by_one(results: list, on_bad, now_ns: int) -> tuple[list[int], list[int], list[float]]:
    """parse_rows for any chunk: each row checked and parsed on its own."""
    rows: dict[int, tuple[int, int, float]] = {}
    previous_text = previous_ns = None
    for row in results:
        try:
            start_text, end_text, value = row["interval_start"], row["interval_end"], row["consumption"]
            if type(start_text) is not str or type(end_text) is not str:
                raise TypeError("interval times must be text")
            if type(value) is int:
                value = float(value)
            # a half-hour's start is the previous one's end: each time is parsed once, not twice
            start = previous_ns if start_text == previous_text else iso_to_ns(start_text)
            end = iso_to_ns(end_text)
            previous_text, previous_ns = end_text, end
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            on_bad(f"unreadable row ({type(exc).__name__})")
            continue
        if type(value) is not float or not math.isfinite(value):
            on_bad(f"consumption {value!r:.40} is not a finite number")
            continue
        if not 0 <= start < end < LARGEST_NS:
            on_bad("interval ends before it starts, or lies outside 1970-2116")
            continue
        if start > now_ns + FUTURE_SLACK_NS:
            on_bad("interval in the future (is this machine's clock right?)")
            continue
        rows[start] = (start, end, value)
    ordered = sorted(rows.values())
    return [row[0] for row in ordered], [row[1] for row in ordered], [row[2] for row in ordered]


def _contiguous_rows(results: list, now_ns: int) -> tuple[list[int], list[int], list[float]] | None:
    """What parse_rows gives, column by column, for the usual chunk: good rows, each starting where the
    one before ended (so in order, none twice), every time in the API's own shape. None for any other
    chunk, which is then read row by row."""
    try:
        values, starts, ends = zip(*map(_ROW_FIELDS, results), strict=True)
    except (KeyError, TypeError, ValueError):  # a row of another shape, or no rows
        return None
    if starts[1:] != ends[:-1] or not set(map(type, values)) <= {float, int}:
        return None
    end_ns = iso_times_to_ns(ends)
    first = iso_times_to_ns(starts[:1])
    try:
        values = list(map(float, values))
    except OverflowError:
        return None
    if end_ns is None or first is None or not all(map(math.isfinite, values)):
        return None
    start_ns = first + end_ns[:-1]
    if (start_ns[0] < 0 or end_ns[-1] >= LARGEST_NS or start_ns[-1] > now_ns + FUTURE_SLACK_NS
            or not all(map(lt, start_ns, end_ns))):
        return None
    return start_ns, end_ns, values


def held_back(chunks):
    """The chunks with each one's last half-hour held until the next chunk has come: a half-hour the
    API lists twice, side by side, even across a chunk's edge, is resolved to its last value."""
    held = []
    for chunk in chunks:
        chunk = held + chunk
        cut = len(chunk) - 1
        while cut > 0 and row_start_text(chunk[cut - 1]) == row_start_text(chunk[-1]):
            cut -= 1
        held = chunk[cut:]
        yield chunk[:cut]
    if held:
        yield held



def choose(printed: dict, starts: list, ends: list, marks: list, room: int, per_row: int, per_day: int):
    """The half-hours (indices) new or changed since printed, oldest first, as many as `room` lines
    allow with `per_row` lines each and `per_day` more per London day (>= 23 h) they span. Returns
    (indices, the start of the last half-hour looked at or None, whether room ran out)."""
    chosen = list(compress(range(len(starts)), map(ne, map(printed.get, starts), marks)))
    if not chosen:
        return chosen, starts[-1], False
    first = starts[chosen[0]]
    day = 23 * HOUR_NS
    if len(chosen) * per_row + ((ends[chosen[-1]] - first) // day + 1) * per_day <= room:
        return chosen, starts[-1], False  # all of them: the usual case
    for count, index in enumerate(chosen):
        if (count + 1) * per_row + ((ends[index] - first) // day + 1) * per_day > room:
            return chosen[:count], starts[index - 1] if index else None, True
    raise AssertionError("unreachable: the last one did not fit")
