"""The rate book: a tariff's rates as the public product endpoints give them (no API key): unit rates
(standard, Economy 7 day/night, Agile, export, a four-rate product's linked rates) and standing
charges. Each period a gather needs is asked for once and remembered in the state (series.py); only
the look-back window's rates are kept.
(Fetching, a product's links and a tariff's registers are one concern, the book's, a little over
220 lines; tariffs.py turns its rates into prices.)
"""

import math
import time
from urllib.parse import quote, urlencode

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.base import log
from octopus_telegraf.base.timeutil import (
    LARGEST_NS,
    NS_PER_SECOND,
    iso_to_ns,
    london_day_start,
    london_minute_of_day,
    ns_to_utc_z,
)
from octopus_telegraf.prices.options import PriceOptions
from octopus_telegraf.prices.series import RateSeries, TariffCode

RATE_PAGE_SIZE = 1500
UPCOMING_REFRESH_SECONDS = 2 * 3600  # Agile's next day appears around 16:00 London
UPCOMING_NS = 2 * 86400 * NS_PER_SECOND
UNPRICEABLE_SECONDS = 3600  # a rates endpoint that answered 404 is asked again after this long
KIND_PATHS = {"standard": "standard-unit-rates", "day": "day-unit-rates", "night": "night-unit-rates",
              "standing": "standing-charges"}
LINK_RELS = {"standard_unit_rates": "standard", "day_unit_rates": "day", "night_unit_rates": "night",
             "standing_charges": "standing", "ev_device_peak_unit_rates": "ev_peak",
             "ev_device_off_peak_unit_rates": "ev_off_peak"}
FOUR_RATE_GROUP = "four_rate_ev_electricity_tariffs"
FOUR_RATE_REGISTERS = ("day", "night", "ev_peak", "ev_off_peak")
HOME_NIGHT_MINUTES = (23 * 60 + 30, 5 * 60 + 30)  # a four-rate home's night: 23:30-05:30 London time
PRODUCT_GROUPS = ("single_register_electricity_tariffs", "dual_register_electricity_tariffs",
                  "single_register_gas_tariffs", "four_rate_ev_electricity_tariffs")


class RateBook:
    """Which tariff applies when, and its rates: fetched for the periods asked for, kept in `series`. Books
    that look at the same products (the comparisons') share `products` and `links`."""

    def __init__(self, client, options: PriceOptions, series: dict[str, RateSeries], agreements_for,
                 products: dict | None = None, links: dict | None = None):
        self.client = client
        self.options = options
        self.series = series  # "code|kind" -> RateSeries; lives in the state
        self.agreements_for = agreements_for  # (fuel, point) -> [Agreement]
        self.night_from, self.night_to = options.e7_night
        self.links: dict[str, dict[str, str]] = {} if links is None else links  # code -> kind -> URL, per process
        # product code -> document (None: 404), per process
        self.products: dict[str, dict | None] = {} if products is None else products
        self.unpriceable: dict[str, float] = {}  # "code|kind" -> monotonic time to ask again after a 404
        self.told_404: set[str] = set()  # "code|kind" whose 404 has had its W! line in this process
        # Intelligent Octopus since 2026 ("1R" in the code, no standard rates): the tariff codes whose product
        # links day, night and EV rates instead; priced day/night by London time (HOME_NIGHT_MINUTES)
        self.four_rate: set[str] = set()

    # -- lookups -----------------------------------------------------------------------------
    def tariff_at(self, meter, moment_ns: int) -> TariffCode | None:
        for agreement in self.agreements_for(meter.fuel, meter.point):
            if agreement.covers(moment_ns):
                return TariffCode.parse(agreement.tariff_code)
        return None

    def is_four_rate(self, tariff: TariffCode) -> bool:
        """Known from its product's links, or from the night rates a single-register code has in the state."""
        if tariff.code not in self.four_rate and not tariff.dual and f"{tariff.code}|night" in self.series:
            self.four_rate.add(tariff.code)
        return tariff.code in self.four_rate

    def registers(self, tariff: TariffCode) -> tuple[str, ...]:
        """The unit-rate kinds the tariff is priced and printed from."""
        return FOUR_RATE_REGISTERS if self.is_four_rate(tariff) else tariff.unit_registers

    def register_at(self, tariff: TariffCode, moment_ns: int) -> str:
        if self.is_four_rate(tariff):
            minute = london_minute_of_day(moment_ns)
            night_from, night_to = HOME_NIGHT_MINUTES
            return "night" if minute >= night_from or minute < night_to else "day"
        if not tariff.dual:
            return "standard"
        seconds = (moment_ns // NS_PER_SECOND) % 86400
        if self.night_from <= self.night_to:
            night = self.night_from <= seconds < self.night_to
        else:  # a window across midnight
            night = seconds >= self.night_from or seconds < self.night_to
        return "night" if night else "day"

    # -- fetching ----------------------------------------------------------------------------
    def prepare(self, meter, start_ns: int, end_ns: int, ahead_ns: int = 0) -> None:
        """Make sure every rate the meter needs in [start, end) is known. When rates must be asked for
        anyway, ask for `ahead_ns` more (a page of consumption is read in chunks: its rates are asked
        for once, not once per chunk). Raises ApiError (transient)."""
        now_ns = time.time_ns()
        for agreement in self.agreements_for(meter.fuel, meter.point):
            low = max(start_ns, agreement.valid_from_ns)
            high = end_ns if agreement.valid_to_ns is None else min(end_ns, agreement.valid_to_ns)
            tariff = TariffCode.parse(agreement.tariff_code)
            if low >= high or tariff is None:
                continue
            ahead = min(low + ahead_ns, now_ns) if agreement.valid_to_ns is None else \
                min(low + ahead_ns, now_ns, agreement.valid_to_ns)
            standard = self.series.get(f"{tariff.code}|standard")
            if not (tariff.dual or self.is_four_rate(tariff) or (standard and standard.covered_from is not None)):
                self._kind_url(tariff, "standing")  # no standard rate known yet: its links say what it has
            for kind in (*self.registers(tariff), "standing"):
                self._cover(tariff, kind, low, high, now_ns, ahead)

    def refresh_upcoming(self, meter) -> None:
        """Prices published ahead (tomorrow's Agile): looked for every couple of hours, not every gather."""
        now_ns = time.time_ns()
        tariff = self.tariff_at(meter, now_ns)
        if tariff is None:
            return
        for kind in self.registers(tariff):
            series = self.series.setdefault(f"{tariff.code}|{kind}", RateSeries())
            if time.time() - series.upcoming_at >= UPCOMING_REFRESH_SECONDS:
                start = series.covered_to if series.covered_to is not None else london_day_start(now_ns)
                if self._fetch(tariff, kind, series, min(start, now_ns), now_ns + UPCOMING_NS):
                    series.covered_to = max(series.covered_to or now_ns, now_ns)
                    if series.covered_from is None:
                        series.covered_from = min(start, now_ns)
                series.upcoming_at = time.time()

    def _cover(self, tariff: TariffCode, kind: str, low: int, high: int, now_ns: int, ahead: int = 0) -> None:
        """Fetch what [low, high) needs and the series has not got. A span counts as covered only
        when rows came: an empty answer or a 404 is asked again later, never taken as "no price"."""
        key = f"{tariff.code}|{kind}"
        if self.unpriceable.get(key, 0) > time.monotonic():
            return
        series = self.series.setdefault(key, RateSeries())
        far = max(high, ahead)
        if series.covered_from is None:
            if self._fetch(tariff, kind, series, low, far):
                series.covered_from, series.covered_to = low, min(far, now_ns)
            return
        if low < series.covered_from and self._fetch(tariff, kind, series, low, series.covered_from):
            series.covered_from = low
        if high > series.covered_to and series.covered_to < now_ns and \
                self._fetch(tariff, kind, series, series.covered_to, far):
            series.covered_to = min(far, now_ns)

    def _fetch(self, tariff: TariffCode, kind: str, series: RateSeries, low: int, high: int) -> int:
        """Merge the rows of [low, high) into `series`; how many came. Raises ApiError (transient)."""
        url = self._kind_url(tariff, kind)
        if url is None:
            return 0
        query = {"period_from": ns_to_utc_z(low), "period_to": ns_to_utc_z(high), "page_size": RATE_PAGE_SIZE}
        chosen = self.options.payment_method
        picked: dict[int, tuple[int, list]] = {}  # valid_from -> (preference, row)
        try:
            for results in self.client.pages(f"{url}?{urlencode(query)}", authenticated=False):
                for raw in results:
                    row, method = self._rate_row(raw)
                    if row is None or (method is not None and method != chosen):
                        continue
                    preference = 0 if method == chosen else 1  # a row for our payment method beats a generic one
                    if row[0] not in picked or preference < picked[row[0]][0]:
                        picked[row[0]] = (preference, row)
        except ApiError as exc:
            if exc.status == 404:
                key = f"{tariff.code}|{kind}"
                self.unpriceable[key] = time.monotonic() + UNPRICEABLE_SECONDS
                (log.debug if key in self.told_404 else log.warn)(  # one line per tariff, not one an hour
                    f"tariff {tariff.code}: no {kind} rates at the API (HTTP 404); using OCTO_*_COST if set "
                    f"and asking again in {UNPRICEABLE_SECONDS // 60} minutes")
                self.told_404.add(key)
                return 0
            raise
        series.merge([row for _, row in picked.values()])
        log.debug(f"tariff {tariff.code} {kind}: {len(picked)} rows for {ns_to_utc_z(low)}..{ns_to_utc_z(high)}")
        return len(picked)

    @staticmethod
    def _rate_row(raw) -> tuple[list | None, str | None]:
        try:
            inc, exc = raw["value_inc_vat"], raw["value_exc_vat"]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (inc, exc)):
                return None, None
            valid_to = raw.get("valid_to")
            row = [iso_to_ns(raw["valid_from"]), iso_to_ns(valid_to) if valid_to else None, float(inc), float(exc),
                   False]
            if not 0 <= row[0] < LARGEST_NS or not all(map(math.isfinite, row[2:4])):
                return None, None
            return row, raw.get("payment_method")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None, None

    def _kind_url(self, tariff: TariffCode, kind: str) -> str | None:
        links = self.links.get(tariff.code)
        if links is None:
            links = self.links[tariff.code] = self._product_links(tariff)
        return links.get(kind)

    def product(self, product: str) -> dict | None:
        """The product document, asked once per process: one product often sells electricity and gas. A 404
        may pass (a product page moved for a while): asked again after UNPRICEABLE_SECONDS."""
        if product in self.products and self.products[product] is None and \
                self.unpriceable.get(product, 0) <= time.monotonic():
            del self.products[product]
        if product not in self.products:
            try:
                self.products[product] = self.client.get_json(
                    self.client.url(f"/v1/products/{quote(product, safe='')}/"), authenticated=False)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self.products[product] = None
                self.unpriceable[product] = time.monotonic() + UNPRICEABLE_SECONDS
        return self.products[product]

    def _product_links(self, tariff: TariffCode) -> dict[str, str]:
        """Follow the product's own links; build the URLs by hand (with a warning) when it has none."""
        fuel_path = "electricity-tariffs" if tariff.fuel == "electricity" else "gas-tariffs"
        base = self.client.url(f"/v1/products/{quote(tariff.product, safe='')}/{fuel_path}/"
                               f"{quote(tariff.code, safe='')}")
        built = {kind: f"{base}/{path}/" for kind, path in KIND_PATHS.items()}
        product = self.product(tariff.product)
        if product is None:
            log.warn(f"tariff {tariff.code}: product {tariff.product} not found (HTTP 404); building rate URLs")
            return built
        for group in PRODUCT_GROUPS:
            region = ((product or {}).get(group) or {}).get(f"_{tariff.region}") or {}
            for block in region.values() if isinstance(region, dict) else []:
                if isinstance(block, dict) and block.get("code") == tariff.code:
                    links = {LINK_RELS[link["rel"]]: link["href"] for link in block.get("links") or []
                             if isinstance(link, dict) and link.get("rel") in LINK_RELS
                             and isinstance(link.get("href"), str) and self.client.same_origin(link["href"])}
                    links = {kind: url.split("?")[0] for kind, url in links.items()}
                    # a single-register code whose product links day and night rates in place of standard ones
                    # (or lists it as four-rate): its standard rates are empty, it is priced from those links
                    if not tariff.dual and {"day", "night"} <= set(links) and \
                            (group == FOUR_RATE_GROUP or "standard" not in links):
                        self.four_rate.add(tariff.code)
                        log.debug(f"tariff {tariff.code}: four-rate (home day/night, EV peak/off-peak links)")
                    return {**built, **links}
        log.warn(f"tariff {tariff.code}: not listed by product {tariff.product} (renamed?); building rate URLs")
        return built

    def prune(self, keep_from: int, printing: bool = True) -> None:
        for key, series in self.series.items():
            series.prune(keep_from, printing and not key.endswith("|standing"))  # charges print with the days
