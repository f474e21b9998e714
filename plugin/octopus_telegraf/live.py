"""Home Mini live data: `smartMeterTelemetry` per device, every reading printed once as `octopus_live`.

Device ids come from the account (GraphQL), re-read every 6 hours. Progress (the newest reading
printed per device) is its own file beside the main service's, saved after each flush, so that a
restart neither repeats nor skips a reading. Decimals arrive as strings and energies in Wh.
"""

import json
import os
import threading
import time
from dataclasses import dataclass

from . import log
from .api import ApiError
from .graphql import DEVICE_NOT_FOUND, NO_TELEMETRY, BudgetSpent, GraphQLError
from .lineprotocol import LineProtocolError, float_text, tag_prefix
from .state import LARGEST_NS, load_json, write_atomic
from .timeutil import NS_PER_SECOND, iso_to_ns, ns_to_utc_z

LIVE_FILE = "live.json"
DEVICES_REFRESH_SECONDS = 6 * 3600
GAS_EVERY_SECONDS = 30 * 60  # a gas meter reports every 30 minutes: asking more often only spends budget
QUIET_SECONDS = 3600  # a device with no data is asked again after an hour, not every gather
DEVICES_QUERY = (
    "query Devices($account: String!) { account(accountNumber: $account) { "
    "electricityAgreements(active: true) { meterPoint { mpan meters(includeInactive: false) { serialNumber "
    "smartImportElectricityMeter { deviceId } smartExportElectricityMeter { deviceId } } } } "
    "gasAgreements(active: true) { meterPoint { mprn meters(includeInactive: false) { serialNumber "
    "smartGasMeter { deviceId } } } } } }")
TELEMETRY_QUERY = (
    "query Telemetry($deviceId: String!, $grouping: TelemetryGrouping!, $start: DateTime!, $end: DateTime!) { "
    "smartMeterTelemetry(deviceId: $deviceId, grouping: $grouping, start: $start, end: $end) "
    "{ readAt consumption consumptionDelta demand export } }")


@dataclass(frozen=True)
class Device:
    device_id: str
    fuel: str  # electricity | gas
    direction: str  # import | export
    point: str  # MPAN or MPRN


def parse_devices(data) -> list[Device]:
    account = (data or {}).get("account") or {}
    devices = {}
    for key, fuel, id_key, kinds in (
            ("electricityAgreements", "electricity", "mpan",
             (("smartImportElectricityMeter", "import"), ("smartExportElectricityMeter", "export"))),
            ("gasAgreements", "gas", "mprn", (("smartGasMeter", "import"),))):
        for agreement in account.get(key) or []:
            point = ((agreement or {}).get("meterPoint") or {})
            for meter in point.get("meters") or []:
                for field, direction in kinds:
                    device_id = ((meter or {}).get(field) or {}).get("deviceId")
                    if isinstance(device_id, str) and device_id.strip() and isinstance(point.get(id_key), str):
                        devices[device_id] = Device(device_id.strip(), fuel, direction, point[id_key])
    return list(devices.values())


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
        self.prefix = tag_prefix("octopus_live", {"fuel": device.fuel, "direction": device.direction,
                                                  "meter_point": device.point, "device_id": device.device_id})

    def line(self, read_at_ns: int, reading: dict) -> str | None:
        """One reading, or None when it carries no number at all."""
        fields = []
        demand = _number(reading.get("demand"))
        if demand is not None:
            fields.append(f"demand_w={float_text(demand)}")
        for name, key in (("register_kwh", "consumption"), ("delta_kwh", "consumptionDelta")):
            wh = _number(reading.get(key))
            if wh is not None:
                fields.append(f"{name}={float_text(wh / 1000)}")
        return f"{self.prefix} {','.join(fields)} {read_at_ns}" if fields else None


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
    """One gather: every device's readings since the newest printed, printed and saved device by device."""

    def __init__(self, settings, kraken, progress: LiveProgress, output):
        self.settings = settings
        self.kraken = kraken
        self.state = progress  # what the execd service saves at a stop
        self.output = output
        self.devices: list[Device] = []
        self.devices_read_at: float | None = None
        self.asked_at: dict[str, float] = {}  # device -> monotonic time of the last telemetry call
        self.quiet_until: dict[str, float] = {}  # device -> monotonic time before which it is not asked
        self.formatters: dict[str, LiveFormatter] = {}
        self.lock = threading.Lock()

    @property
    def meters(self) -> list[Device]:  # what the service counts failures against
        return self.devices

    def gather(self) -> int:
        if not self._refresh_devices():
            return 1
        failed = 0
        for device in self.devices:
            if self.kraken.client.stop.is_set():
                break
            failed += not self.gather_device(device)
        return failed

    def _refresh_devices(self) -> bool:
        due = self.devices_read_at is None or time.monotonic() - self.devices_read_at >= DEVICES_REFRESH_SECONDS
        if not due:
            return True
        try:
            data = self.kraken.query(DEVICES_QUERY, {"account": self.settings.account_number})
        except ApiError as exc:
            if not isinstance(exc, BudgetSpent):
                (log.error if exc.needs_user else log.warn)(f"live: cannot read the account's devices: {exc}")
            return self.devices_read_at is not None
        self.devices = parse_devices(data)
        self.devices_read_at = time.monotonic()
        if not self.devices:
            log.info(f"live: account {self.settings.account_number} lists no smart meter device (no Home Mini?)")
        else:
            log.info("live: devices " + ", ".join(f"{d.fuel} {d.direction} {d.point} {d.device_id}"
                                                  for d in self.devices))
        return True

    def gather_device(self, device: Device) -> bool:
        now = time.monotonic()
        if self.quiet_until.get(device.device_id, 0) > now:
            return True
        if device.fuel == "gas" and now - self.asked_at.get(device.device_id, float("-inf")) < GAS_EVERY_SECONDS:
            return True
        now_ns = time.time_ns()
        newest = self.state.newest.get(device.device_id)
        start_ns = (newest + NS_PER_SECOND if newest is not None
                    else now_ns - int(self.settings.live_backfill_minutes * 60) * NS_PER_SECOND)
        if start_ns >= now_ns:  # a reading stamped in the future (a wrong clock): wait for the clock
            return True
        variables = {"deviceId": device.device_id, "grouping": self.settings.live_grouping,
                     "start": ns_to_utc_z(start_ns), "end": ns_to_utc_z(now_ns)}
        try:
            data = self.kraken.query(TELEMETRY_QUERY, variables)
        except BudgetSpent:
            return True  # the budget has said so once for the episode
        except GraphQLError as exc:
            if exc.code in (NO_TELEMETRY, DEVICE_NOT_FOUND):
                self.quiet_until[device.device_id] = now + QUIET_SECONDS
                log.info(f"live: {device.fuel} {device.direction} device {device.device_id} has no data "
                         f"({exc.code}: no Home Mini, or not paired); asking again in an hour")
                if exc.code == DEVICE_NOT_FOUND:
                    self.devices_read_at = None  # the account's devices may have changed
                return True
            (log.error if exc.needs_user else log.warn)(f"live: device {device.device_id}: {exc}")
            return False
        except ApiError as exc:
            (log.error if exc.needs_user else log.warn)(f"live: device {device.device_id}: {exc}")
            return False
        self.asked_at[device.device_id] = now
        readings = data.get("smartMeterTelemetry")
        if not readings:
            if newest is None:  # never any data: no Home Mini, most likely; one line, then hourly asks
                self.quiet_until[device.device_id] = now + QUIET_SECONDS
                log.info(f"live: {device.fuel} {device.direction} device {device.device_id}: no readings since "
                         f"{ns_to_utc_z(start_ns)} (no Home Mini?); asking again in an hour")
            return True
        self._print(device, readings, start_ns, now_ns)
        return True

    def _print(self, device: Device, readings: list, start_ns: int, end_ns: int) -> None:
        formatter = self.formatters.get(device.device_id)
        if formatter is None:
            formatter = self.formatters[device.device_id] = LiveFormatter(device)
        by_time: dict[int, str] = {}
        bad = 0
        for reading in readings if isinstance(readings, list) else []:
            try:
                read_at = iso_to_ns(reading["readAt"])
                if not start_ns <= read_at <= end_ns:
                    continue  # outside what was asked
                line = formatter.line(read_at, reading)
            except (KeyError, TypeError, ValueError, OverflowError, AttributeError, LineProtocolError):
                bad += 1
                continue
            if line is not None:
                by_time[read_at] = line
        if bad:
            log.warn(f"live: device {device.device_id}: skipped {bad} unreadable readings")
        if not by_time:
            return
        with self.lock:
            self.output([by_time[t] for t in sorted(by_time)])
            self.state.newest[device.device_id] = max(by_time)
            self.state.save()  # right after the flush: a kill now repeats nothing printed before
