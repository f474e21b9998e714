"""Intelligent Octopus smart-charge dispatches: read from GraphQL, kept in the state until older than
the look-back (the API forgets them after about 12 hours), printed once each, and asked by the price
book whether a half-hour was dispatched."""

import math
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, field

from . import log
from .allowance import iog_day_start
from .enrichment import ShapeError
from .lineprotocol import float_text, tag_prefix
from .timeutil import NS_PER_SECOND, iso_to_ns, ns_to_utc_z

INTELLIGENT_PRODUCT = re.compile(r"^IOG|INTELLI-(?:VAR|BB-VAR|FIX|\d)")
API_KEEPS_NS = 12 * 3600 * NS_PER_SECOND  # completedDispatches lists about the last 12 hours
LARGEST_NS = 2**62
LONGEST_NS = 24 * 3600 * NS_PER_SECOND  # a dispatch longer than a day is not one: it would re-price days
FUTURE_SLACK_NS = 3600 * NS_PER_SECOND  # completed dispatches have ended
MOST_KEPT = 2000  # a look-back's worth, several times over
QUERY = ("query Dispatches($account: String!) { completedDispatches(accountNumber: $account) "
         "{ start end delta meta { source location } } }")


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


def parse_dispatch(raw) -> Dispatch:
    """One completedDispatches entry. Raises ValueError, TypeError, KeyError or AttributeError."""
    start, end = iso_to_ns(raw["start"]), iso_to_ns(raw["end"])
    if not 0 <= start < end < LARGEST_NS or end - start > LONGEST_NS or end > time.time_ns() + FUTURE_SLACK_NS:
        raise ValueError("a dispatch that ends before it starts, lasts over a day or has not ended")
    delta = raw.get("delta")
    energy = abs(float(delta)) if delta is not None else None
    if energy is not None and not math.isfinite(energy):
        energy = None
    return Dispatch(start, end, energy, source_tag((raw.get("meta") or {}).get("source")))


class Dispatches:
    """Asked once per gather (Telegraf's interval, 30 minutes by default, paces it) when an import
    agreement in force is intelligent; never otherwise."""

    def __init__(self, kraken, account_number: str, log_book: DispatchLog):
        self.kraken = kraken
        self.account_number = account_number
        self.book = log_book  # lives in the state
        self.point: str | None = None  # the intelligent import meter point: the dispatch points' tag
        self.told_known_from = False
        self.told_bad = False

    def refresh(self, account, intelligent=is_intelligent) -> None:
        """Read completedDispatches if the account has an intelligent import agreement in force now (by
        `intelligent(tariff code)`). Runs inside the enrichment boundary: any failure, of the API or of the
        answer's shape, is the boundary's to report."""
        now_ns = time.time_ns()
        self.point = next((p.point for p in account.points if p.fuel == "electricity" and p.direction == "import"
                           and (code := p.current_tariff(now_ns)) and intelligent(code)), None)
        if self.point is None:
            return
        data = self.kraken.query(QUERY, {"account": self.account_number})
        listed = data.get("completedDispatches")
        if listed is not None and not isinstance(listed, list):
            raise ShapeError(f"completedDispatches is a {type(listed).__name__}, not a list")
        known = {(d.start_ns, d.end_ns) for d in self.book.dispatches}
        bad = 0
        for raw in listed or []:
            try:
                dispatch = parse_dispatch(raw)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
                bad += 1
                continue
            key = (dispatch.start_ns, dispatch.end_ns)
            if key not in known and dispatch.end_ns > self.book.forgotten_before_ns:
                self.book.dispatches.append(dispatch)
                known.add(key)
        if bad:
            (log.debug if self.told_bad else log.warn)(f"Intelligent Octopus dispatches: skipped {bad} unreadable")
            self.told_bad = True
        self.book.dispatches.sort(key=lambda d: d.start_ns)
        del self.book.dispatches[:-MOST_KEPT]
        self.book.observed_to_ns = max(self.book.observed_to_ns, now_ns)
        earliest = min([now_ns - API_KEEPS_NS, *(d.start_ns for d in self.book.dispatches)])
        if self.book.known_from_ns is None or earliest < self.book.known_from_ns:
            self.book.known_from_ns = earliest
        if not self.told_known_from:
            self.told_known_from = True
            log.info(f"Intelligent Octopus: smart-charge dispatches known from {ns_to_utc_z(self.book.known_from_ns)} "
                     f"(the API keeps about 12 hours); earlier half-hours are priced at the tariff's own rates")

    def _smart_near(self, start_ns: int, end_ns: int):
        """The smart-charge dispatches that overlap [start, end), by start. (None lasts over a day: only those
        that start in the day before `start` need a look.)"""
        dispatches = self.book.dispatches
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

    def lines(self, budget: int, used_at=lambda end_ns: None):
        """octopus_dispatch points not printed yet, or whose allowance used (`used_at(end)`, None but on a
        four-rate product) changed, at most `budget`; and a function that marks them printed once written."""
        if self.point is None:
            return [], None
        lines, todo = [], []
        for dispatch in self.book.dispatches:
            used = used_at(dispatch.end_ns)
            if dispatch.printed and used == dispatch.used_s:
                continue
            if len(lines) >= budget:
                break
            prefix = tag_prefix("octopus_dispatch", {"meter_point": self.point, "source": dispatch.source})
            fields = f"duration_s={(dispatch.end_ns - dispatch.start_ns) // NS_PER_SECOND}i"
            if dispatch.energy_kwh is not None:
                fields += f",energy_kwh={float_text(dispatch.energy_kwh)}"
            if used is not None:
                fields += f",allowance_used_s={used}i"
            lines.append(f"{prefix} {fields} {dispatch.start_ns}")
            todo.append((dispatch, used))

        def mark():
            for dispatch, used in todo:
                dispatch.printed, dispatch.used_s = True, used
        return lines, mark

    def prune(self, keep_from_ns: int, printing: bool = True) -> None:
        """Dispatches older than every meter's look-back are not needed again, nor taken back when the API
        lists them again; unprinted ones stay while they are still to be printed (not in the seed schema). The
        whole IOG day of `keep_from` stays: a later dispatch's allowance used counts from its 12:00."""
        keep_from_ns = iog_day_start(keep_from_ns)
        self.book.dispatches = [d for d in self.book.dispatches
                                if d.end_ns > keep_from_ns or (printing and not d.printed)]
        self.book.forgotten_before_ns = max(self.book.forgotten_before_ns, keep_from_ns)
        for day in [day for day in self.book.iog_days if day < keep_from_ns]:
            del self.book.iog_days[day]
