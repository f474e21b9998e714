"""The half-hours the Carbon Intensity API answered, as fixed 6-byte records in one bytearray from a `base`
half-hour on, kept in the state as one hex string: a dict of keyed records cost 6 MiB and a tenth of a
second of JSON at every save of a year's backfill. A record: intensity and forecast (gCO2/kWh; NONE when
not given), the index's code (0: none) and flags (FINAL: the value will not change; PRINTED: these
values were printed). Answers set records; printing marks them; a new value clears PRINTED."""

import re
import struct

from octopus_telegraf.base.timeutil import HALF_HOUR_NS

RECORD = struct.Struct(">HHBB")
NONE = 0xFFFF
FINAL, PRINTED = 1, 2
EMPTY = RECORD.pack(NONE, NONE, 0, 0)  # a half-hour not answered
HEX = re.compile(r"[0-9a-f]*")


def table_ok(text) -> bool:
    return isinstance(text, str) and len(text) % (2 * RECORD.size) == 0 and HEX.fullmatch(text) is not None


class HalfHours:
    def __init__(self, store: dict):
        self.store = store  # the state's section: `base` and `half_hours` (checked by its owner)
        self.table = bytearray.fromhex(store["half_hours"])

    def save(self) -> None:
        self.store["half_hours"] = self.table.hex()  # what the state writes

    def set(self, start_ns: int, intensity: int, forecast: int, index: int, final: bool) -> None:
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

    def record(self, start_ns: int) -> tuple | None:
        base = self.store["base"]
        if base is None or not 0 <= (i := (start_ns - base) // HALF_HOUR_NS) < len(self.table) // RECORD.size:
            return None
        return RECORD.unpack_from(self.table, i * RECORD.size)

    def intensity_at(self, start_ns: int) -> int | None:
        record = self.record(start_ns)
        return None if record is None or record[0] == NONE else record[0]

    def records(self):
        """(start, (intensity, forecast, index, flags)) of each half-hour kept, oldest first."""
        base = self.store["base"]
        if base is None:
            return
        for i, record in enumerate(RECORD.iter_unpack(self.table)):
            yield base + i * HALF_HOUR_NS, record

    def mark_printed(self, starts: list[int]) -> None:
        base, table = self.store["base"], self.table
        for start in starts:  # by time: a prune between would move the positions
            at = (start - base) // HALF_HOUR_NS * RECORD.size + RECORD.size - 1  # the flags byte
            if 0 <= at < len(table):
                table[at] |= PRINTED
        self.save()

    def prune(self, keep_from_ns: int) -> None:
        """Let go of the half-hours before `keep_from_ns` that are printed (or were never answered)."""
        cut = 0
        for start, (intensity, _, _, flags) in self.records():
            if start >= keep_from_ns or (intensity != NONE and not flags & PRINTED):
                break
            cut += 1
        if cut:
            del self.table[:cut * RECORD.size]
            self.store["base"] += cut * HALF_HOUR_NS
            self.save()
