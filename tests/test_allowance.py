"""Intelligent Octopus since 2026 (SPEC section 8), the car allowance: on a four-rate product a smart dispatch
makes the home off-peak only within OCTO_IOG_ALLOWANCE_HOURS per IOG day (12:00-12:00 London). Every
price, flag, allowance_used_s and octopus_iog_day is checked against an independent minute-by-minute
count from the fake's tables, in one long-running process and with a restart between every gather."""

from datetime import datetime, time, timedelta

import pytest

from test_four_rate import CHARGE_CAP, DAY, NIGHT, charge_cap, home_rate  # noqa: F401 - the fixture is used
from test_intelligent import IOG, iog  # noqa: F401 - the fixture is used

from conftest import IMPORT, parse, run_once
from fake_octopus import HALF_HOUR_NS, LONDON, london

MINUTE = 60 * 10**9


def dispatch(start, minutes, source="smart-charge", kwh=None):
    return {"start": start, "end": start + minutes * MINUTE, "source": source,
            "delta": None if kwh is None else f"-{kwh:.2f}"}


DISPATCHES = [
    dispatch(london(2026, 10, 24, 13), 240, kwh=28.0),  # 4 h of the 24th's IOG day
    dispatch(london(2026, 10, 24, 18), 60, "bump-charge", 7.0),  # a bump: never counts, never off-peak
    dispatch(london(2026, 10, 24, 20), 120, kwh=14.0),  # the allowance is used up exactly at 22:00
    dispatch(london(2026, 10, 24, 22), 40),  # begins when the allowance is exactly used up: beyond
    dispatch(london(2026, 10, 25, 1), 60),  # in the night window (the clock-change night): counts, no re-price
    dispatch(london(2026, 10, 25, 12), 359),  # 5 h 59 min of the 25th's IOG day
    dispatch(london(2026, 10, 25, 18, 29), 31),  # begins a minute before it is used up: 18:00 off-peak, 18:30 not
    dispatch(london(2026, 10, 26, 11), 120, None, 14.0),  # across noon, a null source (smart): split 60/60
    dispatch(london(2026, 10, 26, 15), 30, "boost", 3.5),  # a boost: never counts
    dispatch(london(2026, 10, 27, 11, 30), 30),  # ends at 12:00 sharp: its allowance used is the 26th's IOG day's
]
LAST_DATA = london(2026, 10, 28)


def iog_noon(moment_ns: int) -> int:
    """The 12:00 London that began the IOG day, from the wall clock alone."""
    local = datetime.fromtimestamp(moment_ns // 10**9, LONDON)
    day = local.date() if local.hour >= 12 else local.date() - timedelta(days=1)
    return int(datetime.combine(day, time(12), tzinfo=LONDON).timestamp()) * 10**9


def smart(d) -> bool:
    return d["source"] not in ("bump-charge", "boost")


def smart_minutes(dispatches) -> set[int]:
    return {m for d in dispatches if smart(d) for m in range(d["start"] // MINUTE, d["end"] // MINUTE)}


def used_minutes(minutes: set[int], moment_ns: int) -> int:
    noon = iog_noon(moment_ns)
    return sum(noon // MINUTE <= m < moment_ns // MINUTE for m in minutes)


def expected_half_hours(data: dict, dispatches, hours: float) -> dict:
    """start -> (unit rate, dispatched, beyond) by the SPEC's words."""
    minutes, out = smart_minutes(dispatches), {}
    for start in data:
        if home_rate(start) == NIGHT:
            out[start] = (NIGHT, False, False)
            continue
        overlaps = [max(start, d["start"]) for d in dispatches
                    if smart(d) and d["start"] < start + HALF_HOUR_NS and d["end"] > start]
        if not overlaps:
            out[start] = (DAY, False, False)
        elif hours == 0 or used_minutes(minutes, min(overlaps)) < hours * 60:
            out[start] = (NIGHT, True, False)
        else:
            out[start] = (DAY, False, True)
    return out


def influx_view(points) -> dict:
    """What InfluxDB ends with: a point written again keeps the fields the new write leaves out."""
    view = {}
    for point in points:
        key = (point["measurement"], tuple(sorted(point["tags"].items())), point["time"])
        view.setdefault(key, {}).update(point["fields"])
    return view


def of(view, measurement) -> dict:
    return {key[2]: fields for key, fields in view.items() if key[0] == measurement}


def run_through(fake, env, launch, restarts: bool):
    """Gathers every 6 hours of API time from 24 October 12:00 to 28 October 12:00: each dispatch is listed
    by completedDispatches (its 12-hour window) in one or two of them."""
    fake.dispatches = DISPATCHES
    lines, plugin = [], None if restarts else launch(env)
    moment = london(2026, 10, 24, 12)
    while moment <= london(2026, 10, 28, 12):
        fake.graphql_now_ns = moment
        if restarts:
            result = run_once(env)
            assert result.returncode == 0, result.stderr.decode()[-500:]
            lines += result.stdout.decode().splitlines()
        else:
            plugin.gather(1)
        moment += 6 * 3600 * 10**9
    if not restarts:
        plugin.stop()
        lines = plugin.stdout
    return influx_view(parse(lines))


def check(view, fake, hours):
    data = fake.data(*IMPORT)
    want = expected_half_hours(data, DISPATCHES, hours)
    printed = of(view, "octopus_consumption")
    assert sorted(printed) == sorted(data)
    for start, fields in printed.items():
        rate, dispatched, beyond = want[start]
        seen = (fields["unit_rate_pence"], fields.get("dispatched", False), fields.get("beyond_allowance", False))
        assert seen == (rate, dispatched, beyond), datetime.fromtimestamp(start / 1e9, LONDON)
        assert fields["cost_gbp"] == pytest.approx(data[start] * rate / 100, abs=1e-9)
        saving = data[start] * (DAY - NIGHT) / 100 if dispatched else 0.0
        assert fields.get("dispatch_saving_gbp", 0.0) == pytest.approx(saving, abs=1e-9)
    minutes = smart_minutes(DISPATCHES)
    printed_dispatches = of(view, "octopus_dispatch")
    assert sorted(printed_dispatches) == sorted(d["start"] for d in DISPATCHES)
    for d in DISPATCHES:
        fields = printed_dispatches[d["start"]]
        noon = iog_noon(d["end"] - 1)  # the IOG day where it ends, counted to its end
        assert fields["allowance_used_s"] == 60 * sum(noon // MINUTE <= m < d["end"] // MINUTE for m in minutes), d
        assert fields["duration_s"] == (d["end"] - d["start"]) // 10**9
    days = of(view, "octopus_iog_day")
    # the 24th's IOG day began before the first dispatch was seen; the 27th's lacks half-hours (data end at midnight)
    assert sorted(days) == [london(2026, 10, 25, 12), london(2026, 10, 26, 12)]
    for noon, fields in days.items():
        end = iog_noon(noon + 25 * 3600 * 10**9)
        counted = 60 * sum(noon // MINUTE <= m < end // MINUTE for m in minutes)
        halves = [s for s in data if noon <= s < end]
        off = sum(data[s] for s in halves if want[s][0] == NIGHT)
        cap = sum(data[s] * (DAY - NIGHT) / 100 for s in halves if want[s][2])
        assert fields == pytest.approx({
            "dispatch_s": counted, "allowance_s": int(hours * 3600),
            "beyond_allowance_s": max(counted - int(hours * 3600), 0) if hours else 0,
            "offpeak_kwh": off, "peak_kwh": sum(data[s] for s in halves) - off, "cap_cost_gbp": cap}, abs=1e-9), noon
        assert (fields["cap_cost_gbp"] > 0) == (hours == 6 and noon == london(2026, 10, 25, 12)), noon
    return want


def test_the_allowance_in_one_process_to_the_minute(fake, charge_cap, launch):  # noqa: F811
    env = {**charge_cap, "OCTO_LOOKBACK_HOURS": "120"}
    fake.add_meter(*IMPORT, london(2026, 10, 24), LAST_DATA, value=lambda i: round(0.1 + (i % 9) * 0.137, 3))
    want = check(run_through(fake, env, launch, restarts=False), fake, 6)
    # the edges themselves: exactly used up at 22:00 (beyond), a minute before at 18:29 (off-peak), then beyond
    assert [want[london(2026, 10, 24, h, m)] for h, m in ((21, 30), (22, 0), (22, 30))] == [
        (NIGHT, True, False), (DAY, False, True), (DAY, False, True)]
    assert [want[london(2026, 10, 25, 18, m)] for m in (0, 30)] == [(NIGHT, True, False), (DAY, False, True)]
    # across noon: 11:00-12:00 is past the 25th's allowance, 12:00-13:00 the first hour of the 26th's
    assert [want[london(2026, 10, 26, h, m)][2] for h, m in ((11, 0), (11, 30), (12, 0), (12, 30))] == [
        True, True, False, False]


def test_the_allowance_with_a_restart_between_every_gather(fake, charge_cap, launch):  # noqa: F811
    env = {**charge_cap, "OCTO_LOOKBACK_HOURS": "120"}
    fake.add_meter(*IMPORT, london(2026, 10, 24), LAST_DATA, value=lambda i: round(0.1 + (i % 9) * 0.137, 3))
    check(run_through(fake, env, launch, restarts=True), fake, 6)


def test_no_cap_when_the_allowance_is_zero_and_a_cap_set_later_corrects_every_flag(fake, charge_cap, launch):  # noqa: F811
    env = {**charge_cap, "OCTO_LOOKBACK_HOURS": "120", "OCTO_IOG_ALLOWANCE_HOURS": "0"}
    fake.add_meter(*IMPORT, london(2026, 10, 24), LAST_DATA, value=lambda i: round(0.1 + (i % 9) * 0.137, 3))
    view = run_through(fake, env, launch, restarts=False)
    want = check(view, fake, 0)
    assert not any(beyond for _, _, beyond in want.values())
    # a restart with the cap: every half-hour past it is printed again at the day rate, and what it carried
    # under no cap (dispatched, its saving) is overwritten in InfluxDB, not left beside the new flag
    result = run_once({**env, "OCTO_IOG_ALLOWANCE_HOURS": "6"})
    assert result.returncode == 0
    for key, fields in influx_view(parse(result.stdout.decode().splitlines())).items():
        view.setdefault(key, {}).update(fields)
    check(view, fake, 6)


def test_an_older_intelli_product_keeps_the_rule_without_a_cap(fake, iog, launch):  # noqa: F811
    """Seven hours of smart charging in one day on E-1R-INTELLI-...: every daytime half-hour it covers is
    off-peak, and no allowance field is ever printed."""
    long_day = dispatch(london(2024, 3, 1, 8), 7 * 60)
    fake.dispatches = [long_day]
    fake.graphql_now_ns = london(2024, 3, 1, 16)
    plugin = launch(iog)
    plugin.gather(1)
    plugin.wait_until(lambda: any(line.startswith("octopus_dispatch") for line in plugin.stdout))
    plugin.stop()
    view = influx_view(parse(plugin.stdout))
    halves = of(view, "octopus_consumption")
    covered = [s for s in halves if london(2024, 3, 1, 8) <= s < london(2024, 3, 1, 15)]
    assert len(covered) == 14 and all(halves[s].get("dispatched") is True for s in covered)
    assert not any("beyond_allowance" in f for f in halves.values())
    assert not any("allowance_used_s" in f for f in of(view, "octopus_dispatch").values())
    assert not of(view, "octopus_iog_day")
