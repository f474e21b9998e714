"""`octopus-telegraf compare`: what the last --days complete London days of your half-hours cost on your
own tariffs and on each OCTO_COMPARE tariff, per meter, as a table a person reads. It runs one gather of
the collector in memory (nothing saved, no line protocol printed, no GraphQL) and adds up its
octopus_daily and octopus_comparison_daily points."""

import time

import line_protocol_parser

from octopus_telegraf.base.timeutil import DAY_NS, london_date, london_day_start
from octopus_telegraf.core.state import State
from octopus_telegraf.service.collector import Collector

SLACK_DAYS = 5  # data arrive a day or two late: read a few more days than asked, keep the newest complete


def compare_table(settings, client, account, days: int, out, start_ns: int | None = None) -> int:
    """Print the table; 0, or 1 when no day could be compared."""
    settings.schema, settings.compare_detail, settings.max_points = "octopus", "day", 10**9
    if start_ns is None:  # OCTO_BACKFILL_FROM, when set, says where the data are
        start_ns = settings.backfill_from_ns or london_day_start(time.time_ns() - (days + SLACK_DAYS) * DAY_NS)
    settings.backfill_from_ns = start_ns
    lines: list[str] = []
    collector = Collector(settings, client, State(None), lines.extend, account)
    collector.gather()
    actual, compared, tariffs = _totals(lines)
    if not actual:
        out.write("No complete day of data to compare yet.\n")
        return 1
    applying = {(m.fuel, m.direction, m.point): collector.comparisons.names(m) for m in collector.meters}
    for meter, by_day in sorted(actual.items()):
        chosen = sorted(by_day)[-days:]
        fuel, direction, point = meter
        money = "earnings" if direction == "export" else "cost"
        out.write(f"\n{fuel} {direction} {point}: {len(chosen)} complete London days, "
                  f"{london_date(chosen[0])} to {london_date(chosen[-1])}\n")
        base = sum(by_day[day] for day in chosen)
        rows = [("your tariffs", f"{base:.2f}", "", "")]
        for name in applying.get(meter, []):
            priced = [day for day in chosen if (meter, name, day) in compared]
            if not priced:  # the row stays, with the reason: a tariff that vanished would read as no answer
                rows.append((name, "-", f"not priced: {_reason(collector, name)}", ""))
                continue
            total = sum(compared[(meter, name, day)] for day in priced)
            base_same = sum(by_day[day] for day in priced)  # like for like when days are missing
            difference = total - base_same
            percent = f"{100 * difference / base_same:+.1f}%" if base_same else ""
            codes = ", ".join(sorted(tariffs[(meter, name)]))
            note = "" if len(priced) == len(chosen) else f" ({len(priced)} of {len(chosen)} days)"
            rows.append((f"{name}{note}", f"{total:.2f}", f"{difference:+.2f} {percent}", codes))
        better = "more is better" if money == "earnings" else "less is better"
        header = ("tariff", f"{money} £", f"vs yours £ ({better})", "tariff codes")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            out.write("  " + "  ".join(text.ljust(width) for text, width in zip(row[:3], widths, strict=True))
                      + "  " + row[3] + "\n")
    return 0


def _reason(collector, name: str) -> str:
    """Why a comparison priced none of the days, in a few words (its W! line has the detail)."""
    boundary = collector.comparisons.boundaries.get(name)
    if boundary is not None and boundary.last_error:
        return "no prices: the tariff's rates for these days could not be had (see the W! line)"
    return "no prices: nothing of it was on sale in these days"


def _totals(lines: list[str]):
    """(meter -> day -> actual £, (meter, compare, day) -> £, (meter, compare) -> tariff codes) of the points."""
    actual: dict[tuple, dict[int, float]] = {}
    compared: dict[tuple, float] = {}
    tariffs: dict[tuple, set] = {}
    for line in lines:
        if not line.startswith(("octopus_daily,", "octopus_comparison_daily,")):
            continue
        point = line_protocol_parser.parse_line(line)
        tags, fields = point["tags"], point["fields"]
        meter = (tags["fuel"], tags["direction"], tags["meter_point"])
        money = fields.get("earnings_gbp", fields.get("cost_gbp"))
        if money is None:
            continue
        if point["measurement"] == "octopus_daily":
            actual.setdefault(meter, {})[point["time"]] = money
        else:
            compared[(meter, tags["compare"], point["time"])] = money
            tariffs.setdefault((meter, tags["compare"]), set()).add(tags["tariff"])
    return actual, compared, tariffs
