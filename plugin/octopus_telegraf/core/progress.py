"""A meter's progress: where its backfill began, the newest half-hour read, what each half-hour of the
look-back was printed as, the days' bills, and what each comparison has still to price. Kept in the
state; pruned to what the next read and the waiting comparisons need."""

from dataclasses import dataclass, field

from octopus_telegraf.base.timeutil import DAY_NS, LARGEST_NS, floor_half_hour

COMPARE_BACKLOG_DAYS = 400  # half-hours kept for a comparison that waits (no region, no price), at most
COMPARE_BACKLOG_NS = COMPARE_BACKLOG_DAYS * DAY_NS


def _ns(value, optional=True) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or not 0 <= value < LARGEST_NS:
        raise ValueError(f"{value!r:.30} is not a time")
    return value


@dataclass
class MeterProgress:
    start_ns: int  # where this meter's backfill began; never read before it
    cursor_ns: int | None = None  # start of the newest interval printed (or confirmed unchanged)
    newest_end_ns: int | None = None  # end of the newest interval the API has returned
    # interval start ns -> (value, p/kWh or None, rate a dispatch replaced or None, beyond the car's allowance
    # or None where none applies, gCO2/kWh or None) as printed; the look-back only
    printed: dict[int, tuple] = field(default_factory=dict)
    standing_through_ns: int | None = None  # London midnight of the last day whose standing charge was printed
    daily: dict[int, tuple] = field(default_factory=dict)  # London midnight -> octopus_daily values as printed
    gas_unit: str | None = None  # the unit gas values were printed in: another one later means print them again
    # (London midnight, comparison name) -> octopus_comparison_daily values as printed
    compared: dict[tuple, tuple] = field(default_factory=dict)
    # comparison name -> London midnight of the first day it has still to price: its half-hours are kept
    compare_from: dict[str, int] = field(default_factory=dict)
    compare_holes: dict[str, list] = field(default_factory=dict)  # name -> days it could not price yet

    def period_from(self, lookback_ns: int) -> int:
        """Where the next read starts: the newest interval seen minus the look-back, never before the start."""
        if self.cursor_ns is None:
            return self.start_ns
        return max(self.start_ns, self.cursor_ns - lookback_ns)

    def prune(self, lookback_ns: int) -> None:
        """Keep the printed values the next read can return again, and those a comparison has still to
        price (for COMPARE_BACKLOG_NS at most), nothing older."""
        if self.cursor_ns is not None:
            keep_from = self.period_from(lookback_ns)
            kept_for_comparisons = self.kept_from(lookback_ns)
            if self.compare_from:
                for name, day in self.compare_from.items():
                    self.compare_from[name] = max(day, kept_for_comparisons)
                for days in self.compare_holes.values():
                    days[:] = [day for day in days if day >= kept_for_comparisons]
            self._keep_only(lambda key: key >= kept_for_comparisons, lambda key: key >= kept_for_comparisons - DAY_NS,
                            lambda key: key[0] >= min(keep_from, kept_for_comparisons) - DAY_NS)

    def kept_from(self, lookback_ns: int) -> int:
        """The oldest half-hour still needed: the next read's, or a waiting comparison's (COMPARE_BACKLOG_NS
        at most before it)."""
        keep_from = self.period_from(lookback_ns)
        wanted = [*self.compare_from.values(), *(d for days in self.compare_holes.values() for d in days)]
        return max(min(keep_from, *wanted), keep_from - COMPARE_BACKLOG_NS) if wanted else keep_from

    def clamp(self, now_ns: int, fresh_start_ns: int) -> bool:
        """Bring a position in the future (a clock that was wrong, a backfill date since corrected) back
        to what now allows. True when anything changed."""
        changed = False
        if self.start_ns > now_ns:
            self.start_ns, changed = fresh_start_ns, True
        if self.cursor_ns is not None and self.cursor_ns > now_ns:
            self.cursor_ns = max((s for s in self.printed if s <= now_ns), default=floor_half_hour(now_ns))
            changed = True
        if self.newest_end_ns is not None and self.newest_end_ns > now_ns:
            self.newest_end_ns, changed = None, True
        self._keep_only(lambda key: key <= now_ns, lambda key: key <= now_ns, lambda key: key[0] <= now_ns)
        for name, day in self.compare_from.items():
            self.compare_from[name] = min(day, now_ns)
        if self.standing_through_ns is not None and self.standing_through_ns > now_ns:
            self.standing_through_ns, changed = None, True
        return changed

    def _keep_only(self, printed_kept, daily_kept, compared_kept) -> None:
        """Drop the entries of `printed`, `daily` and `compared` whose key each test refuses, in place (a
        gather in progress holds these very dicts)."""
        for table, kept in ((self.printed, printed_kept), (self.daily, daily_kept), (self.compared, compared_kept)):
            for key in [key for key in table if not kept(key)]:
                del table[key]

    def to_json(self) -> dict:
        return {"start": self.start_ns, "cursor": self.cursor_ns, "newest_end": self.newest_end_ns,
                "printed": [[start, *_trimmed(mark)] for start, mark in sorted(self.printed.items())],
                "standing_through": self.standing_through_ns,
                "daily": [[day, *values] for day, values in sorted(self.daily.items())], "gas_unit": self.gas_unit,
                "compared": [[*key, *values] for key, values in sorted(self.compared.items())],
                "compare_from": self.compare_from, "compare_holes": self.compare_holes}

    @classmethod
    def from_json(cls, data: dict) -> "MeterProgress":
        printed = {}
        for start, value, *price in data.get("printed", []):
            rate, replaced = (*[None if p is None else float(p) for p in price[:2]], None, None)[:2]
            beyond = price[2] if len(price) > 2 and isinstance(price[2], bool) else None  # written when known
            intensity = price[3] if len(price) > 3 and type(price[3]) is int else None
            printed[_ns(start, optional=False)] = (float(value), rate, replaced, beyond, intensity)
        return cls(
            start_ns=_ns(data["start"], optional=False),
            cursor_ns=_ns(data.get("cursor")),
            newest_end_ns=_ns(data.get("newest_end")),
            printed=printed,
            standing_through_ns=_ns(data.get("standing_through")),
            daily={_ns(day, optional=False): tuple(None if v is None else float(v) for v in values)
                   for day, *values in data.get("daily", [])},
            gas_unit={None: None, "m3": "m3", "kWh": "kWh"}[data.get("gas_unit")],
            compared={(_ns(day, optional=False), str(name)): (str(tariff), *(None if v is None else float(v)
                                                                              for v in numbers[:-1]), int(numbers[-1]))
                      for day, name, tariff, *numbers in data.get("compared", [])},
            compare_from={str(name): _ns(day, optional=False) for name, day in data.get("compare_from", {}).items()},
            compare_holes={str(name): sorted(_ns(day, optional=False) for day in days)[-COMPARE_BACKLOG_DAYS:]
                           for name, days in data.get("compare_holes", {}).items()},
        )


def _trimmed(mark: tuple) -> list:
    """A printed mark as saved: (value, rate, replaced) always, beyond and intensity only as far as known."""
    kept = list(mark)
    while len(kept) > 3 and kept[-1] is None:
        kept.pop()
    return kept
