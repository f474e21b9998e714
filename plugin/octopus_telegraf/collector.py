"""One gather: per meter, fetch what is new since the saved progress, print it once, save progress."""

import gc
import math
import threading
import time
from dataclasses import replace

from . import log
from .api import ApiError
from .lineprotocol import LineProtocolError
from .points import PointFormatter
from .settings import Meter, Settings
from .state import MeterProgress, State
from .tariffs import DAY_NS, Prices
from .timeutil import (
    HALF_HOUR_NS,
    NS_PER_SECOND,
    floor_half_hour,
    iso_to_ns,
    london_day_start,
    london_days,
    ns_to_utc_z,
)

HOUR_NS = 3600 * NS_PER_SECOND


MAX_ROW_NS = 2**62  # about the year 2116: a later time would overflow InfluxDB's int64 nanoseconds
FUTURE_SLACK_NS = 3600 * NS_PER_SECOND  # consumption is measured, never forecast


def parse_rows(results: list, on_bad, now_ns: int) -> list[tuple[int, int, float]]:
    """(start ns, end ns, consumption) per API result, sorted; `on_bad(reason)` for each unusable row.
    A half-hour listed twice keeps its last value in the page, so every gather agrees on one.

    A half-hour's start is the previous one's end, so each time string is parsed once, not twice."""
    rows: dict[int, tuple[int, int, float]] = {}
    previous_text = previous_ns = None
    for row in results:
        try:
            start_text, end_text, value = row["interval_start"], row["interval_end"], row["consumption"]
            if type(start_text) is not str or type(end_text) is not str:
                raise TypeError("interval times must be text")
            start = previous_ns if start_text == previous_text else iso_to_ns(start_text)
            end = iso_to_ns(end_text)
            previous_text, previous_ns = end_text, end
            if type(value) is int:
                value = float(value)
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
    return sorted(rows.values())


class Batch:
    """One meter's lines in a gather. A very large OCTO_MAX_POINTS must not hold a whole backfill in
    memory: past FLUSH_LINES, what is ready is printed and its progress saved, page by page."""

    FLUSH_LINES = 20_000

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


class Collector:
    """Owns the meters' progress. `output(lines)` must write and flush stdout before it returns."""

    def __init__(self, settings: Settings, client, state: State, output, account=None, dispatches=None):
        self.settings = settings
        self.client = client
        self.state = state
        self.output = output
        self.account = account
        self.dispatches = dispatches  # Intelligent Octopus smart charges, when the account has any
        self.prices = Prices(client, settings, state.tariffs, self._agreements, dispatches)
        self.meters = unique_meters(settings.meters)
        self.formatters: dict[Meter, PointFormatter] = {}
        self.has_data: dict[str, bool] = {}  # account meters: does this serial have data? (meter swaps)
        self.wait_until: dict[str, float] = {}  # meter key -> monotonic time a long Retry-After ends
        self.lookback_ns = int(settings.lookback_hours * HOUR_NS)
        self.lock = threading.Lock()  # output + progress + save happen together, never interleaved
        self.budget_reached = False  # this gather stopped at OCTO_MAX_POINTS: the rest follows

    def _agreements(self, fuel: str, point: str):
        return self.account.agreements(fuel, point) if self.account else []

    def gather(self) -> int:
        """One gather over every meter. Returns how many meters failed."""
        # A backfill allocates a great many small acyclic objects (JSON rows, tuples, lines); the cyclic
        # collector would walk them again and again. Reference counting frees them all the same.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._gather()
        finally:
            if collecting:
                gc.enable()

    def refresh_meters(self) -> bool:
        """Re-read the account when due. False when the account is needed and cannot be read."""
        if self.account is None:
            return True
        if self.account.due():
            try:
                self.account.refresh()
                self.has_data = {}
                log.info(f"account {self.account.number}: {len(self.account.points)} current meter points")
            except ApiError as exc:
                report(exc, f"account {self.account.number}: {exc}; will retry at the next gather")
                if self.account.read_at is None:
                    return False
        found = self.account.meters(self._meter_has_data)
        self.meters = unique_meters([*self.settings.meters, *found])
        return True

    def _meter_has_data(self, meter: Meter) -> bool:
        """Only serials with data are collected: an old meter after a swap has none."""
        if meter.key not in self.has_data:
            saved = self.state.meters.get(meter.key)
            if saved is not None and saved.newest_end_ns is not None:
                self.has_data[meter.key] = True
            else:
                try:
                    self.has_data[meter.key] = self.client.has_consumption(meter)
                except ApiError:
                    return True  # not known: collect it, and let its own gather report the trouble
                if not self.has_data[meter.key]:
                    log.info(f"{meter.fuel} {meter.direction} {meter.point}/{meter.serial}: no data, not collected")
        return self.has_data[meter.key]

    def formatter(self, meter: Meter) -> PointFormatter:
        if meter.fuel == "gas" and meter.gas_unit == "auto":
            meter = replace(meter, gas_unit=self.account.gas_unit(meter.serial) if self.account else "m3")
        formatter = self.formatters.get(meter)
        if formatter is None:
            formatter = self.formatters[meter] = PointFormatter(self.settings, meter, self.prices)
        return formatter

    def _gather(self) -> int:
        # Until the account has been read, its tariffs are unknown: printing half-hours without their
        # prices now would leave them without for good (a value is printed once). They wait.
        account_read = self.refresh_meters()
        if not account_read and not self.meters:
            return 1
        if self.dispatches is not None and account_read:
            self.dispatches.refresh(self.account)  # before pricing: a dispatch changes what half-hours cost
        failed = 0
        self.budget_reached = False
        octopus = self.settings.schema == "octopus"
        budget = max(self.settings.max_points - (len(self.meters) if octopus else 0), 1)
        for index, meter in enumerate(self.meters):
            if self.client.stop.is_set():
                break
            share = budget // (len(self.meters) - index) or 1
            try:
                used, ok = self.gather_meter(meter, share, read=account_read)
            except BrokenPipeError:
                raise  # nobody reads stdout any more: the service ends
            except Exception as exc:  # a bug met by one meter must not stop the others
                log.error(f"{meter.fuel} {meter.direction} meter {meter.point}/{meter.serial}: gather failed: "
                          f"{type(exc).__name__}: {exc}")
                used, ok = 0, False
            budget = max(budget - used, 0)
            failed += not ok
        with self.lock:
            if self.account is not None and not self.client.stop.is_set():
                lines, dispatches = self.dispatches.lines(budget) if octopus and self.dispatches else ([], [])
                rate_lines, mark_rates = (self.prices.unit_rate_lines(self.meters, budget - len(lines))
                                          if octopus and budget > len(lines) else ([], None))
                if lines or rate_lines:
                    self.output(lines + rate_lines)
                if mark_rates:  # marked only once written: a broken pipe leaves them for the next run
                    mark_rates()
                if octopus and len(lines) + len(rate_lines) >= budget:
                    self.budget_reached = True  # unit rates or dispatches wait for the next gather
                for dispatch in dispatches:
                    dispatch.printed = True
                # rates and dispatches older than every meter's look-back window are not needed again
                needed = [p.period_from(self.lookback_ns) for m in self.meters if (p := self.state.meters.get(m.key))]
                if needed:
                    self.prices.prune(min(needed) - 2 * DAY_NS)
                    if self.dispatches is not None:
                        self.dispatches.prune(min(needed) - 2 * DAY_NS)
            self.state.save()  # the unit rates printed, and the rates pruned
        if self.budget_reached:
            log.info(f"OCTO_MAX_POINTS ({self.settings.max_points}) reached: the rest follows on the next gathers")
        return failed

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

    def gather_meter(self, meter: Meter, budget: int, read: bool = True) -> tuple[int, bool]:
        """Fetch, print and save one meter. Returns (data points printed, succeeded)."""
        formatter = self.formatter(meter)
        now_ns = time.time_ns()
        progress = self._progress(meter, now_ns)
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
                if self._agreements(meter.fuel, meter.point) and self.settings.schema == "octopus":
                    self.prices.refresh_upcoming(meter)
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
        """Append new or changed half-hours to `lines`, oldest first, updating `progress` page by page.

        A half-hour is printed again when its value or its price changed: a rate that came late, or a
        smart-charge dispatch learned after the half-hour was first printed."""
        printed = progress.printed
        per_row = formatter.lines_per_half_hour
        formatter.priced = bool(self._agreements(meter.fuel, meter.point))
        octopus = self.settings.schema == "octopus"
        priced = octopus and formatter.priced  # standing charges too
        per_day = int(priced) + int(octopus)  # a standing charge and an octopus_daily point per London day
        bad_rows = 0

        def skip(reason: str) -> None:
            nonlocal bad_rows
            bad_rows += 1
            log.debug(f"{meter.point}: skipped a row: {reason}")

        pages = self.client.consumption_pages(meter, ns_to_utc_z(period_from), self.settings.page_size)
        try:
            for results in pages:
                rows = [row for row in parse_rows(results, skip, now_ns) if row[0] >= period_from]  # asked-for only
                if not rows:
                    continue
                if progress.newest_end_ns is None or rows[-1][1] > progress.newest_end_ns:
                    progress.newest_end_ns = rows[-1][1]
                # Price the page first (a page whose rates cannot be had is left, whole, for the next
                # gather), then choose what is new or changed within the budget, then print it.
                first_day = london_day_start(rows[0][0])
                self.prices.prepare(meter, first_day, rows[-1][1])
                todo = []
                page_cursor = None
                full = False
                for start, end, value in rows:
                    price = formatter.price(start)
                    mark = (value, *price)
                    if printed.get(start) != mark:
                        # room for this half-hour, and for a standing charge per London day (>= 23 h) so far
                        days = ((end - todo[0][0]) // (23 * HOUR_NS) + 1 if todo else 1) * per_day
                        if len(lines) + (len(todo) + 1) * per_row + days > budget:
                            full = True  # OCTO_MAX_POINTS reached: the rest follow on the next gathers
                            break
                        todo.append((start, end, value, price, mark))
                    page_cursor = start
                for start, end, value, price, mark in todo:
                    try:
                        lines.extend(formatter.lines(start, end, value, price))
                    except LineProtocolError as exc:
                        skip(str(exc))
                        continue
                    printed[start] = mark
                if priced and todo:
                    lines.extend(self._standing_lines(meter, formatter, progress, london_day_start(todo[0][0]),
                                                      todo[-1][1]))
                if octopus:
                    lines.extend(self._daily_lines(formatter, progress, rows[0][0], rows[-1][1]))
                if page_cursor is not None and (progress.cursor_ns is None or page_cursor > progress.cursor_ns):
                    progress.cursor_ns = page_cursor
                if full:
                    self.budget_reached = True
                    return
                lines.flush_if_large(progress, self.lookback_ns)
        finally:
            pages.close()
            if bad_rows:
                log.warn(f"{meter.fuel} {meter.direction} meter {meter.point}: skipped {bad_rows} unreadable rows")

    def _standing_lines(self, meter, formatter, progress, from_ns: int, to_ns: int) -> list[str]:
        """octopus_standing_charge once per London day (23, 24 or 25 hours) with data printed; none for a
        tariff without one (an export tariff's 0 p), so that a day's charges add up per fuel."""
        out = []
        for day in london_days(from_ns, to_ns):
            if progress.standing_through_ns is not None and day <= progress.standing_through_ns:
                continue
            charge = self.prices.standing_charge(meter, day)
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
        for day in london_days(from_ns, to_ns):
            next_day = london_day_start(day + 26 * HOUR_NS)
            if next_day > to_ns:
                continue  # the rest of the day is still to come
            marks = [printed.get(start) for start in range(day, next_day, HALF_HOUR_NS)]
            if None in marks:
                continue
            kwh = money = 0.0
            for value, rate, _ in marks:
                energy = formatter.kwh(value)
                kwh += energy
                money = None if money is None or rate is None else money + energy * rate / 100
            charge = self.prices.standing_charge(formatter.meter, day) if formatter.priced else None
            standing = charge[1][2] / 100 if charge and charge[1][2] else None
            values = (kwh, money, standing)
            if progress.daily.get(day) != values:
                out.append(formatter.daily_line(day, kwh, money, standing))
                progress.daily[day] = values
        return out


def report(exc: ApiError, message: str) -> None:
    """What needs the user is E! (a refused key, an unknown meter, an unreadable response); W! passes."""
    (log.error if exc.needs_user else log.warn)(message)


def unique_meters(meters: list[Meter]) -> list[Meter]:
    """The same meter is never collected twice, however many sources name it."""
    return list({meter.key: meter for meter in meters}.values())
