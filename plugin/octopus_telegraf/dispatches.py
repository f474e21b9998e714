"""Intelligent Octopus smart-charge dispatches: read from GraphQL, kept in the state until older than
the look-back (the API forgets them after about 12 hours), printed once each, and asked by the price
book whether a half-hour was dispatched."""

import math
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, field

from . import log
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

    @property
    def off_peak(self) -> bool:
        """A null or unknown source counts as a smart charge, as Octopus bills it; a bump charge does not."""
        return self.source != "bump-charge"

    def to_json(self) -> list:
        return [self.start_ns, self.end_ns, self.energy_kwh, self.source, self.printed]

    @classmethod
    def from_json(cls, raw: list) -> "Dispatch":
        start, end, energy, source, printed = raw
        if type(start) is not int or type(end) is not int or not 0 <= start < end < LARGEST_NS:
            raise ValueError("dispatch times")
        return cls(start, end, None if energy is None else float(energy), source_tag(source), bool(printed))


@dataclass
class DispatchLog:
    """What the state keeps: the dispatches, and from when they are known."""

    dispatches: list[Dispatch] = field(default_factory=list)
    known_from_ns: int | None = None
    forgotten_before_ns: int = 0  # dispatches ending by then were pruned: the API listing them again is no news

    def to_json(self) -> dict:
        return {"known_from": self.known_from_ns, "forgotten_before": self.forgotten_before_ns,
                "dispatches": [d.to_json() for d in self.dispatches]}

    @classmethod
    def from_json(cls, raw: dict) -> "DispatchLog":
        known, forgotten = raw.get("known_from"), raw.get("forgotten_before", 0)
        if known is not None and type(known) is not int or type(forgotten) is not int:
            raise ValueError("known_from")
        dispatches = sorted((Dispatch.from_json(d) for d in raw.get("dispatches", [])), key=lambda d: d.start_ns)
        return cls(dispatches[-MOST_KEPT:], known, forgotten)


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

    def refresh(self, account) -> None:
        """Read completedDispatches if the account has an intelligent import agreement in force now. Runs inside
        the enrichment boundary: any failure, of the API or of the answer's shape, is the boundary's to report."""
        now_ns = time.time_ns()
        self.point = next((p.point for p in account.points if p.fuel == "electricity" and p.direction == "import"
                           and (code := p.current_tariff(now_ns)) and is_intelligent(code)), None)
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
        earliest = min([now_ns - API_KEEPS_NS, *(d.start_ns for d in self.book.dispatches)])
        if self.book.known_from_ns is None or earliest < self.book.known_from_ns:
            self.book.known_from_ns = earliest
        if not self.told_known_from:
            self.told_known_from = True
            log.info(f"Intelligent Octopus: smart-charge dispatches known from {ns_to_utc_z(self.book.known_from_ns)} "
                     f"(the API keeps about 12 hours); earlier half-hours are priced at the tariff's own rates")

    def off_peak_overlap(self, start_ns: int, end_ns: int) -> bool:
        """Does any smart-charge dispatch overlap [start, end)? (None lasts over a day: only those that
        start in the day before `end` need a look.)"""
        dispatches = self.book.dispatches
        index = bisect_left(dispatches, start_ns - LONGEST_NS, key=lambda d: d.start_ns)
        for dispatch in dispatches[index:]:
            if dispatch.start_ns >= end_ns:
                return False
            if dispatch.end_ns > start_ns and dispatch.off_peak:
                return True
        return False

    def lines(self, budget: int) -> tuple[list[str], list[Dispatch]]:
        """octopus_dispatch points not printed yet (at most `budget`), and the dispatches to mark once written."""
        if self.point is None:
            return [], []
        lines, todo = [], []
        for dispatch in self.book.dispatches:
            if dispatch.printed:
                continue
            if len(lines) >= budget:
                break
            prefix = tag_prefix("octopus_dispatch", {"meter_point": self.point, "source": dispatch.source})
            fields = f"duration_s={(dispatch.end_ns - dispatch.start_ns) // NS_PER_SECOND}i"
            if dispatch.energy_kwh is not None:
                fields += f",energy_kwh={float_text(dispatch.energy_kwh)}"
            lines.append(f"{prefix} {fields} {dispatch.start_ns}")
            todo.append(dispatch)
        return lines, todo

    def prune(self, keep_from_ns: int, printing: bool = True) -> None:
        """Dispatches older than every meter's look-back are not needed again, nor taken back when the API
        lists them again; unprinted ones stay while they are still to be printed (not in the seed schema)."""
        self.book.dispatches = [d for d in self.book.dispatches
                                if d.end_ns > keep_from_ns or (printing and not d.printed)]
        self.book.forgotten_before_ns = max(self.book.forgotten_before_ns, keep_from_ns)
