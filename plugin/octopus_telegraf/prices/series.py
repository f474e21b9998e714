"""Tariff codes read (`E-1R-AGILE-24-10-01-C`: fuel, registers, product, region) and a rate series: the
rows of one tariff and kind as the API gave them, which periods were asked, and what was printed."""

import bisect
import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TariffCode:
    code: str
    fuel: str  # electricity | gas
    dual: bool  # 2R: Economy 7 day/night
    product: str
    region: str

    @classmethod
    @functools.lru_cache(maxsize=256)  # asked for every half-hour priced
    def parse(cls, code: str) -> "TariffCode | None":
        """`E-1R-AGILE-FLEX-22-11-25-C` -> product AGILE-FLEX-22-11-25, region C, single register."""
        parts = code.split("-")
        if len(parts) < 4 or parts[0] not in ("E", "G") or len(parts[-1]) != 1:
            return None
        return cls(code, "electricity" if parts[0] == "E" else "gas", parts[1] == "2R", "-".join(parts[2:-1]),
                   parts[-1])

    @property
    def unit_registers(self) -> tuple[str, ...]:
        return ("day", "night") if self.dual else ("standard",)


@dataclass
class RateSeries:
    """One tariff's rows of one kind (standard, day, night or standing), sorted by valid_from.

    A row is [valid_from_ns, valid_to_ns or None, inc_vat, exc_vat, printed]. `covered` is the span
    [from, to) already asked of the API; rows outside it may be missing."""

    rows: list[list] = field(default_factory=list)
    covered_from: int | None = None
    covered_to: int | None = None
    upcoming_at: float = 0.0  # wall time of the last look for prices published ahead
    days_through: int | None = None  # the last London midnight given its own octopus_unit_rate point

    def __post_init__(self):
        self._starts = [row[0] for row in self.rows]

    def find(self, moment_ns: int) -> list | None:
        index = bisect.bisect_right(self._starts, moment_ns) - 1
        if index >= 0:
            row = self.rows[index]
            if row[1] is None or moment_ns < row[1]:
                return row
        return None

    def merge(self, new_rows: list[list]) -> None:
        by_start = {row[0]: row for row in self.rows}
        for row in new_rows:
            old = by_start.get(row[0])
            if old is not None and old[2:4] == row[2:4]:
                old[1] = row[1]  # a valid_to set later is no new price
            else:
                by_start[row[0]] = row
        self.rows = sorted(by_start.values(), key=lambda r: r[0])
        self._starts = [row[0] for row in self.rows]

    def prune(self, keep_from: int, printing: bool = True) -> None:
        """Rows and coverage older than `keep_from`, except what is still to be printed: rows not printed
        yet, and the London midnights after `days_through` (a backfill cut into many gathers prints them
        later, and must print the same points as one gather would)."""
        still_to_print = self.covered_from if self.days_through is None else self.days_through
        if printing and still_to_print is not None:
            keep_from = min(keep_from, still_to_print)
        self.rows = [r for r in self.rows if (printing and not r[4]) or r[1] is None or r[1] > keep_from]
        self._starts = [row[0] for row in self.rows]
        if self.covered_from is not None and self.covered_from < keep_from:
            self.covered_from = keep_from

    def to_json(self) -> dict:
        return {"rows": self.rows, "from": self.covered_from, "to": self.covered_to, "upcoming": self.upcoming_at,
                "days": self.days_through}

    @classmethod
    def from_json(cls, data: dict) -> "RateSeries":
        rows = [[int(r[0]), None if r[1] is None else int(r[1]), float(r[2]), float(r[3]), bool(r[4])]
                for r in data["rows"]]
        days = data.get("days")
        return cls(rows, data.get("from"), data.get("to"), float(data.get("upcoming", 0)),
                   int(days) if days is not None else None)
