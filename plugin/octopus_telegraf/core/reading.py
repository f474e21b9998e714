"""One meter's gather, in one pass: pages -> rows -> chosen -> priced -> lines -> saved.

Rows are parsed per page and the new or changed half-hours chosen within the point budget (rows.py),
priced by the price book, turned into lines by the meter's formatter, with the London days they
complete (days.py), printed and saved together.
"""

import time
from bisect import bisect_left
from dataclasses import replace

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.base import log
from octopus_telegraf.base.lineprotocol import LineProtocolError
from octopus_telegraf.base.timeutil import (
    HALF_HOUR_NS,
    HOUR_NS,
    NS_PER_SECOND,
    floor_half_hour,
    london_day_start,
    ns_to_utc_z,
)
from octopus_telegraf.config.settings import Meter
from octopus_telegraf.core.days import DayPoints
from octopus_telegraf.core.progress import MeterProgress
from octopus_telegraf.core.rows import choose, held_back, parse_rows


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

    def __init__(self, settings, client, state, prices, output, lock, agreements, compare_names=None):
        self.settings = settings
        self.client = client
        self.state = state
        self.prices = prices
        self.output = output
        self.lock = lock
        self.agreements = agreements  # (fuel, point) -> [Agreement]
        # OCTO_COMPARE: meter -> the comparisons that will price its half-hours after the REST half; the
        # half-hours they have not priced yet are kept for them (MeterProgress.compare_from)
        self.compare_names = compare_names
        self.days = DayPoints(prices)  # standing charges, daily bills
        self.wait_until: dict[str, float] = {}  # meter key -> monotonic time a long Retry-After ends
        self.errors: dict[str, str] = {}  # meter key -> what its last gather met (for `status`)
        self.lookback_ns = int(settings.lookback_hours * HOUR_NS)
        self.budget_reached = False  # a meter stopped at OCTO_MAX_POINTS in this gather
        self.collector_lines: list[str] = []  # octopus_collector of each meter read in this gather

    def read_from(self, meter: Meter, now_ns: int) -> int:
        """Where the meter's next read begins: the look-back before its newest half-hour, or its backfill start."""
        saved = self.state.meters.get(meter.key)
        return saved.period_from(self.lookback_ns) if saved else self._initial_start(now_ns)

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
        if self.compare_names is not None:
            first = london_day_start(progress.period_from(self.lookback_ns))
            names = self.compare_names(meter)
            progress.compare_from = {name: progress.compare_from.get(name, first) for name in names}
            progress.compare_holes = {name: progress.compare_holes.get(name, []) for name in names}
        period_from = progress.period_from(self.lookback_ns)
        requests_before, errors_before = self.client.requests_made, self.client.errors_seen
        lines = Batch(lambda pending, snapshot: self._commit(meter, pending, snapshot))
        ok = read
        self.errors.pop(meter.key, None)
        waiting = self.wait_until.get(meter.key, 0) - time.monotonic()
        if not read:
            log.debug(f"{meter.fuel} {meter.direction} {meter.point}: waiting for the account to be read")
            self.errors[meter.key] = "waiting for the account to be read"
        elif waiting > 0:
            log.debug(f"{meter.fuel} {meter.direction} {meter.point}: API asked to wait, {waiting:.0f}s left")
            self.errors[meter.key] = f"the API asked to wait: {waiting / 60:.0f} min left"
        else:
            try:
                self._read_consumption(meter, formatter, progress, period_from, budget, lines, now_ns)
                if self.agreements(meter.fuel, meter.point) and self.settings.schema == "octopus":
                    self.prices.refresh_upcoming(meter)
            except ApiError as exc:
                ok = False
                if exc.wait_until:
                    self.wait_until[meter.key] = exc.wait_until
                report(exc, f"{meter.fuel} {meter.direction} meter {meter.point}/{meter.serial}: {exc}; "
                            f"kept {len(lines)} points, will retry {log.next_gather()}")
                self.errors[meter.key] = log.clip(str(exc), 200)
        progress.prune(self.lookback_ns)
        data_points = len(lines)
        if self.settings.schema == "octopus":  # printed as the gather ends, after the enrichments: its last line
            self.collector_lines.append(formatter.collector_line(
                now_ns, data_points, self.client.requests_made - requests_before,
                self.client.errors_seen - errors_before, progress.newest_end_ns))
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
        per_day = int(priced) + int(octopus)  # a standing charge and an octopus_daily point per London day
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
                marks = formatter.marks(starts, values)
                todo, cursor, full = choose(printed, starts, ends, marks, budget - len(lines), per_row, per_day)
                if todo:
                    chosen = (starts, ends, marks) if len(todo) == len(starts) else \
                        ([starts[i] for i in todo], [ends[i] for i in todo], [marks[i] for i in todo])
                    lines.extend(self._print(formatter, printed, *chosen, skip))
                if priced and (todo or not full):  # days whose charge was not known before are caught up too
                    lines.extend(self.days.standing_lines(meter, formatter, progress, london_day_start(starts[0]),
                                                      ends[todo[-1]] if todo else ends[-1]))
                if octopus:
                    lines.extend(self.days.daily_lines(formatter, progress, starts[0], ends[-1]))
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


def report(exc: ApiError, message: str) -> None:
    """What needs the user is E! (a refused key, an unknown meter, an unreadable response); W! passes."""
    (log.error if exc.needs_user else log.warn)(message)
