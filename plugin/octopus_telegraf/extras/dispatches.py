"""Intelligent Octopus smart-charge dispatches read from GraphQL (completedDispatches lists about the last
12 hours), added to the dispatch log the price book reads (prices/intelligent.py), kept until older
than the look-back, and printed once each (again when their allowance used changes)."""

import math
import time

from octopus_telegraf.api.shapes import ShapeError
from octopus_telegraf.base import log
from octopus_telegraf.base.lineprotocol import float_text, tag_prefix
from octopus_telegraf.base.timeutil import LARGEST_NS, NS_PER_SECOND, iso_to_ns, ns_to_utc_z
from octopus_telegraf.prices.allowance import iog_day_start
from octopus_telegraf.prices.intelligent import (
    LONGEST_NS,
    MOST_KEPT,
    Dispatch,
    DispatchLog,
    is_intelligent,
    source_tag,
)

API_KEEPS_NS = 12 * 3600 * NS_PER_SECOND  # completedDispatches lists about the last 12 hours
FUTURE_SLACK_NS = 3600 * NS_PER_SECOND  # completed dispatches have ended
QUERY = ("query Dispatches($account: String!) { completedDispatches(accountNumber: $account) "
         "{ start end delta meta { source location } } }")


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
