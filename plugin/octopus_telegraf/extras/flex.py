"""Smart-charge devices and their planned dispatches (Intelligent Octopus, SPEC section 8): `devices` at
the first start and every 6 hours (kept in the state: a restart does not ask early), `flexPlannedDispatches`
for each LIVE device at most every 10 minutes
(never the removed `plannedDispatches`). Printed: octopus_device when a field changes and once a London
day; octopus_planned_dispatch when first seen, again when its end or energy changes, and with
cancelled=true when it vanishes before its start. A planned dispatch never changes a price: only
completed ones do (dispatches.py). Runs behind the enrichment boundary, on the shared GraphQL budget."""

import math
import time

from octopus_telegraf.api.graphql import GraphQLError
from octopus_telegraf.api.shapes import Ceiling, ShapeError
from octopus_telegraf.base import log
from octopus_telegraf.base.clock import due, is_stamp, stamp
from octopus_telegraf.base.lineprotocol import LineProtocolError, escape_key, float_text, format_value, tag_prefix
from octopus_telegraf.base.timeutil import LARGEST_NS, NS_PER_SECOND, iso_to_ns, london_date
from octopus_telegraf.core.state import drop_damaged

DEVICES_EVERY_S = 6 * 3600
PLANNED_EVERY_S = 600  # per device: the field allows 5 calls a minute per user, the app asks too
NO_PLANS_CODE = "KT-CT-4340"  # "Unable to fetch planned dispatches": no news, not "none planned"
KEPT_AFTER_END_NS = 24 * 3600 * NS_PER_SECOND
MOST_PLANNED = 200  # per device: a few days of slots, several times over
MOST_DEVICES = 20  # a home's chargers and cars, several times over: each LIVE one costs a call per gather
DEVICES_QUERY = ("query FlexDevices($account: String!) { devices(accountNumber: $account) "
                 "{ id deviceType provider status { current currentState isSuspended } } }")
PLANNED_QUERY = ("query Planned($id: String!) { flexPlannedDispatches(deviceId: $id) "
                 "{ start end type energyAddedKwh } }")
PLAN_TYPES = ("smart", "boost", "test")


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 100:
        raise ShapeError(f"device `{name}` is not a short text")
    return value


def parse_device(raw) -> tuple[str, list]:
    """(id, [device type, provider, status, state, suspended]) of one `devices` entry; ShapeError otherwise."""
    if not isinstance(raw, dict) or not isinstance(raw.get("status"), dict):
        raise ShapeError("a device is not an object with a status")
    status = raw["status"]
    suspended = status.get("isSuspended")
    if not isinstance(suspended, bool):
        raise ShapeError("device status `isSuspended` is not a boolean")
    device_id = _text(raw.get("id"), "id")
    escape_key(device_id)  # printable as a tag, or LineProtocolError
    return device_id, [_text(raw.get("deviceType"), "deviceType"), _text(raw.get("provider"), "provider"),
                       _text(status.get("current"), "current"), _text(status.get("currentState"), "currentState"),
                       suspended]


def parse_plan(raw) -> tuple[int, list]:
    """(start ns, [end ns, energy kWh or None, type, cancelled]) of one flexPlannedDispatches entry. Raises
    ValueError, TypeError, KeyError or AttributeError."""
    start, end = iso_to_ns(raw["start"]), iso_to_ns(raw["end"])
    if not 0 <= start < end or end - start > 24 * 3600 * NS_PER_SECOND:
        raise ValueError("a planned dispatch that ends before it starts or lasts over a day")
    kind = str(raw.get("type") or "smart").lower()
    if kind not in PLAN_TYPES:
        raise ValueError(f"planned dispatch type {kind!r:.20}")
    energy = raw.get("energyAddedKwh")
    energy = abs(float(energy)) if energy is not None else None
    return start, [end, energy if energy is None or math.isfinite(energy) else None, kind, False]


class FlexDevices:
    """Asking and printing apart, as the state keeps them (`store`, JSON as saved): what Octopus last
    answered (the devices and when; each LIVE device's planned slots and when) and what was printed (the
    devices with the London date, the slots). A restart asks nothing early, and what an answer brought
    is printed whenever OCTO_MAX_POINTS leaves room, however many gathers later."""

    def __init__(self, kraken, account_number: str, store: dict):
        self.kraken = kraken
        self.account_number = account_number
        self.store = checked(store)
        self.ceiling = Ceiling("Intelligent Octopus")

    def refresh(self, now_ns: int | None = None) -> None:
        """Ask what is due. Raises what the API or the answer's shape meets: the boundary's to report."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if due(self.store["listed_at"], DEVICES_EVERY_S):
            data = self.kraken.query(DEVICES_QUERY, {"account": self.account_number})
            listed = data.get("devices")
            if not isinstance(listed, list):
                raise ShapeError(f"devices is a {type(listed).__name__}, not a list")
            devices = {}
            if len(listed) > MOST_DEVICES:
                self.ceiling.cut(f"devices: {len(listed)} listed; the first {MOST_DEVICES} are kept")
            for raw in listed[:MOST_DEVICES]:
                try:
                    device_id, values = parse_device(raw)
                except (ShapeError, LineProtocolError) as exc:
                    log.debug(f"devices: one skipped ({exc})")
                    continue
                devices[device_id] = values
            self.store["listed"], self.store["listed_at"] = devices, stamp()
        for device_id, values in sorted(self.store["listed"].items()):
            if values[2] == "LIVE" and due(self.store["asked"].get(device_id), PLANNED_EVERY_S):
                self._ask_planned(device_id, now_ns)

    def _ask_planned(self, device_id: str, now_ns: int) -> None:
        try:
            data = self.kraken.query(PLANNED_QUERY, {"id": device_id})
        except GraphQLError as exc:
            if exc.code != NO_PLANS_CODE:
                raise
            log.debug(f"planned dispatches of {device_id}: {NO_PLANS_CODE} (no news: nothing changes)")
            self.store["asked"][device_id] = stamp()
            return
        listed = data.get("flexPlannedDispatches")
        if listed is not None and not isinstance(listed, list):
            raise ShapeError(f"flexPlannedDispatches is a {type(listed).__name__}, not a list")
        self.store["asked"][device_id] = stamp()
        if not listed:
            log.debug(f"planned dispatches of {device_id}: none planned")
        plans = {}
        for raw in listed or []:
            try:
                start, plan = parse_plan(raw)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
                continue
            plans[str(start)] = plan
        if len(plans) > MOST_PLANNED:
            self.ceiling.cut(f"planned dispatches of {device_id}: {len(plans)} listed; the {MOST_PLANNED} latest "
                          "are kept")
        known = self.store["plans"].get(device_id, {})
        for key, plan in known.items():
            if key not in plans and int(key) > now_ns:  # vanished before its start: cancelled
                plans[key] = [*plan[:3], True]
        self.store["plans"][device_id] = dict(sorted(plans.items(), key=lambda item: int(item[0]))[-MOST_PLANNED:])

    def lines(self, now_ns: int | None = None) -> tuple[list[str], object]:
        """The device and planned-dispatch points that differ from what was printed, and the function that
        keeps them printed once written."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        lines, kept = [], []
        today = london_date(now_ns)
        for device_id, values in sorted(self.store["listed"].items()):
            if self.store["devices"].get(device_id) != [*values, today]:  # a field changed, or a new London day
                lines.append(device_line(device_id, values, now_ns))
                kept.append((self.store["devices"], device_id, [*values, today]))
        for device_id, plans in sorted(self.store["plans"].items()):
            printed = self.store["planned"].setdefault(device_id, {})
            for key, plan in plans.items():
                if printed.get(key) != plan:
                    lines.append(plan_line(device_id, int(key), plan))
                    kept.append((printed, key, plan))

        def keep():
            for table, key, value in kept:
                table[key] = value
        return lines, keep

    def prune(self, now_ns: int) -> None:
        """Slots that ended a day ago are not asked about again: let go of them."""
        for table in (self.store["plans"], self.store["planned"]):
            for plans in table.values():
                for key in [k for k, plan in plans.items() if plan[0] < now_ns - KEPT_AFTER_END_NS]:
                    del plans[key]


def device_line(device_id: str, values: list, now_ns: int) -> str:
    device_type, provider, status, state, suspended = values
    prefix = tag_prefix("octopus_device", {"device_id": device_id, "device_type": device_type, "provider": provider})
    return (f"{prefix} status={format_value(status)},state={format_value(state)},"
            f"suspended={'true' if suspended else 'false'} {now_ns}")


def plan_line(device_id: str, start_ns: int, plan: list) -> str:
    end_ns, energy, kind, cancelled = plan
    fields = f"duration_s={(end_ns - start_ns) // NS_PER_SECOND}i"
    if energy is not None:
        fields += f",energy_kwh={float_text(energy)}"
    fields += f",cancelled={'true' if cancelled else 'false'}"
    return f"{tag_prefix('octopus_planned_dispatch', {'device_id': device_id, 'type': kind})} {fields} {start_ns}"


def checked(store: dict) -> dict:
    """The state's `flex` section with the shape its reader expects; a damaged part is one W! and dropped
    (asked and printed again), never a crash at every start."""
    checks = {
        "listed": lambda v: isinstance(v, dict) and all(
            isinstance(d, list) and len(d) == 5 and all(isinstance(x, str) for x in d[:4]) and isinstance(d[4], bool)
            for d in v.values()),
        "listed_at": is_stamp,
        "devices": lambda v: isinstance(v, dict) and all(isinstance(d, list) and len(d) == 6 for d in v.values()),
        "asked": lambda v: isinstance(v, dict) and all(is_stamp(t) for t in v.values()),
        "plans": _plans_ok,
        "planned": _plans_ok,
    }
    return drop_damaged(store, checks, "the planned dispatches'", lambda name: 0 if name == "listed_at" else {})


def _plans_ok(value) -> bool:
    """device id -> {start ns as text: [end ns, kWh or None, type, cancelled]}"""
    return isinstance(value, dict) and all(
        isinstance(plans, dict) and all(
            k.isdigit() and isinstance(p, list) and len(p) == 4 and type(p[0]) is int and 0 <= p[0] < LARGEST_NS
            and p[2] in PLAN_TYPES and isinstance(p[3], bool) and (p[1] is None or type(p[1]) is float)
            for k, p in plans.items())
        for plans in value.values())
