"""Which tariff a comparison would have had on each London day: the tariff code it names, or its family's
(or product's) tariff on sale that day in the meter's region. The days are kept in the state as runs
(a year of one tariff is one entry) and given to the comparison's price book as agreements. A day
that cannot be resolved yet is left out and tried again; a negative answer is never kept."""

import time

from octopus_telegraf.base.timeutil import london_day_start, london_days, next_london_midnight
from octopus_telegraf.core.account import Agreement, gsp_letter
from octopus_telegraf.extras.comparisons.catalogue import Catalogue, MissingFact, tariff_for
from octopus_telegraf.prices.series import TariffCode


class TariffCalendar:
    def __init__(self, client, store: dict, fixed_region: str | None, agreements_for, product_document):
        self.client = client
        self.fixed_region = fixed_region  # OCTO_REGION
        self.agreements_for = agreements_for  # the meter's own: its region, and whether it is dual-register
        self.product_document = product_document  # product code -> its document (None: 404), cached per process
        self.catalogue = Catalogue(client, store)
        self.gsp: dict[str, str] = store["gsp"]  # MPAN -> region letter
        # (name, fuel, point) -> London midnight -> tariff code, kept in the state (a restart must not leave a
        # day of a backfill without its tariff), and the same as agreements for the price book. None: not on
        # sale that day (this process only: a negative answer is never kept)
        self.saved_days: dict[str, list] = store["days"]
        self.days: dict[tuple, dict[int, str | None]] = {}
        self.spans: dict[tuple, list[Agreement]] = {}
        today = london_day_start(time.time_ns())
        for text, runs in list(self.saved_days.items()):
            key = tuple(text.split("|"))
            self.days[key] = {day: code for first, last, code in runs for day in london_days(first, last + 1)}
            self.spans[key] = _spans(_runs(self.days[key]), today)
        self.why: dict[tuple, str] = {}  # key -> why a day of it could not be resolved to a tariff
        self.codes: dict[tuple, str] = {}  # (product, fuel, region, dual) -> tariff code

    def agreements(self, name: str):
        """The comparison's days as agreements, for its price book."""
        return lambda fuel, point: self.spans.get((name, fuel, point), [])

    def resolve(self, item, meter, low_ns: int, high_ns: int) -> None:
        """Resolve every London day from `low` to today (and to `high`) to a tariff. A day
        that cannot be resolved yet (a product that 404s, a document without the region) is left out of
        the spans and tried again later; a failed product list or an unknown region stops here (raises)."""
        key = (item.name, meter.fuel, meter.point)
        days = self.days.setdefault(key, {})
        today = london_day_start(time.time_ns())
        # every day from here to today at once: the spans have no hole that a later gather would fill (the
        # unit-rate points of a day are printed once, when the day is reached); today's first (its list,
        # asked once a London day, knows what is on sale now and since when), and again each time
        try:
            for day in [today, *(d for d in london_days(low_ns, max(high_ns, today)) if d not in days)]:
                try:
                    days[day] = self.tariff(item, meter, day, today)
                except MissingFact as exc:
                    if exc.needs_user:
                        raise
                    days.pop(day, None)
                    self.why[key] = str(exc)
        finally:
            self.keep(key, today)

    def product(self, code: str) -> dict:
        document = self.product_document(code)
        if document is None:
            raise MissingFact(f"product {code} not found at the API (HTTP 404); check OCTO_COMPARE")
        return document

    def tariff(self, item, meter, day_ns: int, today_ns: int) -> str | None:
        """The tariff code of the comparison on that day; None when nothing of its family was on sale."""
        if item.tariff:
            return item.tariff
        product = item.product or self.catalogue.product_on(item.family, day_ns, today_ns)
        if product is None:
            return None
        own = next((a for a in self.agreements_for(meter.fuel, meter.point) if a.covers(day_ns)), None)
        own_code = TariffCode.parse(own.tariff_code) if own else None
        region = self.region(meter, own_code)
        dual = bool(own_code and own_code.dual)
        key = (product, meter.fuel, region, dual)
        if key not in self.codes:
            code = tariff_for(self.product(product), meter.fuel, region, dual)
            if code is None:  # perhaps a passing fault of the document: asked again, never kept
                raise MissingFact(f"product {product} lists no {meter.fuel} tariff for region {region} (yet)")
            self.codes[key] = code
        return self.codes[key]

    def region(self, meter, own_code) -> str:
        """OCTO_REGION; else the letter of the meter's own tariff; else the import MPAN's gsp (asked once)."""
        if self.fixed_region:
            return self.fixed_region
        if own_code is not None:
            return own_code.region
        if meter.fuel == "electricity":
            if meter.point not in self.gsp:
                letter = gsp_letter(self.client, meter.point)
                if letter:
                    self.gsp[meter.point] = letter
            if meter.point in self.gsp:
                return self.gsp[meter.point]
        elif self.gsp:
            return next(iter(self.gsp.values()))
        raise MissingFact(f"the region of {meter.fuel} meter {meter.point} is not known: set OCTO_REGION (A-P)",
                          needs_user=True)

    def keep(self, key: tuple, today_ns: int) -> None:
        runs = _runs(self.days[key])
        self.spans[key] = _spans(runs, today_ns)
        self.saved_days["|".join(key)] = runs


def _runs(days: dict[int, str | None]) -> list[list]:
    """[first day, last day, code] of each run of consecutive days of one tariff (days not on sale left out):
    a year of one tariff is one entry, not 365."""
    runs: list[list] = []
    for day in sorted(d for d, code in days.items() if code):
        code = days[day]
        if runs and runs[-1][2] == code and next_london_midnight(runs[-1][1]) == day:
            runs[-1][1] = day
        else:
            runs.append([day, day, code])
    return runs


def _spans(runs: list[list], today_ns: int) -> list[Agreement]:
    """Each run as an agreement for the price book; the one that holds today stays open."""
    spans = [Agreement(code, first, next_london_midnight(last)) for first, last, code in runs]
    if spans and spans[-1].valid_to_ns == next_london_midnight(today_ns):
        spans[-1] = Agreement(spans[-1].tariff_code, spans[-1].valid_from_ns, None)
    return spans
