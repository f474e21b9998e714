"""Account discovery and real prices: every meter, every tariff, the true cost of each half-hour."""

import time
from datetime import date, datetime, timedelta, timezone

import pytest

from conftest import EXPORT, GAS, IMPORT, consumption, parse, run_once
from fake_octopus import HALF_HOUR_NS, LONDON, london, render_utc

ACCOUNT = "A-1234ABCD"
AGILE = "E-1R-AGILE-FLEX-22-11-25-C"
VARIABLE = "E-1R-VAR-22-11-01-C"
OUTGOING = "E-1R-AGILE-OUTGOING-19-05-13-C"
GAS_VARIABLE = "G-1R-VAR-22-11-01-C"
ECONOMY7 = "E-2R-VAR-22-11-01-C"
SWITCH = london(2024, 1, 16)  # import moves from Agile to the variable tariff here
HOUR = 3600 * 10**9


def agreement(code, start_ns, end_ns=None):
    return {"tariff_code": code, "valid_from": render_utc(start_ns),
            "valid_to": render_utc(end_ns) if end_ns else None}


def account_document(import_agreements, export_agreements=(), gas_agreements=(), extra_serial=None):
    serials = [IMPORT[2], *([extra_serial] if extra_serial else [])]
    return {"number": ACCOUNT, "properties": [
        {"id": 1, "moved_in_at": "2020-01-01T00:00:00Z", "moved_out_at": None, "postcode": "SW1A 1AA",
         "electricity_meter_points": [
             {"mpan": IMPORT[1], "is_export": False, "profile_class": 1,
              "meters": [{"serial_number": s, "registers": []} for s in serials],
              "agreements": list(import_agreements)},
             *([{"mpan": EXPORT[1], "is_export": True, "meters": [{"serial_number": EXPORT[2]}],
                 "agreements": list(export_agreements)}] if export_agreements else [])],
         "gas_meter_points": [{"mprn": GAS[1], "meters": [{"serial_number": GAS[2]}],
                               "agreements": list(gas_agreements)}] if gas_agreements else []},
        {"id": 2, "moved_in_at": "2015-01-01T00:00:00Z", "moved_out_at": "2019-12-31T00:00:00Z",
         "electricity_meter_points": [{"mpan": "1999999999999", "is_export": False,
                                       "meters": [{"serial_number": "OLDHOME"}], "agreements": []}],
         "gas_meter_points": []}]}


def agile_price(start_ns: int) -> float:
    """Half-hourly, and sometimes negative, as Agile is."""
    index = (start_ns // HALF_HOUR_NS) % 48
    return round(-4.5 + (index * 7 % 41) * 0.95, 4)


def half_hours(start_ns, end_ns):
    return range(start_ns, end_ns, HALF_HOUR_NS)


@pytest.fixture
def priced(fake, plugin_env):
    """January 2024: import on Agile then the variable tariff, export on Agile Outgoing, gas variable."""
    start, end = london(2024, 1, 1), london(2024, 2, 1)
    for meter in (IMPORT, EXPORT, GAS):
        fake.add_meter(*meter, start, end)
    fake.accounts[ACCOUNT] = account_document(
        [agreement(AGILE, london(2023, 6, 1), SWITCH), agreement(VARIABLE, SWITCH)],
        [agreement(OUTGOING, london(2023, 6, 1))], [agreement(GAS_VARIABLE, london(2023, 6, 1))],
        extra_serial="OLD-SERIAL-NO-DATA")
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE, "varying": AGILE})
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": VARIABLE})
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": GAS_VARIABLE}, fuel="gas")
    fake.add_product("AGILE-OUTGOING-19-05-13", "C", {"direct_debit_monthly": OUTGOING})
    rows_from, rows_to = london(2023, 12, 1), london(2024, 2, 3)
    fake.add_rates(AGILE, "standard-unit-rates",
                   [(s, s + HALF_HOUR_NS, agile_price(s), round(agile_price(s) / 1.05, 4), None)
                    for s in half_hours(rows_from, rows_to)])
    fake.add_rates(OUTGOING, "standard-unit-rates",
                   [(s, s + HALF_HOUR_NS, agile_price(s) / 2, agile_price(s) / 2, None)
                    for s in half_hours(rows_from, rows_to)])
    fake.add_rates(VARIABLE, "standard-unit-rates", [
        (london(2023, 10, 1), london(2024, 1, 20), 27.03, 25.74, "DIRECT_DEBIT"),
        (london(2023, 10, 1), london(2024, 1, 20), 28.62, 27.26, "NON_DIRECT_DEBIT"),
        (london(2024, 1, 20), None, 24.5, 23.33, "DIRECT_DEBIT"),
        (london(2024, 1, 20), None, 25.9, 24.67, "NON_DIRECT_DEBIT")])
    fake.add_rates(GAS_VARIABLE, "standard-unit-rates", [(london(2023, 10, 1), None, 6.89, 6.56, None)])
    for code, charge in ((AGILE, 48.0), (VARIABLE, 53.35), (GAS_VARIABLE, 29.6), (OUTGOING, 0.0)):
        fake.add_rates(code, "standing-charges", [(london(2023, 10, 1), None, charge, round(charge / 1.05, 4), None)])
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01",
            "OCTO_MAX_POINTS": "20000"}


def expected_rate(meter, start_ns, method="DIRECT_DEBIT"):
    """The price by hand, from the fixture's own terms."""
    if meter == GAS:
        return 6.89
    if meter == EXPORT:
        return agile_price(start_ns) / 2
    if start_ns < SWITCH:
        return agile_price(start_ns)
    if start_ns < london(2024, 1, 20):
        return 27.03 if method == "DIRECT_DEBIT" else 28.62
    return 24.5 if method == "DIRECT_DEBIT" else 25.9


def test_a_month_of_costs_equals_the_hand_computed_prices(fake, priced):
    result = run_once(priced)
    assert result.returncode == 0, result.stderr
    points = parse(result.stdout.decode().splitlines())
    for meter in (IMPORT, EXPORT, GAS):
        printed = consumption(points, meter)
        served = fake.data(*meter)
        assert sorted(printed) == sorted(served)
        total, expected_total = 0.0, 0.0
        for start, fields in printed.items():
            rate = expected_rate(meter, start)
            kwh = served[start] * 1.02264 * 39.5 / 3.6 if meter == GAS else served[start]
            assert fields["unit_rate_pence"] == pytest.approx(rate, abs=1e-9), (meter, start)
            money = "earnings_gbp" if meter == EXPORT else "cost_gbp"  # never mixed: sum(cost_gbp) is a bill
            assert money in fields and ("cost_gbp" in fields) != (meter == EXPORT)
            assert fields[money] == pytest.approx(kwh * rate / 100, rel=1e-9, abs=1e-12)
            total += fields[money]
            expected_total += kwh * rate / 100
        assert total == pytest.approx(expected_total, rel=1e-9)
    negative = [f for f in consumption(points, IMPORT).values() if f["unit_rate_pence"] < 0]
    assert negative and all(f["cost_gbp"] <= 0 for f in negative)  # Agile pays you to use power


def test_account_meters_are_collected_once_and_only_with_data(fake, priced):
    env = {**priced, "OCTO_ELECTRIC_MPAN": IMPORT[1], "OCTO_ELECTRIC_SN": IMPORT[2]}  # also given explicitly
    result = run_once(env)
    points = parse(result.stdout.decode().splitlines())
    collectors = [p["tags"] for p in points if p["measurement"] == "octopus_collector"]
    assert sorted((t["meter_point"], t["serial"]) for t in collectors) == sorted(
        [(IMPORT[1], IMPORT[2]), (EXPORT[1], EXPORT[2]), (GAS[1], GAS[2])])
    assert not any("1999999999999" in r.path for r in fake.requests)  # the old home is not collected
    swapped = [r for r in fake.consumption_requests() if "OLD-SERIAL-NO-DATA" in r.path]
    assert len(swapped) == 1 and swapped[0].query["page_size"] == "1"  # asked once whether it has data


def test_payment_method_picks_its_rows(fake, priced):
    result = run_once({**priced, "OCTO_PAYMENT_METHOD": "NON_DIRECT_DEBIT"})
    printed = consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    for start, fields in printed.items():
        assert fields["unit_rate_pence"] == pytest.approx(expected_rate(IMPORT, start, "NON_DIRECT_DEBIT"))


def test_standing_charges_once_per_london_day_and_unit_rates(fake, priced):
    points = parse(run_once(priced).stdout.decode().splitlines())
    standing = [p for p in points if p["measurement"] == "octopus_standing_charge"]
    import_days = {p["time"]: p for p in standing if p["tags"]["meter_point"] == IMPORT[1]}
    assert sorted(import_days) == [london(2024, 1, d) for d in range(1, 32)]
    assert all(p["tags"]["tariff"] == (AGILE if t < SWITCH else VARIABLE) for t, p in import_days.items())
    assert import_days[london(2024, 1, 20)]["fields"]["inc_vat"] == 53.35
    assert len([p for p in standing if p["tags"]["meter_point"] == GAS[1]]) == 31
    rates = [p for p in points if p["measurement"] == "octopus_unit_rate"]
    agile = {p["time"]: p["fields"]["inc_vat"] for p in rates if p["tags"]["tariff"] == AGILE}
    assert all(agile[s] == agile_price(s) for s in half_hours(london(2024, 1, 1), SWITCH))
    assert {p["tags"]["register"] for p in rates} == {"standard"}
    assert {p["tags"]["direction"] for p in rates if p["tags"]["tariff"] == OUTGOING} == {"export"}
    assert len(set((p["tags"]["tariff"], p["time"]) for p in rates)) == len(rates)  # each once


def test_public_endpoints_get_no_key_and_rates_are_remembered(fake, priced, launch):
    plugin = launch(priced)
    plugin.gather(3, timeout=60)
    product_requests = [r for r in fake.requests if r.path.startswith("/v1/products/")]
    assert product_requests and all(r.authorization is None for r in product_requests)
    first_total = len(fake.requests)
    plugin.gather(3)
    plugin.gather(3)
    plugin.stop()
    later = fake.requests[first_total:]
    assert len(later) == 6 and all(r.path.endswith("/consumption/") for r in later)  # one per meter, no rates
    again = launch(priced)  # a restart keeps the rates it had: they are in the state
    before = len(fake.requests)
    again.gather(3)
    again.stop()
    assert [r.path for r in fake.requests[before:] if "/products/" in r.path] == []


def test_economy_7_prices_night_and_day_in_utc(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 6, 1), london(2024, 6, 3))  # British Summer Time
    fake.accounts[ACCOUNT] = account_document([agreement(ECONOMY7, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": ECONOMY7}, dual=True)
    fake.add_rates(ECONOMY7, "day-unit-rates", [(london(2024, 1, 1), None, 30.0, 28.57, None)])
    fake.add_rates(ECONOMY7, "night-unit-rates", [(london(2024, 1, 1), None, 12.0, 11.43, None)])
    fake.add_rates(ECONOMY7, "standing-charges", [(london(2024, 1, 1), None, 50.0, 47.62, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-06-01"}
    points = parse(run_once(env).stdout.decode().splitlines())
    printed = consumption(points, IMPORT)
    assert len(printed) == 96
    for start, fields in printed.items():
        utc = datetime.fromtimestamp(start // 10**9, tz=timezone.utc)
        minutes = utc.hour * 60 + utc.minute
        assert fields["unit_rate_pence"] == (12.0 if 30 <= minutes < 450 else 30.0), utc
    registers = {p["tags"]["register"] for p in points if p["measurement"] == "octopus_unit_rate"}
    assert registers == {"day", "night"}


def test_a_product_that_404s_falls_back_to_built_urls(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    code = "E-1R-SILVER-23-12-06-C"  # an internal product: /v1/products/ says 404, its rates still exist
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2024, 1, 1))])
    fake.add_rates(code, "standard-unit-rates", [(london(2024, 1, 1), None, 21.5, 20.48, None)])
    fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, 45.0, 42.86, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01"}
    result = run_once(env)
    assert result.returncode == 0
    assert any(line.startswith("W! ") and "SILVER" in line for line in result.stderr.decode().splitlines())
    printed = consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    assert len(printed) == 48 and all(f["unit_rate_pence"] == 21.5 for f in printed.values())


def test_no_tariff_rate_falls_back_to_the_fixed_cost(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    fake.accounts[ACCOUNT] = account_document([agreement(VARIABLE, london(2024, 3, 1, 12))])  # from noon only
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": VARIABLE})
    fake.add_rates(VARIABLE, "standard-unit-rates", [(london(2024, 1, 1), None, 24.5, 23.33, None)])
    fake.add_rates(VARIABLE, "standing-charges", [(london(2024, 1, 1), None, 45.0, 42.86, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01",
           "OCTO_ELECTRIC_COST": "30"}
    printed = consumption(parse(run_once(env).stdout.decode().splitlines()), IMPORT)
    for start, fields in printed.items():
        assert fields["unit_rate_pence"] == (24.5 if start >= london(2024, 3, 1, 12) else 30.0)


def test_tomorrows_agile_prices_are_printed_as_unit_rates(fake, plugin_env):
    today = datetime.now(LONDON).date()
    start = london(today.year, today.month, today.day) - 2 * 86400 * 10**9
    tomorrow_end = london(today.year, today.month, today.day) + 2 * 86400 * 10**9 - 2 * HOUR
    fake.add_meter(*IMPORT, start, start + 86400 * 10**9)
    fake.accounts[ACCOUNT] = account_document([agreement(AGILE, start - 86400 * 10**9)])
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE})
    fake.add_rates(AGILE, "standard-unit-rates", [(s, s + HALF_HOUR_NS, agile_price(s), agile_price(s), None)
                                                  for s in half_hours(start - 86400 * 10**9, tomorrow_end)])
    fake.add_rates(AGILE, "standing-charges", [(start - 86400 * 10**9, None, 48.0, 45.71, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_DAYS": "2"}
    points = parse(run_once(env).stdout.decode().splitlines())
    stamps = [p["time"] for p in points if p["measurement"] == "octopus_unit_rate"]
    assert max(stamps) == tomorrow_end - HALF_HOUR_NS  # published ahead, printed ahead
    assert min(stamps) <= start
    assert len(stamps) == len(set(stamps))


def test_gas_unit_auto_reads_consumption_units_once(fake, plugin_env):
    fake.add_meter(*GAS, london(2024, 3, 1), london(2024, 3, 2))
    fake.accounts[ACCOUNT] = account_document([], gas_agreements=[agreement(GAS_VARIABLE, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": GAS_VARIABLE}, fuel="gas")
    fake.add_rates(GAS_VARIABLE, "standard-unit-rates", [(london(2024, 1, 1), None, 6.89, 6.56, None)])
    fake.add_rates(GAS_VARIABLE, "standing-charges", [(london(2024, 1, 1), None, 29.6, 28.19, None)])
    fake.gas_units[GAS[2]] = "kWh"
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_GAS_UNIT": "auto"}
    printed = consumption(parse(run_once(env).stdout.decode().splitlines()), GAS)
    assert len(printed) == 48 and all("m3" not in f and f["kwh"] == fake.data(*GAS)[s] for s, f in printed.items())
    assert len(fake.graphql_calls) == 2  # a token, then one account query
    fake.gas_units[GAS[2]] = "m³"
    env["OCTO_STATE_DIR"] += "-2"
    printed = consumption(parse(run_once(env).stdout.decode().splitlines()), GAS)
    assert all(f["m3"] == fake.data(*GAS)[s] for s, f in printed.items())


def test_gas_unit_auto_falls_back_to_m3_with_a_warning(fake, plugin_env):
    fake.add_meter(*GAS, london(2024, 3, 1), london(2024, 3, 2))
    fake.accounts[ACCOUNT] = account_document([], gas_agreements=[agreement(GAS_VARIABLE, london(2024, 1, 1))])
    fake.inject("status", status=500, path="/v1/graphql/", times=10)
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_GAS_UNIT": "auto",
           "OCTO_GAS_COST": "7"}
    result = run_once(env)
    assert any(line.startswith("W! ") and "OCTO_GAS_UNIT" in line for line in result.stderr.decode().splitlines())
    printed = consumption(parse(result.stdout.decode().splitlines()), GAS)
    assert len(printed) == 48 and all("m3" in f for f in printed.values())


def test_thirty_day_agile_backfill_request_count(fake, priced, launch):
    """The figure for the note: requests of a 30-day backfill and of a steady-state gather."""
    plugin = launch({**priced, "OCTO_BACKFILL_FROM": "2024-01-02"})
    started = time.monotonic()
    plugin.gather(3, timeout=60)
    backfill = len(fake.requests)
    plugin.gather(3)
    steady = len(fake.requests) - backfill
    plugin.stop()
    print(f"\n30-day backfill, import+export+gas, Agile: {backfill} requests in {time.monotonic() - started:.1f}s; "
          f"steady-state gather: {steady} requests")
    assert steady == 3
    assert backfill <= 25


def test_discover_lists_meters_tariffs_and_settings(fake, priced):
    result = run_once(priced, args=("discover",))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    for text in (IMPORT[1], IMPORT[2], EXPORT[1], GAS[1], GAS[2], VARIABLE, OUTGOING, "OLD-SERIAL-NO-DATA"):
        assert text in out
    assert f"OCTO_ELECTRIC_MPAN={IMPORT[1]}" in out and f"OCTO_GAS_SN={GAS[2]}" in out
    assert f"OCTO_EXPORT_MPAN={EXPORT[1]}" in out
    current = [line for line in out.splitlines() if VARIABLE in line]
    assert any("*" in line for line in current)
    assert fake.api_key not in out and fake.api_key not in result.stderr.decode()


@pytest.mark.parametrize("first_day", [(2024, 3, 30), (2024, 10, 26)], ids=["spring", "autumn"])
def test_clock_change_days_get_one_standing_charge_and_every_half_hour_priced(fake, plugin_env, first_day):
    y, m, d = first_day
    days = [date(y, m, d) + timedelta(days=i) for i in range(4)]
    start, end = london(y, m, d), london(*days[3].timetuple()[:3])  # three London days, one of 23 or 25 hours
    served = fake.add_meter(*IMPORT, start, end)
    fake.accounts[ACCOUNT] = account_document([agreement(AGILE, start - 86400 * 10**9)])
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE})
    fake.add_rates(AGILE, "standard-unit-rates", [(s, s + HALF_HOUR_NS, agile_price(s), agile_price(s), None)
                                                  for s in half_hours(start - HOUR, end + HOUR)])
    fake.add_rates(AGILE, "standing-charges", [(start - 86400 * 10**9, None, 48.0, 45.71, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": f"{y:04d}-{m:02d}-{d:02d}"}
    points = parse(run_once(env).stdout.decode().splitlines())
    printed = consumption(points, IMPORT)
    assert sorted(printed) == sorted(served) and len(served) in (46 + 48 * 2, 50 + 48 * 2)
    assert all(f["unit_rate_pence"] == agile_price(s) for s, f in printed.items())
    standing = sorted(p["time"] for p in points if p["measurement"] == "octopus_standing_charge")
    assert standing == [london(*day.timetuple()[:3]) for day in days[:3]]


def test_seed_cost_points_use_the_tariff_prices(fake, priced):
    points = parse(run_once({**priced, "OCTO_SCHEMA": "seed"}).stdout.decode().splitlines())
    served = fake.data(*IMPORT)
    prices = {p["time"]: p["fields"]["price"] for p in points if p["measurement"] == "electricity_cost"}
    assert len(prices) == len(served)
    for start, kwh in served.items():
        expected = kwh * expected_rate(IMPORT, start) / 100
        assert prices[start + HALF_HOUR_NS] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert {p["measurement"] for p in points} <= {"electricity", "electricity_cost", "electricity_export", "gas",
                                                   "gaskwh", "gas_cost"}


def test_a_renamed_product_that_no_longer_lists_the_tariff_falls_back(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    fake.accounts[ACCOUNT] = account_document([agreement(VARIABLE, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": "E-1R-VAR-24-04-01-C"})  # a newer code only
    fake.add_rates(VARIABLE, "standard-unit-rates", [(london(2024, 1, 1), None, 24.5, 23.33, None)])
    fake.add_rates(VARIABLE, "standing-charges", [(london(2024, 1, 1), None, 45.0, 42.86, None)])
    result = run_once({**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01"})
    assert any(line.startswith("W! ") and "not listed" in line for line in result.stderr.decode().splitlines())
    printed = consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    assert len(printed) == 48 and all(f["unit_rate_pence"] == 24.5 for f in printed.values())
