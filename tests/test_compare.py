"""Tariff comparison (SPEC section 9): each comparison day equals an independent computation from the
fake's own tables, with the product on sale that day, in the meter's region, with the payment
method's rows; split invariance; a missing price leaves a day out; the settings and the command."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from test_containment import influx_view, one_and_many, problems
from test_prices import ACCOUNT, account_document, agile_price, agreement

from conftest import EXPORT, GAS, IMPORT, parse, run_once
from fake_octopus import HALF_HOUR_NS, LONDON, london

REGION = "H"
OWN_IMPORT, OWN_EXPORT, OWN_GAS = "E-2R-VAR-22-11-01-H", "E-1R-OUTGOING-FIX-12M-19-05-13-H", "G-1R-VAR-22-11-01-H"
FIRST_DAY, DAYS = london(2024, 10, 25), 7  # 27 October 2024 has 50 half-hours
CUTOVER = london(2024, 10, 29)  # AGILE-FLEX-22-11-25 is retired, AGILE-24-10-29 on sale
OLD_AGILE, NEW_AGILE, BB_AGILE = "E-1R-AGILE-FLEX-22-11-25-H", "E-1R-AGILE-24-10-29-H", "E-1R-AGILE-BB-24-10-29-H"
DECOY = "E-1R-AGILE-RESTRICTED-24-10-20-H"
TRACKER, GAS_TRACKER = "E-1R-SILVER-24-10-01-H", "G-1R-SILVER-24-10-01-H"
E7_SINGLE, E7_DUAL = "E-1R-VAR-24-10-01-H", "E-2R-VAR-24-10-01-H"
FOUR_RATE = "E-FLATR-INTELLI-VAR-24-10-29-H"
OUTGOING_AGILE = "E-1R-AGILE-OUTGOING-19-05-13-H"
GAS_GAP = london(2024, 10, 30)  # the gas Tracker has no price that day
COMPARE = "agile=agile,tracker=tracker,intel=intelligent,e7=VAR-24-10-01,out=agile_outgoing"
HOUR = 3600 * 10**9


def days(first=FIRST_DAY, count=DAYS) -> list[int]:
    start = datetime.fromtimestamp(first // 10**9, tz=timezone.utc).astimezone(LONDON).date()
    return [london(d.year, d.month, d.day) for d in (start + timedelta(days=i) for i in range(count + 1))]


def per_half_hour(start, end, value, method=None):
    return [(s, s + HALF_HOUR_NS, value(s), round(value(s) / 1.05, 4), method) for s in range(start, end, HALF_HOUR_NS)]


def daily_rows(value, gap=None):
    edges = days(london(2024, 10, 1), 40)
    pairs = zip(edges, edges[1:], strict=False)
    return [(a, b, value(a), round(value(a) / 1.05, 4), None) for a, b in pairs if a != gap]


def tracker_price(day_ns: int) -> float:
    return round(22.0 + (day_ns // HOUR) % 7 * 0.37, 2)


@pytest.fixture
def compared(fake, plugin_env):
    end = days()[-1]
    for meter in (IMPORT, EXPORT, GAS):
        fake.add_meter(*meter, FIRST_DAY, end)
    fake.accounts[ACCOUNT] = account_document([agreement(OWN_IMPORT, london(2024, 1, 1))],
                                              [agreement(OWN_EXPORT, london(2024, 1, 1))],
                                              [agreement(OWN_GAS, london(2024, 1, 1))])
    fake.gsp[IMPORT[1]] = "_" + REGION
    # the account's own tariffs
    fake.add_product("VAR-22-11-01", REGION, {"direct_debit_monthly": OWN_IMPORT}, dual=True)
    fake.add_product("VAR-22-11-01", REGION, {"direct_debit_monthly": OWN_GAS}, fuel="gas")
    fake.add_product("OUTGOING-FIX-12M-19-05-13", REGION, {"direct_debit_monthly": OWN_EXPORT})
    fake.add_rates(OWN_IMPORT, "day-unit-rates", [(london(2024, 1, 1), None, 28.0, 26.67, None)])
    fake.add_rates(OWN_IMPORT, "night-unit-rates", [(london(2024, 1, 1), None, 14.0, 13.33, None)])
    fake.add_rates(OWN_EXPORT, "standard-unit-rates", [(london(2024, 1, 1), None, 15.0, 15.0, None)])
    fake.add_rates(OWN_GAS, "standard-unit-rates", [(london(2024, 1, 1), None, 6.0, 5.71, None)])
    for code, charge in ((OWN_IMPORT, 60.0), (OWN_GAS, 30.0), (OWN_EXPORT, 0.0)):
        fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, charge, charge / 1.05, None)])
    # the product list: two Agiles either side of a cutover, a -BB- twin, a restricted decoy, the others
    fake.list_product("AGILE-FLEX-22-11-25", london(2022, 11, 25), CUTOVER)
    fake.list_product("AGILE-RESTRICTED-24-10-20", london(2024, 10, 20), restricted=True)
    fake.list_product("AGILE-BB-24-10-29", CUTOVER)
    fake.list_product("AGILE-24-10-29", CUTOVER)
    fake.list_product("SILVER-24-10-01", london(2024, 10, 1))
    fake.list_product("INTELLI-VAR-24-10-29", london(2024, 10, 29, 0))
    fake.list_product("INTELLI-VAR-22-10-14", london(2022, 10, 14), london(2024, 10, 29))
    fake.list_product("AGILE-OUTGOING-19-05-13", london(2019, 5, 13), direction="EXPORT")
    fake.list_product("VAR-22-11-01", london(2022, 11, 1))
    for product, code in (("AGILE-FLEX-22-11-25", OLD_AGILE), ("AGILE-24-10-29", NEW_AGILE),
                          ("AGILE-BB-24-10-29", BB_AGILE), ("AGILE-RESTRICTED-24-10-20", DECOY),
                          ("AGILE-OUTGOING-19-05-13", OUTGOING_AGILE), ("SILVER-24-10-01", TRACKER)):
        fake.add_product(product, REGION, {"direct_debit_monthly": code, "varying": code})
        fake.add_product(product, "C", {"direct_debit_monthly": code[:-1] + "C"})  # another region
    fake.add_product("SILVER-24-10-01", REGION, {"direct_debit_monthly": GAS_TRACKER}, fuel="gas")
    fake.add_product("VAR-24-10-01", REGION, {"direct_debit_monthly": E7_SINGLE})
    fake.add_product("VAR-24-10-01", REGION, {"direct_debit_monthly": E7_DUAL}, dual=True)
    fake.add_product("INTELLI-VAR-24-10-29", REGION, {"direct_debit_monthly": FOUR_RATE},
                     group="four_rate_ev_electricity_tariffs")
    fake.refused_rates.add((E7_DUAL, "standard-unit-rates"))  # as Octopus answers a dual-register tariff
    # their rates: direct debit and non-direct-debit rows, null valid_to, daily Tracker rows
    low, high = london(2024, 10, 20), london(2024, 11, 5)
    fake.add_rates(OLD_AGILE, "standard-unit-rates",
                   per_half_hour(low, CUTOVER, agile_price, "DIRECT_DEBIT")
                   + per_half_hour(low, CUTOVER, lambda s: agile_price(s) + 1.5, "NON_DIRECT_DEBIT"))
    fake.add_rates(NEW_AGILE, "standard-unit-rates", per_half_hour(CUTOVER, high, lambda s: agile_price(s) + 2))
    for code in (BB_AGILE, DECOY):
        fake.add_rates(code, "standard-unit-rates", per_half_hour(low, high, lambda s: 999.0))
    fake.add_rates(OUTGOING_AGILE, "standard-unit-rates", per_half_hour(low, high, lambda s: agile_price(s) / 2))
    fake.add_rates(TRACKER, "standard-unit-rates", daily_rows(tracker_price))
    fake.add_rates(GAS_TRACKER, "standard-unit-rates", daily_rows(lambda d: tracker_price(d) / 4, gap=GAS_GAP))
    fake.add_rates(E7_DUAL, "day-unit-rates", [(london(2024, 1, 1), None, 26.0, 24.76, None)])
    fake.add_rates(E7_DUAL, "night-unit-rates", [(london(2024, 1, 1), None, 12.0, 11.43, None)])
    fake.add_rates(FOUR_RATE, "standard-unit-rates", [(london(2024, 1, 1), None, 25.0, 23.81, "DIRECT_DEBIT"),
                                                      (london(2024, 1, 1), None, 26.0, 24.76, "NON_DIRECT_DEBIT")])
    for code, charge in ((OLD_AGILE, 48.0), (NEW_AGILE, 49.5), (TRACKER, 45.0), (GAS_TRACKER, 27.0),
                         (E7_DUAL, 55.0), (FOUR_RATE, 52.0), (OUTGOING_AGILE, 0.0), (BB_AGILE, 1.0), (DECOY, 1.0)):
        since = london(2024, 1, 1)
        fake.add_rates(code, "standing-charges", [(since, None, charge, charge / 1.05, "DIRECT_DEBIT"),
                                                  (since, None, charge + 3, charge / 1.05, "NON_DIRECT_DEBIT")])
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-10-25", "OCTO_GAS_UNIT": "kWh",
            "OCTO_COMPARE": COMPARE, "OCTO_MAX_POINTS": "50000"}


def rate_of(fake, code, kind, start, method="DIRECT_DEBIT"):
    """The row of the fake's table in force at `start`: the payment method's, else one for both."""
    rows = [r for r in fake.rates[(code, kind)] if london_iso(r["valid_from"]) <= start
            and (r["valid_to"] is None or start < london_iso(r["valid_to"]))]
    chosen = [r for r in rows if r["payment_method"] == method] or [r for r in rows if r["payment_method"] is None]
    assert len(chosen) == 1, (code, kind, start)
    return chosen[0]["value_inc_vat"]


def london_iso(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 10**9


def expected_days(fake, meter, name, method="DIRECT_DEBIT") -> dict[int, tuple[str, float, int]]:
    """day -> (tariff, cost or earnings £, half-hours), worked out from the tables alone."""
    out = {}
    data = fake.data(*meter)
    edges = days()
    for day, following in zip(edges, edges[1:], strict=False):
        if meter == GAS and day == GAS_GAP:
            continue
        if name == "agile":
            code = OLD_AGILE if day < CUTOVER else NEW_AGILE
        else:
            code = {"tracker": GAS_TRACKER if meter == GAS else TRACKER, "intel": FOUR_RATE, "e7": E7_DUAL,
                    "out": OUTGOING_AGILE}[name]
        if name == "intel" and day < london(2024, 10, 29):
            code = None  # INTELLI-VAR-22-10-14 is listed but has no document: those days have no tariff
        if code is None:
            continue
        total = 0.0
        for start in range(day, following, HALF_HOUR_NS):
            if code == E7_DUAL:
                seconds = (start // 10**9) % 86400
                kind = "night-unit-rates" if 1800 <= seconds < 27000 else "day-unit-rates"
            else:
                kind = "standard-unit-rates"
            total += data[start] * rate_of(fake, code, kind, start, method) / 100
        standing = rate_of(fake, code, "standing-charges", day, method)
        out[day] = (code, total + (standing / 100 if meter != EXPORT else 0.0), (following - day) // HALF_HOUR_NS)
    return out


def comparison_points(lines):
    out = {}
    for key, fields in influx_view(lines).items():
        if key[0] == "octopus_comparison_daily":
            tags = dict(key[1])
            out[(tags["meter_point"], tags["compare"], key[2])] = (tags["tariff"], fields)
    return out


def test_each_comparison_day_equals_an_independent_computation(fake, compared):
    result = run_once(compared)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    lines = result.stdout.decode().splitlines()
    printed = comparison_points(lines)
    daily = {(k[1], k[2]): f for k, f in influx_view(lines).items() if k[0] == "octopus_daily"}
    applies = {IMPORT: ("agile", "tracker", "intel", "e7"), EXPORT: ("out",), GAS: ("tracker",)}
    count = 0
    for meter, names in applies.items():
        for name in names:
            expected = expected_days(fake, meter, name)
            got = {day: value for (point, compare, day), value in printed.items()
                   if (point, compare) == (meter[1], name)}
            assert sorted(got) == sorted(expected), (meter, name)
            for day, (tariff, money, half_hours) in expected.items():
                code, fields = got[day]
                assert code == tariff
                assert fields["earnings_gbp" if meter == EXPORT else "cost_gbp"] == pytest.approx(money, abs=1e-6)
                assert fields["half_hours"] == half_hours
                actual = [f for (tags, stamp), f in daily.items() if stamp == day and ("meter_point", meter[1]) in tags]
                assert fields["actual_gbp"] == pytest.approx(
                    actual[0]["earnings_gbp" if meter == EXPORT else "cost_gbp"], abs=1e-9)
                count += 1
    assert count == 7 * 4 - 4 + 7 + 6  # intel from 29 October only; the gas Tracker misses a day
    assert any(v[1]["half_hours"] == 50 for v in printed.values())  # the clock-change day
    assert not [k for k in printed if k[1] in ("out",) and k[0] != EXPORT[1]]
    missing = [line for line in problems(stderr) if "tariff comparison tracker" in line]
    assert len(missing) == 1 and "2024-10-30" in missing[0]
    # the comparison tariffs' rates are unit-rate points too, told apart by their tariff tag
    unit_tariffs = {dict(k[1])["tariff"] for k in influx_view(lines) if k[0] == "octopus_unit_rate"}
    assert {OLD_AGILE, NEW_AGILE, TRACKER, GAS_TRACKER, E7_DUAL, FOUR_RATE, OUTGOING_AGILE} <= unit_tariffs
    assert not {BB_AGILE, DECOY} & unit_tariffs
    # the dual-register tariff's rates came from its own links, never the standard rates that answer 400
    assert not [r for r in fake.requests if E7_DUAL in r.path and "standard-unit-rates" in r.path]


def test_non_direct_debit_uses_its_own_rows(fake, compared):
    lines = run_once({**compared, "OCTO_PAYMENT_METHOD": "NON_DIRECT_DEBIT"}).stdout.decode().splitlines()
    printed = comparison_points(lines)
    for name in ("agile", "intel"):
        for day, (_, money, _) in expected_days(fake, IMPORT, name, "NON_DIRECT_DEBIT").items():
            assert printed[(IMPORT[1], name, day)][1]["cost_gbp"] == pytest.approx(money, abs=1e-6)


def test_comparisons_are_split_invariant(fake, compared, tmp_path):
    whole, split = one_and_many(compared, tmp_path, 150)
    assert split == whole
    assert len([k for k in whole if k[0] == "octopus_comparison_daily"]) == 7 * 4 - 4 + 7 + 6


def test_half_hour_detail_adds_up_to_the_day(fake, compared):
    lines = run_once({**compared, "OCTO_COMPARE_DETAIL": "half-hour"}).stdout.decode().splitlines()
    points = parse(lines)
    halves = [p for p in points if p["measurement"] == "octopus_comparison" and p["tags"]["compare"] == "e7"]
    assert len(halves) == sum(h for _, _, h in expected_days(fake, IMPORT, "e7").values())
    assert {p["tags"]["register"] for p in halves} == {"day", "night"}
    day = london(2024, 10, 27)
    in_day = [p for p in halves if day <= p["time"] < london(2024, 10, 28)]
    total = sum(p["fields"]["cost_gbp"] for p in in_day) + 0.55
    assert total == pytest.approx(expected_days(fake, IMPORT, "e7")[day][1], abs=1e-6)


def test_a_steady_gather_asks_little(fake, compared, launch):
    plugin = launch(compared)
    plugin.gather(3)
    asked = len(fake.requests)
    fake.add_meter(*IMPORT, FIRST_DAY, days()[-1] + 24 * HOUR)  # a new day of data arrives
    plugin.gather(3)
    plugin.stop()
    later = [r.path for r in fake.requests[asked:]]
    assert not [p for p in later if p == "/v1/products/"]  # the list: at most once a London day
    for code in (NEW_AGILE, TRACKER, E7_DUAL, FOUR_RATE):
        assert len([p for p in later if code in p and "unit-rates" in p]) <= 2, code  # each kind once at most
    assert len([r for r in fake.requests if r.path == "/v1/products/"]) <= 2 * 3  # two days listed, 3 pages each


@pytest.mark.parametrize("text", ["agile=", "=agile", "x=nosuchfamily", "a=agile,a=go", "Agile=agile", "a=b=c"])
def test_a_bad_compare_setting_is_refused_at_start(compared, text):
    result = run_once({**compared, "OCTO_COMPARE": text})
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("E! OCTO_COMPARE")


def test_the_compare_command_prints_the_difference(fake, compared):
    env = {**compared}
    result = run_once(env, args=("compare", "--days", "5"))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "5 complete London days, 2024-10-27 to 2024-10-31" in out
    expected = expected_days(fake, IMPORT, "agile")
    chosen = sorted(expected)[-5:]
    agile = sum(expected[d][1] for d in chosen)
    (row,) = [line for line in out.splitlines() if line.startswith("  agile ")]
    assert row.split()[1] == f"{agile:.2f}"
    assert not fake.graphql_calls  # no GraphQL
    assert not os.path.exists(os.path.join(compared["OCTO_STATE_DIR"], "state.json"))  # nothing saved


def test_the_demo_compares_agile_go_and_tracker():
    result = run_once({"PATH": os.environ["PATH"], "HOME": "/tmp", "LANG": "C.UTF-8"},
                      args=("compare", "--demo"))
    out = result.stdout.decode()
    assert result.returncode == 0
    for name in ("agile", "go", "tracker"):
        assert f"\n  {name} " in out
    assert "28 complete London days, 2025-10-06 to 2025-11-02" in out


@pytest.mark.parametrize("region", [None, "C"])
def test_without_an_account_the_region_comes_from_the_gsp_unless_octo_region_says(fake, compared, region):
    env = {k: v for k, v in compared.items() if k != "OCTO_ACCOUNT_NUMBER"}
    env.update(OCTO_ELECTRIC_MPAN=IMPORT[1], OCTO_ELECTRIC_SN=IMPORT[2], OCTO_COMPARE="agile=agile",
               OCTO_ELECTRIC_COST="25", **({"OCTO_REGION": region} if region else {}))
    for code in (OLD_AGILE, NEW_AGILE):  # region C's tariffs: the same prices, their own codes
        fake.rates[(code[:-1] + "C", "standard-unit-rates")] = fake.rates[(code, "standard-unit-rates")]
        fake.rates[(code[:-1] + "C", "standing-charges")] = fake.rates[(code, "standing-charges")]
    result = run_once(env)
    tariffs = {tags["tariff"] for (_, tags, _) in (
        (k[0], dict(k[1]), k[2]) for k in influx_view(result.stdout.decode().splitlines())
        if k[0] == "octopus_comparison_daily")}
    letter = region or REGION
    assert tariffs == {OLD_AGILE[:-1] + letter, NEW_AGILE[:-1] + letter}, result.stderr
    asked_gsp = [r for r in fake.requests if r.path == f"/v1/electricity-meter-points/{IMPORT[1]}/"]
    assert len(asked_gsp) == (0 if region else 1)


@pytest.mark.parametrize("fault", [
    {"kind": "status", "status": 429, "retry_after": "600"},
    {"kind": "html", "status": 502},
    {"kind": "raw", "body": b'{"count": 1, "next": null, "results": null}'},
    {"kind": "raw", "body": b'{"count": 4, "next": 7, "results": ["x", null, {"code": 5}, {"code": "AGILE-1"}]}'},
    {"kind": "truncated"},
])
def test_an_odd_product_list_leaves_the_bill_printed(fake, compared, fault):
    fake.inject(**fault, path="/v1/products/", exact=True, times=20)
    result = run_once({**compared, "OCTO_RETRY_PAUSE": "0"})
    stderr = result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in stderr and "gather failed" not in stderr
    printed = influx_view(result.stdout.decode().splitlines())
    assert len([k for k in printed if k[0] == "octopus_consumption" and ("meter_point", IMPORT[1]) in k[1]]) == \
        len(fake.data(*IMPORT))
    assert len([k for k in printed if k[0] == "octopus_daily"]) == 3 * 7
    families = ("agile", "tracker", "intel", "out")
    said = [line for line in problems(stderr) if "tariff comparison" in line]
    assert len(said) <= len(families), said  # one line per comparison and episode at most
    if fault["kind"] in ("status", "html"):  # one failed list (its retries), not one per comparison
        assert len([r for r in fake.requests if r.path == "/v1/products/"]) <= 3


def test_a_compared_tariff_without_prices_keeps_its_row_with_the_reason(fake, compared):
    for code in (TRACKER, GAS_TRACKER):  # Tracker publishes no rate: its rows say so
        fake.inject("status", path=f"{code}/standard-unit-rates", times=10_000, status=404)
    result = run_once({**compared, "OCTO_RETRY_PAUSE": "0"}, args=("compare", "--days", "5"))
    out = result.stdout.decode()
    rows = [line for line in out.splitlines() if line.startswith("  tracker ")]
    assert len(rows) == 2, out  # electricity and gas: neither vanished
    assert all("  -  " in row and "not priced: no prices: the tariff" in row for row in rows), rows
    (agile,) = [line for line in out.splitlines() if line.startswith("  agile ")]
    assert "not priced" not in agile  # the others are priced as ever
