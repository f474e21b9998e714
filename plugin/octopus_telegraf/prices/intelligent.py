"""Intelligent Octopus, as the price book sees it: which tariffs are intelligent, and the log of completed
smart-charge dispatches (data kept in the state) with the questions pricing asks of it: does a dispatch
overlap a half-hour, when does the first overlap begin, how many smart-charge seconds lie in a window.
Reading the dispatches from GraphQL is an extra's work (extras/dispatches.py)."""

import re
from bisect import bisect_left
from dataclasses import dataclass, field

from octopus_telegraf.base.timeutil import LARGEST_NS, NS_PER_SECOND

INTELLIGENT_PRODUCT = re.compile(r"^IOG|INTELLI-(?:VAR|BB-VAR|FIX|\d)")
LONGEST_NS = 24 * 3600 * NS_PER_SECOND  # a dispatch longer than a day is not one: it would re-price days
MOST_KEPT = 2000  # a look-back's worth, several times over


def is_intelligent(tariff_code: str) -> bool:
    """`E-1R-INTELLI-VAR-24-10-29-C`, `...INTELLI-BB-VAR...`, `...INTELLI-FIX...`, or a product starting IOG."""
    parts = tariff_code.split("-")
    product = "-".join(parts[2:-1]) if len(parts) >= 4 else tariff_code
    return bool(INTELLIGENT_PRODUCT.search(product))


def source_tag(source) -> str:
    """smart-charge, bump-charge (a bump or boost the user asked for: not off-peak) or unknown."""
    if not isinstance(source, str) or not source.strip():
        return "unknown"
    text = source.strip().lower()
    if "bump" in text or "boost" in text:
        return "bump-charge"
    return "smart-charge" if text == "smart-charge" else "unknown"


@dataclass
class Dispatch:
    start_ns: int
    end_ns: int
    energy_kwh: float | None  # |delta|: the API gives energy into the car as a negative string
    source: str  # smart-charge | bump-charge | unknown
    printed: bool = False
    used_s: int | None = None  # allowance_used_s as printed (four-rate products): printed again when it changes

    @property
    def off_peak(self) -> bool:
        """A null or unknown source counts as a smart charge, as Octopus bills it; a bump charge does not."""
        return self.source != "bump-charge"

    def to_json(self) -> list:
        return [self.start_ns, self.end_ns, self.energy_kwh, self.source, self.printed,
                *([] if self.used_s is None else [self.used_s])]

    @classmethod
    def from_json(cls, raw: list) -> "Dispatch":
        start, end, energy, source, printed, *used = raw
        if type(start) is not int or type(end) is not int or not 0 <= start < end < LARGEST_NS:
            raise ValueError("dispatch times")
        if used and type(used[0]) is not int:
            raise ValueError("allowance used")
        return cls(start, end, None if energy is None else float(energy), source_tag(source), bool(printed),
                   used[0] if used else None)


@dataclass
class DispatchLog:
    """What the state keeps: the dispatches, and from when they are known."""

    dispatches: list[Dispatch] = field(default_factory=list)
    known_from_ns: int | None = None
    forgotten_before_ns: int = 0  # dispatches ending by then were pruned: the API listing them again is no news
    observed_to_ns: int = 0  # when the API last answered: every dispatch that ended 12 hours before is known
    iog_days: dict[int, list] = field(default_factory=dict)  # IOG day's 12:00 -> octopus_iog_day values printed

    def to_json(self) -> dict:
        return {"known_from": self.known_from_ns, "forgotten_before": self.forgotten_before_ns,
                "observed_to": self.observed_to_ns, "iog_days": [[day, *v] for day, v in sorted(self.iog_days.items())],
                "dispatches": [d.to_json() for d in self.dispatches]}

    @classmethod
    def from_json(cls, raw: dict) -> "DispatchLog":
        known, forgotten, observed = raw.get("known_from"), raw.get("forgotten_before", 0), raw.get("observed_to", 0)
        if known is not None and type(known) is not int or type(forgotten) is not int or type(observed) is not int:
            raise ValueError("known_from")
        dispatches = sorted((Dispatch.from_json(d) for d in raw.get("dispatches", [])), key=lambda d: d.start_ns)
        days = {}
        for day, *values in raw.get("iog_days", []):
            if type(day) is not int or len(values) != 6:
                raise ValueError("iog_days")
            days[day] = [*map(int, values[:3]), *map(float, values[3:])]
        return cls(dispatches[-MOST_KEPT:], known, forgotten, observed, days)

    def _smart_near(self, start_ns: int, end_ns: int):
        """The smart-charge dispatches that overlap [start, end), by start. (None lasts over a day: only those
        that start in the day before `start` need a look.)"""
        dispatches = self.dispatches
        index = bisect_left(dispatches, start_ns - LONGEST_NS, key=lambda d: d.start_ns)
        for dispatch in dispatches[index:]:
            if dispatch.start_ns >= end_ns:
                return
            if dispatch.end_ns > start_ns and dispatch.off_peak:
                yield dispatch

    def off_peak_overlap(self, start_ns: int, end_ns: int) -> bool:
        """Does any smart-charge dispatch overlap [start, end)?"""
        return next(self._smart_near(start_ns, end_ns), None) is not None

    def first_overlap(self, start_ns: int, end_ns: int) -> int | None:
        """When the first smart-charge overlap with [start, end) begins, or None."""
        return min((max(start_ns, d.start_ns) for d in self._smart_near(start_ns, end_ns)), default=None)

    def smart_seconds(self, start_ns: int, end_ns: int) -> int:
        """Seconds of [start, end) that smart-charge dispatches cover (overlapping dispatches counted once)."""
        covered, reached = 0, start_ns
        for dispatch in self._smart_near(start_ns, end_ns):
            low, high = max(dispatch.start_ns, reached), min(dispatch.end_ns, end_ns)
            if high > low:
                covered += high - low
                reached = high
        return covered // NS_PER_SECOND
