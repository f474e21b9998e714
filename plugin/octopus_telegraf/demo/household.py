"""The demo household: its three meters, its account and agreements, what it uses each half-hour (a
deterministic function of time), and the car: its dispatches, the planned slots, the device."""

import math
from datetime import datetime, time, timedelta, timezone

from octopus_telegraf.base.timeutil import HALF_HOUR_NS, LONDON, NS_PER_SECOND, datetime_to_ns, iso_to_ns
from octopus_telegraf.config.settings import Meter
from octopus_telegraf.demo.tariffs import (
    AGILE,
    DEMO_IOG_NS,
    DEMO_SINCE_NS,
    DEMO_START_DATE,
    DEMO_START_NS,
    DEMO_SWITCH_NS,
    FIXED,
    GAS,
    IOG,
    OUTGOING,
    london_text,
    wobble,
)

DEMO_METERS = [
    Meter("electricity", "import", "1900000000001", "DEMO-E-0001"),
    Meter("electricity", "export", "1900000000002", "DEMO-E-0001"),
    Meter("gas", "import", "9100000001", "DEMO-G-0001", "m3"),
]
DEMO_ACCOUNT = "A-DEMO0001"
DEMO_COMPARE = "agile=agile,go=go,tracker=tracker,agile_outgoing=agile_outgoing"


def at(day: int, clock: str, minutes: int = 0) -> str:
    """London local time `clock` on day `day` of the demo (0 = its first), `minutes` later, as the API writes it."""
    hour, minute = map(int, clock.split(":"))
    local = datetime.combine(DEMO_START_DATE + timedelta(days=day), time(hour, minute), tzinfo=LONDON)
    return london_text(datetime_to_ns(local) + minutes * 60 * NS_PER_SECOND)


DEMO_DISPATCHES = [  # (London start, London end, kWh into the car, source), on Intelligent Octopus Go's days
    (at(20, "11:10"), at(20, "11:10", 30), 3.4, "smart-charge"),  # part of two half-hours
    (at(21, "16:00"), at(21, "16:00", 30), 3.5, "bump-charge"),  # asked for: never off-peak, never counted
    (at(22, "13:00"), at(22, "13:00", 240), 27.2, "smart-charge"),  # a long day: 4 h, then 3 h more...
    (at(22, "19:00"), at(22, "19:00", 180), 20.4, "smart-charge"),  # ...the last hour past the 6-hour allowance
    (at(23, "01:00"), at(23, "01:00", 120), 13.6, "smart-charge"),  # the night: counted, off-peak anyway
    (at(24, "14:00"), at(24, "14:00", 60), 6.8, None),  # a null source counts as a smart charge
]
DEMO_CAR = {"id": "00000000-demo-4000-8000-00000000ca01", "deviceType": "ELECTRIC_VEHICLES", "provider": "DEMO_CAR",
            "status": {"current": "LIVE", "currentState": "SMART_CONTROL_CAPABLE", "isSuspended": False}}
DEMO_PLANNED = [  # tonight's slots, as flexPlannedDispatches lists them (London start, minutes, kWh)
    (at(28, "20:00"), 60, "-6.800"), (at(28, "23:30"), 120, "-13.600")]
DEMO_AGREEMENTS = {  # meter point -> (tariff code, from, to)
    "1900000000001": [(AGILE, london_text(DEMO_SINCE_NS), london_text(DEMO_SWITCH_NS)),
                      (FIXED, london_text(DEMO_SWITCH_NS), london_text(DEMO_IOG_NS)),
                      (IOG, london_text(DEMO_IOG_NS), None)],
    "1900000000002": [(OUTGOING, london_text(DEMO_SINCE_NS), None)],
    "9100000001": [(GAS, london_text(DEMO_SINCE_NS), None)],
}


def demo_value(meter: Meter, start_ns: int) -> float:
    local = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    hour = local.hour + local.minute / 60
    index = (start_ns - DEMO_START_NS) // HALF_HOUR_NS
    noise = wobble(index, len(meter.point) + ord(meter.direction[0]))
    if meter.fuel == "gas":  # m³: heating morning and evening
        heating = 0.45 if 6 <= hour < 9 or 17 <= hour < 22 else 0.02
        return round(heating * (0.6 + 0.8 * noise), 3)
    if meter.direction == "export":  # solar, October: roughly 08:00-17:00
        sun = max(0.0, math.sin(math.pi * (hour - 8) / 9)) if 8 <= hour < 17 else 0.0
        cloud = 0.3 + 0.7 * wobble(local.toordinal(), 7)
        return round(0.9 * sun * cloud * (0.8 + 0.4 * noise), 3)
    base = 0.11 + (0.35 if 7 <= hour < 9 else 0) + (0.55 if 17 <= hour < 21 else 0)
    return round(base * (0.7 + 0.6 * noise) + _car_kwh(start_ns), 3)


def _car_kwh(start_ns: int) -> float:
    """The car's share of a half-hour: 7 kW for the part of it that a dispatch covers."""
    end_ns = start_ns + HALF_HOUR_NS
    kwh = 0.0
    for start, end, _, _ in DEMO_DISPATCHES:
        overlap = min(end_ns, iso_to_ns(end)) - max(start_ns, iso_to_ns(start))
        if overlap > 0:
            kwh += 7.0 * overlap / (3600 * NS_PER_SECOND)
    return kwh
