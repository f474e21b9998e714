"""One gather: per meter, fetch what is new since the saved progress, print it once, save progress."""

import gc
import math
import threading
import time
from dataclasses import replace

from . import log
from .api import ApiError
from .lineprotocol import LineProtocolError, float_text, tag_prefix
from .settings import Meter, Settings
from .state import MeterProgress, State
from .timeutil import NS_PER_SECOND, floor_half_hour, iso_to_ns, ns_to_utc_z

SEED_APP = "octopus-energy-consumption-metrics"
HOUR_NS = 3600 * NS_PER_SECOND


def parse_rows(results: list, on_bad) -> list[tuple[int, int, float]]:
    """(start ns, end ns, consumption) per API result, sorted; `on_bad(reason)` for each unusable row.

    A half-hour's start is the previous one's end, so each time string is parsed once, not twice."""
    rows = []
    previous_text = previous_ns = None
    for row in results:
        try:
            start_text, end_text, value = row["interval_start"], row["interval_end"], row["consumption"]
            start = previous_ns if start_text == previous_text else iso_to_ns(start_text)
            end = previous_ns = iso_to_ns(end_text)
            previous_text = end_text
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            on_bad(f"unreadable row ({type(exc).__name__})")
            continue
        if type(value) is int:
            value = float(value)
        elif type(value) is not float or not math.isfinite(value):
            on_bad(f"consumption {value!r} is not a finite number")
            continue
        if end <= start:
            on_bad("interval ends before it starts")
            continue
        rows.append((start, end, value))
    rows.sort()
    return rows


class PointFormatter:
    """Line protocol for one meter's half-hours, in the chosen schema. Tag strings are built once."""

    def __init__(self, settings: Settings, meter: Meter):
        self.settings = settings
        self.meter = meter
        self.gas_m3 = meter.fuel == "gas" and meter.gas_unit == "m3"
        self.fixed_rate = settings.fixed_cost.get(settings.cost_key(meter))
        self.seed_schema = settings.schema == "seed"
        self.stamp_end = self.seed_schema or settings.timestamp == "end"
        self._fields_cache: dict[tuple, str] = {}
        tags = {"fuel": meter.fuel, "direction": meter.direction, "meter_point": meter.point, "serial": meter.serial}
        self.consumption = tag_prefix("octopus_consumption", tags)
        self.collector = tag_prefix("octopus_collector", tags)
        app = {"app": SEED_APP}
        self.seed = {name: tag_prefix(name, app) for name in
                     ("electricity", "electricity_cost", "electricity_export", "gas", "gaskwh", "gas_cost")}

    def unit_rate(self, start_ns: int) -> float | None:
        """p/kWh inc VAT for the half-hour starting at `start_ns`. Tariff prices will plug in here."""
        return self.fixed_rate

    def lines(self, start_ns: int, end_ns: int, value: float) -> list[str]:
        """Raises LineProtocolError for a value that cannot be printed (an overflow to infinity)."""
        stamp = end_ns if self.stamp_end else start_ns
        rate = self.unit_rate(start_ns)
        if self.seed_schema:
            kwh = self.settings.gas_m3_to_kwh(value) if self.gas_m3 else value
            return self._seed_lines(stamp, value, kwh, kwh * rate / 100 if rate is not None else None)
        # Meter readings have three decimals and repeat all the time, and turning a float into text
        # is the slowest step here: remember the fields of each (reading, rate) seen lately.
        key = (value, rate)
        fields = self._fields_cache.get(key)
        if fields is None:
            if len(self._fields_cache) >= 65536:
                self._fields_cache.clear()
            fields = self._fields_cache[key] = self._fields(value, rate)
        return [f"{self.consumption} {fields} {stamp}"]

    def _fields(self, value: float, rate: float | None) -> str:
        kwh = self.settings.gas_m3_to_kwh(value) if self.gas_m3 else value
        fields = f"kwh={float_text(kwh)}"
        if self.gas_m3:
            fields += f",m3={float_text(value)}"
        if rate is not None:
            fields += f",unit_rate_pence={float_text(rate)},cost_gbp={float_text(kwh * rate / 100)}"
        return fields

    def _seed_lines(self, stamp: int, raw: float, kwh: float, cost: float | None) -> list[str]:
        seed = self.seed
        if self.meter.fuel == "gas":
            out = [f"{seed['gas']} consumption={float_text(raw)} {stamp}",
                   f"{seed['gaskwh']} consumption_kwh={float_text(kwh)} {stamp}"]
            if cost is not None:
                out.append(f"{seed['gas_cost']} price={float_text(cost)} {stamp}")
            return out
        if self.meter.direction == "export":
            return [f"{seed['electricity_export']} consumption={float_text(kwh)} {stamp}"]
        out = [f"{seed['electricity']} consumption={float_text(kwh)} {stamp}"]
        if cost is not None:
            out.append(f"{seed['electricity_cost']} price={float_text(cost)} {stamp}")
        return out

    def collector_line(self, now_ns: int, points: int, requests: int, errors: int, newest_end_ns: int | None) -> str:
        fields = f"points={points}i,requests={requests}i,errors={errors}i"
        if newest_end_ns is not None:
            fields += f",lag_seconds={float_text((now_ns - newest_end_ns) / NS_PER_SECOND)}"
        return f"{self.collector} {fields} {now_ns}"


class Collector:
    """Owns the meters' progress. `output(lines)` must write and flush stdout before it returns."""

    def __init__(self, settings: Settings, client, state: State, output, meters: list[Meter] | None = None):
        self.settings = settings
        self.client = client
        self.state = state
        self.output = output
        self.meters = unique_meters(meters if meters is not None else settings.meters)
        self.formatters = {meter.key: PointFormatter(settings, meter) for meter in self.meters}
        self.wait_until: dict[str, float] = {}  # meter key -> monotonic time a long Retry-After ends
        self.lock = threading.Lock()  # output + progress + save happen together, never interleaved

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

    def _gather(self) -> int:
        failed = 0
        per_gather_lines = 1 if self.settings.schema == "octopus" else 0
        budget = max(self.settings.max_points - per_gather_lines * len(self.meters), 1)
        for index, meter in enumerate(self.meters):
            if self.client.stop.is_set():
                break
            share = budget // (len(self.meters) - index) or 1
            used, ok = self.gather_meter(meter, share)
            budget = max(budget - used, 0)
            failed += not ok
        return failed

    def _initial_start(self, now_ns: int) -> int:
        if self.settings.backfill_from_ns is not None:
            return self.settings.backfill_from_ns
        return floor_half_hour(now_ns - int(self.settings.backfill_days * 86400) * NS_PER_SECOND)

    def gather_meter(self, meter: Meter, budget: int) -> tuple[int, bool]:
        """Fetch, print and save one meter. Returns (data points printed, succeeded)."""
        formatter = self.formatters[meter.key]
        now_ns = time.time_ns()
        saved = self.state.meters.get(meter.key)
        progress = (MeterProgress(self._initial_start(now_ns)) if saved is None
                    else replace(saved, printed=dict(saved.printed)))
        lookback_ns = int(self.settings.lookback_hours * HOUR_NS)
        period_from = (progress.start_ns if progress.cursor_ns is None
                       else max(progress.start_ns, progress.cursor_ns - lookback_ns))
        requests_before, errors_before = self.client.requests_made, self.client.errors_seen
        lines: list[str] = []
        ok = True
        waiting = self.wait_until.get(meter.key, 0) - time.monotonic()
        if waiting > 0:
            log.debug(f"{meter.fuel} {meter.direction} {meter.point}: API asked to wait, {waiting:.0f}s left")
        else:
            try:
                self._read_consumption(meter, formatter, progress, period_from, budget, lines)
            except ApiError as exc:
                ok = False
                if exc.wait_until:
                    self.wait_until[meter.key] = exc.wait_until
                level = log.error if exc.status in (401, 403, 404) else log.warn
                level(f"{meter.fuel} {meter.direction} meter {meter.point}/{meter.serial}: {exc}; "
                      f"kept {len(lines)} points, will retry at the next gather")
        if progress.cursor_ns is not None:
            keep_from = progress.cursor_ns - lookback_ns
            progress.printed = {start: v for start, v in progress.printed.items() if start >= keep_from}
        data_points = len(lines)
        if self.settings.schema == "octopus":
            lines.append(formatter.collector_line(now_ns, data_points, self.client.requests_made - requests_before,
                                                  self.client.errors_seen - errors_before, progress.newest_end_ns))
        with self.lock:
            if lines:
                self.output(lines)
            self.state.meters[meter.key] = progress
            self.state.save()
        log.debug(f"{meter.fuel} {meter.direction} {meter.point}: {data_points} points from "
                  f"{ns_to_utc_z(period_from)}")
        return data_points, ok

    def _read_consumption(self, meter, formatter, progress, period_from, budget, lines) -> None:
        """Append new or changed half-hours to `lines`, oldest first, updating `progress` as it goes."""
        printed = progress.printed
        bad_rows = 0

        def skip(reason: str) -> None:
            nonlocal bad_rows
            bad_rows += 1
            log.debug(f"{meter.point}: skipped a row: {reason}")

        pages = self.client.consumption_pages(meter, ns_to_utc_z(period_from), self.settings.page_size)
        try:
            for results in pages:
                rows = parse_rows(results, skip)
                for start, end, value in rows:
                    if start < period_from:
                        continue  # the API sometimes returns more than asked
                    if progress.newest_end_ns is None or end > progress.newest_end_ns:
                        progress.newest_end_ns = end
                    if printed.get(start) != value:
                        try:
                            new = formatter.lines(start, end, value)
                        except LineProtocolError as exc:
                            skip(str(exc))
                            continue
                        if len(lines) + len(new) > budget:
                            return  # OCTO_MAX_POINTS reached: the rest follow on the next gathers
                        lines.extend(new)
                        printed[start] = value
                    if progress.cursor_ns is None or end > progress.cursor_ns:
                        progress.cursor_ns = end
        finally:
            pages.close()
            if bad_rows:
                log.warn(f"{meter.fuel} {meter.direction} meter {meter.point}: skipped {bad_rows} unreadable rows")


def unique_meters(meters: list[Meter]) -> list[Meter]:
    """The same meter is never collected twice, however many sources name it."""
    return list({meter.key: meter for meter in meters}.values())
