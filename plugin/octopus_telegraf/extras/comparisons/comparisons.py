"""Tariff comparison (SPEC section 9): the meter's own half-hours priced on other tariffs, with the price
book of the real bill (same payment-method rule, same London days, same look-back and late prices).

Each comparison has its own price book whose "agreements" are the tariff it would have had on each
London day (the family's product on sale that day, in the meter's region). A complete day is one
`octopus_comparison_daily` point, printed again when a late half-hour or a late price changes it.

Comparisons come after the REST half of a gather, from what is left of its points, each within its
share of the gather's time, and each from its own cursor per meter (`MeterProgress.compare_from`):
a day that cannot be priced yet (no price, no region, no product listed) holds the cursor, behind the
boundary's back-off, and the meter's half-hours are kept until it is priced, so that once the cause
is gone the whole history is compared, not only the look-back. Every call runs behind the enrichment
boundary: a comparison that fails waits, the bill goes on. Which tariff each day had is calendar.py's.

(Over 220 lines: a comparison's catch-up, its holes and its day's points are one loop over one cursor;
cut in two, each half would need the other's bookkeeping.)"""

import time
from itertools import repeat
from operator import mul, truediv

from octopus_telegraf.base.lineprotocol import float_text, tag_prefix
from octopus_telegraf.base.timeutil import (
    DAY_NS,
    HALF_HOUR_NS,
    london_date,
    london_day_start,
    next_london_midnight,
)
from octopus_telegraf.core.days import day_sums
from octopus_telegraf.extras.comparisons.calendar import TariffCalendar
from octopus_telegraf.extras.comparisons.catalogue import MissingFact, checked_store, sells
from octopus_telegraf.extras.enrichment import Enrichment
from octopus_telegraf.prices.families import FAMILIES
from octopus_telegraf.prices.series import TariffCode
from octopus_telegraf.prices.tariffs import Prices

COMPARISON_SHARE = 15.0  # seconds of a gather one comparison may take, its requests included
RATES_AHEAD_NS = 62 * DAY_NS  # a comparison's rates are asked for a couple of months at a time
HOLES_RETRY_SECONDS = 3600  # days that could not be priced are tried again this often


class Comparisons:
    def __init__(self, settings, client, state, agreements_for):
        self.compare_detail = settings.compare_detail
        self.items = settings.compare
        products, links = {}, {}  # one product document per process, whichever comparison asks
        self.books: dict[str, Prices] = {}
        self.calendar = TariffCalendar(client, checked_store(state.compare), settings.region, agreements_for,
                                       lambda code: next(iter(self.books.values())).product(code))
        self.holes_retry: dict[tuple, float] = {}  # (name, meter key) -> monotonic time to retry its holes
        self.boundaries: dict[str, Enrichment] = {}
        for item in self.items:
            self.books[item.name] = Prices(client, settings.price_options(), state.tariffs,
                                           self.calendar.agreements(item.name), products=products, links=links)
            self.boundaries[item.name] = Enrichment(f"tariff comparison {item.name}", share=COMPARISON_SHARE)
        self.prefixes: dict[tuple, str] = {}
        self.unsold: set[tuple[str, str]] = set()  # (product code, fuel) the product turned out not to sell

    def applying(self, meter) -> list:
        """The comparisons this meter can have (a product code's fuels are known once its document is)."""
        out = []
        for item in self.items:
            if item.family:
                _, direction, fuels = FAMILIES[item.family]
                fits = direction == meter.direction and meter.fuel in fuels
            else:
                code = item.tariff or item.product
                fuel_ok = (item.tariff[0] == ("E" if meter.fuel == "electricity" else "G") if item.tariff
                           else (item.product, meter.fuel) not in self.unsold)
                fits = fuel_ok and item.direction(code) == meter.direction
            if fits:
                out.append(item)
        return out

    def names(self, meter) -> list[str]:
        return [item.name for item in self.applying(meter)]

    def start_gather(self) -> None:
        self.calendar.catalogue.start_gather()

    # -- the gather: after the REST half, from what is left of its points and time ---------------------
    def gather_meter(self, meter, formatter, progress, room: int, lookback_ns: int) -> tuple[list[str], bool]:
        """The meter's compared days not printed yet, oldest first, each comparison from its own cursor
        (`progress.compare_from`), and the look-back's days again where a late half-hour or price changed
        them; at most `room` lines. Returns (lines, whether room ran out)."""
        out: list[str] = []
        full = False
        for item in self.applying(meter):
            if len(out) >= room:
                full = True
                break
            boundary = self.boundaries[item.name]
            if boundary.run(self._catch_up, item, meter, formatter, progress, out, room, lookback_ns) == "full":
                full = True
            if (item.name, meter.fuel, meter.point) in self.calendar.spans:
                boundary.run(self.books[item.name].refresh_upcoming, meter)
        return out, full

    def _catch_up(self, item, meter, formatter, progress, out: list, room: int, lookback_ns: int) -> str:
        name = item.name
        cursor = progress.compare_from.get(name)
        newest = progress.newest_end_ns
        if cursor is None or newest is None:
            return "done"
        holes = progress.compare_holes.setdefault(name, [])
        read_from = progress.period_from(lookback_ns)  # the next read starts here: older half-hours are final
        day = min(cursor, london_day_start(read_from))
        if next_london_midnight(day) > newest and not holes:
            return "done"
        if item.product and not sells(self.calendar.product(item.product), meter.fuel):
            self.unsold.add((item.product, meter.fuel))  # a product code names its fuels only in its document
            return "done"
        retry_holes = holes and time.monotonic() >= self.holes_retry.get((name, meter.key), 0)
        self._prepare(item, meter, min([day, *holes]) if retry_holes else day, newest)
        missing: list[str] = []

        def price(day_ns: int, marks: list, daily: tuple) -> tuple | None:
            """The day's (values, lines), or None when it cannot be priced yet (it becomes a hole)."""
            starts = list(range(day_ns, next_london_midnight(day_ns), HALF_HOUR_NS))
            energy = formatter.kwhs([mark[0] for mark in marks])
            actual = daily[1] if daily[1] is None or meter.direction == "export" else daily[1] + (daily[2] or 0.0)
            try:
                return self._day(item, meter, formatter, day_ns, starts, energy, actual)
            except MissingFact as exc:
                unresolved = day_ns not in self.calendar.days.get((name, meter.fuel, meter.point), {})
                why = self.calendar.why.get((name, meter.fuel, meter.point), str(exc))
                missing.append(why if unresolved else str(exc))
                return None

        if retry_holes:  # days that could not be priced before: their half-hours were kept for them
            self.holes_retry[(name, meter.key)] = time.monotonic() + HOLES_RETRY_SECONDS
            for hole in list(holes):
                marks, daily = self._day_data(progress, hole)
                priced = price(hole, marks, daily) if marks is not None else None
                if marks is None or priced is not None:
                    if priced is not None:
                        if len(out) + len(priced[1]) > room:
                            return "full"
                        out += priced[1]
                        progress.compared[(hole, name)] = priced[0]
                    holes.remove(hole)
        while True:
            next_day = next_london_midnight(day)
            if next_day > newest:
                break
            marks, daily = self._day_data(progress, day)
            if marks is None:
                if day >= cursor:
                    first_missing = next((s for s, m in zip(range(day, next_day, HALF_HOUR_NS), daily or [],
                                                            strict=False) if m is None), day)
                    if first_missing >= read_from:
                        break  # still to come
                    progress.compare_from[name] = cursor = next_day  # a hole the API will not fill: left out
                day = next_day
                continue
            if day < cursor and (day, name) not in progress.compared:
                day = next_day  # compared before the look-back began: final
                continue
            if self.calendar.days.get((name, meter.fuel, meter.point), {}).get(day, "") is None:
                if day >= cursor:
                    progress.compare_from[name] = cursor = next_day  # nothing of the family on sale that day
                day = next_day
                continue
            priced = price(day, marks, daily)
            if priced is None:
                if day >= cursor and day not in holes:
                    holes.append(day)
            elif progress.compared.get((day, name)) != priced[0]:
                if len(out) + len(priced[1]) > room:
                    return "full"
                out += priced[1]
                progress.compared[(day, name)] = priced[0]
            if day >= cursor:
                progress.compare_from[name] = cursor = next_day
            day = next_day
        if missing:  # one line per episode, and no back-off: the other days go on
            self.boundaries[name].note(MissingFact(f"{missing[0]}" + (f" (and {len(missing) - 1} more days)"
                                                                      if len(missing) > 1 else "")))
        return "done"

    @staticmethod
    def _day_data(progress, day_ns: int):
        """(the day's printed marks, its octopus_daily values) when every half-hour of it is in hand; else
        (None, the marks as far as they go)."""
        marks = list(map(progress.printed.get, range(day_ns, next_london_midnight(day_ns), HALF_HOUR_NS)))
        daily = progress.daily.get(day_ns)
        if None in marks or daily is None:
            return None, marks
        return marks, daily

    # -- which tariff, which day -------------------------------------------------------------------
    def _prepare(self, item, meter, low_ns: int, high_ns: int) -> None:
        """Resolve the days from `low` to today to tariffs (raises when the list fails or the region is not
        known) and fetch the comparison's rates of [low, high)."""
        self.calendar.resolve(item, meter, low_ns, high_ns)
        self.books[item.name].prepare(meter, low_ns, high_ns, RATES_AHEAD_NS)


    # -- points ---------------------------------------------------------------------------------------
    def _day(self, item, meter, formatter, day_ns, starts, energy, actual) -> tuple[tuple, list[str]]:
        """The values and lines of one complete London day on the comparison's tariff. Raises MissingFact
        when a half-hour has no price there: the day waits, it is never priced at another tariff's rate."""
        book = self.books[item.name]
        rates = [book.price(meter, start)[0] for start in starts]
        tariff = book.tariff_at(meter, day_ns)
        if tariff is None or None in rates:
            raise MissingFact(f"no price for every half-hour of {meter.fuel} {meter.direction} {meter.point} "
                              f"on {london_date(day_ns)} (yet); that day waits")
        costs = list(map(truediv, map(mul, energy, rates), repeat(100)))
        kwh, unit = day_sums(energy, rates)
        charge = book.standing_charge(meter, day_ns)
        standing = charge[1][2] / 100 if charge and charge[1][2] else None
        values = (tariff.code, kwh, unit, standing, actual, len(starts))
        tags = {"fuel": meter.fuel, "direction": meter.direction, "meter_point": meter.point,
                "compare": item.name, "tariff": tariff.code}
        money = "earnings_gbp" if meter.direction == "export" else "cost_gbp"
        fields = f"kwh={float_text(kwh)},unit_cost_gbp={float_text(unit)}"
        if standing:
            fields += f",standing_charge_gbp={float_text(standing)}"
        total = unit if meter.direction == "export" else unit + (standing or 0.0)
        fields += f",{money}={float_text(total)}"
        if actual is not None:
            fields += f",actual_gbp={float_text(actual)}"
        out = [f"{self._prefix('octopus_comparison_daily', tags)} {fields},half_hours={len(starts)}i {day_ns}"]
        if self.compare_detail == "half-hour":
            shift = HALF_HOUR_NS if formatter.stamp_end else 0
            for start, kwh_, rate, cost in zip(starts, energy, rates, costs, strict=True):
                prefix = self._prefix("octopus_comparison", {**tags, "register": book.register_at(tariff, start)})
                out.append(f"{prefix} kwh={float_text(kwh_)},unit_rate_pence={float_text(rate)},"
                           f"{money}={float_text(cost)} {start + shift}")
        return values, out

    def _prefix(self, measurement: str, tags: dict) -> str:
        key = (measurement, *tags.values())
        if key not in self.prefixes:
            self.prefixes[key] = tag_prefix(measurement, tags)
        return self.prefixes[key]

    def unit_rate_lines(self, meters, budget: int, seen: set) -> tuple[list[str], list]:
        """The comparison tariffs' octopus_unit_rate points, and the markers to call once they are written."""
        lines, markers = [], []
        for name, book in self.books.items():
            if len(lines) >= budget:
                break
            room = budget - len(lines)
            more, marker = self.boundaries[name].run(book.unit_rate_lines, meters, room, seen) or ([], None)
            lines += more
            if marker:
                markers.append(marker)
        return lines, markers

    def prune(self, keep_from_ns: int) -> None:
        """Days older than the look-back, once their unit-rate points are printed, are not needed again."""
        for key, days in self.calendar.days.items():
            series = [self.books[key[0]].series.get(f"{code}|{kind}") for code in set(days.values()) if code
                      for kind in self.books[key[0]].registers(TariffCode.parse(code))]
            if any(s is None or s.days_through is None for s in series):
                continue
            keep = min([keep_from_ns, *(s.days_through for s in series)])
            for day in [day for day in days if day < keep]:
                del days[day]
            self.calendar.keep(key, london_day_start(time.time_ns()))


