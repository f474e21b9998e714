"""The text of one meter's points in the chosen schema: tag strings built once, fields cached."""

from itertools import repeat
from operator import add, itemgetter

from octopus_telegraf.base.lineprotocol import float_text, tag_prefix
from octopus_telegraf.base.timeutil import NS_PER_SECOND
from octopus_telegraf.config.settings import Meter, Settings

SEED_APP = "octopus-energy-consumption-metrics"
CACHE_SIZE = 65536  # values kept per cache: a long-running process forgets what it met long ago
_only = itemgetter(0)


def _each_once(cache: dict, keys, make) -> list:
    """make(key) of each of `keys`, each distinct key worked out once and kept in `cache` for the next
    call. Readings and prices repeat all the time, and turning floats into text is the slow part."""
    found = list(map(cache.get, keys))
    if None not in found:
        return found
    missing = set(keys).difference(cache)
    if len(cache) + len(missing) > CACHE_SIZE:
        cache.clear()
        missing = set(keys)
    for key in missing:
        cache[key] = make(key)
    return list(map(cache.__getitem__, keys))


class PointFormatter:
    """Line protocol for one meter's half-hours. `price(start)` says what a half-hour cost per kWh."""

    def __init__(self, settings: Settings, meter: Meter, prices=None):
        self.settings = settings
        self.meter = meter
        self.prices = prices
        self.priced = False  # set per gather: does the account give this meter's tariffs?
        # OCTO_CARBON, electricity import only: start -> gCO2/kWh or None (the carbon extra's, given by the service)
        self.intensity = None
        self.gas_m3 = meter.fuel == "gas" and meter.gas_unit == "m3"
        self.export = meter.direction == "export"
        self.money = "earnings_gbp" if self.export else "cost_gbp"
        self.fixed_price = (settings.fixed_cost.get(settings.cost_key(meter)), None, None)
        self.seed_schema = settings.schema == "seed"
        self.stamp_end = self.seed_schema or settings.timestamp == "end"
        self._heads_cache: dict[tuple, tuple[str, ...]] = {}  # mark -> lines but their timestamp
        self._kwh_cache: dict[float, float] = {}  # m³ -> kWh
        self._standing: dict[str, str] = {}  # tariff -> octopus_standing_charge tags
        tags = {"fuel": meter.fuel, "direction": meter.direction, "meter_point": meter.point, "serial": meter.serial}
        self.consumption = tag_prefix("octopus_consumption", tags)
        self.collector = tag_prefix("octopus_collector", tags)
        self.daily = tag_prefix("octopus_daily", {"fuel": meter.fuel, "direction": meter.direction,
                                                  "meter_point": meter.point})
        app = {"app": SEED_APP}
        self.seed = {name: tag_prefix(name, app) for name in
                     ("electricity", "electricity_cost", "electricity_export", "gas", "gaskwh", "gas_cost")}

    def price(self, start_ns: int) -> tuple[float | None, float | None, bool | None]:
        """(p/kWh inc VAT, the tariff's rate a smart-charge dispatch replaced or None, beyond the car's
        allowance: None where no allowance applies) for the half-hour at `start_ns`: the tariff's, else the
        fixed OCTO_*_COST."""
        if self.priced:
            price = self.prices.price(self.meter, start_ns)
            if price[0] is not None:
                return price
        return self.fixed_price

    def marks(self, starts: list[int], values: list[float]) -> list[tuple]:
        """What each half-hour prints as: (reading, p/kWh or None, the rate a dispatch replaced or None,
        past the car's allowance: True, False or None where no allowance applies, gCO2/kWh or None)."""
        intensities = map(self.intensity, starts) if self.intensity else repeat(None)
        if self.priced:
            return [(value, *self.price(start), intensity)
                    for start, value, intensity in zip(starts, values, intensities, strict=False)]
        rate, replaced, beyond = self.fixed_price
        return list(zip(values, repeat(rate), repeat(replaced), repeat(beyond), intensities, strict=False))

    @property
    def lines_per_half_hour(self) -> int:
        """At most; what OCTO_MAX_POINTS is counted in."""
        if not self.seed_schema:
            return 1
        return 3 if self.meter.fuel == "gas" else 2 if self.meter.direction == "import" else 1

    def lines(self, starts: list[int], ends: list[int], marks: list[tuple]) -> list[str]:
        """The lines of these half-hours, in order. Raises LineProtocolError for a value that cannot be
        printed (an overflow to infinity)."""
        stamps = map(str, ends if self.stamp_end else starts)
        if self.intensity is not None and not self.seed_schema:
            # with carbon nearly every mark is new: the text but co2_kg is kept per (reading, price) as ever;
            # co2_kg is worked out each time (a (reading, intensity) pair seldom repeats: a cache only grew)
            heads = _each_once(self._heads_cache, [mark[:4] for mark in marks], lambda key: self._heads(*key))
            co2 = [self._co2_text(mark[0], mark[4]) for mark in marks]
            return [head[0][:-1] + text + " " + stamp for head, text, stamp in zip(heads, co2, stamps, strict=False)]
        # the lines of each mark (reading, price) but their timestamp, worked out once
        heads = _each_once(self._heads_cache, marks, lambda mark: self._heads(*mark[:4]))  # seed: no co2_kg
        if not self.seed_schema:  # one line per half-hour
            return list(map(add, map(_only, heads), stamps))
        return [head + stamp for row, stamp in zip(heads, stamps, strict=True) for head in row]

    def _heads(self, value: float, rate: float | None, replaced: float | None, beyond) -> tuple[str, ...]:
        """`measurement,tags fields ` of each line a half-hour gives, in the chosen schema (co2_kg apart)."""
        if not self.seed_schema:
            return (f"{self.consumption} {self._fields(value, rate, replaced, beyond)} ",)
        kwh = self.kwh(value)
        return tuple(self._seed_lines("", value, kwh, kwh * rate / 100 if rate is not None else None))

    def _co2_text(self, value: float, intensity: int | None) -> str:
        """The grid's carbon: kWh x gCO2/kWh / 1000, as a field to add (nothing while the intensity is unknown)."""
        return "" if intensity is None else f",co2_kg={float_text(self.kwh(value) * intensity / 1000)}"

    def kwh(self, value: float) -> float:
        """kWh from the meter's reading: converted only when the meter reports m³."""
        return self.settings.gas_m3_to_kwh(value) if self.gas_m3 else value

    def kwhs(self, readings) -> list[float]:
        """kWh of each reading, each distinct reading converted once."""
        return _each_once(self._kwh_cache, readings, self.kwh) if self.gas_m3 else readings

    def _fields(self, value: float, rate: float | None, replaced: float | None, beyond: bool | None) -> str:
        kwh = self.kwh(value)
        fields = f"kwh={float_text(kwh)}"
        if self.gas_m3:
            fields += f",m3={float_text(value)}"
        if rate is not None:  # export earns: its money never adds into a sum of costs
            fields += f",unit_rate_pence={float_text(rate)},{self.money}={float_text(kwh * rate / 100)}"
        if replaced is not None:  # what the dispatch saved against the tariff's own rate
            fields += f",dispatched=true,dispatch_saving_gbp={float_text(kwh * (replaced - rate) / 100)}"
        # under the car's allowance both flags are written: a later dispatch may turn one into the other, and
        # InfluxDB keeps a field that a new write of the point leaves out
        if beyond is False:
            fields += ",beyond_allowance=false"
        elif beyond:  # a smart charge past the allowance: the day rate, as billed
            fields += ",dispatched=false,dispatch_saving_gbp=0.0,beyond_allowance=true"
        return fields

    def _seed_lines(self, stamp: int, raw: float, kwh: float, cost: float | None) -> list[str]:
        seed = self.seed
        if self.meter.fuel == "gas":
            out = [f"{seed['gas']} consumption={float_text(raw)} {stamp}",
                   f"{seed['gaskwh']} consumption_kwh={float_text(kwh)} {stamp}"]
            if cost is not None:
                out.append(f"{seed['gas_cost']} price={float_text(cost)} {stamp}")
            return out
        if self.export:
            return [f"{seed['electricity_export']} consumption={float_text(kwh)} {stamp}"]
        out = [f"{seed['electricity']} consumption={float_text(kwh)} {stamp}"]
        if cost is not None:
            out.append(f"{seed['electricity_cost']} price={float_text(cost)} {stamp}")
        return out

    def standing_line(self, day_ns: int, tariff: str, inc_vat: float, exc_vat: float) -> str:
        prefix = self._standing.get(tariff)
        if prefix is None:
            prefix = self._standing[tariff] = tag_prefix("octopus_standing_charge", {
                "fuel": self.meter.fuel, "meter_point": self.meter.point, "tariff": tariff})
        return f"{prefix} inc_vat={float_text(inc_vat)},exc_vat={float_text(exc_vat)} {day_ns}"

    def daily_line(self, day_ns: int, kwh: float, money: float | None, standing_gbp: float | None,
                   co2_kg: float | None = None) -> str:
        """octopus_daily: the London day's energy and bill (unit costs + standing charge) in one point."""
        prefix = self.daily
        fields = f"kwh={float_text(kwh)}"
        if self.export and money is not None:
            fields += f",earnings_gbp={float_text(money)}"
            money = 0.0  # what an export meter costs is its standing charge alone
        if money is not None:
            cost = money + (standing_gbp or 0.0)
            if not self.export or standing_gbp:
                fields += f",cost_gbp={float_text(cost)}"
        if standing_gbp:
            fields += f",standing_charge_gbp={float_text(standing_gbp)}"
        if co2_kg is not None:
            fields += f",co2_kg={float_text(co2_kg)}"
        return f"{prefix} {fields} {day_ns}"

    def collector_line(self, now_ns: int, points: int, requests: int, errors: int, newest_end_ns: int | None) -> str:
        fields = f"points={points}i,requests={requests}i,errors={errors}i"
        if newest_end_ns is not None:
            fields += f",lag_seconds={float_text((now_ns - newest_end_ns) / NS_PER_SECOND)}"
        return f"{self.collector} {fields} {now_ns}"
