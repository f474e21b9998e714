"""The car allowance of Intelligent Octopus since 2026 ("Charge Cap"). On a four-rate product a smart-charge
dispatch makes the home off-peak only within OCTO_IOG_ALLOWANCE_HOURS of smart charging per IOG day,
12:00 to 12:00 London. The minutes count in time order, inside 23:30-05:30 too; a bump never counts.
A half-hour outside 23:30-05:30 that a smart dispatch overlaps is billed at the night rate when the
allowance was not used up as that overlap begins, else at the day rate ("beyond the allowance").

This module only counts; the price book asks it (tariffs.py) and prints what it says."""

from dataclasses import dataclass

from octopus_telegraf.base.lineprotocol import float_text, tag_prefix
from octopus_telegraf.base.timeutil import HALF_HOUR_NS, HOUR_NS, london_day_start, next_london_midnight


def iog_day_start(moment_ns: int) -> int:
    """The 12:00 London that began the IOG day of `moment_ns`. (Clocks change at night: a date's noon is
    always 12 hours before the next London midnight.)"""
    midnight = london_day_start(moment_ns)
    noon = next_london_midnight(midnight) - 12 * HOUR_NS
    return noon if moment_ns >= noon else midnight - 12 * HOUR_NS


def next_iog_day(day_ns: int) -> int:
    """The 12:00 London after the IOG day that begins at `day_ns`."""
    return next_london_midnight(next_london_midnight(london_day_start(day_ns))) - 12 * HOUR_NS


@dataclass
class Allowance:
    """Counts one account's smart-charge seconds per IOG day from its dispatch log (intelligent.py)."""

    hours: float  # OCTO_IOG_ALLOWANCE_HOURS; 0: no cap
    dispatches: object  # the DispatchLog: smart_seconds(start, end), first_overlap(start, end)

    @property
    def allowance_s(self) -> int:
        return round(self.hours * 3600)

    def used_s(self, moment_ns: int) -> int:
        """Smart-charge seconds of the IOG day of `moment_ns`, up to that moment."""
        return self.dispatches.smart_seconds(iog_day_start(moment_ns), moment_ns)

    def off_peak(self, start_ns: int) -> bool | None:
        """For a half-hour outside the home's night: None when no smart dispatch overlaps it, True when the
        allowance was not used up as the first overlap began, False when it was."""
        begins = self.dispatches.first_overlap(start_ns, start_ns + HALF_HOUR_NS)
        if begins is None:
            return None
        return self.allowance_s == 0 or self.used_s(begins) < self.allowance_s

    def used_at_end(self, end_ns: int) -> int:
        """`allowance_used_s` of a dispatch that ends at `end_ns`: counted in the IOG day where it ends."""
        day = iog_day_start(end_ns - 1)
        return self.dispatches.smart_seconds(day, end_ns)

    def day_values(self, day_ns: int, marks: list) -> tuple:
        """octopus_iog_day's fields for the IOG day at `day_ns`, from its half-hours as printed (reading, rate,
        replaced rate, beyond), each with whether it is in the home's night and the night rate: what the
        cap cost is what the half-hours past the allowance would have cost less within it."""
        counted = self.dispatches.smart_seconds(day_ns, next_iog_day(day_ns))
        beyond = max(counted - self.allowance_s, 0) if self.allowance_s else 0
        offpeak = peak = cap_cost = 0.0
        for (value, rate, replaced, past, *_), night, night_rate in marks:
            if night or replaced is not None:
                offpeak += value
            else:
                peak += value
            if past and rate is not None and night_rate is not None:
                cap_cost += value * (rate - night_rate) / 100
        return counted, self.allowance_s, beyond, offpeak, peak, cap_cost

    def day_lines(self, point: str, book, printed: dict, marks_of, budget: int):
        """octopus_iog_day for each IOG day observed whole (it began after the dispatches were first known,
        and the API has answered since it ended) whose half-hours are all in hand (`marks_of(day, end)`),
        when new or changed; at most `budget`. Returns the lines and a function that keeps them printed."""
        if book.known_from_ns is None or not printed:
            return [], None
        lines, done = [], []
        day = iog_day_start(max(book.known_from_ns, min(printed)))
        if day < book.known_from_ns:
            day = next_iog_day(day)
        while (end := next_iog_day(day)) <= book.observed_to_ns and len(lines) < budget:
            marks = marks_of(day, end)
            if marks is not None:
                values = list(self.day_values(day, marks))
                if book.iog_days.get(day) != values:
                    lines.append(iog_day_line(point, day, values))
                    done.append((day, values))
            day = end

        def mark():
            book.iog_days.update(done)
        return lines, mark


def iog_day_line(point: str, day_ns: int, values: tuple) -> str:
    counted, allowance, beyond, offpeak, peak, cap_cost = values
    return (f"{tag_prefix('octopus_iog_day', {'meter_point': point})} dispatch_s={counted}i,allowance_s={allowance}i,"
            f"beyond_allowance_s={beyond}i,offpeak_kwh={float_text(offpeak)},peak_kwh={float_text(peak)},"
            f"cap_cost_gbp={float_text(cap_cost)} {day_ns}")

