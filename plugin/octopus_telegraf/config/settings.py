"""Settings from the environment (names kept from the Node.js tool), each overridable by a flag: `load()`
refuses a bad one before anything runs (Telegraf's Init()) and gives one Settings object."""

import time
from dataclasses import dataclass, field
from datetime import date

from octopus_telegraf.base.log import shown
from octopus_telegraf.base.timeutil import parse_date_or_datetime
from octopus_telegraf.config.table import LIVE_GROUPINGS, SETTINGS
from octopus_telegraf.config.values import (
    ACCOUNT_NUMBER,
    UNEXPANDED,
    SettingsError,
    choice_of,
    comparisons_of,
    default_state_dir,
    e7_night_of,
    meter_id_of,
    number_of,
    origin_of,
    region_of,
    serial_of,
)
from octopus_telegraf.prices.options import PriceOptions


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
    carbon: str = "off"  # regional | national | off
    carbon_url: str = "https://api.carbonintensity.org.uk"
    demo: bool = False
    demo_until: str | None = None
    max_points_given: bool = False  # the demo prints all of itself in one gather unless told otherwise

    def price_options(self) -> PriceOptions:
        return PriceOptions(self.payment_method, self.e7_night, self.iog_allowance_hours)

    def cost_key(self, meter: Meter) -> str:
        return "gas" if meter.fuel == "gas" else meter.direction

    def gas_m3_to_kwh(self, m3: float) -> float:
        return m3 * self.volume_correction * self.calorific_value / self.joules_conversion


def _meters(raw: dict, gas_unit: str) -> list[Meter]:
    meters = []
    for fuel, direction, point_var, serial_var, label in (
        ("electricity", "import", "OCTO_ELECTRIC_MPAN", "OCTO_ELECTRIC_SN", "MPAN"),
        ("electricity", "export", "OCTO_EXPORT_MPAN", "OCTO_EXPORT_SN", "MPAN"),
        ("gas", "import", "OCTO_GAS_MPRN", "OCTO_GAS_SN", "MPRN"),
    ):
        point = meter_id_of(raw, point_var, label)
        serial = serial_of(raw, serial_var)
        if point and not serial:
            raise SettingsError(f"{serial_var} is required when {point_var} is set")
        if serial and not point:
            raise SettingsError(f"{point_var} is required when {serial_var} is set")
        if point:
            unit = gas_unit if fuel == "gas" else ""
            meters.append(Meter(fuel, direction, point, serial, unit))
    return meters


def _raw(env, overrides: dict[str, str] | None) -> dict:
    """Each setting's text: the flag's, else the environment's, else its default."""
    raw = {}
    for name, default, _ in SETTINGS:
        value = env.get(name)
        if overrides and overrides.get(name) is not None:
            value = overrides[name]
        value = value.strip() if value is not None else None
        if value and UNEXPANDED.fullmatch(value):
            value = None  # Telegraf leaves "${VAR}" as it is when VAR is not set in its environment
        raw[name] = value if value else default  # empty = unset, as Docker passes `VAR=`
    return raw


@dataclass
class StatusSettings:
    state_dir: str
    graphql_per_hour: int


def status_settings(env, overrides: dict[str, str] | None = None) -> StatusSettings:
    """What `octopus-telegraf status` reads: where the state is, and the GraphQL budget it is counted against."""
    raw = _raw(env, overrides)
    return StatusSettings(state_dir=raw["OCTO_STATE_DIR"] or default_state_dir(env),
                          graphql_per_hour=number_of(raw, "OCTO_GRAPHQL_MAX_PER_HOUR", integer=True, minimum=1,
                                                     maximum=100))


def load(env, overrides: dict[str, str] | None = None, *, demo: bool = False, needs_account: str | None = None
         ) -> Settings:
    """Validate everything up front; the first problem found raises SettingsError."""
    raw = _raw(env, overrides)

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
    gas_unit = choice_of(raw, "OCTO_GAS_UNIT", {"m3": "m3", "m³": "m3", "kwh": "kWh", "auto": "auto"})
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
            if (cost := number_of(raw, name)) is not None
        },
        gas_unit=gas_unit,
        volume_correction=number_of(raw, "VOLUME_CORRECTION", above=0),
        calorific_value=number_of(raw, "CALORIFIC_VALUE", above=0),
        joules_conversion=number_of(raw, "JOULES_CONVERSION", above=0),
        page_size=number_of(raw, "PAGE_SIZE", integer=True, minimum=1, maximum=25000),
        loop_time=number_of(raw, "LOOP_TIME", above=0),
        backfill_from_ns=backfill_from,
        backfill_days=number_of(raw, "OCTO_BACKFILL_DAYS", minimum=0, maximum=36500),
        lookback_hours=number_of(raw, "OCTO_LOOKBACK_HOURS", minimum=0, maximum=24 * 366),
        max_points=number_of(raw, "OCTO_MAX_POINTS", integer=True, minimum=1),
        state_dir=raw["OCTO_STATE_DIR"] or default_state_dir(env),
        api_url=origin_of(raw),
        http_timeout=number_of(raw, "OCTO_HTTP_TIMEOUT", above=0, maximum=600),
        retry_pause=number_of(raw, "OCTO_RETRY_PAUSE", minimum=0, maximum=30),
        timestamp=choice_of(raw, "OCTO_TIMESTAMP", {"start": "start", "end": "end"}),
        schema=choice_of(raw, "OCTO_SCHEMA", {"octopus": "octopus", "seed": "seed"}),
        payment_method=choice_of(raw, "OCTO_PAYMENT_METHOD",
                               {"direct_debit": "DIRECT_DEBIT", "non_direct_debit": "NON_DIRECT_DEBIT"}),
        log_level=choice_of(raw, "OCTO_LOG_LEVEL",
                          {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}),
        e7_night=e7_night_of(raw),
        graphql_per_hour=number_of(raw, "OCTO_GRAPHQL_MAX_PER_HOUR", integer=True, minimum=1, maximum=100),
        iog_allowance_hours=number_of(raw, "OCTO_IOG_ALLOWANCE_HOURS", minimum=0, maximum=24),
        live_backfill_minutes=number_of(raw, "OCTO_LIVE_BACKFILL_MINUTES", minimum=1, maximum=7 * 24 * 60),
        live_grouping=choice_of(raw, "OCTO_LIVE_GROUPING", {g.lower(): g for g in LIVE_GROUPINGS}),
        events=choice_of(raw, "OCTO_EVENTS", {"true": True, "false": False, "1": True, "0": False, "yes": True,
                                            "no": False}),
        backend_url=origin_of(raw, "OCTO_BACKEND_API_URL"),
        compare=comparisons_of(raw["OCTO_COMPARE"]),
        compare_detail=choice_of(raw, "OCTO_COMPARE_DETAIL", {"day": "day", "half-hour": "half-hour",
                                                            "half_hour": "half-hour"}),
        region=region_of(raw["OCTO_REGION"]),
        carbon=choice_of(raw, "OCTO_CARBON", {"regional": "regional", "national": "national", "off": "off"}),
        carbon_url=origin_of(raw, "OCTO_CARBON_API_URL"),
        demo=demo,
        demo_until=demo_until,
        max_points_given=bool(env.get("OCTO_MAX_POINTS") or (overrides or {}).get("OCTO_MAX_POINTS")),
    )
