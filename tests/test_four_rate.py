"""Intelligent Octopus since 2026 (SPEC section 8), the rates: a "1R" code whose standard rates are empty
and whose product links day, night and EV rates. The home is priced at night 23:30-05:30 London time,
through the clock change, at day otherwise; all four rates are printed; every price and cost equals an
independent computation from the fake's tables."""

from datetime import datetime, timezone

import pytest

from test_prices import ACCOUNT, account_document, agreement

from conftest import IMPORT, consumption, parse, run_once, saved_state
from fake_octopus import LONDON, london

CHARGE_CAP = "E-1R-IOG-SMB-VAR-24-10-29-C"
PRODUCT = "IOG-SMB-VAR-24-10-29"
DAY, NIGHT, EV_PEAK, EV_OFF_PEAK = 30.371355, 6.89997, 29.5, 7.5
FIRST, LAST = london(2026, 10, 24), london(2026, 10, 27)  # 25 October 2026 has 50 half-hours
FOUR_KINDS = ["day-unit-rates", "night-unit-rates", "ev-device-peak-unit-rates", "ev-device-off-peak-unit-rates",
              "standing-charges"]


def home_rate(start_ns: int) -> float:
    """Worked out from London's wall clock alone: night from 23:30 to 05:30, day otherwise."""
    local = datetime.fromtimestamp(start_ns / 1e9, timezone.utc).astimezone(LONDON)
    minute = local.hour * 60 + local.minute
    return NIGHT if minute >= 23 * 60 + 30 or minute < 5 * 60 + 30 else DAY


@pytest.fixture
def charge_cap(fake, plugin_env):
    fake.add_meter(*IMPORT, FIRST, LAST, value=lambda i: round(0.1 + (i % 9) * 0.137, 3))
    fake.accounts[ACCOUNT] = account_document([agreement(CHARGE_CAP, london(2026, 7, 1))])
    fake.add_product(PRODUCT, "C", {"direct_debit_monthly": CHARGE_CAP}, group="four_rate_ev_electricity_tariffs",
                     kinds=FOUR_KINDS)
    since = london(2026, 7, 5, 23)
    fake.add_rates(CHARGE_CAP, "standard-unit-rates", [])  # count 0, as Octopus answers despite the 1R
    for kind, value in (("day-unit-rates", DAY), ("night-unit-rates", NIGHT),
                        ("ev-device-peak-unit-rates", EV_PEAK), ("ev-device-off-peak-unit-rates", EV_OFF_PEAK)):
        fake.add_rates(CHARGE_CAP, kind, [(since, None, value, round(value / 1.05, 6), "DIRECT_DEBIT")])
    fake.add_rates(CHARGE_CAP, "standing-charges", [(since, None, 48.7, 46.38, "DIRECT_DEBIT")])
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2026-10-24"}


def test_every_half_hour_is_priced_from_the_four_rate_links(fake, charge_cap):
    result = run_once(charge_cap)
    points = parse(result.stdout.decode().splitlines())
    printed = consumption(points, IMPORT)
    data = fake.data(*IMPORT)
    assert sorted(printed) == sorted(data)
    for start, fields in printed.items():
        assert fields["unit_rate_pence"] == home_rate(start), datetime.fromtimestamp(start / 1e9, LONDON)
        assert fields["cost_gbp"] == pytest.approx(data[start] * home_rate(start) / 100, abs=1e-9)
    # the clock-change day: 50 half-hours, 12 of them (23:30-05:30 local, counted on the wall clock) at night
    change = london(2026, 10, 25)
    day_starts = [s for s in printed if change <= s < london(2026, 10, 26)]
    assert len(day_starts) == 50
    assert sum(home_rate(s) == NIGHT for s in day_starts) == 14  # 00:00-05:30 has an hour twice, and 23:30
    daily = {p["time"]: p["fields"] for p in points if p["measurement"] == "octopus_daily"}
    expected = sum(data[s] * home_rate(s) / 100 for s in day_starts) + 0.487
    assert daily[change]["cost_gbp"] == pytest.approx(expected, abs=1e-6)
    registers = {p["tags"]["register"]: p["fields"]["inc_vat"] for p in points
                 if p["measurement"] == "octopus_unit_rate" and p["tags"]["tariff"] == CHARGE_CAP}
    assert registers == {"day": DAY, "night": NIGHT, "ev_peak": EV_PEAK, "ev_off_peak": EV_OFF_PEAK}
    assert not [r for r in fake.requests if r.path.endswith("/standard-unit-rates/")]


def test_missing_four_rate_links_leave_kwh_printed_and_no_price_borrowed(fake, charge_cap):
    charge_cap = {**charge_cap, "OCTO_LOOKBACK_HOURS": "96"}  # every half-hour is printed again when priced
    kept = {kind: fake.rates.pop((CHARGE_CAP, kind)) for kind in ("day-unit-rates", "night-unit-rates")}  # 404s
    first = run_once(charge_cap)
    warned = [line for line in first.stderr.decode().splitlines() if line.startswith(("W! ", "E! "))]
    assert len(warned) == 2 and all("404" in line for line in warned), warned  # one per link, not per gather
    printed = consumption(parse(first.stdout.decode().splitlines()), IMPORT)
    assert len(printed) == len(fake.data(*IMPORT))
    assert all("unit_rate_pence" not in fields and "cost_gbp" not in fields for fields in printed.values())
    fake.rates.update({(CHARGE_CAP, kind): rows for kind, rows in kept.items()})
    second = run_once(charge_cap)
    again = consumption(parse(second.stdout.decode().splitlines()), IMPORT)
    assert {s: f["unit_rate_pence"] for s, f in again.items()} == {s: home_rate(s) for s in printed}


def test_a_state_of_before_with_empty_standard_rates_is_priced_after_the_upgrade(fake, charge_cap):
    """The version before asked standard-unit-rates (count 0) and kept an empty series: the links are
    followed all the same, and the look-back's half-hours are printed again with their price."""
    charge_cap = {**charge_cap, "OCTO_LOOKBACK_HOURS": "96"}
    run_once(charge_cap)
    with saved_state(charge_cap) as state:
        for key in [k for k in state["tariffs"] if k.startswith(CHARGE_CAP) and not k.endswith("|standing")]:
            del state["tariffs"][key]
        state["tariffs"][f"{CHARGE_CAP}|standard"] = {"rows": [], "from": None, "to": None, "upcoming": 0,
                                                      "days": None}
        for meter in state["meters"].values():
            meter["printed"] = [[start, value, None, None] for start, value, *_ in meter["printed"]]
    again = consumption(parse(run_once(charge_cap).stdout.decode().splitlines()), IMPORT)
    assert again and all(fields["unit_rate_pence"] == home_rate(start) for start, fields in again.items())
