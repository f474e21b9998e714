"""What is printed, as SPEC sections 4-6: exact times, units, costs, once each, nothing lost."""

import json
from datetime import date, timedelta

import pytest

from octopus_telegraf.base.timeutil import london_midnight_ns

from conftest import EXPORT, GAS, IMPORT, consumption, meter_env, parse, run_once
from fake_octopus import HALF_HOUR_NS, LONDON, london, parse_query_time


def london_day_count(stamps, day: date) -> int:
    start = london(day.year, day.month, day.day)
    following = day + timedelta(days=1)
    end = london(following.year, following.month, following.day)
    return sum(start <= s < end for s in stamps)


@pytest.mark.parametrize("style", ["api", "colon", "compact"])
def test_clock_changes_give_46_and_50_half_hours_with_exact_timestamps(fake, plugin_env, style):
    fake.time_style = style
    spring = fake.add_meter(*IMPORT, london(2024, 3, 30), london(2024, 4, 2))
    autumn = fake.add_meter(*GAS, london(2024, 10, 26), london(2024, 10, 29))
    env = {**plugin_env, **meter_env(IMPORT, GAS), "OCTO_BACKFILL_FROM": "2024-03-30", "OCTO_GAS_UNIT": "kWh"}
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    points = parse(result.stdout.decode().splitlines())
    printed_spring = consumption(points, IMPORT)
    printed_autumn = consumption(points, GAS)
    assert london_day_count(printed_spring, date(2024, 3, 31)) == 46
    assert london_day_count(printed_spring, date(2024, 3, 30)) == 48
    assert london_day_count(printed_autumn, date(2024, 10, 27)) == 50
    assert {s: f["kwh"] for s, f in printed_spring.items()} == spring
    assert {s: f["kwh"] for s, f in printed_autumn.items()} == autumn
    # the first half-hour after the spring change starts at 01:00 UTC = 02:00 BST
    assert london(2024, 3, 31, 2, 0) in printed_spring and london(2024, 3, 31, 2, 0) % HALF_HOUR_NS == 0


def test_timestamp_end_stamps_each_half_hour_at_its_end(fake, plugin_env):
    data = fake.add_meter(*IMPORT, london(2024, 10, 26), london(2024, 10, 28))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-10-26", "OCTO_TIMESTAMP": "end"}
    points = parse(run_once(env).stdout.decode().splitlines())
    assert sorted(consumption(points, IMPORT)) == [s + HALF_HOUR_NS for s in sorted(data)]


def test_gas_m3_is_converted_and_kwh_gas_is_not(fake, plugin_env, tmp_path):
    data = fake.add_meter(*GAS, london(2024, 1, 1), london(2024, 1, 2), value=lambda i: [0.0, 1, 0.517][i % 3])
    env = {**plugin_env, **meter_env(GAS), "OCTO_BACKFILL_FROM": "2024-01-01", "CALORIFIC_VALUE": "40.1",
           "OCTO_GAS_COST": "6.5"}
    lines = run_once(env).stdout.decode().splitlines()
    printed = consumption(parse(lines), GAS)
    assert len(printed) == 48
    for start, fields in printed.items():
        m3 = data[start]
        kwh = m3 * 1.02264 * 40.1 / 3.6
        assert fields["m3"] == m3 and isinstance(fields["m3"], float)
        assert fields["kwh"] == pytest.approx(kwh, rel=1e-9) and isinstance(fields["kwh"], float)
        assert fields["unit_rate_pence"] == 6.5
        assert fields["cost_gbp"] == pytest.approx(kwh * 6.5 / 100, rel=1e-9)
    assert any(" kwh=0.0," in line for line in lines)  # a zero stays a float, never `0i`

    env.update(OCTO_GAS_UNIT="kWh", OCTO_STATE_DIR=str(tmp_path / "other"))
    printed = consumption(parse(run_once(env).stdout.decode().splitlines()), GAS)
    assert all("m3" not in f and f["kwh"] == data[s] for s, f in printed.items())


def test_no_cost_fields_without_a_rate(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 1, 2))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-01-01"}
    printed = consumption(parse(run_once(env).stdout.decode().splitlines()), IMPORT)
    assert printed and all(set(f) == {"kwh"} for f in printed.values())


def test_seed_schema_keeps_the_node_tools_measurements(fake, plugin_env):
    imp = fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 1, 2))
    exp = fake.add_meter(*EXPORT, london(2024, 1, 1), london(2024, 1, 2))
    gas = fake.add_meter(*GAS, london(2024, 1, 1), london(2024, 1, 2))
    env = {**plugin_env, **meter_env(IMPORT, EXPORT, GAS), "OCTO_BACKFILL_FROM": "2024-01-01",
           "OCTO_SCHEMA": "seed", "OCTO_ELECTRIC_COST": "24.5", "OCTO_GAS_COST": "6"}
    points = parse(run_once(env).stdout.decode().splitlines())
    by_name = {}
    for point in points:
        assert point["tags"] == {"app": "octopus-energy-consumption-metrics"}
        by_name.setdefault(point["measurement"], {})[point["time"]] = point["fields"]
    assert set(by_name) == {"electricity", "electricity_cost", "electricity_export", "gas", "gaskwh", "gas_cost"}
    end = {s: s + HALF_HOUR_NS for s in imp}  # the seed stamped each interval at its end
    for name, served in (("electricity", imp), ("electricity_export", exp), ("gas", gas)):
        assert {end[s]: v for s, v in served.items()} == {t: f["consumption"] for t, f in by_name[name].items()}
    for s, v in imp.items():
        assert by_name["electricity_cost"][end[s]]["price"] == pytest.approx(v * 24.5 / 100)
    for s, v in gas.items():
        kwh = v * 1.02264 * 39.5 / 3.6
        assert by_name["gaskwh"][end[s]]["consumption_kwh"] == pytest.approx(kwh)
        assert by_name["gas_cost"][end[s]]["price"] == pytest.approx(kwh * 6 / 100)


def test_requests_are_polite_and_exact(fake, plugin_env, launch):
    fake.add_meter(*IMPORT, london(2024, 6, 1), london(2024, 6, 4))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-06-01", "PAGE_SIZE": "1000",
           "OCTO_LOOKBACK_HOURS": "10"}
    plugin = launch(env)
    plugin.gather(1)
    plugin.gather(1)
    plugin.stop()
    first, second = fake.consumption_requests()
    for request in (first, second):
        assert request.query["order_by"] == "period" and request.query["page_size"] == "1000"
        assert request.query["period_from"].endswith("Z") and "+" not in request.query["period_from"]
        assert request.user_agent.startswith("octopus-telegraf/")
        assert request.api_key == fake.api_key
    assert parse_query_time(first.query["period_from"]) == london(2024, 6, 1)
    # the next gather re-reads the look-back window before the newest interval seen (its start)
    newest_start = london(2024, 6, 4) - HALF_HOUR_NS
    assert parse_query_time(second.query["period_from"]) == newest_start - 10 * 3600 * 10**9


def test_pages_are_followed_and_each_half_hour_printed_once(fake, plugin_env):
    data = fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 11))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-01", "PAGE_SIZE": "100"}
    result = run_once(env)
    printed = consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    assert {s: f["kwh"] for s, f in printed.items()} == data
    assert len(fake.consumption_requests()) == 5
    assert [int(r.query.get("page", 1)) for r in fake.consumption_requests()] == [1, 2, 3, 4, 5]


def test_next_link_to_another_origin_is_not_followed_and_gets_no_key(fake, plugin_env):
    from fake_octopus import FakeOctopus

    other = FakeOctopus(api_key=fake.api_key)
    try:
        fake.foreign_url = other.url
        fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 3))
        fake.inject("foreign_next")
        env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-01", "PAGE_SIZE": "50"}
        result = run_once(env)
        assert result.returncode == 0
        assert other.requests == []
        assert "another origin" in result.stderr.decode()
        assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == 50
    finally:
        other.close()


def test_over_returned_rows_are_dropped(fake, plugin_env, launch):
    fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 5))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-02"}
    fake.inject("over_return", extra_rows=7)
    points = consumption(parse(run_once(env).stdout.decode().splitlines()), IMPORT)
    assert min(points) == london(2024, 2, 2) and len(points) == 3 * 48


def test_late_filled_gaps_and_changed_values_are_printed_once_more(fake, plugin_env, launch):
    data = fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 4))
    gap = sorted(data)[-20:-10]
    held = {s: data.pop(s) for s in gap}
    changed = sorted(data)[-30]
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-01"}
    plugin = launch(env)
    plugin.gather(1)
    first = consumption(parse(plugin.stdout), IMPORT)
    assert not set(gap) & set(first) and len(first) == 3 * 48 - 10
    data.update(held)
    data[changed] = data[changed] + 1.0
    count = len(plugin.stdout)
    plugin.gather(1)
    plugin.gather(1)  # and nothing a third time
    plugin.stop()
    later = [p for p in parse(plugin.stdout[count:]) if p["measurement"] == "octopus_consumption"]
    assert sorted(p["time"] for p in later) == sorted([*gap, changed])
    assert {p["time"]: p["fields"]["kwh"] for p in later}[changed] == data[changed]


def test_max_points_and_a_restart_mid_backfill_leave_no_gap_and_no_repeat(fake, plugin_env, launch):
    data = {meter: fake.add_meter(*meter, london(2024, 1, 1), london(2024, 1, 21)) for meter in (IMPORT, GAS)}
    env = {**plugin_env, **meter_env(IMPORT, GAS), "OCTO_BACKFILL_FROM": "2024-01-01", "OCTO_MAX_POINTS": "202",
           "OCTO_GAS_UNIT": "kWh"}
    seen = []
    for _ in range(3):  # three processes, three gathers each, stopped as Telegraf stops them
        plugin = launch(env)
        for _ in range(3):
            before = len(plugin.stdout)
            plugin.gather(2)
            assert len(plugin.stdout) - before <= 202  # OCTO_MAX_POINTS, the collector points included
        plugin.stop()
        seen.extend(parse(plugin.stdout))
    for meter in (IMPORT, GAS):
        stamps = [p["time"] for p in seen if p["measurement"] == "octopus_consumption"
                  and p["tags"]["meter_point"] == meter[1]]
        assert len(stamps) == len(set(stamps)) >= 9 * 90  # ~100 a gather each, room kept for daily points
        assert sorted(stamps) == sorted(data[meter])[:len(stamps)]  # oldest first: no gap
        days = [p["time"] for p in seen if p["measurement"] == "octopus_daily" and p["tags"]["meter_point"] == meter[1]]
        assert len(days) == len(set(days)) >= len(stamps) // 48 - 1  # each complete day once


def test_corrupt_state_is_a_warning_and_a_fresh_backfill(fake, plugin_env, tmp_path):
    fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 2))
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "state.json").write_text('{"version": 1, "meters": {"x": ')
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-01"}
    result = run_once(env)
    assert result.returncode == 0
    assert any(line.startswith("W! ") and "state" in line for line in result.stderr.decode().splitlines())
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == 48
    assert json.loads((tmp_path / "state" / "state.json").read_text())["version"] == 1


def test_state_keeps_only_the_look_back_window(fake, plugin_env, tmp_path):
    fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 3, 1))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-01-01", "OCTO_LOOKBACK_HOURS": "24"}
    result = run_once(env)
    assert result.returncode == 0
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    (progress,) = saved["meters"].values()
    assert len(progress["printed"]) == 48 + 1  # the newest half-hour and the 24 hours before it, not two months


def test_backfill_days_and_london_midnight(fake, plugin_env):
    from datetime import datetime

    today = datetime.now(LONDON).date()
    fake.add_meter(*IMPORT, london_midnight_ns(today - timedelta(days=10)), london_midnight_ns(today))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_DAYS": "3"}
    run_once(env)
    (request,) = fake.consumption_requests()
    asked = parse_query_time(request.query["period_from"])
    now_ns = int(datetime.now().timestamp()) * 10**9
    assert 3 * 86400 * 10**9 - 3600 * 10**9 <= now_ns - asked <= 3 * 86400 * 10**9 + 3600 * 10**9


def test_demo_once_needs_no_key_and_is_deterministic(tmp_path):
    env = {"PATH": plugin_path(), "HOME": str(tmp_path), "OCTO_API_URL": "https://127.0.0.1:9"}  # never contacted
    first, second = run_once(env, args=("--demo", "--once")), run_once(env, args=("--once", "--demo"))
    assert first.returncode == 0, first.stderr
    gathered = ("octopus_collector,", "octopus_octopoints,", "octopus_device,")  # stamped at the gather: all else
    # is the demo's own
    data = [line for line in first.stdout.decode().splitlines() if not line.startswith(gathered)]
    assert data == [line for line in second.stdout.decode().splitlines() if not line.startswith(gathered)]
    points = parse(first.stdout.decode().splitlines())
    meters = {(p["tags"]["fuel"], p["tags"]["direction"]) for p in points if p["measurement"] == "octopus_consumption"}
    assert meters == {("electricity", "import"), ("electricity", "export"), ("gas", "import")}
    gas = [p for p in points if p["measurement"] == "octopus_consumption" and p["tags"]["fuel"] == "gas"]
    assert london_day_count([p["time"] for p in gas], date(2025, 10, 26)) == 50
    assert all({"kwh", "m3", "cost_gbp"} <= set(p["fields"]) for p in gas)
    assert {p["measurement"] for p in points} == {"octopus_consumption", "octopus_unit_rate", "octopus_dispatch",
                                                  "octopus_standing_charge", "octopus_collector", "octopus_daily",
                                                  "octopus_comparison_daily", "octopus_event", "octopus_octopoints",
                                                  "octopus_greener_night", "octopus_iog_day", "octopus_device",
                                                  "octopus_planned_dispatch", "octopus_carbon"}
    import_tariffs = {p["tags"]["tariff"] for p in points if p["measurement"] == "octopus_standing_charge"
                      and p["tags"]["meter_point"] == "1900000000001"}
    assert len(import_tariffs) == 3  # Agile, fixed, Intelligent Go: every period is priced
    rates = [p["fields"]["unit_rate_pence"] for p in points if p["measurement"] == "octopus_consumption"
             and p["tags"]["direction"] == "import"]
    assert len(set(rates)) > 48 and min(rates) < 0  # Agile: half-hourly, sometimes negative
    assert b"OCTO_MAX_POINTS" not in first.stderr  # the whole demo in one gather, as the README promises
    assert not (tmp_path / ".local").exists()  # the demo keeps no state


def plugin_path():
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
