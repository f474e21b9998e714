"""A meter's London-day points: its standing charges and its octopus_daily bills. Days of 23, 24 or 25
hours; a day's bill only once every half-hour of it is in hand. (The same days on the compared tariffs
come after the REST half: comparisons.py.)"""

from functools import reduce
from itertools import repeat
from operator import add, mul, truediv

from octopus_telegraf.base.timeutil import HALF_HOUR_NS, london_days


def day_sums(energy: list[float], rates: list[float | None]) -> tuple[float, float | None]:
    """A day's kWh and its unit cost in £ (None when a rate is missing), added in order, one by one, as a
    person would: the bill and every comparison add a day up the same way."""
    kwh = reduce(add, energy, 0.0)
    money = None if None in rates else reduce(add, map(truediv, map(mul, energy, rates), repeat(100)), 0.0)
    return kwh, money


def day_co2(energy: list[float], intensities: list[int | None]) -> float | None:
    """A day's kg of CO2, added in order like its money; None while a half-hour lacks its intensity."""
    if None in intensities:
        return None
    return reduce(add, (kwh * grams / 1000 for kwh, grams in zip(energy, intensities, strict=True)), 0.0)


class DayPoints:
    def __init__(self, prices):
        self.prices = prices

    def standing_lines(self, meter, formatter, progress, from_ns: int, to_ns: int) -> list[str]:
        """octopus_standing_charge once per London day (23, 24 or 25 hours) with data printed; none for a
        tariff without one (an export tariff's 0 p), so that a day's charges add up per fuel. A day whose
        charge could not be asked yet (a 404, a failed request) stops the count there: it and the days
        after it are printed when the charge is known, not skipped for good."""
        out = []
        for day in london_days(from_ns, to_ns):
            if progress.standing_through_ns is not None and day <= progress.standing_through_ns:
                continue
            charge = self.prices.standing_charge(meter, day)
            if charge is None and not self.prices.standing_settled(meter, day):
                break
            if charge is not None and (charge[1][2] or charge[1][3]):
                tariff, row = charge
                out.append(formatter.standing_line(day, tariff, row[2], row[3]))
            progress.standing_through_ns = day
        return out

    def daily_lines(self, formatter, progress, from_ns: int, to_ns: int) -> list[str]:
        """octopus_daily for each London day touching [from, to) whose half-hours are all in hand (46, 48
        or 50; a day begun on the previous page counts), printed again when a late, corrected or
        re-priced half-hour changes it. A day partly behind the look-back is left as it was printed."""
        out = []
        printed = progress.printed
        midnights = london_days(from_ns, to_ns + 1)  # and the midnight at to_ns, if it is one
        for day, next_day in zip(midnights, midnights[1:], strict=False):  # the days that ended by to_ns
            charge = self.prices.standing_charge(formatter.meter, day) if formatter.priced else None
            standing = charge[1][2] / 100 if charge and charge[1][2] else None
            marks = list(map(printed.get, range(day, next_day, HALF_HOUR_NS)))
            if None in marks:
                # partly behind the look-back: its half-hours are as printed, but a standing charge known late
                # still belongs in its bill
                old = progress.daily.get(day)
                if old is None or standing is None or old[2] == standing:
                    continue
                values = (*old[:2], standing, *old[3:])
            else:
                readings, rates = zip(*(mark[:2] for mark in marks), strict=True)
                energy = formatter.kwhs(readings)
                kwh, money = day_sums(energy, rates)
                values = (kwh, money, standing)
                if formatter.intensity:  # OCTO_CARBON: the day's CO2 once every half-hour has its intensity
                    values += (day_co2(energy, [mark[4] for mark in marks]),)
            if progress.daily.get(day) != values:
                if day in progress.daily:  # a late or corrected half-hour: the comparisons look at the day again
                    for name, first in progress.compare_from.items():
                        progress.compare_from[name] = min(first, day)
                out.append(formatter.daily_line(day, *values))
                progress.daily[day] = values
        return out
