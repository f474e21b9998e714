"""The demo's grid: a deterministic carbon intensity per half-hour (lower at night, higher in the evening
peak, about half on a windy day), answered as the Carbon Intensity API would, regionally and nationally."""

from datetime import datetime, timezone

from octopus_telegraf.base.timeutil import DAY_NS, HALF_HOUR_NS, LONDON, NS_PER_SECOND, iso_to_ns, ns_to_utc_minute_z
from octopus_telegraf.demo.tariffs import DEMO_END_NS, DEMO_START_NS, wobble

DEMO_CARBON = "https://carbon.demo.octopus-telegraf.invalid"
INDEX_FROM = ((300, "very high"), (210, "high"), (140, "moderate"), (60, "low"), (0, "very low"))


def demo_intensity(start_ns: int) -> int:
    local = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    hour = local.hour + local.minute / 60
    base = 110 if hour < 6 else 270 if 17 <= hour < 20 else 190
    windy = wobble(local.toordinal(), 9) < 0.3  # about one day in three
    noise = 0.9 + 0.2 * wobble(start_ns // HALF_HOUR_NS, 13)
    return round(base * noise * (0.45 if windy else 1.0))


def _entry(start_ns: int, national: bool) -> dict:
    value = demo_intensity(start_ns)
    intensity = {"forecast": value, "index": next(name for low, name in INDEX_FROM if value >= low)}
    if national:
        intensity["actual"] = value
    return {"from": ns_to_utc_minute_z(start_ns), "to": ns_to_utc_minute_z(start_ns + HALF_HOUR_NS),
            "intensity": intensity}


def carbon_answer(path: list[str]) -> dict | None:
    """/regional/intensity/{from}/{to}/regionid/{id} or /intensity/{from}/{to}; None for another path."""
    national = len(path) == 3 and path[0] == "intensity"
    if not national and not (len(path) == 6 and path[:2] == ["regional", "intensity"] and path[4] == "regionid"):
        return None
    low, high = (iso_to_ns(text[:-1] + ":00Z") for text in (path[1:3] if national else path[2:4]))
    low, high = max(low, DEMO_START_NS - DAY_NS), min(high, DEMO_END_NS + 2 * DAY_NS)  # the demo's days, 48 h ahead
    entries = [_entry(start, national) for start in range(low - low % HALF_HOUR_NS, high, HALF_HOUR_NS)]
    if national:
        return {"data": entries}
    return {"data": {"regionid": int(path[5]), "shortname": "Demo", "data": entries}}
