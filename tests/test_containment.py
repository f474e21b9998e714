"""Containment (SPEC section 4): the REST half is the product; every enrichment (dispatches, gas units,
live devices) runs behind one boundary, where whatever it meets is one log line per episode and a
wait, never a failed or delayed gather. Each finding of the review in issue 17 is reproduced here."""

import fcntl
import json
import os
import signal
import subprocess
import time

import pytest

from octopus_telegraf.api import budget as graphql  # the call ledger (budget.py)
from test_intelligent import OFF_PEAK, SMART, iog  # noqa: F401 - iog is a fixture
from test_live import ELECTRIC, EXPORT_DEVICE, GAS_DEVICE, live_env, live_points, readings  # noqa: F401
from test_prices import ACCOUNT, GAS_VARIABLE, account_document, agreement

from conftest import COMMAND, DEMO_UNTIL, EXPORT, GAS, IMPORT, consumption, parse, run_once
from fake_octopus import london, render

DAY_HALF_HOURS = 96  # 1-2 March 2024 in the iog fixture


def problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("W! ", "E! "))]


# -- 1. an odd GraphQL answer is one line; every half-hour is printed in the same gather -----------------

ODD_ANSWERS = {
    "extensions as a string": ("completedDispatches", {"errors": [{"message": "x", "extensions": "KT-CT-1199"}]}),
    "errorCode as a list": ("completedDispatches",
                            {"errors": [{"message": "x", "extensions": {"errorCode": ["KT-CT-1124"]}}]}),
    "errors as a string": ("completedDispatches", {"errors": "boom", "data": None}),
    "completedDispatches a number": ("completedDispatches", {"data": {"completedDispatches": 7}}),
    "completedDispatches an object": ("completedDispatches", {"data": {"completedDispatches": {"start": "x"}}}),
    "entries of every wrong type": ("completedDispatches", {"data": {"completedDispatches": [
        {"start": 5, "end": None}, "x", None, 3, {"start": "2024-03-01T10:00:00Z", "end": "9999-12-31T00:00:00Z"},
        {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T10:30:00Z", "delta": [], "meta": "smart"}]}}),
    "a dispatch lasting a year": ("completedDispatches", {"data": {"completedDispatches": [
        {"start": "2023-03-01T00:00:00Z", "end": "2024-03-01T00:00:00Z", "delta": "-1", "meta": None}]}}),
    "data null": ("completedDispatches", {"data": None}),
    "a list, not an object": ("completedDispatches", [1, 2, 3]),
    "token a string": ("obtainKrakenToken", {"data": {"obtainKrakenToken": "token"}}),
    "token not Latin-1": ("obtainKrakenToken", {"data": {"obtainKrakenToken": {"token": "t\u00f8ken-\u2603"}}}),
    "token with a newline": ("obtainKrakenToken", {"data": {"obtainKrakenToken": {"token": "abc\r\nX-Evil: 1"}}}),
    "HTTP 502 HTML page": ("completedDispatches", (502, {}, b"<html><body>Bad gateway</body></html>")),
    "HTTP 200 not JSON": ("completedDispatches", (200, {}, b"{not json")),
    "huge numbers": ("completedDispatches", {"data": {"completedDispatches": [
        {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T10:30:00Z", "delta": "1e999", "meta": {"source": 7}}]}}),
    "devices a string": ("devices(accountNumber", {"data": {"devices": "car"}}),
    "devices of every wrong type": ("devices(accountNumber", {"data": {"devices": [
        None, 3, {"id": None}, {"id": "x", "status": "LIVE"}, {"id": "tab\tid", "status": {"isSuspended": False}}]}}),
    "planned dispatches an object": ("flexPlannedDispatches", {"data": {"flexPlannedDispatches": {"start": "x"}}}),
    "planned dispatches of every wrong type": ("flexPlannedDispatches", {"data": {"flexPlannedDispatches": [
        {"start": 5}, "x", None, {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T09:00:00Z"},
        {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z", "type": "WARP", "energyAddedKwh": "1e999"}]}}),
    "planned dispatches HTTP 502 HTML page": ("flexPlannedDispatches", (502, {}, b"<html><body>Bad</body></html>")),
}
CAR = {"id": "car-1", "deviceType": "ELECTRIC_VEHICLES", "provider": "TESLA",
       "status": {"current": "LIVE", "currentState": "SMART_CONTROL_CAPABLE", "isSuspended": False}}


@pytest.mark.parametrize("case", list(ODD_ANSWERS))
def test_an_odd_graphql_answer_never_stops_rest_collection(fake, iog, case):  # noqa: F811
    fake.graphql_replies = [ODD_ANSWERS[case]]
    fake.flex_devices = [CAR]  # the devices and their planned dispatches are asked too
    started = time.monotonic()
    result = run_once(iog)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert time.monotonic() - started < 20
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == DAY_HALF_HOURS, stderr
    assert "gather failed" not in stderr and "Traceback" not in stderr
    assert len(problems(stderr)) <= 1, stderr  # one line for the episode
    assert all(len(line) < 1024 for line in stderr.splitlines())


def test_a_refused_token_is_not_kept_and_the_next_gather_recovers(fake, iog, launch):  # noqa: F811
    fake.graphql_replies = [("obtainKrakenToken", {"data": {"obtainKrakenToken": {"token": "t\u00f8ken"}}})]
    fake.graphql_now_ns = london(2024, 3, 1, 20)
    fake.dispatches = [SMART]
    plugin = launch(iog)
    plugin.gather(1)
    assert len(consumption(parse(plugin.stdout), IMPORT)) == DAY_HALF_HOURS
    plugin.gather(1)  # the API has recovered: a new token at once, not 55 minutes later
    plugin.wait_until(lambda: any(line.startswith("octopus_dispatch") for line in plugin.stdout),
                      what="the dispatch, once the token works")
    plugin.gather(1)
    plugin.gather(1)  # the episode ends after successes in a row, not at the first
    plugin.stop()
    assert len(fake.graphql_queries("obtainKrakenToken")) == 2
    assert len(problems("\n".join(plugin.stderr))) == 1
    assert any("working again" in line for line in plugin.stderr)


def test_a_partial_answer_keeps_the_data_it_has(fake, iog):  # noqa: F811
    dispatch = {"start": render(SMART["start"], "colon"), "end": render(SMART["end"], "colon"), "delta": "-3.50",
                "meta": {"source": "smart-charge", "location": None}}
    fake.graphql_replies = [("completedDispatches", {
        "data": {"completedDispatches": [dispatch]},
        "errors": [{"message": "location unavailable", "path": ["completedDispatches", 0, "meta", "location"],
                    "extensions": {"errorCode": "KT-CT-7899"}}]})]
    points = parse(run_once(iog).stdout.decode().splitlines())
    printed = consumption(points, IMPORT)
    for start in (london(2024, 3, 1, 10), london(2024, 3, 1, 10, 30)):
        assert printed[start]["unit_rate_pence"] == OFF_PEAK and printed[start]["dispatched"] is True
    assert [p["time"] for p in points if p["measurement"] == "octopus_dispatch"] == [SMART["start"]]


def test_an_odd_answer_is_one_line_per_episode_and_then_the_enrichment_waits(fake, iog, launch):  # noqa: F811
    fake.graphql_replies = [("completedDispatches", {"data": {"completedDispatches": 7}})] * 5
    plugin = launch(iog)
    for _ in range(4):
        plugin.gather(1)
    plugin.stop()
    assert len(problems("\n".join(plugin.stderr))) == 1
    # the first failure is tried again at the next gather, then the enrichment waits a minute and more
    assert len(fake.graphql_queries("completedDispatches")) == 2


# -- 2. the call ledger: damage, clock steps both ways, a stuck neighbour ------------------------------

class Clocks:
    def __init__(self, monkeypatch):
        self.wall = time.time()
        self.boot = 100_000.0
        monkeypatch.setattr(graphql, "_boot_clock", lambda: self.boot)
        monkeypatch.setattr(graphql.time, "time", lambda: self.wall)


def takes(budget, count) -> int:
    done = 0
    for _ in range(count):
        try:
            budget.take()
            done += 1
        except graphql.BudgetSpent:
            pass
    return done


def test_a_pause_met_with_the_clock_a_year_ahead_ends_when_it_should(tmp_path, monkeypatch):
    clocks = Clocks(monkeypatch)
    budget = graphql.Budget(str(tmp_path), 60)
    clocks.wall += 365 * 86400
    budget.rate_limited()
    clocks.wall -= 365 * 86400  # the clock is put right
    clocks.boot += 60
    assert takes(budget, 1) == 0
    clocks.boot += graphql.FIRST_PAUSE
    assert takes(budget, 1) == 1


def test_a_pause_is_never_longer_than_an_hour(tmp_path, monkeypatch):
    clocks = Clocks(monkeypatch)
    budget = graphql.Budget(str(tmp_path), 60)
    budget.rate_limited(retry_after=10**12)
    clocks.boot += 3599
    assert takes(budget, 1) == 0
    clocks.boot += 2
    assert takes(budget, 1) == 1


@pytest.mark.parametrize("text", [
    '{"calls": ["x", 1e300, null, -5, true], "paused_until": 1e300, "pause": 1e300, "at": 1e300, "boot": "x"}',
    '{"calls": [Infinity, NaN], "paused_until": Infinity, "pause": NaN}',
    '{"calls": 5, "paused_until": "soon"}', "[1, 2]", '"text"', "{", "\x00\x01", '{"calls": [[[[[]]]]]}',
    '{"paused_until": 1e300}',  # an older version's ledger, in wall-clock time
])
def test_a_damaged_ledger_never_stops_anything_and_pauses_an_hour_at_most(tmp_path, monkeypatch, text):
    clocks = Clocks(monkeypatch)
    (tmp_path / graphql.LEDGER).write_text(text)
    budget = graphql.Budget(str(tmp_path), 60)
    takes(budget, 1)  # BudgetSpent at most: no OverflowError, TypeError, ...
    clocks.boot += 3601
    clocks.wall += 3601
    assert takes(budget, 1) == 1


def test_a_clock_stepped_back_lets_no_extra_call_through(tmp_path, monkeypatch):
    clocks = Clocks(monkeypatch)
    budget = graphql.Budget(str(tmp_path), 4)
    assert takes(budget, 4) == 4
    clocks.wall -= 20 * 60  # the clock is stepped back 20 minutes
    clocks.boot += 10 * 60
    assert takes(budget, 4) == 0
    clocks.wall += 365 * 86400  # and then a year ahead: the hour is still the hour
    clocks.boot += 40 * 60
    assert takes(budget, 4) == 0
    clocks.boot += 10 * 60 + 1
    assert takes(budget, 8) == 4


def test_calls_of_before_a_reboot_count_by_the_wall_clock(tmp_path, monkeypatch):
    clocks = Clocks(monkeypatch)
    ledger = {"boot": "another boot", "at": 500.0, "wall": clocks.wall - 600, "calls": [490.0, 495.0, 499.0, 500.0],
              "paused_until": 0, "pause": 0}
    (tmp_path / graphql.LEDGER).write_text(json.dumps(ledger))
    budget = graphql.Budget(str(tmp_path), 4)
    assert takes(budget, 1) == 0  # made 10 minutes ago, before the reboot
    clocks.boot += 50 * 60 + 1
    clocks.wall += 50 * 60 + 1
    assert takes(budget, 2) == 2


def test_a_stuck_neighbour_holding_the_ledger_is_waited_for_a_moment_only(tmp_path, monkeypatch):
    budget = graphql.Budget(str(tmp_path), 60)
    budget.take()
    with open(tmp_path / graphql.LEDGER, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = time.monotonic()
        assert takes(budget, 1) == 0
        assert time.monotonic() - started < graphql.LOCK_WAIT + 1


def test_rest_collection_goes_on_while_a_frozen_process_holds_the_ledger(iog, tmp_path):  # noqa: F811
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with open(state / graphql.LEDGER, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = time.monotonic()
        result = run_once(iog)
        elapsed = time.monotonic() - started
    assert result.returncode == 0 and elapsed < 15
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == DAY_HALF_HOURS
    assert len(problems(result.stderr.decode())) == 1


# -- 3. HTTP 429 on GraphQL is a pause, for the main service and for live -------------------------------

def test_http_429_on_graphql_pauses_it(fake, iog, launch):  # noqa: F811
    fake.inject("status", status=429, path="/v1/graphql/", retry_after="3600", times=100)
    plugin = launch(iog)
    plugin.gather(1)
    assert len(consumption(parse(plugin.stdout), IMPORT)) == DAY_HALF_HOURS
    for _ in range(3):
        plugin.gather(1)
    plugin.stop()
    assert len([r for r in fake.requests if r.path == "/v1/graphql/"]) == 1
    rate_lines = [line for line in plugin.stderr if "rate limited" in line or "GraphQL budget" in line]
    assert len(rate_lines) == 1 and "60 minutes" in rate_lines[0]


def test_http_429_on_graphql_pauses_live_too(fake, live_env, launch):  # noqa: F811
    fake.inject("status", status=429, path="/v1/graphql/", retry_after="3600", times=100)
    plugin = launch(live_env, args=("live",))
    for _ in range(3):
        plugin.trigger()
        time.sleep(0.5)
    plugin.stop()
    assert len([r for r in fake.requests if r.path == "/v1/graphql/"]) == 1
    assert len(problems("\n".join(plugin.stderr))) == 1


# -- 4. secrets are masked before any cut -----------------------------------------------------------------

def assert_no_piece_of(secret: str, text: str):
    for index in range(len(secret) - 5):
        assert secret[index:index + 6] not in text, f"{secret[index:index + 6]!r} of a secret reached the log"


@pytest.mark.parametrize("width", [100, 110, 115, 118])
def test_a_key_or_token_straddling_a_graphql_cut_is_masked(fake, iog, width):  # noqa: F811
    token = "kraken-token-1"  # the fake's first token
    message = "x" * width + fake.api_key + " " + "y" * (width - 5) + token + " end"
    fake.graphql_replies = [("completedDispatches",
                             {"errors": [{"message": message, "extensions": {"errorCode": "KT-CT-9999"}}]})]
    result = run_once({**iog, "OCTO_LOG_LEVEL": "debug"})
    stderr = result.stderr.decode()
    assert "KT-CT-9999" in stderr
    assert_no_piece_of(fake.api_key, stderr)
    assert_no_piece_of(token, stderr)


@pytest.mark.parametrize("width", [185, 190, 195])
def test_a_key_straddling_the_rest_detail_cut_is_masked(fake, plugin_env, width):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    detail = "z" * width + fake.api_key + " is not valid"
    fake.inject("status", status=400, path="/consumption/", body=json.dumps({"detail": detail}).encode())
    env = {**plugin_env, "OCTO_ELECTRIC_MPAN": IMPORT[1], "OCTO_ELECTRIC_SN": IMPORT[2], "OCTO_LOG_LEVEL": "debug"}
    stderr = run_once(env).stderr.decode()
    assert "HTTP 400: zzz" in stderr
    assert_no_piece_of(fake.api_key, stderr)


# -- 5. live devices: export, one device for both directions, ids that cannot be printed ------------------

def devices_answer(*meters) -> dict:
    """meters: (mpan, import device id or None, export device id or None); and a gas device."""
    return {"data": {"account": {
        "electricityAgreements": [{"meterPoint": {"mpan": mpan, "meters": [{
            "serialNumber": IMPORT[2], "smartImportElectricityMeter": {"deviceId": imp} if imp else None,
            "smartExportElectricityMeter": {"deviceId": exp} if exp else None}]}} for mpan, imp, exp in meters],
        "gasAgreements": [{"meterPoint": {"mprn": GAS[1], "meters": [{"serialNumber": GAS[2],
                                                                     "smartGasMeter": {"deviceId": GAS_DEVICE}}]}}]}}}


def with_export(every_s: int, hours: float) -> dict:
    return {at: (*values, 5_000.0 + index * 2.0) for index, (at, values) in enumerate(readings(every_s, hours).items())}


def test_an_export_home_mini_prints_its_export_register(fake, live_env):  # noqa: F811
    fake.add_device(EXPORT_DEVICE, "electricity", "export", EXPORT[1], EXPORT[2], with_export(10, 1))
    fake.graphql_replies = [("smartImportElectricityMeter", devices_answer((EXPORT[1], None, EXPORT_DEVICE)))]
    fake.add_device(GAS_DEVICE, "gas", "import", GAS[1], GAS[2], readings(1800, 3))
    result = run_once(live_env, args=("live", "--once"))
    points = live_points(result.stdout.decode().splitlines(), EXPORT_DEVICE)
    assert len(points) > 300
    ordered = sorted(points)
    for at in ordered:
        assert points[at]["tags"]["direction"] == "export"
        assert points[at]["fields"]["register_kwh"] == pytest.approx(fake.telemetry[EXPORT_DEVICE][at][3] / 1000)
    assert points[ordered[1]]["fields"]["delta_kwh"] == pytest.approx(0.002)
    assert "demand_w" not in points[ordered[1]]["fields"]


def test_one_device_listed_for_import_and_export_prints_both(fake, live_env):  # noqa: F811
    fake.telemetry[ELECTRIC] = with_export(10, 1)
    fake.graphql_replies = [("smartImportElectricityMeter",
                             devices_answer((IMPORT[1], ELECTRIC, None), (EXPORT[1], None, ELECTRIC)))]
    result = run_once(live_env, args=("live", "--once"))
    points = parse(result.stdout.decode().splitlines())
    by_direction = {}
    for point in points:
        by_direction.setdefault((point["tags"]["direction"], point["tags"]["meter_point"]), {})[point["time"]] = point
    imported, exported = by_direction[("import", IMPORT[1])], by_direction[("export", EXPORT[1])]
    assert set(imported) == set(exported) and len(imported) > 300
    at = sorted(imported)[5]
    wh, _, _, export_wh = fake.telemetry[ELECTRIC][at]
    assert imported[at]["fields"]["register_kwh"] == pytest.approx(wh / 1000)
    assert exported[at]["fields"]["register_kwh"] == pytest.approx(export_wh / 1000)
    assert len([c for c in fake.telemetry_calls if c["deviceId"] == ELECTRIC]) == 1  # one call serves both


@pytest.mark.parametrize("bad_id", ["bad\\id", "tab\tid", "x" * 500])
def test_a_device_id_that_cannot_be_printed_leaves_the_others_asked(fake, live_env, bad_id):  # noqa: F811
    fake.add_device(GAS_DEVICE, "gas", "import", GAS[1], GAS[2], readings(1800, 3))
    fake.graphql_replies = [("smartImportElectricityMeter", devices_answer((IMPORT[1], bad_id, None)))]
    result = run_once(live_env, args=("live", "--once"))
    assert {c["deviceId"] for c in fake.telemetry_calls} == {GAS_DEVICE}
    assert live_points(result.stdout.decode().splitlines(), GAS_DEVICE)
    assert len(problems(result.stderr.decode())) == 1


@pytest.mark.parametrize("answer", [
    {"data": {"account": {"electricityAgreements": "x"}}},
    {"data": {"account": {"electricityAgreements": [{"meterPoint": {"mpan": 12, "meters": [
        {"smartImportElectricityMeter": {"deviceId": ELECTRIC}}]}}]}}},
    {"data": {"account": {"electricityAgreements": [{"meterPoint": {"mpan": IMPORT[1], "meters": [
        {"smartImportElectricityMeter": "id"}]}}]}}},
    {"data": {"account": 5}},
])
def test_an_odd_device_list_is_one_line(fake, live_env, answer):  # noqa: F811
    fake.graphql_replies = [("smartImportElectricityMeter", answer)]
    result = run_once(live_env, args=("live", "--once"))
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "gather failed" not in stderr
    assert len(problems(stderr)) <= 1, stderr


@pytest.mark.parametrize("answer", [
    {"data": {"smartMeterTelemetry": 5}},
    {"data": {"smartMeterTelemetry": [{"readAt": 5}, None, "x", {"readAt": "2024-13-45T00:00:00Z"},
                                      {"readAt": "now", "consumption": "1e999"}]}},
    {"data": {"smartMeterTelemetry": [{"readAt": None, "consumption": {"a": 1}}]}},
])
def test_odd_telemetry_is_one_line_and_the_next_device_is_asked(fake, live_env, answer):  # noqa: F811
    fake.add_device(GAS_DEVICE, "gas", "import", GAS[1], GAS[2], readings(1800, 3))
    fake.graphql_replies = [("smartMeterTelemetry", answer)]
    result = run_once(live_env, args=("live", "--once"))
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "gather failed" not in stderr
    assert len(problems(stderr)) <= 1, stderr
    assert GAS_DEVICE in {c["deviceId"] for c in fake.telemetry_calls}


# -- 6. a standing charge that could not be asked is printed when it can ---------------------------------

def test_a_standing_charge_404_loses_no_day(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 5), value=lambda i: 1.0)
    code = "E-1R-VAR-22-11-01-C"
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": code})
    fake.add_rates(code, "standard-unit-rates", [(london(2024, 1, 1), None, 24.5, 23.33, None)])
    fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, 60.0, 57.14, None)])
    fake.inject("status", status=404, path="standing-charges", times=1)
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01"}
    first = parse(run_once(env).stdout.decode().splitlines())
    assert not [p for p in first if p["measurement"] == "octopus_standing_charge"]
    second = parse(run_once(env).stdout.decode().splitlines())  # a restart: the charge is known now
    points = first + second
    days = [london(2024, 3, day) for day in (1, 2, 3, 4)]
    charges = sorted(p["time"] for p in points if p["measurement"] == "octopus_standing_charge")
    assert charges == days
    daily = {p["time"]: p["fields"] for p in points if p["measurement"] == "octopus_daily"}  # the last printed
    assert sorted(daily) == days
    for fields in daily.values():
        assert fields["standing_charge_gbp"] == 0.6
        assert fields["cost_gbp"] == pytest.approx(48 * 0.245 + 0.6)


# -- 7. a gas unit guessed is corrected when it is known ---------------------------------------------

def test_gas_printed_on_a_guessed_unit_is_printed_again_in_the_right_one(fake, plugin_env, launch):
    fake.add_meter(*GAS, london(2024, 3, 1), london(2024, 3, 2, 12))
    fake.accounts[ACCOUNT] = account_document([], gas_agreements=[agreement(GAS_VARIABLE, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": GAS_VARIABLE}, fuel="gas")
    fake.add_rates(GAS_VARIABLE, "standard-unit-rates", [(london(2024, 1, 1), None, 6.89, 6.56, None)])
    fake.add_rates(GAS_VARIABLE, "standing-charges", [(london(2024, 1, 1), None, 29.6, 28.19, None)])
    fake.gas_units[GAS[2]] = "kWh"
    fake.inject("status", status=502, path="/v1/graphql/", times=1)  # the units cannot be read at start
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_GAS_UNIT": "auto"}
    plugin = launch(env)
    plugin.gather(1)
    guessed = consumption(parse(plugin.stdout), GAS)
    assert len(guessed) == 72 and all("m3" in fields for fields in guessed.values())
    plugin.gather(1)
    plugin.stop()
    final = {}
    for point in parse(plugin.stdout):
        if point["measurement"] == "octopus_consumption":
            final[point["time"]] = point["fields"]  # what InfluxDB keeps: the last one written
    assert len(final) == 72
    for start, fields in final.items():
        assert "m3" not in fields and fields["kwh"] == fake.data(*GAS)[start]
        assert fields["cost_gbp"] == pytest.approx(fields["kwh"] * 6.89 / 100)
    assert len(problems("\n".join(plugin.stderr))) == 1


# -- 8. one service's start leaves the other's saves alone ---------------------------------------------

def test_live_starting_leaves_the_main_services_save_alone(fake, live_env, tmp_path):  # noqa: F811
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / ".state.json-abc123.tmp").write_text("{")  # the main service is saving right now
    (state / ".live.json-def456.tmp").write_text("{")  # a kill interrupted live's own save
    assert run_once(live_env, args=("live", "--once")).returncode == 0
    names = {p.name for p in state.iterdir()}
    assert ".state.json-abc123.tmp" in names and ".live.json-def456.tmp" not in names


# -- 9. dispatches are kept for the look-back only, in both schemas, and printed once ---------------------

def test_the_seed_schema_keeps_no_dispatch_past_the_lookback(fake, iog):  # noqa: F811
    fake.graphql_now_ns = london(2024, 2, 26, 20)  # a dispatch older than the look-back (and its 2-day margin)
    fake.dispatches = [{"start": london(2024, 2, 26, 12), "end": london(2024, 2, 26, 13), "delta": "-3",
                        "source": "smart-charge"}]
    env = {**iog, "OCTO_SCHEMA": "seed", "OCTO_LOOKBACK_HOURS": "1"}
    assert run_once(env).returncode == 0
    state = json.loads(open(os.path.join(env["OCTO_STATE_DIR"], "state.json")).read())
    assert state["dispatches"]["dispatches"] == []
    assert run_once(env).returncode == 0  # the API lists it again: it is not taken back
    state = json.loads(open(os.path.join(env["OCTO_STATE_DIR"], "state.json")).read())
    assert state["dispatches"]["dispatches"] == []


def test_the_demo_prints_each_dispatch_once_however_many_gathers(launch, tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    plugin = launch(env, args=("--demo", "--max-points", "100000"))
    for _ in range(3):
        plugin.gather(3)
    plugin.stop()
    stamps = [line.rsplit(" ", 1)[1] for line in plugin.stdout if line.startswith("octopus_dispatch")]
    assert stamps and len(stamps) == len(set(stamps))


# -- 10. a burst of signals --------------------------------------------------------------------------

def test_a_burst_of_trigger_signals_leaves_the_service_working(fake, plugin_env, launch):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    env = {**plugin_env, "OCTO_ELECTRIC_MPAN": IMPORT[1], "OCTO_ELECTRIC_SN": IMPORT[2],
           "OCTO_BACKFILL_FROM": "2024-03-01"}
    plugin = launch(env)
    plugin.gather(1)
    for index in range(20_000):
        try:
            os.kill(plugin.proc.pid, signal.SIGHUP if index % 2 else signal.SIGUSR1)
        except ProcessLookupError:
            break
    assert plugin.proc.poll() is None, "a burst of signals killed it"
    before = len(plugin.collector_lines())
    plugin.trigger()
    plugin.wait_until(lambda: len(plugin.collector_lines()) > before, what="a gather after the burst")
    code, elapsed = plugin.stop()
    assert code == 0 and elapsed < 5


# -- 11. split invariance: what InfluxDB holds does not depend on how the gathers fall ------------------

def influx_view(lines) -> dict:
    """What InfluxDB would hold: the last fields written per series and time (collector points left out)."""
    held = {}
    for point in parse(lines):
        if point["measurement"] == "octopus_collector":
            continue
        # its value counts, not its time
        stamped_at_gather = point["measurement"] in ("octopus_octopoints", "octopus_device")
        key = (point["measurement"], tuple(sorted(point["tags"].items())), None if stamped_at_gather else point["time"])
        held[key] = {**held.get(key, {}), **point["fields"]}
    return held


def one_and_many(env, tmp_path, max_points: int) -> tuple[dict, dict]:
    """What InfluxDB holds after one gather, and after gathers of `max_points` with a restart between each."""
    whole = influx_view(run_once({**env, "OCTO_STATE_DIR": str(tmp_path / "one")}).stdout.decode().splitlines())
    lines = []
    for _ in range(200):
        result = run_once({**env, "OCTO_STATE_DIR": str(tmp_path / "many"), "OCTO_MAX_POINTS": str(max_points)})
        lines += result.stdout.decode().splitlines()
        if b"OCTO_MAX_POINTS" not in result.stderr:
            return whole, influx_view(lines)
    raise AssertionError("never finished")


def demo_state_env(tmp_path, name) -> dict:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "OCTO_DEMO_UNTIL": DEMO_UNTIL,
            "OCTO_STATE_DIR": str(tmp_path / name), "OCTO_LOG_LEVEL": "debug"}


def run_service_until_done(launch, env, max_points: int) -> list[str]:
    """One process, gathers of `max_points` until one of them is not cut short."""
    plugin = launch(env, args=("--demo", "--max-points", str(max_points)))
    for gather in range(1, 500):
        plugin.trigger()
        plugin.wait_until(lambda: sum("gather done" in line for line in plugin.stderr) >= gather,  # noqa: B023
                          timeout=60, what=f"gather {gather}")
        if sum("OCTO_MAX_POINTS" in line for line in plugin.stderr) < gather:
            break
    plugin.stop()
    return plugin.stdout


def run_with_restarts(env, sizes) -> list[str]:
    """`--once` runs, one process each (a restart between every two gathers), until one is not cut short."""
    lines = []
    for index in range(500):
        size = sizes[index % len(sizes)]
        result = subprocess.run([COMMAND, "--demo", "--once", "--max-points", str(size)], env=env,
                                capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        lines += result.stdout.decode().splitlines()
        if b"OCTO_MAX_POINTS" not in result.stderr:
            return lines
    raise AssertionError("never finished")


@pytest.fixture(scope="module")
def demo_in_one_gather(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    result = subprocess.run([COMMAND, "--demo", "--once", "--max-points", "1000000"], env=demo_state_env(tmp, "state"),
                            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert b"OCTO_MAX_POINTS" not in result.stderr
    return influx_view(result.stdout.decode().splitlines())


@pytest.mark.parametrize("max_points", [1000, 100])
def test_the_demo_cut_into_gathers_ends_with_the_same_points(demo_in_one_gather, launch, tmp_path, max_points):
    held = influx_view(run_service_until_done(launch, demo_state_env(tmp_path, "state"), max_points))
    assert set(held) == set(demo_in_one_gather)
    assert held == demo_in_one_gather


@pytest.mark.parametrize("sizes", [[1000], [300, 2500, 50]])
def test_the_demo_cut_with_restarts_ends_with_the_same_points(demo_in_one_gather, tmp_path, sizes):
    held = influx_view(run_with_restarts(demo_state_env(tmp_path, "state"), sizes))
    assert set(held) == set(demo_in_one_gather)
    assert held == demo_in_one_gather


def test_a_split_iog_backfill_prices_every_half_hour_as_one_gather_does(fake, iog, tmp_path):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 20)
    fake.dispatches = [{"start": london(2024, 3, 2, 12), "end": london(2024, 3, 2, 13), "delta": "-3",
                        "source": "smart-charge"}]
    whole, split = one_and_many(iog, tmp_path, 10)
    assert split == whole
    assert len([key for key in whole if key[0] == "octopus_consumption"]) == DAY_HALF_HOURS



@pytest.mark.parametrize("cut", [80, 120, 200, 900])
def test_every_cut_masks_first(monkeypatch, cut):
    """log.clip (GraphQL messages 120, REST details 200, a state error 80) and the line limit (900): a key or a
    token straddling the cut leaves none of its characters."""
    from octopus_telegraf.base import log
    from octopus_telegraf.extras import enrichment

    key, token = "sk_live_abcdefghijklmnopqrs", "eyJhbGciOi.JIUzI1NiJ9.eyJzdWIi"
    monkeypatch.setattr(log, "_secrets", [key, token])
    for secret in (key, token):
        for offset in range(1, len(secret)):
            text = "x" * (cut - offset) + secret + " and more after it"
            assert_no_piece_of(secret, log.clip(text, cut))
            assert_no_piece_of(secret, log._clean(text))
    said = []
    monkeypatch.setattr(log, "log", lambda level, message: said.append(log._clean(message)))
    boundary = enrichment.Enrichment("a part")

    def fails():
        raise ValueError("y" * 110 + token + " " + key)

    assert boundary.run(fails) is None
    (line,) = said
    assert_no_piece_of(token, line)
    assert_no_piece_of(key, line)
