"""Carbon intensity per half-hour (OCTO_CARBON, SPEC section 11): the grid operator's Carbon Intensity API (no
key; a client of its own, so that no Octopus credential can go there), regional forecasts or national
actuals. What was answered is kept in the state; the half-hours a gather is about to print are asked
first, so that they are printed with `co2_kg` at once; a half-hour printed without it is printed again
once it is known (the core sees a change of its mark). octopus_carbon is printed when a value changes.

Calls: the backfill to 48 hours ahead in calls of 14 days at most, 10 a gather at most (split-invariant:
it goes on where it stopped); then one call an hour at most while a past half-hour of the look-back lacks
its final value; and one after 16:00 London for the next day's forecast."""

import re
import struct

from octopus_telegraf.api.shapes import ShapeError
from octopus_telegraf.base.clock import due, is_stamp, stamp
from octopus_telegraf.base.lineprotocol import format_value, tag_prefix
from octopus_telegraf.base.timeutil import (
    HALF_HOUR_NS,
    HOUR_NS,
    floor_half_hour,
    iso_to_ns,
    london_day_start,
    london_minute_of_day,
    ns_to_utc_z,
)
from octopus_telegraf.core.state import drop_damaged

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
# a half-hour: intensity and forecast in gCO2/kWh (NONE: not given), the index's code (0: none), flags
RECORD = struct.Struct(">HHBB")
NONE = 0xFFFF
FINAL, PRINTED = 1, 2
EMPTY = RECORD.pack(NONE, NONE, 0, 0)  # a half-hour not answered
HEX = re.compile(r"[0-9a-f]*")
API_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d)Z")


def api_time(moment_ns: int) -> str:
    return ns_to_utc_z(moment_ns)[:16] + "Z"  # YYYY-MM-DDThh:mmZ


class Carbon:
    """One source (regional for a region letter, or national) and what it answered, kept in the state
    (`store`, see `checked`): `from`/`to` the span asked, when the look-back and the next day were asked, and
    the half-hours from `base` on as fixed records in one hex string (a dict of keyed records cost 6 MiB
    and a tenth of a second of JSON at every save of a year's backfill; this costs 6 bytes a half-hour)."""

    def __init__(self, client, source: str, store: dict):
        self.client = client  # a Client of the carbon origin, without any key
        self.source = source  # regional | national
        self.store = checked(store)
        self.table = bytearray.fromhex(self.store["half_hours"])  # RECORD per half-hour from store["base"]
        self.region: str | None = None  # the letter; set by the service from the meters' place
        self.prefix: str | None = None

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
            self._keep_table()

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
            record = self._record(start)
            if record is None or record[0] == NONE or not record[3] & FINAL:
                return start
        return None

    def _record(self, start_ns: int) -> tuple | None:
        base = self.store["base"]
        if base is None or not 0 <= (i := (start_ns - base) // HALF_HOUR_NS) < len(self.table) // RECORD.size:
            return None
        return RECORD.unpack_from(self.table, i * RECORD.size)

    def _ask(self, low_ns: int, high_ns: int, now_ns: int) -> None:
        if self.source == "regional":
            path = f"/regional/intensity/{api_time(low_ns)}/{api_time(high_ns)}/regionid/{REGION_IDS[self.region]}"
        else:
            path = f"/intensity/{api_time(low_ns)}/{api_time(high_ns)}"
        body = self.client.get_json(self.client.url(path), authenticated=False)
        for start, intensity, forecast, index, final in parse_answer(body, self.source, now_ns):
            if low_ns <= start < high_ns:
                self._set(start, intensity, NONE if forecast is None else forecast, index, final)

    def _set(self, start_ns: int, intensity: int, forecast: int, index: int, final: bool) -> None:
        """Keep one half-hour's answer; unless its values are those printed, it is to be printed again."""
        store, table = self.store, self.table
        if store["base"] is None:
            store["base"] = start_ns
        i = (start_ns - store["base"]) // HALF_HOUR_NS
        if i < 0:  # earlier than anything kept: room before (once per answer: answers come oldest first)
            table[:0] = EMPTY * -i
            store["base"], i = start_ns, 0
        if i >= len(table) // RECORD.size:
            table.extend(EMPTY * (i + 1 - len(table) // RECORD.size))
        old = RECORD.unpack_from(table, i * RECORD.size)
        printed = old[3] & PRINTED if old[:3] == (intensity, forecast, index) else 0
        RECORD.pack_into(table, i * RECORD.size, intensity, forecast, index, (FINAL if final else 0) | printed)

    def _records(self, from_ns: int | None = None):
        """(start, (intensity, forecast, index, flags)) of each half-hour kept, from `from_ns`."""
        base = self.store["base"]
        if base is None:
            return
        first = 0 if from_ns is None else max(0, -(-(from_ns - base) // HALF_HOUR_NS))
        for i, record in enumerate(RECORD.iter_unpack(self.table[first * RECORD.size:]), first):
            yield base + i * HALF_HOUR_NS, record

    def _keep_table(self) -> None:
        self.store["half_hours"] = self.table.hex()  # what the state saves

    # -- using -----------------------------------------------------------------------------------
    def intensity_at(self, start_ns: int) -> int | None:
        record = self._record(start_ns)
        return None if record is None or record[0] == NONE else record[0]

    def lines(self, budget: int):
        """octopus_carbon points new or changed since printed (at most `budget`), and the function that keeps
        them printed once written."""
        if self.prefix is None:
            return [], None
        lines, kept = [], []
        for start, (intensity, forecast, index, flags) in self._records():
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

        def keep():
            base, table = self.store["base"], self.table
            for start in kept:  # by time: a prune between would move the positions
                at = (start - base) // HALF_HOUR_NS * RECORD.size + RECORD.size - 1  # the flags byte
                if 0 <= at < len(table):
                    table[at] |= PRINTED
            self._keep_table()
        return lines, keep

    def prune(self, keep_from_ns: int) -> None:
        """Half-hours before every meter's next read are not needed again once printed (`from` stays: never
        asked twice): the table is cut at the first half-hour still needed."""
        cut = 0
        for start, (intensity, _, _, flags) in self._records():
            if start >= keep_from_ns or (intensity != NONE and not flags & PRINTED):
                break
            cut += 1
        if cut:
            del self.table[:cut * RECORD.size]
            self.store["base"] += cut * HALF_HOUR_NS
            self._keep_table()


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
    (asked again). `half_hours`: hex of one RECORD per half-hour from `base`."""
    def table_ok(text):
        return isinstance(text, str) and len(text) % (2 * RECORD.size) == 0 and HEX.fullmatch(text) is not None

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
