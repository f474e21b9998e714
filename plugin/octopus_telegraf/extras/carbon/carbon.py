"""Carbon intensity per half-hour (OCTO_CARBON): the grid operator's Carbon Intensity API (no
key; a client of its own, so that no Octopus credential can go there), regional forecasts or national
actuals. What was answered is kept in the state; the half-hours a gather is about to print are asked
first, so that they are printed with `co2_kg` at once; a half-hour printed without it is printed again
once it is known (the core sees a change of its mark). octopus_carbon is printed when a value changes.

Calls: the backfill to 48 hours ahead in calls of 14 days at most, 10 a gather at most (split-invariant:
it goes on where it stopped); then one call an hour at most while a past half-hour of the look-back lacks
its final value; and one after 16:00 London for the next day's forecast."""

import re

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.api.shapes import ShapeError
from octopus_telegraf.base import log
from octopus_telegraf.base.clock import due, is_stamp, stamp
from octopus_telegraf.base.lineprotocol import format_value, tag_prefix
from octopus_telegraf.base.timeutil import (
    HALF_HOUR_NS,
    HOUR_NS,
    floor_half_hour,
    iso_to_ns,
    london_day_start,
    london_minute_of_day,
    ns_to_utc_minute_z,
)
from octopus_telegraf.core.account import gsp_letter
from octopus_telegraf.core.state import drop_damaged
from octopus_telegraf.extras.carbon.table import FINAL, NONE, PRINTED, HalfHours, table_ok
from octopus_telegraf.prices.series import TariffCode

REGION_IDS = {"A": 10, "B": 9, "C": 13, "D": 6, "E": 8, "F": 4, "G": 3, "H": 12, "J": 14, "K": 7, "L": 11, "M": 5,
              "N": 2, "P": 1}
CALL_SPAN_NS = 14 * 24 * HOUR_NS  # the API answers at most 14 days a call
CALLS_PER_GATHER = 10
AHEAD_NS = 48 * HOUR_NS
CHECK_EVERY_S = 3600  # a past half-hour without its final value is asked again at most this often
NEXT_DAY_FROM_MINUTE = 16 * 60  # the next day's forecast is published in the afternoon
INDEXES = ("very low", "low", "moderate", "high", "very high")
INDEX_CODES = {name: code for code, name in enumerate(INDEXES, 1)}
INDEX_TEXT = {code: format_value(name) for name, code in INDEX_CODES.items()}
API_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d)Z")


class Carbon:
    """One source (regional for a region letter, or national) and what it answered, kept in the state
    (`store`, see `checked`): `from`/`to` the span asked, when the look-back and the next day were asked, and
    the half-hours themselves (table.py)."""

    def __init__(self, client, source: str, store: dict):
        self.client = client  # a Client of the carbon origin, without any key
        self.source = source  # regional | national
        self.store = checked(store)
        self.half_hours = HalfHours(self.store)
        self.region: str | None = None  # the letter, once located
        self.prefix: str | None = None
        self.located: bool | None = None  # the place to ask for: known, not knowable, not looked for yet

    @staticmethod
    def covers(meter) -> bool:
        """Carbon is the grid's: an import electricity meter's half-hours carry it, export and gas none."""
        return meter.fuel == "electricity" and meter.direction == "import"

    def locate(self, setting: str | None, meters, client, agreements) -> bool:
        """Is the place to ask for known? OCTO_REGION, else the import meter point's grid supply point, else its
        tariff's letter (the physical place first, unlike the comparisons). Looked for once; when it cannot be
        known for a regional source, one W! and no carbon call in this process. A failed lookup is asked again."""
        if self.located is None:
            letter = setting
            importing = [m for m in meters if self.covers(m)]
            if letter is None and self.source == "regional" and importing:
                try:
                    letter = gsp_letter(client, importing[0].point)
                except ApiError:
                    return False  # asked again at the next gather
                if letter is None:
                    codes = [TariffCode.parse(a.tariff_code) for a in agreements("electricity", importing[0].point)]
                    letter = next((code.region for code in reversed(codes) if code), None)
            self.located = bool(importing) and self.set_region(letter)
            if not self.located:
                log.warn("OCTO_CARBON=regional: the region is not known (no import meter, no grid supply point, no "
                         "tariff letter); set OCTO_REGION (A-P). No carbon intensity is asked")
        return self.located

    def set_region(self, letter: str | None) -> bool:
        """The region to ask for (national needs none). False when it cannot be known."""
        if self.source == "national":
            letter = "GB"
        elif letter not in REGION_IDS:
            return False
        if letter != self.region:
            self.region = letter
            self.prefix = tag_prefix("octopus_carbon", {"region": letter, "source": self.source})
        return True

    # -- asking -----------------------------------------------------------------------------------
    def refresh(self, want_from_ns: int, now_ns: int) -> None:
        """Ask what is due (see the module's text). Raises ApiError or ShapeError: the boundary's to report;
        what the calls before brought is kept."""
        try:
            self._refresh(floor_half_hour(want_from_ns), now_ns)
        finally:
            self.half_hours.save()

    def _refresh(self, want_from: int, now_ns: int) -> None:
        until = floor_half_hour(now_ns) + AHEAD_NS
        store, calls = self.store, 0
        if store["from"] is None:
            store["from"] = store["to"] = want_from  # nothing asked yet: start there
        while calls < CALLS_PER_GATHER and want_from < store["from"]:  # history before what was asked
            low = max(want_from, store["from"] - CALL_SPAN_NS)
            self._ask(low, store["from"], now_ns)
            store["from"], calls = low, calls + 1
        while calls < CALLS_PER_GATHER and store["to"] < until:  # the backfill, then 48 hours ahead
            high = min(store["to"] + CALL_SPAN_NS, until)
            self._ask(store["to"], high, now_ns)
            store["to"], calls = high, calls + 1
        if calls >= CALLS_PER_GATHER:
            return  # the rest at the next gather
        # the look-back: what the REST half reads again from `want_from` on, and may print again with co2_kg
        open_from = self._first_open(want_from, now_ns)
        if open_from is not None and due(store["checked"], CHECK_EVERY_S):
            self._ask(open_from, min(open_from + CALL_SPAN_NS, floor_half_hour(now_ns) + HALF_HOUR_NS), now_ns)
            store["checked"] = stamp()
        today = london_day_start(now_ns)
        if london_minute_of_day(now_ns) >= NEXT_DAY_FROM_MINUTE and store["ahead_day"] != today:
            self._ask(floor_half_hour(now_ns), until, now_ns)
            store["ahead_day"] = today

    def _first_open(self, from_ns: int, now_ns: int) -> int | None:
        """The first past half-hour from `from_ns` (within what was asked) without its final value: known but
        a forecast, or not in any answer (an empty answer may be a passing one: never taken as final)."""
        store = self.store
        if store["from"] is None:
            return None
        for start in range(max(floor_half_hour(from_ns), store["from"]), min(store["to"], now_ns), HALF_HOUR_NS):
            if start + HALF_HOUR_NS > now_ns:
                break
            record = self.half_hours.record(start)
            if record is None or record[0] == NONE or not record[3] & FINAL:
                return start
        return None

    def _ask(self, low_ns: int, high_ns: int, now_ns: int) -> None:
        span = f"{ns_to_utc_minute_z(low_ns)}/{ns_to_utc_minute_z(high_ns)}"
        if self.source == "regional":
            path = f"/regional/intensity/{span}/regionid/{REGION_IDS[self.region]}"
        else:
            path = f"/intensity/{span}"
        body = self.client.get_json(self.client.url(path), authenticated=False)
        for start, intensity, forecast, index, final in parse_answer(body, self.source, now_ns):
            if low_ns <= start < high_ns:
                self.half_hours.set(start, intensity, NONE if forecast is None else forecast, index, final)

    # -- using -----------------------------------------------------------------------------------
    def intensity_at(self, start_ns: int) -> int | None:
        return self.half_hours.intensity_at(start_ns)

    def lines(self, budget: int):
        """octopus_carbon points new or changed since printed (at most `budget`), and the function that keeps
        them printed once written."""
        if self.prefix is None:
            return [], None
        lines, kept = [], []
        for start, (intensity, forecast, index, flags) in self.half_hours.records():
            if intensity == NONE or flags & PRINTED:
                continue
            if len(lines) >= budget:
                break
            fields = f"intensity_g={intensity}i"
            if forecast != NONE:
                fields += f",forecast_g={forecast}i"
            if index:
                fields += f",index={INDEX_TEXT[index]}"
            lines.append(f"{self.prefix} {fields} {start}")
            kept.append(start)
        return lines, lambda: self.half_hours.mark_printed(kept)

    def prune(self, keep_from_ns: int) -> None:
        """Half-hours before every meter's next read are not needed again once printed (`from` stays: never
        asked twice)."""
        self.half_hours.prune(keep_from_ns)


def parse_answer(body, source: str, now_ns: int) -> list[tuple]:
    """(start, intensity, forecast, index code, final) of each half-hour of an answer. By region `data` is one
    object whose `data` is the list; nationally `data` is the list. ShapeError for anything else; a
    half-hour entry of another shape is left out."""
    data = body.get("data") if isinstance(body, dict) else None
    if source == "regional":
        if not isinstance(data, dict):
            raise ShapeError(f"regional `data` is a {type(data).__name__}, not an object")
        data = data.get("data")
    if not isinstance(data, list):
        raise ShapeError(f"`data` holds a {type(data).__name__}, not a list of half-hours")
    out = []
    for entry in data:
        try:
            start = iso_to_ns(API_TIME.fullmatch(entry["from"]).group(1) + ":00Z")
            intensity = entry["intensity"]
            forecast, actual, index = intensity.get("forecast"), intensity.get("actual"), intensity.get("index")
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
            continue
        forecast = forecast if type(forecast) is int and 0 <= forecast < 5000 else None
        actual = actual if type(actual) is int and 0 <= actual < 5000 else None
        value = actual if actual is not None else forecast
        if value is None or start % HALF_HOUR_NS:
            continue
        # final: an actual (national), or a regional forecast read after its half-hour had passed
        final = actual is not None or (source == "regional" and start + HALF_HOUR_NS <= now_ns)
        out.append((start, value, forecast, INDEX_CODES.get(index, 0), final))
    return out


def checked(store: dict) -> dict:
    """The state's `carbon` section with the shape its reader expects; a damaged part is one W! and dropped
    (asked again). `half_hours`: the table's hex (table.py) from `base`."""
    checks = {"from": lambda v: v is None or type(v) is int, "to": lambda v: v is None or type(v) is int,
              "checked": lambda v: v is None or is_stamp(v), "ahead_day": lambda v: v is None or type(v) is int,
              "base": lambda v: v is None or (type(v) is int and v % HALF_HOUR_NS == 0), "half_hours": table_ok}
    store.pop("values", None), store.pop("printed", None)  # this section's first shape (never released)
    if "half_hours" in store and not table_ok(store["half_hours"]):
        store.pop("base", None), store.pop("from", None), store.pop("to", None)  # asked again, all of it
    drop_damaged(store, checks, "the carbon intensity's", lambda name: "" if name == "half_hours" else None)
    if store["base"] is None:
        store["half_hours"] = ""
    if store["from"] is None or store["to"] is None or store["from"] > store["to"]:
        store["from"] = store["to"] = None
    return store
