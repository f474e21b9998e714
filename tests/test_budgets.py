"""Containment, round two (SPEC section 4): a gather has an order and a budget. The REST half comes first
in points and in time; every request has a deadline for the whole exchange; listed answers have
ceilings; a negative answer that may pass is asked again; damaged state sections and bad settings
never crash the process. Each test here failed before the fix it covers."""

import json
import os
import signal
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_compare import COMPARE, FIRST_DAY, IMPORT, compared, comparison_points, days  # noqa: F401 - a fixture
from test_containment import one_and_many, problems
from test_events import NIGHTS, POWER_DOWN, events_env, let_time_pass, points_of, state_of  # noqa: F401 - a fixture
from test_intelligent import iog  # noqa: F401 - a fixture
from test_prices import ACCOUNT, account_document, agreement

from conftest import COMMAND, GAS, consumption, parse, run_once, saved_state
from fake_octopus import HALF_HOUR_NS, london, render

KEY = "sk_live_fake_key_0123456789"
ALL_HALF_HOURS = (days()[-1] - FIRST_DAY) // HALF_HOUR_NS


def half_hours(lines, meter=IMPORT) -> dict:
    return consumption(parse(lines), meter)


# -- 1. points: the REST half first, the comparisons from what is left ----------------------------------

TEN = ",".join(f"{family}{i}={family}" for i in range(5) for family in ("agile", "tracker"))


def test_ten_half_hour_comparisons_leave_the_meters_half_hours_printed_first(fake, compared, tmp_path):
    env = {**compared, "OCTO_COMPARE": TEN, "OCTO_COMPARE_DETAIL": "half-hour", "OCTO_MAX_POINTS": "400"}
    first = run_once(env)
    lines = first.stdout.decode().splitlines()
    assert len(lines) <= 400 + 3
    # before: not one half-hour, as a day's comparisons (10 x 49 lines) never fitted beside it
    assert len(half_hours(lines)) >= 100, first.stderr.decode()[-500:]
    whole, many = one_and_many({**env, "OCTO_MAX_POINTS": "100000"}, tmp_path, 400)
    assert many == whole  # what could not be printed followed in the next gathers, the same points
    assert sum(1 for key in whole if key[0] == "octopus_comparison") > 10 * 48


def test_comparisons_never_take_the_points_of_the_bill(fake, compared):
    result = run_once({**compared, "OCTO_MAX_POINTS": "60"})
    kinds = [line.split(",", 1)[0] for line in result.stdout.decode().splitlines()]
    assert "octopus_comparison_daily" not in kinds  # the REST half filled the budget: nothing else printed
    assert kinds.count("octopus_consumption") >= 40


# -- 2 and 3. time: shares, and the whole exchange's deadline ---------------------------------------------

def drip_everything(fake, paths=("/v1/products/", "/v1/graphql/", "/backend/v1/graphql/")):
    for path in paths:
        fake.inject("header_drip", path=path, times=1000, seconds=1.0, exact=True)


def test_rest_half_hours_come_first_whatever_every_enrichment_meets(fake, compared, launch):
    """Every enrichment on (comparisons, events, intelligent dispatches, carbon) and each meeting a server that
    sends its status line and then a header byte a second: the half-hours are printed within
    OCTO_HTTP_TIMEOUT + 5 s of the trigger."""
    fake.accounts[ACCOUNT]["properties"][0]["electricity_meter_points"][0]["agreements"][0]["tariff_code"] = \
        "E-1R-INTELLI-VAR-22-10-14-H"
    fake.add_product("INTELLI-VAR-22-10-14", "H", {"direct_debit_monthly": "E-1R-INTELLI-VAR-22-10-14-H"})
    fake.add_rates("E-1R-INTELLI-VAR-22-10-14-H", "standard-unit-rates", [(london(2024, 1, 1), None, 20.0, 19.0, None)])
    drip_everything(fake)
    from fake_carbon import FakeCarbon

    carbon = FakeCarbon()  # and the grid's carbon, whose body never ends
    carbon.faults = ["drip"] * 100
    env = {**compared, "OCTO_HTTP_TIMEOUT": "3", "OCTO_EVENTS": "true", "OCTO_BACKEND_API_URL": fake.backend_url,
           "OCTO_GAS_UNIT": "auto", "OCTO_CARBON": "regional", "OCTO_CARBON_API_URL": carbon.url, "OCTO_REGION": "H"}
    plugin = launch(env)
    started = time.monotonic()
    plugin.trigger()
    plugin.wait_until(lambda: len(half_hours(plugin.stdout)) == ALL_HALF_HOURS, timeout=60, what="the half-hours")
    took = time.monotonic() - started
    plugin.wait_gathers(1, 3, timeout=300)  # the gather ends: each enrichment gave up within its share
    ended = time.monotonic() - started
    plugin.stop()
    carbon.close()
    assert carbon.requests  # it was asked, and it dripped
    assert took <= 3 + 5, took
    assert ended < 120, ended
    print(f"REST half-hours after {took:.1f}s, gather over after {ended:.1f}s")


@pytest.mark.parametrize("path", ["/v1/products/", "/v1/graphql/", "/backend/v1/graphql/"])
def test_a_header_drip_never_holds_a_gather(fake, compared, launch, path):
    drip_everything(fake, (path,))
    env = {**compared, "OCTO_HTTP_TIMEOUT": "2", "OCTO_EVENTS": "true", "OCTO_BACKEND_API_URL": fake.backend_url}
    plugin = launch(env)
    for _ in range(2):  # and a next gather comes
        plugin.gather(3, timeout=120)
    assert plugin.stop()[0] == 0


def test_a_header_drip_on_consumption_is_a_timeout_not_a_hang(fake, compared):
    fake.inject("header_drip", path=f"/{IMPORT[1]}/meters/", times=1000, seconds=0.5)
    started = time.monotonic()
    result = run_once({**compared, "OCTO_HTTP_TIMEOUT": "2", "OCTO_RETRY_PAUSE": "0"}, timeout=90)
    assert time.monotonic() - started < 40
    assert "timed out after 2s" in result.stderr.decode()
    assert half_hours(result.stdout.decode().splitlines(), GAS)  # the other meters are read all the same


def test_a_silent_product_list_costs_a_share_not_three_timeouts(fake, compared, launch):
    fake.inject("slow", path="/v1/products/", times=1000, seconds=60, exact=True)
    plugin = launch({**compared, "OCTO_HTTP_TIMEOUT": "90"})
    started = time.monotonic()
    plugin.trigger()
    plugin.wait_until(lambda: len(half_hours(plugin.stdout)) == ALL_HALF_HOURS, timeout=30, what="the half-hours")
    assert time.monotonic() - started < 10
    plugin.wait_gathers(1, 3, timeout=120)
    assert time.monotonic() - started < 5 * 15 + 15  # five comparisons, each its share at most
    plugin.stop()


def test_a_family_the_list_never_shows_asks_a_few_lists_a_gather(fake, compared):
    result = run_once({**compared, "OCTO_COMPARE": "cosy=cosy"})
    lists = {r.query.get("available_at") for r in fake.requests if r.path == "/v1/products/"}
    assert len(lists) <= 5, len(lists)
    assert len(problems(result.stderr.decode())) <= 1


# -- 4. a negative answer that may pass is asked again, and then the whole history is priced -------------

def test_a_list_with_no_products_is_not_kept_as_no_tariff(fake, compared):
    fake.inject("raw", path="/v1/products/", exact=True, times=20, body=b'{"count": 0, "next": null, "results": []}')
    env = {**compared, "OCTO_LOOKBACK_HOURS": "24"}
    first = run_once(env)
    assert not [k for k in comparison_points(first.stdout.decode().splitlines()) if k[1] == "agile"]
    fake.faults.clear()
    state = json.load(open(os.path.join(env["OCTO_STATE_DIR"], "state.json")))
    assert not state["compare"]["asked"] and not state["compare"]["windows"]
    second = run_once(env)  # a restart: asked again, and every day of the history compared
    got = {k[2] for k in comparison_points(second.stdout.decode().splitlines()) if k[1] == "agile"}
    assert got == set(days()[:-1])


def test_a_region_set_later_prices_the_whole_history(fake, compared):
    env = {**compared, "OCTO_LOOKBACK_HOURS": "24", "OCTO_COMPARE": "agile=agile"}
    fake.accounts.clear()  # no account: no tariff letter; and no gsp either
    fake.gsp.clear()
    env.pop("OCTO_ACCOUNT_NUMBER")
    env.update({"OCTO_ELECTRIC_MPAN": IMPORT[1], "OCTO_ELECTRIC_SN": IMPORT[2]})
    first = run_once(env)
    assert "OCTO_REGION" in first.stderr.decode()
    assert not comparison_points(first.stdout.decode().splitlines())
    second = run_once({**env, "OCTO_REGION": "H"})
    got = {k[2] for k in comparison_points(second.stdout.decode().splitlines())}
    assert got == set(days()[:-1])  # not only the look-back's day


def test_a_product_code_that_does_not_exist_is_one_warning_naming_it(fake, compared):
    result = run_once({**compared, "OCTO_COMPARE": "mine=AGILE-24-10-02"})
    stderr = result.stderr.decode()
    assert [line for line in problems(stderr) if "AGILE-24-10-02" in line and "404" in line], stderr
    assert len(problems(stderr)) == 1
    assert len(half_hours(result.stdout.decode().splitlines())) == ALL_HALF_HOURS


# -- 5 and 6. events: ceilings, and duplicates inside one answer ------------------------------------------

def sessions(count):
    return [{"code": f"S{i}", "startAt": render(london(2024, 1, 1) + i * 2 * 3600 * 10**9, "colon"),
             "endAt": render(london(2024, 1, 1) + (i * 2 + 1) * 3600 * 10**9, "colon")} for i in range(count)]


def test_ten_thousand_sessions_are_cut_to_the_fifty_asked_for(fake, events_env):
    fake.campaign_events = {"octoplus-saving-sessions": sessions(10_000), "free_electricity": sessions(10_000)}
    first = run_once(events_env)
    assert len(points_of(first, "octopus_event")) == 100
    assert len([line for line in problems(first.stderr.decode()) if "50" in line]) == 1
    let_time_pass(events_env)
    again = run_once(events_env)
    assert not points_of(again, "octopus_event")  # not printed again
    assert len(json.dumps(state_of(events_env)["events"])) < 40_000


def test_a_session_listed_twice_settles_on_one_value(fake, events_env):
    longer = {**POWER_DOWN, "endAt": render(london(2024, 3, 1, 19, 30), "colon")}
    fake.campaign_events = {"octoplus-saving-sessions": [POWER_DOWN, longer], "free_electricity": []}
    first = points_of(run_once(events_env), "octopus_event")
    assert [p["fields"]["duration_s"] for p in first] == [7200]
    let_time_pass(events_env)
    assert not points_of(run_once(events_env), "octopus_event")  # no flip-flop


def test_a_night_listed_flagged_and_not_stays_ever_flagged(fake, events_env):
    fake.greener_nights = [dict(NIGHTS[0]), {**NIGHTS[0], "isGreenerNight": False}]
    nights = points_of(run_once(events_env), "octopus_greener_night")
    assert [(p["fields"]["greener_night"], p["fields"]["ever_flagged"]) for p in nights] == [(False, True)]


# -- 7. damaged state sections ----------------------------------------------------------------------------

@pytest.mark.parametrize("section, value", [("days", []), ("days", "text"), ("asked", 5), ("asked", [[1, 2]]),
                                            ("windows", {"AGILE-24-10-29": "x"}), ("gsp", [1])])
def test_a_damaged_compare_section_is_one_warning_and_dropped(fake, compared, section, value):
    run_once(compared)
    with saved_state(compared) as state:
        state["compare"][section] = value
    fake.add_meter(*IMPORT, FIRST_DAY, days()[-1] + 24 * 3600 * 10**9)
    result = run_once(compared)
    stderr = result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in stderr, stderr
    assert len([line for line in problems(stderr) if "damaged" in line]) == 1, stderr
    assert len(half_hours(result.stdout.decode().splitlines())) == 48


# -- 8. one line per episode -------------------------------------------------------------------------------

def test_a_product_list_failing_for_a_day_is_one_line_over_many_gathers(fake, compared, launch):
    fake.inject("status", path="/v1/products/", exact=True, times=1000, status=500)
    plugin = launch({**compared, "OCTO_RETRY_PAUSE": "0"})
    for _ in range(6):
        plugin.gather(3, timeout=60)
    plugin.stop()
    lines = problems("\n".join(plugin.stderr))
    assert len(lines) == 1, lines  # the list's own episode: one line, not one per comparison or gather
    assert not [line for line in plugin.stderr if "working again" in line]


# -- 9 and 10. settings: masked first, exit 2 with one line -------------------------------------------------

@pytest.mark.parametrize("name", ["OCTO_COMPARE", "OCTO_REGION", "OCTO_COMPARE_DETAIL", "OCTO_EVENTS",
                                  "OCTO_E7_NIGHT", "OCTO_ACCOUNT_NUMBER"])
def test_a_key_pasted_into_another_setting_never_reaches_the_error(compared, name):
    value = f"agile={KEY}" if name == "OCTO_COMPARE" else KEY
    result = run_once({**compared, name: value})
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("E! ") and name in stderr
    for piece in range(0, len(KEY) - 6):
        assert KEY[piece:piece + 7] not in stderr, stderr


def test_a_key_like_value_is_not_echoed_even_without_octo_api_key(compared):
    other = "sk_live_someoneelses0123456789abc"
    result = run_once({**compared, "OCTO_REGION": other})
    assert result.returncode == 2 and "someoneelses" not in result.stderr.decode()


@pytest.mark.parametrize("value", ["on", "off", "2"])
def test_octo_events_on_is_exit_2_with_one_line(compared, value):
    result = run_once({**compared, "OCTO_EVENTS": value})
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == [f"E! OCTO_EVENTS must be one of true, false, not {value!r}"]


# -- 12. what a server sends never grows the state ----------------------------------------------------------

def test_a_looping_or_huge_product_list_keeps_nothing_it_rejected(fake, compared):
    for i in range(3000):  # 1,000 pages of three: past the list's ceiling of 20 pages
        fake.list_product(f"ZZZ-{i:05d}-24-01-01", london(2024, 1, 1))
    result = run_once(compared)
    state = json.load(open(os.path.join(compared["OCTO_STATE_DIR"], "state.json")))
    assert len(json.dumps(state["compare"])) < 20_000, len(json.dumps(state["compare"]))
    assert len(half_hours(result.stdout.decode().splitlines())) == ALL_HALF_HOURS
    assert [line for line in problems(result.stderr.decode()) if "loop" in line]


# -- 13. a trigger signal while the process starts -------------------------------------------------------------

def test_a_sighup_during_start_up_is_a_gather_not_a_death(compared):
    proc = subprocess.Popen([COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=compared)
    time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    out = b""
    os.set_blocking(proc.stdout.fileno(), False)
    while b"octopus_collector" not in out and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        out += proc.stdout.read() or b""
    alive = proc.poll() is None
    proc.stdin.close()
    code = proc.wait(10)
    assert alive, proc.stderr.read().decode()
    assert b"octopus_consumption" in out and code == 0


# -- 14. the bugs a mutation run let through ------------------------------------------------------------------

def test_the_other_payment_methods_rows_are_never_used(fake, plugin_env):
    code = "E-1R-VAR-22-11-01-C"
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2), value=lambda i: 1.0)
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": code})
    fake.add_rates(code, "standard-unit-rates", [
        (london(2024, 1, 1), london(2024, 3, 1, 12), 20.0, 19.0, "DIRECT_DEBIT"),
        (london(2024, 3, 1, 12), None, 30.0, 28.5, "DIRECT_DEBIT"),  # a change for direct debit only
        (london(2024, 1, 1), None, 22.0, 21.0, "NON_DIRECT_DEBIT")])
    fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, 50.0, 47.6, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01",
           "OCTO_PAYMENT_METHOD": "NON_DIRECT_DEBIT"}
    rates = {f["unit_rate_pence"] for f in half_hours(run_once(env).stdout.decode().splitlines()).values()}
    assert rates == {22.0}


def test_octo_region_wins_over_the_meters_own_tariff_letter(fake, compared):
    run_once({**compared, "OCTO_REGION": "C", "OCTO_COMPARE": "agile=agile"})  # the meter's own tariff ends -H
    asked = {r.path.split("/")[5] for r in fake.requests if "/electricity-tariffs/E-1R-AGILE" in r.path}
    assert asked and all(code.endswith("-C") for code in asked), asked


def test_a_cursor_never_moves_back_when_the_budget_runs_out_in_the_look_back(fake, compared):
    env = {**compared, "OCTO_COMPARE": ""}
    run_once(env)
    path = os.path.join(env["OCTO_STATE_DIR"], "state.json")
    before = {key: meter["cursor"] for key, meter in json.load(open(path))["meters"].items()}
    for meter in fake.meters.values():  # every half-hour of the look-back corrected
        for start in list(meter):
            meter[start] += 0.5
    run_once({**env, "OCTO_MAX_POINTS": "20"})
    after = {key: meter["cursor"] for key, meter in json.load(open(path))["meters"].items()}
    assert all(after[key] >= before[key] for key in before), (before, after)


def test_a_short_and_a_long_days_bill_adds_its_46_and_50_half_hours(fake, plugin_env):
    code = "E-1R-VAR-22-11-01-C"
    fake.add_meter(*IMPORT, london(2024, 3, 30), london(2024, 4, 1), value=lambda i: 0.1 * (i % 7) + 0.05)
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": code})
    fake.add_rates(code, "standard-unit-rates", [(london(2024, 1, 1), None, 20.0, 19.0, None)])
    fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, 50.0, 47.6, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-30"}
    points = parse(run_once(env).stdout.decode().splitlines())
    daily = {p["time"]: p["fields"]["kwh"] for p in points if p["measurement"] == "octopus_daily"}
    data = fake.data(*IMPORT)
    for day, following in ((london(2024, 3, 30), london(2024, 3, 31)), (london(2024, 3, 31), london(2024, 4, 1))):
        values = [data[s] for s in range(day, following, HALF_HOUR_NS)]
        total = 0.0
        for value in values:
            total += value
        assert daily[day] == pytest.approx(total, abs=1e-9) and len(values) in (46, 48)


def test_an_episode_ends_after_successes_and_its_back_off_with_it(monkeypatch):
    from octopus_telegraf.extras import enrichment

    clock = [1000.0]
    monkeypatch.setattr(enrichment.time, "monotonic", lambda: clock[0])
    boundary = enrichment.Enrichment("x")

    def fail():
        raise RuntimeError("a plain bug")

    for _ in range(4):  # 0, 60, 120, 240 s apart
        boundary.run(fail)
        clock[0] = boundary.wait_until
    assert boundary.wait_until - clock[0] == 0 and boundary.failures == 4
    for _ in range(enrichment.RECOVERED_AFTER):
        assert boundary.run(lambda: "ok") == "ok"
    assert not boundary.in_episode and boundary.failures == 0
    boundary.run(fail)  # a new episode starts from the shortest wait again
    assert boundary.wait_until == clock[0]


def test_a_day_whose_standing_charge_is_unknown_holds_the_days_after_it():
    from types import SimpleNamespace

    from octopus_telegraf.base.timeutil import london_days
    from octopus_telegraf.core.days import DayPoints
    from octopus_telegraf.core.progress import MeterProgress

    first, unknown, last = london(2024, 3, 1), london(2024, 3, 3), london(2024, 3, 5)
    prices = SimpleNamespace(standing_charge=lambda meter, day: None if day == unknown else ("T", [0, 0, 50.0, 47.6]),
                             standing_settled=lambda meter, day: day != unknown)
    formatter = SimpleNamespace(standing_line=lambda day, tariff, inc, exc: day)
    progress = MeterProgress(first)
    printed = DayPoints(prices).standing_lines(None, formatter, progress, first, last)
    assert printed == [d for d in london_days(first, last) if d < unknown]
    assert progress.standing_through_ns == london(2024, 3, 2)


def test_an_enrichment_raising_a_plain_exception_leaves_the_gather_whole(fake, compared, monkeypatch):
    """In-process: a bug inside a comparison (not an API error) is one line, and the bill is printed."""
    import threading

    from octopus_telegraf.config import settings
    from octopus_telegraf.core.account import Account
    from octopus_telegraf.core.state import State
    from octopus_telegraf.extras.comparisons import comparisons
    from octopus_telegraf.service.collector import Collector
    from octopus_telegraf.service.launch import client

    def broken(*args):
        raise KeyError("a bug")

    monkeypatch.setattr(comparisons.Comparisons, "_day", broken)
    config = settings.load(compared)
    api = client(config, threading.Event())
    lines = []
    collector = Collector(config, api, State(None), lines.extend, Account(api, config.account_number, "kWh"))
    assert collector.gather() == 0
    assert len(half_hours(lines)) == ALL_HALF_HOURS
    assert not [line for line in lines if line.startswith("octopus_comparison_daily")]


# -- the thin spots: a tag's `=` checked strictly, a dispatch that ends on a half-hour's edge -------------

def strict_tags(prefix: str) -> dict:
    """The tags of a line's prefix as InfluxDB's own grammar reads them: `,` and `=` separate only where not
    escaped; a tag with a second bare `=` is an error (the lenient parser of the other tests accepts it)."""
    pieces, current, escaped = [], "", False
    for char in prefix:
        if escaped:
            current, escaped = current + "\\" + char, False
        elif char == "\\":
            escaped = True
        elif char == ",":
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    tags = {}
    for piece in pieces[1:]:
        bare = [i for i, c in enumerate(piece) if c == "=" and (i == 0 or piece[i - 1] != "\\")]
        assert len(bare) == 1, f"an unescaped = in {piece!r}"
        key, value = piece[:bare[0]], piece[bare[0] + 1:]
        tags[key.replace("\\", "")] = value.replace("\\", "")
    return tags


@given(st.text(alphabet=st.characters(blacklist_characters="\\", blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
               min_size=1, max_size=20).filter(str.isprintable))
def test_a_tag_value_with_equals_commas_or_spaces_is_escaped_for_a_strict_reader(value):
    from octopus_telegraf.base.lineprotocol import tag_prefix

    assert strict_tags(tag_prefix("octopus_consumption", {"serial": value, "fuel": "gas"})) == \
        {"fuel": "gas", "serial": value}


def test_a_dispatch_ending_on_a_half_hours_edge_reprices_only_the_half_hour_before(fake, iog):
    from test_intelligent import OFF_PEAK, PEAK

    fake.graphql_now_ns = london(2024, 3, 1, 20)
    fake.dispatches = [{"start": london(2024, 3, 1, 10), "end": london(2024, 3, 1, 10, 30), "delta": "-3.50",
                        "source": "smart-charge"}]
    printed = half_hours(run_once(iog).stdout.decode().splitlines())
    assert printed[london(2024, 3, 1, 10)]["unit_rate_pence"] == OFF_PEAK
    assert printed[london(2024, 3, 1, 10)]["dispatched"] is True
    assert printed[london(2024, 3, 1, 10, 30)]["unit_rate_pence"] == PEAK
    assert "dispatched" not in printed[london(2024, 3, 1, 10, 30)]
    assert printed[london(2024, 3, 1, 9, 30)]["unit_rate_pence"] == PEAK


@pytest.mark.parametrize("args", [["--api-key", "sk_live_abcdefghij0123456789"], ["--api-key=sk_live_abcdefghij0123"]])
def test_a_key_given_as_a_flag_points_to_octo_api_key_without_echoing_it(compared, args):
    result = run_once(compared, args=("--once", *args))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and stderr.count("\n") == 1
    assert "OCTO_API_KEY" in stderr and "abcdefghij" not in stderr
