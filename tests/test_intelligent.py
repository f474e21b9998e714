"""Intelligent Octopus: smart-charge half-hours billed at the off-peak rate, from a budgeted GraphQL
client whose tokens expire and whose dispatches vanish from the API 12 hours after they end."""

import json
import subprocess
import threading

import pytest

from test_prices import ACCOUNT, GAS_VARIABLE, account_document, agreement

from conftest import COMMAND, GAS, IMPORT, consumption, parse, run_once
from fake_octopus import HALF_HOUR_NS, london

IOG = "E-1R-INTELLI-VAR-24-10-29-C"
PEAK, OFF_PEAK = 28.0, 7.0
HOUR = 3600 * 10**9
SMART = {"start": london(2024, 3, 1, 10, 10), "end": london(2024, 3, 1, 10, 40), "delta": "-3.50",
         "source": "smart-charge"}  # partial overlap: 10:00 and 10:30 are both dispatched
BUMP = {"start": london(2024, 3, 1, 14), "end": london(2024, 3, 1, 15), "delta": "-7.00", "source": "bump-charge"}
NULL = {"start": london(2024, 3, 2, 12), "end": london(2024, 3, 2, 12, 30), "delta": "-3.40", "source": None}
NIGHT = {"start": london(2024, 3, 2, 2), "end": london(2024, 3, 2, 3), "delta": "-7.00", "source": "smart-charge"}


def iog_rows(first_day, days):
    """Off-peak 23:30-05:30 London, peak otherwise, as Octopus lists Intelligent Go's rates."""
    rows = []
    for day in range(days):
        midnight = first_day + day * 24 * HOUR  # March 2024 before the clock change: days are 24 h
        rows.append((midnight - HALF_HOUR_NS, midnight + 11 * HALF_HOUR_NS, OFF_PEAK, OFF_PEAK / 1.05, None))
        rows.append((midnight + 11 * HALF_HOUR_NS, midnight + 47 * HALF_HOUR_NS, PEAK, PEAK / 1.05, None))
    return rows


@pytest.fixture
def iog(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 3), value=lambda i: 1.0)
    fake.accounts[ACCOUNT] = account_document([agreement(IOG, london(2024, 1, 1))])
    fake.add_product("INTELLI-VAR-24-10-29", "C", {"direct_debit_monthly": IOG})
    fake.add_rates(IOG, "standard-unit-rates", iog_rows(london(2024, 2, 28), 10))
    fake.add_rates(IOG, "standing-charges", [(london(2024, 1, 1), None, 50.0, 47.62, None)])
    fake.dispatches = [SMART, BUMP, NULL, NIGHT]
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01",
            "OCTO_LOOKBACK_HOURS": "168"}


def rates(points) -> dict[int, tuple[float, bool]]:
    return {start: (fields.get("unit_rate_pence"), fields.get("dispatched", False))
            for start, fields in consumption(points, IMPORT).items()}


def expected(known) -> dict[int, tuple[float, bool]]:
    """What each half-hour of 1-2 March costs when the dispatches in `known` are known."""
    out = {}
    for start in range(london(2024, 3, 1), london(2024, 3, 3), HALF_HOUR_NS):
        minutes = ((start - london(2024, 3, 1)) // (60 * 10**9)) % (24 * 60)
        rate = OFF_PEAK if minutes < 330 or minutes >= 1410 else PEAK
        dispatched = rate > OFF_PEAK and any(
            d["start"] < start + HALF_HOUR_NS and d["end"] > start and d["source"] != "bump-charge" for d in known)
        out[start] = (OFF_PEAK, True) if dispatched else (rate, False)
    return out


def test_dispatched_half_hours_are_billed_off_peak_and_each_dispatch_printed_once(fake, iog, launch):
    fake.graphql_now_ns = london(2024, 3, 2, 16)  # the API shows only NULL: NIGHT ended 13 hours ago
    fake.dispatches = [NULL, NIGHT]
    plugin = launch(iog)
    plugin.gather(1)
    plugin.wait_until(lambda: any(line.startswith("octopus_dispatch") for line in plugin.stdout))
    fake.graphql_now_ns = london(2024, 3, 2, 22)  # NULL is listed again: it is not printed again
    plugin.gather(1)
    plugin.stop()
    points = parse(plugin.stdout)
    dispatches = [p for p in points if p["measurement"] == "octopus_dispatch"]
    assert [(p["time"], p["tags"], p["fields"]) for p in dispatches] == [
        (NULL["start"], {"meter_point": IMPORT[1], "source": "unknown"}, {"duration_s": 1800, "energy_kwh": 3.4})]
    assert rates(points)[NULL["start"]] == (OFF_PEAK, True)
    assert rates(points)[NULL["start"] - HALF_HOUR_NS] == (PEAK, False)
    info = [line for line in plugin.stderr if "dispatches known from" in line]
    assert len(info) == 1 and info[0].startswith("I! ")


def test_a_dispatch_learned_late_reprices_its_half_hours_and_bump_charges_stay_peak(fake, iog, launch):
    fake.graphql_now_ns = london(2024, 3, 1, 9)  # before any dispatch: the first gather prices at tariff rates
    plugin = launch(iog)
    plugin.gather(1)
    assert rates(parse(plugin.stdout)) == expected([])
    fake.graphql_now_ns = london(2024, 3, 1, 20)  # SMART and BUMP are now listed
    before = len(plugin.stdout)
    plugin.gather(1)
    again = parse(plugin.stdout[before:])
    reprinted = consumption(again, IMPORT)
    assert sorted(reprinted) == [london(2024, 3, 1, 10), london(2024, 3, 1, 10, 30)]  # those two only
    assert all(fields["dispatched"] is True and fields["cost_gbp"] == OFF_PEAK / 100 for fields in reprinted.values())
    plugin.wait_until(lambda: sum(line.startswith("octopus_dispatch") for line in plugin.stdout) == 2)
    plugin.stop()
    everything = {}
    for point in parse(plugin.stdout):
        if point["measurement"] == "octopus_consumption":
            everything[point["time"]] = (point["fields"]["unit_rate_pence"], point["fields"].get("dispatched", False))
    assert everything == expected([SMART, BUMP])
    sources = sorted(p["tags"]["source"] for p in parse(plugin.stdout) if p["measurement"] == "octopus_dispatch")
    assert sources == ["bump-charge", "smart-charge"]


def test_a_restart_between_learning_a_dispatch_and_pricing_its_half_hour(fake, iog):
    fake.meters[IMPORT] = {s: v for s, v in fake.data(*IMPORT).items() if s < london(2024, 3, 1, 10)}  # data lag
    fake.graphql_now_ns = london(2024, 3, 1, 12)
    first = run_once(iog)
    assert first.returncode == 0
    assert rates(parse(first.stdout.decode().splitlines())) == {
        s: r for s, r in expected([]).items() if s < london(2024, 3, 1, 10)}
    fake.graphql_now_ns = london(2024, 3, 2, 12)  # SMART has vanished from the API by now
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 3), value=lambda i: 1.0)  # the data arrive
    second = run_once(iog)
    printed = rates(parse(second.stdout.decode().splitlines()))
    assert printed[london(2024, 3, 1, 10)] == (OFF_PEAK, True)  # priced from the state
    assert printed[london(2024, 3, 1, 10, 30)] == (OFF_PEAK, True)
    assert printed == {s: r for s, r in expected([SMART]).items() if s >= london(2024, 3, 1, 10)}


def test_an_expired_token_is_renewed_once_without_losing_the_gather(fake, iog, launch):
    fake.graphql_now_ns = london(2024, 3, 1, 20)
    plugin = launch(iog)
    plugin.gather(1)
    assert len(fake.graphql_queries("obtainKrakenToken")) == 1
    fake.expire_tokens()
    calls_before = len(fake.graphql_calls)
    plugin.gather(1)
    made = [c["query"].split("(")[0].split()[-1] for c in fake.graphql_calls[calls_before:]]
    assert made == ["Dispatches", "Token", "Dispatches"]  # refused, one new token, the call once more
    plugin.gather(1)
    assert len(fake.graphql_calls) == calls_before + 4  # the new token is reused
    plugin.stop()
    assert not [line for line in plugin.stderr if line.startswith(("E! ", "W! ")) and "GraphQL" in line]
    assert all("kraken-token" not in line for line in plugin.stderr + plugin.stdout)


def test_a_rate_limit_pauses_graphql_with_one_warning_and_rest_carries_on(fake, iog, launch):
    fake.graphql_errors = ["KT-CT-1199"]
    fake.add_meter(*GAS, london(2024, 3, 1), london(2024, 3, 2))
    plugin = launch({**iog, **dict(zip(("OCTO_GAS_MPRN", "OCTO_GAS_SN"), GAS[1:], strict=True))})
    for _ in range(3):
        plugin.gather(2)
    plugin.stop()
    assert len(fake.graphql_calls) == 1  # the refused token call; then nothing during the pause
    warnings = [line for line in plugin.stderr if line.startswith("W! ") and "GraphQL" in line]
    assert len(warnings) == 1 and "rate limited" in warnings[0]
    assert len(consumption(parse(plugin.stdout), IMPORT)) == 96  # REST carries on, at tariff rates
    assert len(consumption(parse(plugin.stdout), GAS)) == 48


def test_no_dispatch_query_without_an_intelligent_agreement(fake, iog):
    fake.accounts[ACCOUNT] = account_document([agreement("E-1R-VAR-22-11-01-C", london(2024, 1, 1))],
                                              gas_agreements=[agreement(GAS_VARIABLE, london(2024, 1, 1))])
    assert run_once(iog).returncode == 0
    assert fake.graphql_calls == []


def test_two_processes_at_once_share_one_budget(fake, iog, tmp_path):
    """The budget is a ledger in the state directory: two processes together stay within it."""
    env = {**iog, "OCTO_GRAPHQL_MAX_PER_HOUR": "5"}
    fake.graphql_now_ns = london(2024, 3, 1, 20)
    outcomes = []

    def run():
        outcomes.append(subprocess.run([COMMAND, "--once", "--dry-run"], env=env, capture_output=True, timeout=60))

    for _ in range(3):  # each run asks for a token and the dispatches: 12 calls wanted, 5 allowed
        pair = [threading.Thread(target=run) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
    assert len(fake.graphql_calls) == 5
    assert all(result.returncode == 0 for result in outcomes)
    waited = [result for result in outcomes if b"GraphQL budget: 5 calls in the last hour" in result.stderr]
    assert len(waited) >= 3
    ledger = json.loads((tmp_path / "state" / "graphql-calls.json").read_text())
    assert len(ledger["calls"]) == 5


def test_the_key_and_tokens_go_only_to_the_configured_origin(fake, iog):
    fake.graphql_now_ns = london(2024, 3, 1, 20)
    result = run_once(iog)
    assert result.returncode == 0
    token_calls = fake.graphql_queries("obtainKrakenToken")
    assert len(token_calls) == 1 and token_calls[0]["variables"]["key"] == fake.api_key
    assert {origin for origin, _ in fake.raw_requests} == {fake.url}
    text = (result.stdout + result.stderr).decode()
    assert fake.api_key not in text and "kraken-token-1" not in text


def test_the_demo_shows_an_intelligent_period_with_dispatches(tmp_path):
    """Its last ten days on the four-rate product: a partial slot, a bump, a day past the allowance, a car."""
    result = run_once({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, args=("--demo", "--once",
                                                                            "--max-points", "100000"))
    assert result.returncode == 0
    points = parse(result.stdout.decode().splitlines())
    dispatches = [p for p in points if p["measurement"] == "octopus_dispatch"]
    assert sorted(p["tags"]["source"] for p in dispatches) == ["bump-charge", *["smart-charge"] * 4, "unknown"]
    halves = [p for p in points if p["measurement"] == "octopus_consumption" and p["tags"]["direction"] == "import"]
    dispatched = [p for p in halves if p["fields"].get("dispatched")]
    beyond = [p for p in halves if p["fields"].get("beyond_allowance")]
    # 11:10-11:40 touches 2 half-hours; 13:00-17:00 is 8; 19:00-22:00 is 4 within the 6 hours and 2 beyond;
    # the night's 01:00-03:00 is off-peak anyway; 14:00-15:00 (a null source) is 2; the bump none
    assert (len(dispatched), len(beyond)) == (16, 2)
    assert {p["fields"]["unit_rate_pence"] for p in dispatched} == {6.9}
    assert {p["fields"]["unit_rate_pence"] for p in beyond} == {30.37}
    days = {p["time"]: p["fields"] for p in points if p["measurement"] == "octopus_iog_day"}
    long_day = [f for f in days.values() if f["beyond_allowance_s"]]
    assert len(long_day) == 1
    assert (long_day[0]["dispatch_s"], long_day[0]["beyond_allowance_s"]) == (9 * 3600, 3 * 3600)
    assert long_day[0]["cap_cost_gbp"] == pytest.approx(sum(p["fields"]["kwh"] for p in beyond) * (30.37 - 6.9) / 100)
    assert [p["tags"]["device_type"] for p in points if p["measurement"] == "octopus_device"] == ["ELECTRIC_VEHICLES"]
    assert len([p for p in points if p["measurement"] == "octopus_planned_dispatch"]) == 2
