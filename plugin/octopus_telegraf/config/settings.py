"""Settings from the environment (names kept from the Node.js tool), each overridable by a flag."""

import difflib
import ipaddress
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from octopus_telegraf.base.log import shown
from octopus_telegraf.base.timeutil import parse_date_or_datetime
from octopus_telegraf.prices.families import parse_compare


class SettingsError(Exception):
    """A bad setting: the message names the variable and what is wrong with it."""


@dataclass(frozen=True)
class Meter:
    fuel: str  # electricity | gas
    direction: str  # import | export
    point: str  # MPAN or MPRN
    serial: str
    gas_unit: str = ""  # m3 | kWh, gas only

    @property
    def key(self) -> str:
        return f"{self.fuel}:{self.direction}:{self.point}:{self.serial}"


# name, default, help. Every one gets a flag: OCTO_LOOP_TIME -> --loop-time, LOOP_TIME -> --loop-time.
SETTINGS = [
    ("OCTO_API_KEY", None, "Octopus API key (required unless --demo); environment only, never a flag"),
    ("OCTO_ACCOUNT_NUMBER", None, "account number, to discover meters and tariffs (e.g. A-1234ABCD)"),
    ("OCTO_ELECTRIC_MPAN", None, "import electricity meter point (MPAN)"),
    ("OCTO_ELECTRIC_SN", None, "import electricity meter serial number"),
    ("OCTO_EXPORT_MPAN", None, "export electricity meter point (MPAN)"),
    ("OCTO_EXPORT_SN", None, "export electricity meter serial number"),
    ("OCTO_GAS_MPRN", None, "gas meter point (MPRN)"),
    ("OCTO_GAS_SN", None, "gas meter serial number"),
    ("OCTO_ELECTRIC_COST", None, "fixed import unit rate, pence/kWh inc VAT, where no tariff rate is known"),
    ("OCTO_EXPORT_COST", None, "fixed export unit rate, pence/kWh, where no tariff rate is known"),
    ("OCTO_GAS_COST", None, "fixed gas unit rate, pence/kWh inc VAT, where no tariff rate is known"),
    ("OCTO_GAS_UNIT", "m3", "what the gas meter reports: m3 (SMETS2), kWh (SMETS1) or auto"),
    ("VOLUME_CORRECTION", "1.02264", "gas m3 -> kWh volume correction factor"),
    ("CALORIFIC_VALUE", "39.5", "gas calorific value, MJ/m3 (on your bill)"),
    ("JOULES_CONVERSION", "3.6", "MJ per kWh"),
    ("PAGE_SIZE", "25000", "results per API page (1-25000)"),
    ("LOOP_TIME", None, "seconds between self-timed gathers (signal = \"none\"); unset: gather on stdin/signal"),
    ("OCTO_BACKFILL_FROM", None, "with no saved state, fetch history from this ISO date/datetime (London)"),
    ("OCTO_BACKFILL_DAYS", "30", "with no saved state and no OCTO_BACKFILL_FROM, days of history to fetch"),
    ("OCTO_LOOKBACK_HOURS", "72", "hours re-read before the newest data, for late and corrected intervals"),
    ("OCTO_MAX_POINTS", "5000", "most points printed in one gather; the rest follow on later gathers"),
    ("OCTO_STATE_DIR", None, "where progress is kept (default $STATE_DIRECTORY, $XDG_STATE_HOME/octopus-telegraf "
                             "or ~/.local/state/octopus-telegraf)"),
    ("OCTO_API_URL", "https://api.octopus.energy", "API origin (https, or http on loopback only)"),
    ("OCTO_HTTP_TIMEOUT", "90", "seconds one whole exchange may take: connect, headers and body (at most 600)"),
    ("OCTO_RETRY_PAUSE", "1", "seconds before retrying a failed request (the second retry waits 3x as long)"),
    ("OCTO_TIMESTAMP", "start", "stamp a half-hour at its start or end"),
    ("OCTO_SCHEMA", "octopus", "output schema: octopus or seed (the Node.js tool's measurements)"),
    ("OCTO_PAYMENT_METHOD", "DIRECT_DEBIT", "tariff rows to use: DIRECT_DEBIT or NON_DIRECT_DEBIT"),
    ("OCTO_E7_NIGHT", "00:30-07:30", "Economy 7 night hours, UTC (the API does not say; smart meters: 00:30-07:30)"),
    ("OCTO_GRAPHQL_MAX_PER_HOUR", "60", "most GraphQL calls in any hour, token calls included, shared by every "
                                        "process on OCTO_STATE_DIR (Octopus allows ~100, shared with its app)"),
    ("OCTO_IOG_ALLOWANCE_HOURS", "6", "the car's off-peak allowance per IOG day (12:00-12:00 London) on four-rate "
                                     "Intelligent Octopus products; 0 = no cap"),
    ("OCTO_LIVE_BACKFILL_MINUTES", "60", "live: on a first start, minutes of Home Mini readings to fetch"),
    ("OCTO_LIVE_GROUPING", "TEN_SECONDS", "live: TEN_SECONDS, ONE_MINUTE, FIVE_MINUTES, FIFTEEN_MINUTES, "
                                          "THIRTY_MINUTES or ONE_HOUR"),
    ("OCTO_COMPARE", None, "tariffs to compare your half-hours against: name=spec,... where spec is a family (agile, "
                           "go, intelligent, cosy, flux, tracker, flexible, agile_outgoing, outgoing_fixed, "
                           "flux_export), a product code or a tariff code; e.g. agile=agile,go=go"),
    ("OCTO_COMPARE_DETAIL", "day", "comparison points: day (one per meter, day and comparison) or half-hour"),
    ("OCTO_REGION", None, "region letter A-P for comparisons, when the account cannot tell it"),
    ("OCTO_EVENTS", "false", "true: Octoplus events (Power Down, Power Up), Octopoints and Greener Nights (GraphQL; "
                            "needs OCTO_ACCOUNT_NUMBER)"),
    ("OCTO_BACKEND_API_URL", "https://api.backend.octopus.energy", "the second GraphQL origin, for Greener Nights "
                                                                   "(https, or http on loopback only)"),
    ("OCTO_LOG_LEVEL", "info", "debug, info, warn or error"),
    ("OCTO_DEMO_UNTIL", None, "--demo only: the London date its four weeks end on (default: today); pins the demo"),
]
SECRET_SETTINGS = {"OCTO_API_KEY"}
NOT_FOR_THE_PLUGIN = {"OCTO_LIVE"}  # read by the container's entrypoint, not by octopus-telegraf
LIVE_GROUPINGS = ("TEN_SECONDS", "ONE_MINUTE", "FIVE_MINUTES", "FIFTEEN_MINUTES", "THIRTY_MINUTES", "ONE_HOUR")
ACCOUNT_NUMBER = re.compile(r"A-[0-9A-Z]{8}")
METER_POINT = {"MPAN": re.compile(r"[0-9]{13}"), "MPRN": re.compile(r"[0-9]{6,10}")}
_UNEXPANDED = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
DEFAULT_API_URL = "https://api.octopus.energy"


def flag_name(variable: str) -> str:
    name = variable.lower()
    if name.startswith("octo_"):
        name = name[len("octo_"):]
    return "--" + name.replace("_", "-")


@dataclass
class Settings:
    api_key: str | None
    account_number: str | None
    meters: list[Meter]
    fixed_cost: dict[str, float]  # by "import" / "export" / "gas"
    gas_unit: str
    volume_correction: float
    calorific_value: float
    joules_conversion: float
    page_size: int
    loop_time: float | None
    backfill_from_ns: int | None
    backfill_days: float
    lookback_hours: float
    max_points: int
    state_dir: str
    api_url: str
    http_timeout: float
    retry_pause: float
    timestamp: str
    schema: str
    payment_method: str
    log_level: str
    e7_night: tuple[int, int]
    graphql_per_hour: int = 60
    iog_allowance_hours: float = 6.0
    live_backfill_minutes: float = 60
    live_grouping: str = "TEN_SECONDS"
    events: bool = False
    backend_url: str = "https://api.backend.octopus.energy"
    compare: list = field(default_factory=list)  # [Comparison] (comparisons.py), in the order given
    compare_detail: str = "day"
    region: str | None = None
    demo: bool = False
    demo_until: str | None = None
    max_points_given: bool = False  # the demo prints all of itself in one gather unless told otherwise

    def cost_key(self, meter: Meter) -> str:
        return "gas" if meter.fuel == "gas" else meter.direction

    def gas_m3_to_kwh(self, m3: float) -> float:
        return m3 * self.volume_correction * self.calorific_value / self.joules_conversion


def _number(raw: dict, name: str, *, integer=False, minimum=None, maximum=None, above=None):
    text = raw.get(name)
    if text is None:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}, not {shown(text)}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, not {shown(text)}")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {shown(text)}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, not {shown(text)}")
    if above is not None and value <= above:
        raise SettingsError(f"{name} must be greater than {above}, not {shown(text)}")
    return value


def _choice(raw: dict, name: str, choices: dict[str, str]) -> str:
    """`choices` maps the lower-cased accepted spelling to the canonical value."""
    text = raw[name]
    try:
        return choices[text.lower()]
    except KeyError:
        allowed = ", ".join(dict.fromkeys(str(v).lower() if isinstance(v, bool) else v for v in choices.values()))
        raise SettingsError(f"{name} must be one of {allowed}, not {shown(text)}") from None


def _api_url(raw: dict, name: str = "OCTO_API_URL") -> str:
    text = raw[name].rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
        default = next(d for n, d, _ in SETTINGS if n == name)
        raise SettingsError(f"{name} must be an origin like {default}, not {shown(text)}")
    try:
        parts.port  # noqa: B018 - urllib raises for a port outside 0-65535
    except ValueError:
        raise SettingsError(f"{name} has a port that does not exist: {shown(text)}") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(f"{name} must use https unless its host is loopback (a secret would travel in clear)")
    return text


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _meter_id(raw: dict, name: str, label: str) -> str | None:
    text = raw.get(name)
    if text is None:
        return None
    compact = "".join(text.split())  # people paste "1200 0000 0000 0"
    if not METER_POINT[label].fullmatch(compact):
        size = "13 digits" if label == "MPAN" else "6 to 10 digits"
        raise SettingsError(f"{name} must be the {label}'s {size}, not {shown(text)}")
    return compact


def _serial(raw: dict, name: str) -> str | None:
    text = raw.get(name)
    if text is not None and (not text.isprintable() or "\\" in text):
        raise SettingsError(f"{name} must be printable text without control characters or backslashes")
    return text


def _meters(raw: dict, gas_unit: str) -> list[Meter]:
    meters = []
    for fuel, direction, point_var, serial_var, label in (
        ("electricity", "import", "OCTO_ELECTRIC_MPAN", "OCTO_ELECTRIC_SN", "MPAN"),
        ("electricity", "export", "OCTO_EXPORT_MPAN", "OCTO_EXPORT_SN", "MPAN"),
        ("gas", "import", "OCTO_GAS_MPRN", "OCTO_GAS_SN", "MPRN"),
    ):
        point = _meter_id(raw, point_var, label)
        serial = _serial(raw, serial_var)
        if point and not serial:
            raise SettingsError(f"{serial_var} is required when {point_var} is set")
        if serial and not point:
            raise SettingsError(f"{point_var} is required when {serial_var} is set")
        if point:
            unit = gas_unit if fuel == "gas" else ""
            meters.append(Meter(fuel, direction, point, serial, unit))
    return meters


def unknown_names(env) -> list[str]:
    """One line for each OCTO_* variable that no setting reads, naming the one probably meant."""
    known = {name for name, _, _ in SETTINGS} | NOT_FOR_THE_PLUGIN
    lines = []
    for name in sorted(n for n in env if n.startswith("OCTO_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else " (octopus-telegraf --help lists every setting)"
        lines.append(f"{name} is not a setting octopus-telegraf reads{hint}")
    return lines


def default_state_dir(env) -> str:
    if env.get("STATE_DIRECTORY"):
        return env["STATE_DIRECTORY"].split(":")[0]  # systemd may give several
    if env.get("XDG_STATE_HOME"):
        return os.path.join(env["XDG_STATE_HOME"], "octopus-telegraf")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "octopus-telegraf")


def load(env, overrides: dict[str, str] | None = None, *, demo: bool = False, needs_account: str | None = None
         ) -> Settings:
    """Validate everything up front; the first problem found raises SettingsError."""
    raw = {}
    for name, default, _ in SETTINGS:
        value = env.get(name)
        if overrides and overrides.get(name) is not None:
            value = overrides[name]
        value = value.strip() if value is not None else None
        if value and _UNEXPANDED.fullmatch(value):
            value = None  # Telegraf leaves "${VAR}" as it is when VAR is not set in its environment
        raw[name] = value if value else default  # empty = unset, as Docker passes `VAR=`

    if raw["OCTO_EVENTS"].lower() in ("true", "1", "yes") and not raw["OCTO_ACCOUNT_NUMBER"] and not demo:
        raise SettingsError("OCTO_EVENTS=true needs OCTO_ACCOUNT_NUMBER (the events are the account's)")
    if needs_account and not raw["OCTO_ACCOUNT_NUMBER"] and not demo:  # before any meter: it finds them
        raise SettingsError(f"OCTO_ACCOUNT_NUMBER is required for {needs_account} (it looks like A-1234ABCD)")
    demo_until = raw["OCTO_DEMO_UNTIL"]
    if demo_until is not None:
        try:
            date.fromisoformat(demo_until)
        except ValueError:
            raise SettingsError(f"OCTO_DEMO_UNTIL must be a date like 2025-11-03, not {shown(demo_until)}") from None
    gas_unit = _choice(raw, "OCTO_GAS_UNIT", {"m3": "m3", "m³": "m3", "kwh": "kWh", "auto": "auto"})
    if gas_unit == "auto" and not raw["OCTO_ACCOUNT_NUMBER"] and not demo:
        raise SettingsError("OCTO_GAS_UNIT=auto needs OCTO_ACCOUNT_NUMBER to ask the account")
    meters = [] if demo else _meters(raw, gas_unit)
    if not demo:
        if not raw["OCTO_API_KEY"]:
            raise SettingsError("OCTO_API_KEY is required (or run with --demo)")
        if not raw["OCTO_API_KEY"].isprintable() or not raw["OCTO_API_KEY"].isascii():
            raise SettingsError("OCTO_API_KEY must be printable ASCII text (keys look like sk_live_...)")
        if not meters and not raw["OCTO_ACCOUNT_NUMBER"]:
            raise SettingsError("OCTO_ELECTRIC_MPAN (or OCTO_EXPORT_MPAN, OCTO_GAS_MPRN, OCTO_ACCOUNT_NUMBER) "
                                "must be set: no meter is configured")
    account_number = raw["OCTO_ACCOUNT_NUMBER"]
    if account_number is not None:
        account_number = account_number.upper()
        if not ACCOUNT_NUMBER.fullmatch(account_number):
            raise SettingsError("OCTO_ACCOUNT_NUMBER must look like A-1234ABCD, not "
                                f"{shown(raw['OCTO_ACCOUNT_NUMBER'])}")

    backfill_from = raw["OCTO_BACKFILL_FROM"]
    if backfill_from is not None:
        try:
            backfill_from = parse_date_or_datetime(backfill_from)
        except (ValueError, OverflowError):
            raise SettingsError("OCTO_BACKFILL_FROM must be an ISO date or datetime, not "
                                f"{shown(backfill_from)}") from None
        if backfill_from > time.time_ns():
            raise SettingsError(f"OCTO_BACKFILL_FROM must not be in the future, not {shown(raw['OCTO_BACKFILL_FROM'])}")

    return Settings(
        api_key=raw["OCTO_API_KEY"],
        account_number=account_number,
        meters=meters,
        fixed_cost={
            key: cost
            for key, name in (("import", "OCTO_ELECTRIC_COST"), ("export", "OCTO_EXPORT_COST"),
                              ("gas", "OCTO_GAS_COST"))
            if (cost := _number(raw, name)) is not None
        },
        gas_unit=gas_unit,
        volume_correction=_number(raw, "VOLUME_CORRECTION", above=0),
        calorific_value=_number(raw, "CALORIFIC_VALUE", above=0),
        joules_conversion=_number(raw, "JOULES_CONVERSION", above=0),
        page_size=_number(raw, "PAGE_SIZE", integer=True, minimum=1, maximum=25000),
        loop_time=_number(raw, "LOOP_TIME", above=0),
        backfill_from_ns=backfill_from,
        backfill_days=_number(raw, "OCTO_BACKFILL_DAYS", minimum=0, maximum=36500),
        lookback_hours=_number(raw, "OCTO_LOOKBACK_HOURS", minimum=0, maximum=24 * 366),
        max_points=_number(raw, "OCTO_MAX_POINTS", integer=True, minimum=1),
        state_dir=raw["OCTO_STATE_DIR"] or default_state_dir(env),
        api_url=_api_url(raw),
        http_timeout=_number(raw, "OCTO_HTTP_TIMEOUT", above=0, maximum=600),
        retry_pause=_number(raw, "OCTO_RETRY_PAUSE", minimum=0, maximum=30),
        timestamp=_choice(raw, "OCTO_TIMESTAMP", {"start": "start", "end": "end"}),
        schema=_choice(raw, "OCTO_SCHEMA", {"octopus": "octopus", "seed": "seed"}),
        payment_method=_choice(raw, "OCTO_PAYMENT_METHOD",
                               {"direct_debit": "DIRECT_DEBIT", "non_direct_debit": "NON_DIRECT_DEBIT"}),
        log_level=_choice(raw, "OCTO_LOG_LEVEL",
                          {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}),
        e7_night=_e7_night(raw),
        graphql_per_hour=_number(raw, "OCTO_GRAPHQL_MAX_PER_HOUR", integer=True, minimum=1, maximum=100),
        iog_allowance_hours=_number(raw, "OCTO_IOG_ALLOWANCE_HOURS", minimum=0, maximum=24),
        live_backfill_minutes=_number(raw, "OCTO_LIVE_BACKFILL_MINUTES", minimum=1, maximum=7 * 24 * 60),
        live_grouping=_choice(raw, "OCTO_LIVE_GROUPING", {g.lower(): g for g in LIVE_GROUPINGS}),
        events=_choice(raw, "OCTO_EVENTS", {"true": True, "false": False, "1": True, "0": False, "yes": True,
                                            "no": False}),
        backend_url=_api_url(raw, "OCTO_BACKEND_API_URL"),
        compare=_compare(raw["OCTO_COMPARE"]),
        compare_detail=_choice(raw, "OCTO_COMPARE_DETAIL", {"day": "day", "half-hour": "half-hour",
                                                            "half_hour": "half-hour"}),
        region=_region(raw["OCTO_REGION"]),
        demo=demo,
        demo_until=demo_until,
        max_points_given=bool(env.get("OCTO_MAX_POINTS") or (overrides or {}).get("OCTO_MAX_POINTS")),
    )


def _compare(text: str | None) -> list:
    try:
        return parse_compare(text) if text else []
    except ValueError as exc:
        raise SettingsError(f"OCTO_COMPARE: {exc}") from None


def _region(text: str | None) -> str | None:
    if text is None:
        return None
    letter = text.upper().removeprefix("_")
    if len(letter) != 1 or not "A" <= letter <= "P":
        raise SettingsError(f"OCTO_REGION must be a region letter from A to P, not {shown(text)}")
    return letter


def _e7_night(raw: dict) -> tuple[int, int]:
    """`00:30-07:30` (UTC) -> seconds after midnight of the window's start and end."""
    text = raw["OCTO_E7_NIGHT"]
    try:
        times = [[int(n) for n in part.strip().split(":")] for part in text.split("-")]
        ok = len(times) == 2 and all(len(t) == 2 and 0 <= t[0] <= 24 and 0 <= t[1] < 60 for t in times)
    except ValueError:
        ok = False
    if not ok:
        raise SettingsError(f"OCTO_E7_NIGHT must be like 00:30-07:30 (UTC), not {shown(text)}")
    return times[0][0] * 3600 + times[0][1] * 60, times[1][0] * 3600 + times[1][1] * 60
