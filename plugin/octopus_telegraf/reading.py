"""One meter's gather, in one pass: pages -> rows -> chosen -> priced -> lines -> saved.

Rows are parsed per page, the new or changed half-hours chosen within the point budget, priced by
the price book, turned into lines by the meter's formatter, printed and saved together.
"""

import math
import time
from bisect import bisect_left
from dataclasses import replace
from functools import reduce
from itertools import compress, repeat
from operator import add, itemgetter, lt, mul, ne, truediv

from . import log
from .api import ApiError
from .lineprotocol import LineProtocolError
from .pagestream import row_start_text
from .settings import Meter
from .state import MeterProgress
from .timeutil import (
    HALF_HOUR_NS,
    HOUR_NS,
    NS_PER_SECOND,
    floor_half_hour,
    iso_times_to_ns,
    iso_to_ns,
    london_day_start,
    london_days,
    ns_to_utc_z,
)

MAX_ROW_NS = 2**62  # about the year 2116: a later time would overflow InfluxDB's int64 nanoseconds
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
        if not 0 <= start < end < MAX_ROW_NS:
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
    if (start_ns[0] < 0 or end_ns[-1] >= MAX_ROW_NS or start_ns[-1] > now_ns + FUTURE_SLACK_NS
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


class Batch:
    """One meter's lines in a gather. A very large OCTO_MAX_POINTS must not hold a whole backfill in
    memory: past FLUSH_LINES, what is ready is printed and its progress saved, page by page."""

    FLUSH_LINES = 2048  # smaller lists cost more saves (each fsyncs): 2048 keeps the 1-year run near 30 MiB

    def __init__(self, commit):
        self.pending: list[str] = []
        self.sent = 0
        self.commit = commit  # (lines, progress) -> prints, then saves

    def __len__(self) -> int:
        return self.sent + len(self.pending)

    def extend(self, lines) -> None:
        self.pending.extend(lines)

    def flush_if_large(self, progress: MeterProgress, lookback_ns: int) -> None:
        if len(self.pending) >= self.FLUSH_LINES:
            progress.prune(lookback_ns)
            self.commit(self.pending, replace(progress, printed=dict(progress.printed)))
            self.sent += len(self.pending)
            self.pending = []


class MeterReader:
    """Reads, prints and saves one meter at a time. `output(lines)` writes and flushes stdout; `lock`
    keeps output, progress and save together."""

    def __init__(self, settings, client, state, prices, output, lock, agreements, comparisons=None):
        self.settings = settings
        self.client = client
        self.state = state
        self.prices = prices
        self.output = output
        self.lock = lock
        self.agreements = agreements  # (fuel, point) -> [Agreement]
        self.comparisons = comparisons  # OCTO_COMPARE: the same half-hours on other tariffs (comparisons.py)
        self.wait_until: dict[str, float] = {}  # meter key -> monotonic time a long Retry-After ends
        self.lookback_ns = int(settings.lookback_hours * HOUR_NS)
        self.budget_reached = False  # a meter stopped at OCTO_MAX_POINTS in this gather

    def _initial_start(self, now_ns: int) -> int:
        if self.settings.backfill_from_ns is not None:
            return min(self.settings.backfill_from_ns, now_ns)
        return floor_half_hour(now_ns - int(self.settings.backfill_days * 86400) * NS_PER_SECOND)

    def _progress(self, meter: Meter, now_ns: int) -> MeterProgress:
        """A copy of the meter's saved progress (or a fresh one); a position in the future, left by a
        wrong clock or setting, is brought back to now with one W! line: it would stop the meter for good."""
        saved = self.state.meters.get(meter.key)
        if saved is None:
            return MeterProgress(self._initial_start(now_ns))
        progress = replace(saved, printed=dict(saved.printed))
        if progress.clamp(now_ns, self._initial_start(now_ns)):
            restart = ns_to_utc_z(progress.period_from(self.lookback_ns))
            log.warn(f"{meter.fuel} {meter.direction} meter {meter.point}: saved progress lay in the future "
                     f"(was the clock wrong?); reading again from {restart}")
        return progress

    def gather_meter(self, meter: Meter, formatter, budget: int, read: bool = True) -> tuple[int, bool]:
        """Fetch, print and save one meter. Returns (data points printed, succeeded)."""
        now_ns = time.time_ns()
        progress = self._progress(meter, now_ns)
        unit = formatter.meter.gas_unit if meter.fuel == "gas" else None
        if unit and progress.gas_unit != unit:
            if progress.gas_unit is not None:  # printed on a guess (or another setting): the truth, from the start
                log.info(f"gas meter {meter.point}: its unit is {unit}, not {progress.gas_unit} as printed; "
                         f"printing its half-hours again from {ns_to_utc_z(progress.start_ns)}")
                progress = MeterProgress(progress.start_ns)
            progress.gas_unit = unit
        period_from = progress.period_from(self.lookback_ns)
        requests_before, errors_before = self.client.requests_made, self.client.errors_seen
        lines = Batch(lambda pending, snapshot: self._commit(meter, pending, snapshot))
        ok = read
        waiting = self.wait_until.get(meter.key, 0) - time.monotonic()
        if not read:
            log.debug(f"{meter.fuel} {meter.direction} {meter.point}: waiting for the account to be read")
        elif waiting > 0:
            log.debug(f"{meter.fuel} {meter.direction} {meter.point}: API asked to wait, {waiting:.0f}s left")
        else:
            try:
                self._read_consumption(meter, formatter, progress, period_from, budget, lines, now_ns)
                if self.agreements(meter.fuel, meter.point) and self.settings.schema == "octopus":
                    self.prices.refresh_upcoming(meter)
                if self.comparisons:
                    self.comparisons.refresh_upcoming(meter)
            except ApiError as exc:
                ok = False
                if exc.wait_until:
                    self.wait_until[meter.key] = exc.wait_until
                report(exc, f"{meter.fuel} {meter.direction} meter {meter.point}/{meter.serial}: {exc}; "
                            f"kept {len(lines)} points, will retry at the next gather")
        progress.prune(self.lookback_ns)
        data_points = len(lines)
        if self.settings.schema == "octopus":
            lines.extend([formatter.collector_line(now_ns, data_points, self.client.requests_made - requests_before,
                                                   self.client.errors_seen - errors_before, progress.newest_end_ns)])
        self._commit(meter, lines.pending, progress)
        log.debug(f"{meter.fuel} {meter.direction} {meter.point}: {data_points} points from "
                  f"{ns_to_utc_z(period_from)}")
        return data_points, ok

    def _commit(self, meter: Meter, lines: list[str], progress: MeterProgress) -> None:
        with self.lock:
            if lines:
                self.output(lines)
            self.state.meters[meter.key] = progress
            self.state.save()  # right after the flush: a kill now repeats at most this batch

    def _read_consumption(self, meter, formatter, progress, period_from, budget, lines, now_ns) -> None:
        """Append new or changed half-hours to `lines`, oldest first, updating `progress` chunk by chunk.

        A half-hour is printed again when its value or its price changed: a rate that came late, or a
        smart-charge dispatch learned after the half-hour was first printed."""
        printed = progress.printed
        per_row = formatter.lines_per_half_hour
        formatter.priced = bool(self.agreements(meter.fuel, meter.point))
        octopus = self.settings.schema == "octopus"
        priced = octopus and formatter.priced  # standing charges too
        # a standing charge, an octopus_daily point and the comparisons' points per London day
        per_day = int(priced) + int(octopus) + (self.comparisons.lines_per_day(meter) if self.comparisons else 0)
        bad_rows = 0

        def skip(reason: str) -> None:
            nonlocal bad_rows
            bad_rows += 1
            log.debug(f"{meter.point}: skipped a row: {reason}")

        page_span = self.settings.page_size * HALF_HOUR_NS
        stream = self.client.consumption_rows(meter, period_from, self.settings.page_size)
        try:
            for chunk in held_back(stream):
                starts, ends, values = parse_rows(chunk, skip, now_ns)
                asked = bisect_left(starts, period_from)  # the API may give rows from before the period
                if asked:
                    starts, ends, values = starts[asked:], ends[asked:], values[asked:]
                if not starts:
                    continue
                if progress.newest_end_ns is None or ends[-1] > progress.newest_end_ns:
                    progress.newest_end_ns = ends[-1]
                # Price the chunk first (what cannot be priced yet is left, whole, for the next gather),
                # looking a page ahead so that a streamed backfill asks for rates once per page, not per
                # chunk; then choose what is new or changed within the budget; then print it.
                self.prices.prepare(meter, london_day_start(starts[0]), ends[-1], page_span)
                if self.comparisons:
                    self.comparisons.prepare(meter, london_day_start(starts[0]), ends[-1], page_span)
                marks = formatter.marks(starts, values)
                todo, cursor, full = choose(printed, starts, ends, marks, budget - len(lines), per_row, per_day)
                if todo:
                    chosen = (starts, ends, marks) if len(todo) == len(starts) else \
                        ([starts[i] for i in todo], [ends[i] for i in todo], [marks[i] for i in todo])
                    lines.extend(self._print(formatter, printed, *chosen, skip))
                if priced and (todo or not full):  # days whose charge was not known before are caught up too
                    lines.extend(self._standing_lines(meter, formatter, progress, london_day_start(starts[0]),
                                                      ends[todo[-1]] if todo else ends[-1]))
                if octopus:
                    lines.extend(self._daily_lines(formatter, progress, starts[0], ends[-1]))
                if cursor is not None and (progress.cursor_ns is None or cursor > progress.cursor_ns):
                    progress.cursor_ns = cursor
                if full:
                    self.budget_reached = True
                    return
                lines.flush_if_large(progress, self.lookback_ns)
        finally:
            stream.close()
            if bad_rows:
                log.warn(f"{meter.fuel} {meter.direction} meter {meter.point}: skipped {bad_rows} unreadable rows")

    @staticmethod
    def _print(formatter, printed, starts, ends, marks, skip) -> list[str]:
        """The lines of the chosen half-hours, each marked printed; a half-hour whose line cannot be
        written (a value past the float range) is skipped, alone."""
        try:
            out = formatter.lines(starts, ends, marks)
        except LineProtocolError:
            out = []
            for start, end, mark in zip(starts, ends, marks, strict=True):
                try:
                    out += formatter.lines([start], [end], [mark])
                except LineProtocolError as exc:
                    skip(str(exc))
                    continue
                printed[start] = mark
            return out
        printed.update(zip(starts, marks, strict=True))
        return out

    def _standing_lines(self, meter, formatter, progress, from_ns: int, to_ns: int) -> list[str]:
        """octopus_standing_charge once per London day (23, 24 or 25 hours) with data printed; none for a
        tariff without one (an export tariff's 0 p), so that a day's charges add up per fuel. A day whose
        charge could not be asked yet (a 404, a failed request) stops the count there: it and the days
        after it are printed when the charge is known, not skipped for good."""
        out = []
        for day in london_days(from_ns, to_ns):
            if progress.standing_through_ns is not None and day <= progress.standing_through_ns:
                continue
            charge = self.prices.standing_charge(meter, day)
            if charge is None and not self.prices.standing_settled(meter, day):
                break
            if charge is not None and (charge[1][2] or charge[1][3]):
                tariff, row = charge
                out.append(formatter.standing_line(day, tariff, row[2], row[3]))
            progress.standing_through_ns = day
        return out

    def _daily_lines(self, formatter, progress, from_ns: int, to_ns: int) -> list[str]:
        """octopus_daily for each London day touching [from, to) whose half-hours are all in hand (46, 48
        or 50; a day begun on the previous page counts), printed again when a late, corrected or
        re-priced half-hour changes it. A day partly behind the look-back is left as it was printed."""
        out = []
        printed = progress.printed
        midnights = london_days(from_ns, to_ns + 1)  # and the midnight at to_ns, if it is one
        for day, next_day in zip(midnights, midnights[1:], strict=False):  # the days that ended by to_ns
            charge = self.prices.standing_charge(formatter.meter, day) if formatter.priced else None
            standing = charge[1][2] / 100 if charge and charge[1][2] else None
            marks = list(map(printed.get, range(day, next_day, HALF_HOUR_NS)))
            if None in marks:
                # partly behind the look-back: its half-hours are as printed, but a standing charge known late
                # still belongs in its bill
                old = progress.daily.get(day)
                if old is None or standing is None or old[2] == standing:
                    continue
                values = (*old[:2], standing)
            else:
                readings, rates, _ = zip(*marks, strict=True)
                energy = formatter.kwhs(readings)
                kwh = reduce(add, energy, 0.0)  # added in order, one by one, as a person would
                money = None if None in rates else reduce(add, map(truediv, map(mul, energy, rates), repeat(100)), 0.0)
                values = (kwh, money, standing)
                if self.comparisons:
                    actual = money if money is None or formatter.export else money + (standing or 0.0)
                    out += self.comparisons.day_lines(formatter.meter, formatter, progress, day,
                                                      list(range(day, next_day, HALF_HOUR_NS)), energy, actual)
            if progress.daily.get(day) != values:
                out.append(formatter.daily_line(day, *values))
                progress.daily[day] = values
        return out


def report(exc: ApiError, message: str) -> None:
    """What needs the user is E! (a refused key, an unknown meter, an unreadable response); W! passes."""
    (log.error if exc.needs_user else log.warn)(message)
