"""The account: its current meters, their tariff agreements, and (GraphQL) what unit gas meters report."""

import time
from dataclasses import dataclass, field
from urllib.parse import quote

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.api.shapes import listed
from octopus_telegraf.base import log
from octopus_telegraf.base.lineprotocol import LineProtocolError, escape_key
from octopus_telegraf.base.timeutil import iso_to_ns, london_date
from octopus_telegraf.config.settings import Meter

ACCOUNT_REFRESH_SECONDS = 6 * 3600  # a tariff switch or a new meter shows within hours


def gsp_letter(client, mpan: str) -> str | None:
    """The region letter of an electricity meter point's grid supply point (its physical place), or None
    when the meter point has no page (404) or names none. Raises ApiError for anything else."""
    try:
        data = client.get_json(client.url(f"/v1/electricity-meter-points/{quote(mpan)}/"))
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None
    gsp = data.get("gsp") if isinstance(data, dict) else None
    letter = gsp.strip("_").upper() if isinstance(gsp, str) else ""
    return letter if len(letter) == 1 and "A" <= letter <= "P" else None


@dataclass(frozen=True)
class Agreement:
    tariff_code: str
    valid_from_ns: int
    valid_to_ns: int | None  # None: open-ended

    def covers(self, moment_ns: int) -> bool:
        return self.valid_from_ns <= moment_ns and (self.valid_to_ns is None or moment_ns < self.valid_to_ns)


@dataclass
class MeterPoint:
    fuel: str
    direction: str
    point: str
    serials: list[str]
    agreements: list[Agreement] = field(default_factory=list)

    def current_tariff(self, now_ns: int) -> str | None:
        return next((a.tariff_code for a in self.agreements if a.covers(now_ns)), None)


def _text(value, what: str) -> str:
    """An identifier from the API, refused if it could not be printed safely as a tag."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} missing")
    value = value.strip()
    try:
        escape_key(value)
    except LineProtocolError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return value


def _agreements(raw) -> list[Agreement]:
    agreements = []
    for item in raw or []:
        try:
            valid_to = item.get("valid_to")
            agreements.append(Agreement(_text(item["tariff_code"], "tariff_code"), iso_to_ns(item["valid_from"]),
                                        iso_to_ns(valid_to) if valid_to else None))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warn(f"account: skipped an agreement ({type(exc).__name__}: {exc})")
    return sorted(agreements, key=lambda a: a.valid_from_ns)


def parse_account(data) -> list[MeterPoint]:
    """Meter points of the properties not moved out of."""
    if not isinstance(data, dict) or not isinstance(data.get("properties"), list):
        raise ApiError("account response has no `properties` list", malformed=True)
    points = []
    for prop in data["properties"]:
        if not isinstance(prop, dict) or prop.get("moved_out_at"):
            continue
        for fuel, key, id_key in (("electricity", "electricity_meter_points", "mpan"),
                                  ("gas", "gas_meter_points", "mprn")):
            for raw in prop.get(key) or []:
                try:
                    point = _text(raw[id_key], id_key)
                    serials = [_text(m["serial_number"], "serial_number") for m in raw.get("meters") or []]
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    log.warn(f"account: skipped a {fuel} meter point ({type(exc).__name__}: {exc})")
                    continue
                direction = "export" if raw.get("is_export") else "import"
                points.append(MeterPoint(fuel, direction, point, list(dict.fromkeys(serials)),
                                         _agreements(raw.get("agreements"))))
    return points


class Account:
    """Reads the account now and then; remembers the meter points, their agreements and gas units."""

    def __init__(self, client, number: str, gas_unit_setting: str, kraken=None):
        self.client = client
        self.number = number
        self.gas_unit_setting = gas_unit_setting
        self.kraken = kraken  # GraphQL, for OCTO_GAS_UNIT=auto
        self.points: list[MeterPoint] = []
        self.gas_units: dict[str, str] = {}  # serial -> m3 | kWh, from GraphQL
        self.units_read_at: float | None = None
        self.read_at: float | None = None

    def due(self) -> bool:
        return self.read_at is None or time.monotonic() - self.read_at >= ACCOUNT_REFRESH_SECONDS

    def refresh(self) -> None:
        """Raises ApiError; the caller keeps what it had."""
        data = self.client.get_json(self.client.url(f"/v1/accounts/{quote(self.number, safe='')}/"))
        self.points = parse_account(data)
        self.read_at = time.monotonic()

    def meters(self, has_data) -> list[Meter]:
        """Every serial of every current meter point for which `has_data(meter)` is true."""
        meters = []
        for point in self.points:
            for serial in point.serials:
                unit = self.gas_unit(serial) if point.fuel == "gas" else ""
                meter = Meter(point.fuel, point.direction, point.point, serial, unit)
                if has_data(meter):
                    meters.append(meter)
        return meters

    def gas_unit(self, serial: str) -> str:
        if self.gas_unit_setting != "auto":
            return self.gas_unit_setting
        return self.gas_units.get(serial, "m3")

    def agreements(self, fuel: str, point: str) -> list[Agreement]:
        for meter_point in self.points:
            if meter_point.fuel == fuel and meter_point.point == point:
                return meter_point.agreements
        return []

    # -- GraphQL: the meters' consumptionUnits (an enrichment: the collector runs it in its boundary) -----
    def gas_units_due(self) -> bool:
        return (self.gas_unit_setting == "auto" and self.kraken is not None
                and any(p.fuel == "gas" for p in self.points)
                and (self.units_read_at is None or time.monotonic() - self.units_read_at >= ACCOUNT_REFRESH_SECONDS))

    def read_gas_units(self) -> None:
        """Raises ApiError or ShapeError. Until it succeeds, gas is read as m3: a guess, corrected by the meter
        reader when the unit is known (see MeterProgress.gas_unit)."""
        query = ("query Units($account: String!) { account(accountNumber: $account) { "
                 "gasAgreements(active: true) { meterPoint { mprn meters(includeInactive: false) { "
                 "serialNumber consumptionUnits } } } } }")
        data = self.kraken.query(query, {"account": self.number})
        units = {}
        for meter in listed(data, "account", "gasAgreements", "meterPoint", "meters"):
            serial, unit = meter.get("serialNumber"), meter.get("consumptionUnits")
            if isinstance(serial, str) and isinstance(unit, str) and unit.lower() in ("m³", "m3", "kwh"):
                units[serial.strip()] = "kWh" if unit.lower() == "kwh" else "m3"
        self.gas_units = units
        self.units_read_at = time.monotonic()
        log.info(f"gas meter units from the account: {units or 'none listed'}")


def discover(client, number: str, out) -> int:
    """`octopus-telegraf discover`: the account's meters and tariffs as a table, then settings to paste."""
    account = Account(client, number, "m3")
    try:
        account.refresh()
    except ApiError as exc:
        log.error(f"account {number}: {exc}")
        return 1
    now_ns = time.time_ns()
    rows, paste = [], {"OCTO_ACCOUNT_NUMBER": number}
    names = {("electricity", "import"): ("OCTO_ELECTRIC_MPAN", "OCTO_ELECTRIC_SN"),
             ("electricity", "export"): ("OCTO_EXPORT_MPAN", "OCTO_EXPORT_SN"),
             ("gas", "import"): ("OCTO_GAS_MPRN", "OCTO_GAS_SN")}
    for point in account.points:
        current = point.current_tariff(now_ns)
        tariffs = "; ".join(
            f"{'* ' if a.tariff_code == current else ''}{a.tariff_code} from {london_date(a.valid_from_ns)}"
            + (f" to {london_date(a.valid_to_ns)}" if a.valid_to_ns else "") for a in point.agreements) or "none"
        for serial in point.serials or ["(no meter)"]:
            has_data = "?"
            if point.serials:
                try:
                    meter = Meter(point.fuel, point.direction, point.point, serial)
                    has_data = "yes" if client.has_consumption(meter) else "no"
                except ApiError as exc:
                    has_data = f"? ({exc.status or 'error'})"
            rows.append((point.fuel, point.direction, point.point, serial, has_data, tariffs))
            mpan_name, serial_name = names[(point.fuel, point.direction)]
            if has_data == "yes" and mpan_name not in paste:
                paste[mpan_name], paste[serial_name] = point.point, serial
    header = ("fuel", "direction", "meter point", "serial", "data", "tariff agreements (* = in force now)")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    out.write(f"Account {number}: {len(account.points)} current meter points\n\n")
    for row in [header, *rows]:
        out.write("  ".join(str(v).ljust(w) for v, w in zip(row[:5], widths, strict=True)) + "  " + row[5] + "\n")
    out.write("\nSettings to paste into your .env (OCTO_ACCOUNT_NUMBER alone is enough: it finds these itself):\n")
    out.write("OCTO_API_KEY=<your key>\n")
    for name, value in paste.items():
        out.write(f"{name}={value}\n")
    return 0
