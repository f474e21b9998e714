"""Home Mini live data: `smartMeterTelemetry` per device, every reading printed once as `octopus_live`.

Device ids come from the account (GraphQL), re-read every 6 hours. Progress (the newest reading
printed per device) is its own file beside the main service's, saved after each flush, so that a
restart neither repeats nor skips a reading. Decimals arrive as strings and energies in Wh.
"""

import json
import os
import threading
import time
from operator import itemgetter

from octopus_telegraf.api.graphql import DEVICE_NOT_FOUND, NO_TELEMETRY, GraphQLError
from octopus_telegraf.api.shapes import ShapeError
from octopus_telegraf.base import log
from octopus_telegraf.base.lineprotocol import LineProtocolError, float_text, tag_prefix
from octopus_telegraf.base.timeutil import LARGEST_NS, NS_PER_SECOND, iso_to_ns, ns_to_utc_z
from octopus_telegraf.core.state import load_json, write_atomic
from octopus_telegraf.extras.enrichment import Enrichment
from octopus_telegraf.extras.live.devices import DEVICES_QUERY, DEVICES_REFRESH_SECONDS, Device, parse_devices

LIVE_FILE = "live.json"
GAS_EVERY_SECONDS = 30 * 60  # a gas meter reports every 30 minutes: asking more often only spends budget
QUIET_SECONDS = 3600  # a device with no data is asked again after an hour, not every gather
TELEMETRY_QUERY = (
    "query Telemetry($deviceId: String!, $grouping: TelemetryGrouping!, $start: DateTime!, $end: DateTime!) { "
    "smartMeterTelemetry(deviceId: $deviceId, grouping: $grouping, start: $start, end: $end) "
    "{ readAt consumption consumptionDelta demand export } }")


def _number(value) -> float | None:
    """The API's decimals are strings (`"1234.5"`); null stays None, anything unreadable too."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


class LiveFormatter:
    def __init__(self, device: Device):
        self.export = device.direction == "export"
        self.prefix = tag_prefix("octopus_live", {"fuel": device.fuel, "direction": device.direction,
                                                  "meter_point": device.point, "device_id": device.device_id})

    def lines(self, readings: list[tuple[int, dict]]) -> list[tuple[int, str]]:
        """(time, line) of the readings (time, reading), oldest first, that carry a number. An export device's
        register is the reading's `export`, its delta the change since the reading before; demand is the
        import's. The times travel with the lines: the caller orders several devices' lines by them."""
        out, previous = [], None
        for read_at_ns, reading in readings:
            fields = []
            if self.export:
                wh = _number(reading.get("export"))
                if wh is not None:
                    fields.append(f"register_kwh={float_text(wh / 1000)}")
                    if previous is not None:
                        fields.append(f"delta_kwh={float_text((wh - previous) / 1000)}")
                    previous = wh
            else:
                demand = _number(reading.get("demand"))
                if demand is not None:
                    fields.append(f"demand_w={float_text(demand)}")
                for name, key in (("register_kwh", "consumption"), ("delta_kwh", "consumptionDelta")):
                    wh = _number(reading.get(key))
                    if wh is not None:
                        fields.append(f"{name}={float_text(wh / 1000)}")
            if fields:
                out.append((read_at_ns, f"{self.prefix} {','.join(fields)} {read_at_ns}"))
        return out


class LiveProgress:
    """The newest `readAt` printed per device, and when each device was last asked."""

    def __init__(self, directory: str | None, read_only: bool = False):
        self.path = os.path.join(directory, LIVE_FILE) if directory else None
        self.read_only = read_only
        self.newest: dict[str, int] = {}

    def load(self) -> None:
        if self.path:
            load_json(self.path, self._decode, "info", "no live progress yet",
                      "the last OCTO_LIVE_BACKFILL_MINUTES")

    def _decode(self, data: dict) -> None:
        newest = {str(k): v for k, v in data["newest"].items()}
        if not all(type(v) is int and 0 <= v < LARGEST_NS for v in newest.values()):
            raise ValueError("a reading time is not a time")
        self.newest = newest

    def save(self) -> None:
        if self.path and not self.read_only:
            write_atomic(self.path, json.dumps({"version": 1, "newest": self.newest}))


class LiveCollector:
    """One gather: every device's readings since the newest printed, printed and saved device by device.
    Each device, and the device list, runs behind the enrichment boundary: an answer of any shape is one
    line per episode and that device waits; the others carry on."""

    def __init__(self, settings, kraken, progress: LiveProgress, output):
        self.settings = settings
        self.kraken = kraken
        self.state = progress  # what the execd service saves at a stop
        self.output = output
        self.devices: list[Device] = []
        self.devices_read_at: float | None = None
        self.asked_at: dict[str, float] = {}  # device -> monotonic time of the last telemetry call
        self.quiet_until: dict[str, float] = {}  # device -> monotonic time before which it is not asked
        self.formatters: dict[Device, LiveFormatter] = {}
        self.boundaries: dict[str, Enrichment] = {}
        self.devices_boundary = Enrichment("live: the account's devices")
        self.lock = threading.Lock()

    @property
    def meters(self) -> list[Device]:  # what the service counts failures against
        return self.devices

    def gather(self) -> int:
        due = self.devices_read_at is None or time.monotonic() - self.devices_read_at >= DEVICES_REFRESH_SECONDS
        if due:
            self.devices_boundary.run(self._read_devices)
            if self.devices_read_at is None:
                return 1
        failed = 0
        roles: dict[str, list[Device]] = {}  # one call per device, whatever it measures
        for device in self.devices:
            roles.setdefault(device.device_id, []).append(device)
        for device_id, measured in roles.items():
            if self.kraken.client.stop.is_set():
                break
            boundary = self.boundaries.setdefault(device_id, Enrichment(f"live: device {device_id}"))
            boundary.run(self.gather_device, device_id, measured)
            failed += boundary.in_episode
        return failed

    def _read_devices(self) -> None:
        self.devices = parse_devices(self.kraken.query(DEVICES_QUERY, {"account": self.settings.account_number}))
        self.devices_read_at = time.monotonic()
        if not self.devices:
            log.info(f"live: account {self.settings.account_number} lists no smart meter device (no Home Mini?)")
        else:
            log.info("live: devices " + ", ".join(f"{d.fuel} {d.direction} {d.point} {d.device_id}"
                                                  for d in self.devices))

    def gather_device(self, device_id: str, measured: list[Device]) -> None:
        """Ask the device for what came since its newest reading printed; print it for each thing it measures."""
        now = time.monotonic()
        if self.quiet_until.get(device_id, 0) > now:
            return
        if measured[0].fuel == "gas" and now - self.asked_at.get(device_id, float("-inf")) < GAS_EVERY_SECONDS:
            return
        now_ns = time.time_ns()
        newest = self.state.newest.get(device_id)
        start_ns = (newest + NS_PER_SECOND if newest is not None
                    else now_ns - int(self.settings.live_backfill_minutes * 60) * NS_PER_SECOND)
        if start_ns >= now_ns:  # a reading stamped in the future (a wrong clock): wait for the clock
            return
        variables = {"deviceId": device_id, "grouping": self.settings.live_grouping,
                     "start": ns_to_utc_z(start_ns), "end": ns_to_utc_z(now_ns)}
        described = " and ".join(f"{d.fuel} {d.direction}" for d in measured)
        try:
            data = self.kraken.query(TELEMETRY_QUERY, variables)
        except GraphQLError as exc:
            if exc.code not in (NO_TELEMETRY, DEVICE_NOT_FOUND):
                raise
            self.quiet_until[device_id] = now + QUIET_SECONDS
            log.info(f"live: {described} device {device_id} has no data "
                     f"({exc.code}: no Home Mini, or not paired); asking again in an hour")
            if exc.code == DEVICE_NOT_FOUND:
                self.devices_read_at = None  # the account's devices may have changed
            return
        self.asked_at[device_id] = now
        readings = data.get("smartMeterTelemetry")
        if readings is not None and not isinstance(readings, list):
            raise ShapeError(f"smartMeterTelemetry is a {type(readings).__name__}, not a list")
        if not readings:
            if newest is None:  # never any data: no Home Mini, most likely; one line, then hourly asks
                self.quiet_until[device_id] = now + QUIET_SECONDS
                log.info(f"live: {described} device {device_id}: no readings since "
                         f"{ns_to_utc_z(start_ns)} (no Home Mini?); asking again in an hour")
            return
        self._print(device_id, measured, readings, start_ns, now_ns)

    def _print(self, device_id: str, measured: list[Device], readings: list, start_ns: int, end_ns: int) -> None:
        by_time: dict[int, dict] = {}
        bad = 0
        for reading in readings:
            try:
                read_at = iso_to_ns(reading["readAt"])
            except (KeyError, TypeError, ValueError, OverflowError):
                bad += 1
                continue
            if start_ns <= read_at <= end_ns:  # outside what was asked: dropped
                by_time[read_at] = reading
        ordered = sorted(by_time.items())
        timed = []  # (time, line) of every device's readings
        for device in measured:
            formatter = self.formatters.get(device)
            if formatter is None:
                formatter = self.formatters[device] = LiveFormatter(device)
            try:
                timed += formatter.lines(ordered)
            except LineProtocolError:  # a value past the float range: that reading alone is left out
                for one in ordered:
                    try:
                        timed += formatter.lines([one])
                    except LineProtocolError:
                        bad += 1
        if bad:
            log.warn(f"live: device {device_id}: skipped {bad} unreadable readings")
        if not timed:
            return
        timed.sort(key=itemgetter(0))  # the devices' readings in time order (stable: a device's order kept)
        lines = [line for _, line in timed]
        with self.lock:
            self.output(lines)
            self.state.newest[device_id] = ordered[-1][0]
            self.state.save()  # right after the flush: a kill now repeats nothing printed before
