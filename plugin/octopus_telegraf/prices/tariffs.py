"""Prices: what each half-hour cost (the agreement in force, its tariff's rate, an Intelligent Octopus
dispatch), the standing charge of a day, and the unit-rate points to print. The rates themselves
come from the rate book (rates.py)."""

import time

from octopus_telegraf.base.lineprotocol import float_text, tag_prefix
from octopus_telegraf.base.timeutil import HALF_HOUR_NS, london_day_start, next_london_midnight
from octopus_telegraf.prices.allowance import Allowance
from octopus_telegraf.prices.intelligent import is_intelligent
from octopus_telegraf.prices.options import PriceOptions
from octopus_telegraf.prices.rates import RateBook
from octopus_telegraf.prices.series import RateSeries, TariffCode


class Prices(RateBook):
    """The rate book's rates turned into prices and points."""

    def __init__(self, client, options: PriceOptions, series: dict[str, RateSeries], agreements_for, dispatches=None,
                 products: dict | None = None, links: dict | None = None):
        super().__init__(client, options, series, agreements_for, products, links)
        self.dispatches = dispatches  # the dispatch log: smart-charge half-hours at the day's lowest rate
        self.allowance = Allowance(options.iog_allowance_hours, dispatches) if dispatches is not None else None

    def is_intelligent(self, tariff_code: str) -> bool:
        """By its code (INTELLI, a product starting IOG) or its product's four-rate EV group."""
        return is_intelligent(tariff_code) or tariff_code in self.four_rate

    def price(self, meter, start_ns: int) -> tuple[float | None, float | None, bool | None]:
        """(p/kWh inc VAT, the rate a dispatch replaced or None, beyond the car's allowance or None) for the half-hour
        at start_ns. An intelligent import half-hour dearer than its London day's lowest rate, overlapping
        a smart-charge dispatch, is billed at that lowest rate (as Octopus bills it, and as the most used
        peer prices it); on a four-rate product only within the car's allowance (allowance.py)."""
        tariff = self.tariff_at(meter, start_ns)
        if tariff is None:
            return None, None, None
        rate = self._rate(tariff, start_ns)
        if rate is None or self.dispatches is None or meter.direction != "import":
            return rate, None, None
        if self.is_four_rate(tariff):
            return self._four_rate_price(tariff, start_ns, rate)
        if not is_intelligent(tariff.code) or not self.dispatches.off_peak_overlap(start_ns, start_ns + HALF_HOUR_NS):
            return rate, None, None
        lowest = self._day_lowest(tariff, start_ns)
        return (lowest, rate, None) if lowest is not None and rate > lowest else (rate, None, None)

    def _four_rate_price(self, tariff: TariffCode, start_ns: int, rate: float) -> tuple:
        """Night 23:30-05:30 whatever the car did; otherwise the night rate for a smart dispatch within the
        allowance, the day rate past it. A night rate not known yet is never guessed: the day rate stands
        until it arrives, and the half-hour is printed again then."""
        if self.register_at(tariff, start_ns) == "night":
            return rate, None, None
        off_peak = self.allowance.off_peak(start_ns)
        if off_peak is None:
            return rate, None, None
        if not off_peak:
            return rate, None, True
        night = self.series.get(f"{tariff.code}|night")
        row = night.find(start_ns) if night else None
        return (row[2], rate, False) if row else (rate, None, None)

    def iog_day_marks(self, meter, day_ns: int, end_ns: int, printed: dict) -> list | None:
        """The half-hours of an IOG day as printed, each with whether it is in the home's night and the night
        rate (what a half-hour past the allowance would have cost within it); None when one is missing or
        the day is not on a four-rate tariff throughout."""
        out = []
        for start in range(day_ns, end_ns, HALF_HOUR_NS):
            tariff, mark = self.tariff_at(meter, start), printed.get(start)
            if tariff is None or mark is None or not self.is_four_rate(tariff):
                return None
            night = self.series.get(f"{tariff.code}|night")
            row = night.find(start) if night else None
            out.append((mark, self.register_at(tariff, start) == "night", row[2] if row else None))
        return out

    def unit_rate(self, meter, start_ns: int) -> float | None:
        """p/kWh inc VAT of the tariff at start_ns, or None when no tariff rate is known."""
        tariff = self.tariff_at(meter, start_ns)
        return self._rate(tariff, start_ns) if tariff else None

    def _rate(self, tariff: TariffCode, start_ns: int) -> float | None:
        series = self.series.get(f"{tariff.code}|{self.register_at(tariff, start_ns)}")
        row = series.find(start_ns) if series else None
        return row[2] if row else None

    def _day_lowest(self, tariff: TariffCode, moment_ns: int) -> float | None:
        """The lowest rate of the tariff in the London day of `moment_ns` (46, 48 or 50 half-hours)."""
        day = london_day_start(moment_ns)
        rates = [self._rate(tariff, start) for start in range(day, next_london_midnight(day), HALF_HOUR_NS)]
        known = [rate for rate in rates if rate is not None]
        return min(known) if known else None

    def _standing(self, meter, day_ns: int) -> tuple[TariffCode | None, RateSeries | None]:
        """The tariff in force on the day, and its standing charges as far as they are known."""
        tariff = self.tariff_at(meter, day_ns)
        return tariff, self.series.get(f"{tariff.code}|standing") if tariff else None

    def standing_charge(self, meter, day_ns: int) -> tuple[str, list] | None:
        tariff, series = self._standing(meter, day_ns)
        row = series.find(day_ns) if series else None
        return (tariff.code, row) if row else None

    def standing_settled(self, meter, day_ns: int) -> bool:
        """Is it known whether the day has a standing charge? (No tariff that day, or its charges asked.)"""
        tariff, series = self._standing(meter, day_ns)
        return tariff is None or (series is not None and series.covered_from is not None
                                  and series.covered_from <= day_ns < series.covered_to)

    # -- points ------------------------------------------------------------------------------
    def unit_rate_lines(self, meters, budget: int, seen: set | None = None) -> tuple[list[str], object]:
        """octopus_unit_rate points not printed yet: one per rate period at valid_from, and one at every
        London midnight inside a longer period (a fixed or variable rate), so that a chart of any
        window shows the rate in force. Returns the lines and a function that marks them printed, for
        the caller to call once they are written."""
        lines, marks = [], []
        today = london_day_start(time.time_ns())
        tomorrow = next_london_midnight(today)
        seen = set() if seen is None else seen  # tariff codes already printed by another book
        for meter in meters:
            agreements = self.agreements_for(meter.fuel, meter.point)
            for code in sorted({a.tariff_code for a in agreements}):
                tariff = TariffCode.parse(code)
                if tariff is None or code in seen:
                    continue
                seen.add(code)
                spans = [a for a in agreements if a.tariff_code == code]
                last_day = min(tomorrow, max(tomorrow if a.valid_to_ns is None else a.valid_to_ns for a in spans))
                for kind in self.registers(tariff):
                    series = self.series.get(f"{code}|{kind}")
                    if series is None:
                        continue
                    prefix = tag_prefix("octopus_unit_rate", {"fuel": tariff.fuel, "direction": meter.direction,
                                                              "tariff": code, "register": kind})
                    items = [(row[0], row, (row, None)) for row in series.rows if not row[4]]
                    if series.covered_from is not None:
                        day = (london_day_start(series.covered_from) if series.days_through is None
                               else next_london_midnight(series.days_through))
                        # past days whose rates have not been asked yet wait for them
                        through = last_day if series.covered_to >= today else series.covered_to - 1
                        while day <= through:  # the rate in force each London day the tariff was ours
                            row = series.find(day) if any(a.covers(day) for a in spans) else None
                            items.append((day, row if row is not None and row[0] != day else None, (series, day)))
                            day = next_london_midnight(day)
                    for stamp, row, mark in sorted(items, key=lambda item: item[0]):
                        if row is not None:
                            if len(lines) >= budget:
                                return lines, self._marker(marks)
                            lines.append(f"{prefix} inc_vat={float_text(row[2])},exc_vat={float_text(row[3])} {stamp}")
                        marks.append(mark)
        return lines, self._marker(marks)

    @staticmethod
    def _marker(marks):
        def mark():
            for target, day in marks:
                if day is None:
                    target[4] = True  # a rate row printed at valid_from
                elif target.days_through is None or day > target.days_through:
                    target.days_through = day
        return mark

