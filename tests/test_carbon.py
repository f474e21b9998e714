"""Carbon intensity per half-hour (SPEC section 11) against a fake Carbon Intensity API: every co2_kg equals
kWh x intensity / 1000 from the fake's tables (a clock-change day included), the region's order, no
Octopus credential ever at the carbon host, faults that cost one line and no half-hour, the 14-day limit
and the calls a gather may make, national actuals replacing forecasts, split invariance, and `off`."""

import json
import subprocess
import sys
import time
from datetime import datetime

import pytest

from fake_carbon import DAY_NS, FakeCarbon, actual, forecast
from octopus_telegraf.base.timeutil import london_day_start
from test_allowance import influx_view, of
from test_containment import problems
from test_four_rate import CHARGE_CAP, charge_cap, home_rate  # noqa: F401 - the fixture is used
from test_prices import ACCOUNT, account_document, agreement

from conftest import IMPORT, parse, run_once, saved_state
from fake_octopus import HALF_HOUR_NS, LONDON, london

REGION_IDS = {"A": 10, "C": 13, "H": 12, "N": 2}


@pytest.fixture
def carbon():
    fake = FakeCarbon()
    yield fake
    fake.close()


@pytest.fixture
def carbon_env(fake, charge_cap, carbon):  # noqa: F811
    fake.add_meter(*IMPORT, london(2026, 10, 24), london(2026, 10, 27), value=lambda i: round(0.1 + (i % 9) * 0.137, 3))
    return {**charge_cap, "OCTO_CARBON": "regional", "OCTO_CARBON_API_URL": carbon.url, "OCTO_LOOKBACK_HOURS": "96"}


def test_every_co2_kg_is_kwh_times_the_regions_intensity(fake, carbon, carbon_env):
    result = run_once(carbon_env)
    assert result.returncode == 0 and not problems(result.stderr.decode()), result.stderr.decode()
    view = influx_view(parse(result.stdout.decode().splitlines()))
    data = fake.data(*IMPORT)
    halves = of(view, "octopus_consumption")
    assert sorted(halves) == sorted(data)
    region = REGION_IDS["C"]  # the tariff's letter: no OCTO_REGION, no grid supply point
    for start, fields in halves.items():
        assert fields["co2_kg"] == pytest.approx(data[start] * forecast(region, start) / 1000, abs=1e-12)
        assert fields["cost_gbp"] == pytest.approx(data[start] * home_rate(start) / 100, abs=1e-9)
    change = london(2026, 10, 25)  # 50 half-hours
    day = [s for s in data if change <= s < london(2026, 10, 26)]
    assert len(day) == 50
    daily = {p["time"]: p["fields"] for p in parse(result.stdout.decode().splitlines())
             if p["measurement"] == "octopus_daily"}
    assert daily[change]["co2_kg"] == pytest.approx(sum(data[s] * forecast(region, s) / 1000 for s in day), abs=1e-9)
    points = of(view, "octopus_carbon")
    assert all(points[s]["intensity_g"] == forecast(region, s) for s in data)
    assert max(points) >= max(data)  # and ahead of the data
    assert all(f"/regionid/{region}" in path for path in carbon.paths())


@pytest.mark.parametrize("setting,gsp,letter", [("N", "_H", "N"), (None, "_H", "H"), (None, None, "C")])
def test_the_region_is_the_meters_place_first(fake, carbon, carbon_env, setting, gsp, letter):
    if gsp:
        fake.gsp[IMPORT[1]] = gsp
    env = {**carbon_env, **({"OCTO_REGION": setting} if setting else {})}
    assert run_once(env).returncode == 0
    assert carbon.paths() and all(path.endswith(f"/regionid/{REGION_IDS[letter]}") for path in carbon.paths())


def test_no_octopus_credential_ever_reaches_the_carbon_host(fake, carbon, carbon_env):
    run_once({**carbon_env, "OCTO_EVENTS": "true"})
    assert carbon.requests
    for path, headers in carbon.requests:
        text = path + " ".join(f"{k}: {v}" for k, v in headers.items())
        assert "Authorization" not in headers and fake.api_key not in text and "JWT" not in text
        assert headers.get("User-Agent", "").startswith("octopus-telegraf/")


@pytest.mark.parametrize("fault", ["500", "html", "429", "shape", "drip", "empty"])
def test_a_fault_costs_one_line_and_no_half_hour_and_co2_follows(fake, carbon, carbon_env, fault):
    carbon.faults = [fault] * 10  # and the retries of this gather, or every call of it (an empty answer)
    env = {**carbon_env, "OCTO_HTTP_TIMEOUT": "3"}
    first = run_once(env)
    assert first.returncode == 0
    halves = of(influx_view(parse(first.stdout.decode().splitlines())), "octopus_consumption")
    assert sorted(halves) == sorted(fake.data(*IMPORT))
    assert all("kwh" in f and "cost_gbp" in f and "co2_kg" not in f for f in halves.values())
    assert len(problems(first.stderr.decode())) <= 1, first.stderr.decode()
    carbon.faults = []
    with saved_state(env) as state:  # the episode's back-off is per process: a restart
        state["carbon"]["checked"] = None  # an hour later: an empty answer was never taken as final
    second = run_once(env)
    with saved_state(env) as state:
        assert second.returncode == 0 and state["carbon"]["half_hours"]
    again = of(influx_view(parse(second.stdout.decode().splitlines())), "octopus_consumption")
    assert sorted(again) == sorted(halves) and all("co2_kg" in f for f in again.values())


def test_an_answer_of_10000_half_hours_keeps_only_those_asked(fake, carbon, carbon_env):
    carbon.faults = ["huge"] * 3
    result = run_once(carbon_env)
    assert result.returncode == 0 and not problems(result.stderr.decode())
    view = influx_view(parse(result.stdout.decode().splitlines()))
    assert all("co2_kg" in fields for fields in of(view, "octopus_consumption").values())
    printed = of(view, "octopus_carbon")
    assert printed and all(fields["intensity_g"] != 1 for fields in printed.values())  # none from outside the span
    assert min(printed) >= min(fake.data(*IMPORT))


def test_a_long_backfill_asks_14_days_a_call_10_calls_a_gather(fake, carbon, charge_cap):  # noqa: F811
    fake.add_meter(*IMPORT, london(2026, 7, 6), london(2026, 10, 27), value=lambda i: 0.2)
    fake.accounts[ACCOUNT] = account_document([agreement(CHARGE_CAP, london(2026, 7, 1))])
    env = {**charge_cap, "OCTO_CARBON": "regional", "OCTO_CARBON_API_URL": carbon.url,
           "OCTO_BACKFILL_FROM": "2026-07-06", "OCTO_MAX_POINTS": "3000"}
    lines, counts = [], []
    for _ in range(20):
        before = len(carbon.requests)
        result = run_once(env)
        lines += result.stdout.decode().splitlines()
        counts.append(len(carbon.requests) - before)
        if b"OCTO_MAX_POINTS" not in result.stderr:
            break
    assert max(counts) <= 10 and sum(counts) >= 10  # more than one gather's worth, spread
    for path in carbon.paths():
        low, high = path.split("/")[3:5]
        assert (datetime.strptime(high, "%Y-%m-%dT%H:%MZ") - datetime.strptime(low, "%Y-%m-%dT%H:%MZ")).days <= 14
    halves = of(influx_view(parse(lines)), "octopus_consumption")
    assert len(halves) == len(fake.data(*IMPORT))
    # every half-hour the first gather printed had its intensity asked first; later ones too
    assert all(f["co2_kg"] == pytest.approx(0.2 * forecast(13, s) / 1000) for s, f in halves.items())


def test_split_into_gathers_with_restarts_ends_with_the_same_points(fake, carbon, carbon_env, tmp_path):
    whole = influx_view(parse(run_once({**carbon_env, "OCTO_STATE_DIR": str(tmp_path / "one")})
                              .stdout.decode().splitlines()))
    lines = []
    for _ in range(80):
        result = run_once({**carbon_env, "OCTO_STATE_DIR": str(tmp_path / "many"), "OCTO_MAX_POINTS": "100"})
        lines += result.stdout.decode().splitlines()
        if b"OCTO_MAX_POINTS" not in result.stderr:
            break
    split = influx_view(parse(lines))
    drop = ("octopus_collector", "octopus_unit_rate")  # stamped at the gather / published ahead
    assert {k: v for k, v in split.items() if k[0] not in drop} == {k: v for k, v in whole.items() if k[0] not in drop}


def test_national_actuals_replace_forecasts(fake, carbon, carbon_env):
    """Recent half-hours (the look-back is where actuals are waited for): the newer ones have none at first."""
    now = time.time_ns() // HALF_HOUR_NS * HALF_HOUR_NS
    first_day = london_day_start(now - 3 * DAY_NS)
    fake.meters.clear()
    fake.add_meter(*IMPORT, first_day, now - 2 * HALF_HOUR_NS, value=lambda i: round(0.1 + (i % 7) * 0.11, 3))
    backfill = datetime.fromtimestamp(first_day // 10**9, LONDON).date().isoformat()
    env = {**carbon_env, "OCTO_CARBON": "national", "OCTO_BACKFILL_FROM": backfill}
    carbon.now_ns = now - DAY_NS  # the last day has no actuals yet
    first = run_once(env)
    view = influx_view(parse(first.stdout.decode().splitlines()))
    data = fake.data(*IMPORT)
    late = [s for s in data if s + HALF_HOUR_NS > now - DAY_NS]
    assert late and all(of(view, "octopus_consumption")[s]["co2_kg"] == pytest.approx(data[s] * forecast(18, s) / 1000)
                        for s in late)
    carbon.now_ns = None  # they have come in; the hourly check asks for them
    with saved_state(env) as state:
        state["carbon"]["checked"] = None  # as if the last check were over an hour ago
    second = run_once(env)
    for key, fields in influx_view(parse(second.stdout.decode().splitlines())).items():
        view.setdefault(key, {}).update(fields)
    halves, points = of(view, "octopus_consumption"), of(view, "octopus_carbon")
    for s in data:
        assert points[s]["intensity_g"] == actual(s) and points[s]["forecast_g"] == forecast(18, s)
        assert halves[s]["co2_kg"] == pytest.approx(data[s] * actual(s) / 1000, abs=1e-12)


def test_off_makes_no_call_and_prints_nothing_of_it(fake, carbon, carbon_env):
    result = run_once({**carbon_env, "OCTO_CARBON": "off"})
    assert result.returncode == 0 and not carbon.requests
    assert b"co2_kg" not in result.stdout and b"octopus_carbon" not in result.stdout


def test_regional_without_a_region_is_one_warning_and_no_call(fake, carbon, carbon_env):
    fake.accounts[ACCOUNT] = account_document([agreement("E-1R-ODD-PRODUCT", london(2026, 7, 1))])
    result = run_once(carbon_env)
    assert result.returncode == 0 and not carbon.requests
    warned = [line for line in problems(result.stderr.decode()) if "OCTO_CARBON" in line]
    assert len(warned) == 1 and "OCTO_REGION" in warned[0]



@pytest.mark.parametrize("value", ["on", "true", "regional,national", "2"])
def test_a_bad_setting_is_one_error_line_and_exit_2(carbon_env, carbon, value):
    result = run_once({**carbon_env, "OCTO_CARBON": value})
    assert result.returncode == 2 and not result.stdout and not carbon.requests
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("E! OCTO_CARBON must be one of regional, national, off"), lines


def test_off_costs_nothing_not_even_the_import(carbon_env, carbon):
    """With OCTO_CARBON=off the carbon room is never imported (python -X importtime lists every import)."""
    command = [sys.executable, "-X", "importtime", "-m", "octopus_telegraf", "--once"]
    off = subprocess.run(command, env={**carbon_env, "OCTO_CARBON": "off"}, capture_output=True, timeout=60)
    on = subprocess.run(command, env=carbon_env, capture_output=True, timeout=60)
    assert off.returncode == 0 and on.returncode == 0
    assert b"octopus_telegraf.extras.carbon" not in off.stderr
    assert b"octopus_telegraf.extras.carbon" in on.stderr  # the check itself can see it


def test_the_kept_half_hours_reprint_on_change_survive_a_restart_and_a_damaged_table_is_dropped(capfd):
    from octopus_telegraf.base import log
    from octopus_telegraf.extras.carbon.carbon import Carbon

    t0 = london(2026, 10, 25)  # the clock change: the table counts UTC half-hours, never London's
    store = {}
    kept = Carbon(None, "regional", store)
    kept.set_region("C")
    kept.half_hours.set(t0, 100, 90, 2, True)
    kept.half_hours.set(t0 + 2 * HALF_HOUR_NS, 120, 0xFFFF, 0, False)  # a hole between, no forecast, no index
    lines, keep = kept.lines(10)
    assert lines == [f"octopus_carbon,region=C,source=regional intensity_g=100i,forecast_g=90i,index=\"low\" {t0}",
                     f"octopus_carbon,region=C,source=regional intensity_g=120i {t0 + 2 * HALF_HOUR_NS}"]
    keep()
    restarted = Carbon(None, "regional", json.loads(json.dumps(store)))  # as the state file keeps it
    restarted.set_region("C")
    assert [restarted.intensity_at(t0 + i * HALF_HOUR_NS) for i in range(-1, 4)] == [None, 100, None, 120, None]
    assert restarted.lines(10)[0] == []
    restarted.half_hours.set(t0, 100, 90, 2, True)  # the same answer again: nothing to print
    restarted.half_hours.set(t0 + 2 * HALF_HOUR_NS, 125, 0xFFFF, 0, True)  # a changed one: printed again
    assert [line.split()[1] for line in restarted.lines(10)[0]] == ["intensity_g=125i"]
    restarted.half_hours.set(t0 - 2 * HALF_HOUR_NS, 80, 80, 1, True)  # earlier than anything kept
    assert restarted.intensity_at(t0 - 2 * HALF_HOUR_NS) == 80 and restarted.intensity_at(t0) == 100
    restarted.lines(10)[1]()
    restarted.prune(t0 + HALF_HOUR_NS)  # printed and before the next read: let go
    assert restarted.intensity_at(t0 - 2 * HALF_HOUR_NS) is None
    assert restarted.intensity_at(t0 + 2 * HALF_HOUR_NS) == 125
    capfd.readouterr()
    damaged = Carbon(None, "regional", {**store, "half_hours": "zz" + store["half_hours"][2:]})
    log.drain()
    assert damaged.intensity_at(t0) is None and damaged.store["from"] is None  # all of it asked again
    assert [line[:2] for line in capfd.readouterr().err.splitlines()] == ["W!"]


def test_a_stop_while_carbon_lines_fill_an_unread_stdout_exits_0_within_3s(fake, carbon, carbon_env):
    import signal

    from test_hardening import stop_and_time, unread_child

    proc = unread_child(carbon_env, stderr_read=True)  # Telegraf hung: nobody reads stdout
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 10
    while len(carbon.requests) < 4 and time.monotonic() < deadline:  # ~45 days asked: 2,000 lines to print
        time.sleep(0.05)
    time.sleep(0.5)  # the REST lines fit the 64 KiB pipe; octopus_carbon's fill it and the write blocks
    code, elapsed = stop_and_time(proc, signal.SIGTERM)
    assert code == 0 and elapsed < 3.0
