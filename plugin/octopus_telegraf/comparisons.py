"""Tariff comparison (SPEC section 9): the meter's own half-hours priced on other tariffs, with the price
book of the real bill (same payment-method rule, same London days, same look-back and late prices).

Each comparison has its own price book whose "agreements" are the tariff it would have had on each
London day (the family's product on sale that day, in the meter's region). A complete day is one
`octopus_comparison_daily` point, printed again when a late half-hour or a late price changes it;
a day with a half-hour the tariff has no price for is left out (one W! per gather and comparison).
Every call runs behind the enrichment boundary: a comparison that fails waits, the bill goes on."""

import time
from functools import reduce
from itertools import repeat
from operator import add, mul, truediv
from urllib.parse import quote

from . import log
from .account import Agreement
from .api import ApiError
from .catalogue import FAMILIES, Catalogue, sells, tariff_for
from .enrichment import Enrichment
from .lineprotocol import float_text, tag_prefix
from .rates import TariffCode
from .tariffs import Prices
from .timeutil import HALF_HOUR_NS, london_date, london_day_start, london_days, next_london_midnight


class Comparisons:
    def __init__(self, settings, client, state, agreements_for):
        self.settings = settings
        self.client = client
        self.items = settings.compare
        self.agreements_for = agreements_for  # the meter's own: its region, and whether it is dual-register
        self.catalogue = Catalogue(client, state.compare)
        self.gsp: dict[str, str] = state.compare.setdefault("gsp", {})  # MPAN -> region letter
        # (name, fuel, point) -> London midnight -> tariff code, kept in the state (a restart must not leave a
        # day of a backfill without its tariff), and the same as agreements for the price book
        self.saved_days: dict[str, list] = state.compare.setdefault("days", {})
        self.days: dict[tuple, dict[int, str | None]] = {}
        self.spans: dict[tuple, list[Agreement]] = {}
        today = london_day_start(time.time_ns())
        for text, pairs in list(self.saved_days.items()):
            try:
                key = tuple(text.split("|"))
                self.days[key] = {int(day): None if code is None else str(code) for day, code in pairs}
                self.spans[key] = _spans(self.days[key], today)
            except (TypeError, ValueError):
                del self.saved_days[text]  # damaged: resolved again
        self.codes: dict[tuple, str | None] = {}  # (product, fuel, region, dual) -> tariff code
        self.books: dict[str, Prices] = {}
        self.boundaries: dict[str, Enrichment] = {}
        products, links = {}, {}  # one product document per process, whichever comparison asks
        for item in self.items:
            book = Prices(client, settings, state.tariffs, self._agreements(item.name))
            book.products, book.links = products, links
            self.books[item.name] = book
            self.boundaries[item.name] = Enrichment(f"tariff comparison {item.name}")
        self.missing: set[str] = set()  # comparisons that met a half-hour without a price in this gather
        self.prefixes: dict[tuple, str] = {}
        self.unsold: set[tuple[str, str]] = set()  # (product code, fuel) the product turned out not to sell

    def _agreements(self, name: str):
        return lambda fuel, point: self.spans.get((name, fuel, point), [])

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

    def lines_per_day(self, meter) -> int:
        per_comparison = 1 + (50 if self.settings.compare_detail == "half-hour" else 0)
        return per_comparison * len(self.applying(meter))

    def start_gather(self) -> None:
        self.missing.clear()

    # -- which tariff, which day -------------------------------------------------------------------
    def prepare(self, meter, low_ns: int, high_ns: int, ahead_ns: int) -> None:
        """Resolve every London day of [low, high) (and today) to a tariff, and fetch its rates."""
        for item in self.applying(meter):
            self.boundaries[item.name].run(self._prepare, item, meter, low_ns, high_ns, ahead_ns)

    def _prepare(self, item, meter, low_ns, high_ns, ahead_ns) -> None:
        if item.product and not sells(self.books[item.name].product(item.product), meter.fuel):
            self.unsold.add((item.product, meter.fuel))  # a product code names its fuels only in its document
            return
        key = (item.name, meter.fuel, meter.point)
        days = self.days.setdefault(key, {})
        today = london_day_start(time.time_ns())
        # every day from here to today at once: the spans have no hole that a later gather would fill (the
        # unit-rate points of a day are printed once, when the day is reached)
        # today's first (its list, asked once a London day, knows what is on sale now and since when), and
        # again each time: a new product may be on sale
        for day in [today, *(d for d in london_days(low_ns, max(high_ns, today)) if d not in days)]:
            days[day] = self._tariff(item, meter, day, today)
        self._keep(key, today)
        self.books[item.name].prepare(meter, low_ns, high_ns, ahead_ns)

    def _tariff(self, item, meter, day_ns: int, today_ns: int) -> str | None:
        if item.tariff:
            return item.tariff
        product = item.product or self.catalogue.product_on(item.family, day_ns, today_ns)
        if product is None:
            return None
        own = next((a for a in self.agreements_for(meter.fuel, meter.point) if a.covers(day_ns)), None)
        own_code = TariffCode.parse(own.tariff_code) if own else None
        region = self._region(meter, own_code)
        dual = bool(own_code and own_code.dual)
        key = (product, meter.fuel, region, dual)
        if key not in self.codes:
            self.codes[key] = tariff_for(self.books[item.name].product(product), meter.fuel, region, dual)
            if self.codes[key] is None:
                log.warn(f"tariff comparison {item.name}: product {product} has no {meter.fuel} tariff in region "
                         f"{region}; those days are left out")
        return self.codes[key]

    def _region(self, meter, own_code) -> str:
        """OCTO_REGION; else the letter of the meter's own tariff; else the import MPAN's gsp (asked once)."""
        if self.settings.region:
            return self.settings.region
        if own_code is not None:
            return own_code.region
        if meter.fuel == "electricity":
            if meter.point not in self.gsp:
                data = self.client.get_json(self.client.url(f"/v1/electricity-meter-points/{quote(meter.point)}/"))
                gsp = data.get("gsp") if isinstance(data, dict) else None
                letter = gsp.strip("_").upper() if isinstance(gsp, str) else ""
                if len(letter) == 1 and "A" <= letter <= "P":
                    self.gsp[meter.point] = letter
            if meter.point in self.gsp:
                return self.gsp[meter.point]
        elif self.gsp:
            return next(iter(self.gsp.values()))
        raise ApiError(f"the region of {meter.fuel} meter {meter.point} is not known: set OCTO_REGION (A-P)",
                       needs_user=True)

    def refresh_upcoming(self, meter) -> None:
        """Prices published ahead (tomorrow's Agile) for each comparison's tariff of today."""
        for item in self.applying(meter):
            if (item.name, meter.fuel, meter.point) in self.spans:
                self.boundaries[item.name].run(self.books[item.name].refresh_upcoming, meter)

    # -- points ---------------------------------------------------------------------------------------
    def day_lines(self, meter, formatter, progress, day_ns: int, starts: list[int], energy: list[float],
                  actual: float | None) -> list[str]:
        """octopus_comparison_daily (and with OCTO_COMPARE_DETAIL=half-hour, octopus_comparison) of one
        complete London day, for each comparison whose tariff prices every half-hour of it, when new or
        changed since printed."""
        out = []
        for item in self.applying(meter):
            if (item.name, meter.fuel, meter.point) in self.spans:
                out += self.boundaries[item.name].run(self._day, item, meter, formatter, progress, day_ns, starts,
                                                      energy, actual) or []
        return out

    def _day(self, item, meter, formatter, progress, day_ns, starts, energy, actual) -> list[str]:
        book = self.books[item.name]
        rates = [book.price(meter, start)[0] for start in starts]
        tariff = book.tariff_at(meter, day_ns)
        if tariff is None or None in rates:
            if item.name not in self.missing:
                self.missing.add(item.name)
                log.warn(f"tariff comparison {item.name}: no price for every half-hour of {meter.fuel} "
                         f"{meter.direction} {meter.point} on {london_date(day_ns)}; that day is left out")
            return []
        costs = list(map(truediv, map(mul, energy, rates), repeat(100)))
        unit = reduce(add, costs, 0.0)
        charge = book.standing_charge(meter, day_ns)
        standing = charge[1][2] / 100 if charge and charge[1][2] else None
        values = (tariff.code, reduce(add, energy, 0.0), unit, standing, actual, len(starts))
        if progress.compared.get((day_ns, item.name)) == values:
            return []
        progress.compared[(day_ns, item.name)] = values
        tags = {"fuel": meter.fuel, "direction": meter.direction, "meter_point": meter.point,
                "compare": item.name, "tariff": tariff.code}
        money = "earnings_gbp" if meter.direction == "export" else "cost_gbp"
        fields = f"kwh={float_text(values[1])},unit_cost_gbp={float_text(unit)}"
        if standing:
            fields += f",standing_charge_gbp={float_text(standing)}"
        total = unit if meter.direction == "export" else unit + (standing or 0.0)
        fields += f",{money}={float_text(total)}"
        if actual is not None:
            fields += f",actual_gbp={float_text(actual)}"
        out = [f"{self._prefix('octopus_comparison_daily', tags)} {fields},half_hours={len(starts)}i {day_ns}"]
        if self.settings.compare_detail == "half-hour":
            shift = HALF_HOUR_NS if formatter.stamp_end else 0
            for start, kwh, rate, cost in zip(starts, energy, rates, costs, strict=True):
                prefix = self._prefix("octopus_comparison", {**tags, "register": book.register_at(tariff, start)})
                out.append(f"{prefix} kwh={float_text(kwh)},unit_rate_pence={float_text(rate)},"
                           f"{money}={float_text(cost)} {start + shift}")
        return out

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
        for key, days in self.days.items():
            series = [self.books[key[0]].series.get(f"{code}|{kind}") for code in set(days.values()) if code
                      for kind in TariffCode.parse(code).unit_registers]
            if any(s is None or s.days_through is None for s in series):
                continue
            keep = min([keep_from_ns, *(s.days_through for s in series)])
            for day in [day for day in days if day < keep]:
                del days[day]
            self._keep(key, london_day_start(time.time_ns()))

    def _keep(self, key: tuple, today_ns: int) -> None:
        self.spans[key] = _spans(self.days[key], today_ns)
        self.saved_days["|".join(key)] = sorted(self.days[key].items())


def _spans(days: dict[int, str | None], today_ns: int) -> list[Agreement]:
    """Consecutive days of one tariff as one agreement; the one that holds today stays open."""
    spans = []
    for day in sorted(days):
        code = days[day]
        end = next_london_midnight(day)
        if code is None:
            continue
        if spans and spans[-1].tariff_code == code and spans[-1].valid_to_ns == day:
            spans[-1] = Agreement(code, spans[-1].valid_from_ns, end)
        else:
            spans.append(Agreement(code, day, end))
    if spans and spans[-1].valid_to_ns == next_london_midnight(today_ns):
        spans[-1] = Agreement(spans[-1].tariff_code, spans[-1].valid_from_ns, None)
    return spans

