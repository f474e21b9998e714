"""One gather, in a fixed order with a budget: the account's meters (found, and checked for data), each
read by the meter reader (the REST half: half-hours, standing charges, daily bills), the unit rates;
then, from what is left of OCTO_MAX_POINTS and each within its share of the gather's time, the
enrichments: comparisons, dispatches, events. The enrichments that must come before pricing (the
dispatches of an intelligent tariff, the gas unit) share PRE_REST_SHARE seconds, so that the REST
half-hours are printed within OCTO_HTTP_TIMEOUT + 5 s of the trigger whatever they meet.

(Over 220 lines on purpose: the order of a gather and its budget are one story, read top to bottom
here; what each step does lives in its own room, and the collector only calls it.)"""

import gc
import threading
import time
from dataclasses import replace

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.base import log
from octopus_telegraf.base.deadline import time_share
from octopus_telegraf.base.timeutil import DAY_NS
from octopus_telegraf.config.settings import Meter, Settings
from octopus_telegraf.core.points import PointFormatter
from octopus_telegraf.core.reading import MeterReader, report
from octopus_telegraf.core.state import State
from octopus_telegraf.extras.comparisons.comparisons import Comparisons
from octopus_telegraf.extras.enrichment import Enrichment
from octopus_telegraf.prices.tariffs import Prices
from octopus_telegraf.service import status

PRE_REST_SHARE = 4.0  # seconds for the enrichments asked before the half-hours are priced, together
EVENTS_SHARE = 15.0  # seconds a gather gives the Octoplus events, all three parts
FLEX_SHARE = 8.0  # seconds a gather gives the devices and their planned dispatches
CARBON_PAGE = 2048  # octopus_carbon lines written at a time: a backfill's are never all in memory at once


class Collector:
    """Owns the meters' progress. `output(lines)` must write and flush stdout before it returns."""

    def __init__(self, settings: Settings, client, state: State, output, account=None, dispatches=None, events=None,
                 flex=None, carbon=None):
        self.settings = settings
        self.client = client
        self.state = state
        self.output = output
        self.account = account
        self.dispatches = dispatches  # Intelligent Octopus smart charges, when the account has any
        self.events = events  # OCTO_EVENTS: Octoplus events, Octopoints, Greener Nights (events.py)
        self.flex = flex  # smart-charge devices and their planned dispatches (flex.py)
        self.carbon = carbon  # OCTO_CARBON: the grid's carbon intensity per half-hour (carbon.py)
        self.prices = Prices(client, settings.price_options(), state.tariffs, self._agreements,
                             state.dispatches if dispatches is not None else None)
        self.comparisons = (Comparisons(settings, client, state, self._agreements)
                            if settings.compare and settings.schema == "octopus" else None)
        self.meters = unique_meters(settings.meters)
        self.formatters: dict[Meter, PointFormatter] = {}
        self.has_data: dict[str, bool] = {}  # account meters: does this serial have data? (meter swaps)
        self.lock = threading.Lock()  # output + progress + save happen together, never interleaved
        self.reader = MeterReader(settings, client, state, self.prices, output, self.lock, self._agreements,
                                  self.comparisons.names if self.comparisons else None)
        self.budget_reached = False  # this gather stopped at OCTO_MAX_POINTS: the rest follows
        # Enrichments (GraphQL): each behind the one boundary, where nothing it meets can stop a gather
        self.dispatch_boundary = Enrichment("Intelligent Octopus dispatches")
        self.gas_unit_boundary = Enrichment("OCTO_GAS_UNIT=auto (gas meter units from the account)")
        self.flex_boundary = Enrichment("Intelligent Octopus devices and planned dispatches", FLEX_SHARE)
        self.carbon_boundary = Enrichment("carbon intensity (OCTO_CARBON)")
        self.held_events: list[str] | None = None  # asked, but not printed yet for want of points
        self.account_error: str | None = None  # what the last reading of the account met (for `status`)

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
                self.account_error = None
                self.has_data = {}
                log.info(f"account {self.account.number}: {len(self.account.points)} current meter points")
            except ApiError as exc:
                report(exc, f"account {self.account.number}: {exc}; will retry {log.next_gather()}")
                self.account_error = log.clip(str(exc), 200)
                if self.account.read_at is None:
                    return False
        if self.account.gas_units_due():
            with time_share(PRE_REST_SHARE):
                self.gas_unit_boundary.run(self.account.read_gas_units)
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
        if self.carbon is not None and self.carbon.located and self.carbon.covers(meter):
            formatter.intensity = self.carbon.intensity_at
        return formatter

    def _gather(self) -> int:
        # Until the account has been read, its tariffs are unknown: printing half-hours without their
        # prices now would leave them without for good (a value is printed once). They wait.
        started = time.monotonic()
        account_read = self.refresh_meters()
        if not account_read and not self.meters:
            return 1
        if self.dispatches is not None and account_read:
            # before pricing: a dispatch changes what half-hours cost (within what the gas units left)
            with time_share(max(PRE_REST_SHARE - (time.monotonic() - started), 0.5)):
                self.dispatch_boundary.run(self.dispatches.refresh, self.account, self.prices.is_intelligent)
        if self.carbon is not None and self.carbon.locate(self.settings.region, self.meters, self.client,
                                                          self._agreements):
            # the intensity of the half-hours about to be printed, first: they print with co2_kg at once
            now_ns = time.time_ns()
            want_from = min((self.reader.read_from(m, now_ns) for m in self.meters if self.carbon.covers(m)),
                            default=now_ns)
            with time_share(max(PRE_REST_SHARE - (time.monotonic() - started), 0.5)):
                self.carbon_boundary.run(self.carbon.refresh, want_from, now_ns)
        failed = 0
        self.reader.budget_reached = False
        self.reader.collector_lines = []
        octopus = self.settings.schema == "octopus"
        budget = max(self.settings.max_points - (len(self.meters) if octopus else 0), 1)
        for index, meter in enumerate(self.meters):
            if self.client.stop.is_set():
                break
            share = budget // (len(self.meters) - index) or 1
            try:
                used, ok = self.reader.gather_meter(meter, self.formatter(meter), share, read=account_read)
            except BrokenPipeError:
                raise  # nobody reads stdout any more: the service ends
            except Exception as exc:  # a bug met by one meter must not stop the others
                log.error(f"{meter.fuel} {meter.direction} meter {meter.point}/{meter.serial}: gather failed: "
                          f"{type(exc).__name__}: {exc}")
                self.reader.errors[meter.key] = log.clip(f"gather failed: {type(exc).__name__}: {exc}", 200)
                used, ok = 0, False
            budget = max(budget - used, 0)
            failed += not ok
        self.budget_reached = self.reader.budget_reached
        if octopus and not self.client.stop.is_set():
            with self.lock:  # the rest of the REST half: the unit rates in force
                budget -= self._print(*self.prices.unit_rate_lines(self.meters, budget), budget)
            self._enrichments(budget)
        with self.lock:
            if self.reader.collector_lines:
                self.output(self.reader.collector_lines)  # how each meter's gather went: the gather's last lines
            self._prune(octopus)
            self.state.save()  # the unit rates printed, and the rates pruned
        if self.budget_reached:
            log.info(f"OCTO_MAX_POINTS ({self.settings.max_points}) reached: the rest follows "
                     f"{log.next_gather(many=True)}")
        status.gathered(self, failed, time.monotonic() - started)
        return failed

    def _enrichments(self, budget: int) -> None:
        """After the REST half, from what is left of the points: the comparisons' days, the dispatches,
        the events, the comparisons' unit rates; each within its share of time, none waiting on another."""
        if self.comparisons:
            self.comparisons.start_gather()
            for meter in self.meters:
                progress = self.state.meters.get(meter.key)
                if progress is None or self.client.stop.is_set():
                    continue
                lines, full = self.comparisons.gather_meter(meter, self.formatter(meter), progress, budget,
                                                            self.reader.lookback_ns)
                with self.lock:
                    budget -= self._print(lines, None, budget)
                    self.budget_reached |= full
                    self.state.save()
        if self.dispatches is not None:
            with self.lock:
                budget -= self._print(*self._dispatch_lines(budget), budget)
        if self.flex is not None and self.dispatches is not None and self.dispatches.point is not None:
            budget = self._flex(budget)
        if self.events and not self.client.stop.is_set():
            # asked before the lock is taken: a stop must never wait on a GraphQL call
            if self.held_events is None:
                with time_share(EVENTS_SHARE):
                    self.held_events = self.events.lines(self.meters)
            if len(self.held_events) <= budget:
                with self.lock:
                    budget -= self._print(self.held_events, self.events.kept, budget)
                self.held_events = None
            else:
                self.budget_reached = True  # kept for the next gather, not asked again
        if self.comparisons and budget > 0 and not self.client.stop.is_set():
            # the comparisons' rates, and those of the account's own tariffs that a comparison fetched (a
            # tariff that was yours for a while and is compared for the rest): each code by one book
            seen: set = set()
            lines, own = self.prices.unit_rate_lines(self.meters, budget, seen)
            more, markers = self.comparisons.unit_rate_lines(self.meters, budget - len(lines), seen)
            with self.lock:
                budget -= self._print(lines + more, lambda: [marker() for marker in (own, *markers)], budget)
        if self.carbon is not None and self.carbon.located and budget > 0:
            # last: what carbon answered is kept in the state, so it waits for room without asking again; a
            # backfill's thousands of half-hours are printed a page at a time (no list of them all is alive)
            with self.lock:
                while budget > 0:
                    lines, keep = self.carbon.lines(min(budget, CARBON_PAGE))
                    budget -= self._print(lines, keep, budget)
                    if len(lines) < CARBON_PAGE:
                        break

    def _flex(self, budget: int) -> int:
        """Devices and planned dispatches (an intelligent agreement in force): asked when due, outside the lock
        (a stop never waits on a GraphQL call); what the answers brought is printed when the points left
        allow, at this gather or a later one (it is kept in the state until then)."""
        if not self.client.stop.is_set():
            self.flex_boundary.run(self.flex.refresh)
        lines, keep = self.flex.lines()
        if len(lines) > budget:
            self.budget_reached = True
            return budget
        with self.lock:
            budget -= self._print(lines, keep, budget)
        self.flex.prune(time.time_ns())
        return budget

    def _dispatch_lines(self, budget: int):
        """octopus_dispatch, and on a four-rate product the car's allowance: each dispatch's allowance used and
        octopus_iog_day. Returns the lines and the function that marks them printed."""
        meter = next((m for m in self.meters if m.point == self.dispatches.point and m.direction == "import"), None)

        def used_at(end_ns: int) -> int | None:
            tariff = self.prices.tariff_at(meter, end_ns - 1) if meter else None
            return self.prices.allowance.used_at_end(end_ns) if tariff and self.prices.is_four_rate(tariff) else None

        lines, marker = self.dispatches.lines(budget, used_at)
        progress = self.state.meters.get(meter.key) if meter else None
        if progress is None or len(lines) >= budget:
            return lines, marker
        more, day_marker = self.prices.allowance.day_lines(
            meter.point, self.state.dispatches, progress.printed,
            lambda day, end: self.prices.iog_day_marks(meter, day, end, progress.printed), budget - len(lines))
        return lines + more, lambda: [m() for m in (marker, day_marker) if m]

    def _print(self, lines: list[str], marker, budget: int) -> int:
        """Write the lines, then mark them printed (a broken pipe leaves them for the next run). How many."""
        if lines:
            self.output(lines)
        if marker:
            marker()
        if lines and len(lines) >= budget:
            self.budget_reached = True
        return len(lines)

    def _prune(self, octopus: bool) -> None:
        """Rates, dispatches and compared days older than every meter's look-back are let go."""
        lookback = self.reader.lookback_ns
        needed = [p.kept_from(lookback) for m in self.meters if (p := self.state.meters.get(m.key))]
        if needed:
            keep_from = min(needed) - 2 * DAY_NS
            self.prices.prune(keep_from, printing=octopus)
            if self.dispatches is not None:
                self.dispatches.prune(keep_from, printing=octopus)
            if self.comparisons:
                self.comparisons.prune(keep_from)
            if self.carbon is not None:
                self.carbon.prune(keep_from)
        for meter in self.meters:
            progress = self.state.meters.get(meter.key)
            if progress is not None:
                progress.prune(lookback)


def unique_meters(meters: list[Meter]) -> list[Meter]:
    """The same meter is never collected twice, however many sources name it."""
    return list({meter.key: meter for meter in meters}.values())
