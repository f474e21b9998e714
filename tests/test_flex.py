"""Planned dispatches and devices (SPEC section 8): `devices` at start and every 6 hours, flexPlannedDispatches
per LIVE device at most every 10 minutes, octopus_device and octopus_planned_dispatch printed when new or
changed, cancelled=true for a slot that vanishes before its start, KT-CT-4340 an ordinary answer, never a
call to the removed plannedDispatches, and never a price changed by a planned slot."""

import time

from test_containment import problems
from test_intelligent import iog  # noqa: F401 - the fixture is used

from conftest import IMPORT, consumption, parse, run_once, saved_state
from fake_octopus import london

HOUR = 3600 * 10**9
NOW = time.time_ns() // HOUR * HOUR
CAR = {"id": "00000000-0000-0000-0000-00000000ca01", "deviceType": "ELECTRIC_VEHICLES", "provider": "TESLA",
       "status": {"current": "LIVE", "currentState": "SMART_CONTROL_CAPABLE", "isSuspended": False}}
OLD_CHARGER = {"id": "00000000-0000-0000-0000-00000000cc02", "deviceType": "CHARGE_POINTS", "provider": "OHME",
               "status": {"current": "RETIRED", "currentState": "RETIRED", "isSuspended": True}}
TONIGHT = [{"start": NOW + 4 * HOUR, "end": NOW + 5 * HOUR, "type": "SMART", "energyAddedKwh": "-6.521"},
           {"start": NOW + 6 * HOUR, "end": NOW + 7 * HOUR, "type": "SMART", "energyAddedKwh": "-7.000"},
           {"start": NOW - HOUR, "end": NOW + HOUR, "type": "BOOST", "energyAddedKwh": "-14.0"}]  # under way


def planned(points) -> dict:
    return {(p["time"], p["tags"]["type"]): p["fields"] for p in points
            if p["measurement"] == "octopus_planned_dispatch"}


def devices(points) -> dict:
    return {p["tags"]["device_id"]: (p["tags"], p["fields"]) for p in points if p["measurement"] == "octopus_device"}


def age_the_asked_times(env, seconds=660):
    """As if the last flexPlannedDispatches and devices calls were `seconds` ago (11 minutes: planned
    dispatches are due again, the devices list not)."""
    def earlier(stamp):  # [boot id, boot clock, wall clock]
        return [stamp[0], stamp[1] - seconds, stamp[2] - seconds]

    with saved_state(env) as state:
        state["flex"]["asked"] = {key: earlier(value) for key, value in state["flex"]["asked"].items()}
        state["flex"]["listed_at"] = earlier(state["flex"]["listed_at"])


def test_devices_and_planned_slots_printed_changed_and_cancelled(fake, iog, launch):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 16)
    fake.flex_devices = [CAR, OLD_CHARGER]
    fake.planned = {CAR["id"]: TONIGHT, OLD_CHARGER["id"]: "KT-CT-4340"}
    plugin = launch(iog)
    plugin.gather(1)
    plugin.gather(1)  # within 10 minutes and 6 hours: neither is asked again, nothing printed again
    plugin.stop()
    points = parse(plugin.stdout)
    assert planned(points) == {
        (NOW + 4 * HOUR, "smart"): {"duration_s": 3600, "energy_kwh": 6.521, "cancelled": False},
        (NOW + 6 * HOUR, "smart"): {"duration_s": 3600, "energy_kwh": 7.0, "cancelled": False},
        (NOW - HOUR, "boost"): {"duration_s": 7200, "energy_kwh": 14.0, "cancelled": False}}
    assert len([p for p in points if p["measurement"] == "octopus_planned_dispatch"]) == 3
    assert devices(points) == {
        CAR["id"]: ({"device_id": CAR["id"], "device_type": "ELECTRIC_VEHICLES", "provider": "TESLA"},
                    {"status": "LIVE", "state": "SMART_CONTROL_CAPABLE", "suspended": False}),
        OLD_CHARGER["id"]: ({"device_id": OLD_CHARGER["id"], "device_type": "CHARGE_POINTS", "provider": "OHME"},
                            {"status": "RETIRED", "state": "RETIRED", "suspended": True})}
    assert len([p for p in points if p["measurement"] == "octopus_device"]) == 2
    asked = fake.graphql_queries("flexPlannedDispatches")
    assert [call["variables"]["id"] for call in asked] == [CAR["id"]]  # LIVE devices only, once in 10 minutes
    assert len(fake.graphql_queries("devices(accountNumber")) == 1
    assert not [c for c in fake.graphql_calls if "plannedDispatches" in c["query"].replace("flexPlanned", "")]

    # a restart 11 minutes on asks the planned dispatches, not the devices
    age_the_asked_times(iog)
    assert not devices(parse(run_once(iog).stdout.decode().splitlines()))
    assert len(fake.graphql_queries("devices(accountNumber")) == 1
    # 6 hours on: one slot moved, one gone before its start; the one under way is not listed any more either
    age_the_asked_times(iog, 6 * 3600)
    fake.planned[CAR["id"]] = [{**TONIGHT[0], "end": NOW + 5 * HOUR + HOUR // 2, "energyAddedKwh": "-9.75"}]
    fake.flex_devices = [{**CAR, "status": {**CAR["status"], "currentState": "SMART_CONTROL_IN_PROGRESS"}},
                         OLD_CHARGER]
    again = parse(run_once(iog).stdout.decode().splitlines())
    assert planned(again) == {
        (NOW + 4 * HOUR, "smart"): {"duration_s": 5400, "energy_kwh": 9.75, "cancelled": False},
        (NOW + 6 * HOUR, "smart"): {"duration_s": 3600, "energy_kwh": 7.0, "cancelled": True}}
    assert devices(again)[CAR["id"]][1]["state"] == "SMART_CONTROL_IN_PROGRESS"
    assert OLD_CHARGER["id"] not in devices(again)  # unchanged: not printed again that London day
    assert len(fake.graphql_queries("devices(accountNumber")) == 2


def test_kt_ct_4340_and_an_empty_answer_are_ordinary(fake, iog):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 16)
    fake.flex_devices = [CAR]
    fake.planned = {CAR["id"]: TONIGHT[:2]}
    run_once(iog)
    age_the_asked_times(iog)
    fake.planned = {CAR["id"]: "KT-CT-4340"}  # no news: nothing is cancelled
    result = run_once(iog)
    assert not planned(parse(result.stdout.decode().splitlines()))
    assert not problems(result.stderr.decode()), result.stderr.decode()
    age_the_asked_times(iog)
    fake.planned = {CAR["id"]: []}  # an empty list: nothing is planned any more
    result = run_once(iog)
    assert {key: f["cancelled"] for key, f in planned(parse(result.stdout.decode().splitlines())).items()} == {
        (NOW + 4 * HOUR, "smart"): True, (NOW + 6 * HOUR, "smart"): True}
    assert not problems(result.stderr.decode())
    age_the_asked_times(iog)  # still nothing planned: the cancellations are not printed again
    assert not planned(parse(run_once(iog).stdout.decode().splitlines()))


def test_a_planned_slot_never_changes_a_price(fake, iog):  # noqa: F811
    """Slots planned over past half-hours (as the app may still list them) while no completed dispatch is known."""
    fake.graphql_now_ns = london(2024, 3, 1, 6)  # before any completed dispatch
    fake.flex_devices = [CAR]
    fake.planned = {CAR["id"]: [{"start": london(2024, 3, 1, 10), "end": london(2024, 3, 1, 16), "type": "SMART",
                                 "energyAddedKwh": "-30"}]}
    points = parse(run_once(iog).stdout.decode().splitlines())
    assert planned(points)  # it was read and printed
    assert not any(f.get("dispatched") for f in consumption(points, IMPORT).values())


def test_no_device_call_without_an_intelligent_agreement_and_a_damaged_section_is_dropped(fake, iog):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 16)
    fake.flex_devices = [CAR]
    fake.planned = {CAR["id"]: TONIGHT[:1]}
    run_once(iog)
    with saved_state(iog) as state:
        state["flex"]["planned"] = {"x": "not a table"}
    result = run_once(iog)
    warned = [line for line in result.stderr.decode().splitlines() if line.startswith("W! ")]
    assert len(warned) == 1 and "planned dispatches" in warned[0], warned
    assert result.returncode == 0 and consumption(parse(result.stdout.decode().splitlines()), IMPORT) is not None
    # the account without an intelligent agreement: no devices call at all
    from test_prices import ACCOUNT, account_document, agreement

    fake.accounts[ACCOUNT] = account_document([agreement("E-1R-VAR-22-11-01-C", london(2024, 1, 1))])
    calls = len(fake.graphql_calls)
    run_once({**iog, "OCTO_STATE_DIR": iog["OCTO_STATE_DIR"] + "-plain"})
    assert not [c for c in fake.graphql_calls[calls:] if "devices(" in c["query"] or "Planned" in c["query"]]


def test_lists_past_their_ceilings_are_cut_with_one_line(fake, iog):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 16)
    cars = [{**CAR, "id": f"00000000-0000-0000-0000-{i:012d}"} for i in range(10_000)]
    fake.flex_devices = cars
    slots = [{"start": NOW + i * 1800 * 10**9, "end": NOW + (i + 1) * 1800 * 10**9, "type": "SMART",
              "energyAddedKwh": "-1"} for i in range(10_000)]
    fake.planned = {car["id"]: slots for car in cars}
    result = run_once(iog)
    points = parse(result.stdout.decode().splitlines())
    asked = [call for call in fake.graphql_calls if "flexPlannedDispatches" in call.get("query", "")]
    assert len(devices(points)) == 20 and len(asked) <= 20  # never 10,000 calls, whatever the budget says
    per_device = {}
    for point in points:
        if point["measurement"] == "octopus_planned_dispatch":
            per_device[point["tags"]["device_id"]] = per_device.get(point["tags"]["device_id"], 0) + 1
    assert per_device and max(per_device.values()) <= 200  # the latest 200 slots of each
    warned = problems(result.stderr.decode())
    assert len(warned) == 1 and "10000 listed; the first 20 are kept" in warned[0], warned
    assert consumption(points, IMPORT)  # and the half-hours, as ever


def test_a_rate_limit_on_planned_dispatches_pauses_graphql_and_leaves_rest_alone(fake, iog):  # noqa: F811
    fake.graphql_now_ns = london(2024, 3, 2, 16)
    fake.flex_devices = [CAR]
    fake.planned = {CAR["id"]: "KT-CT-1199"}  # "Too many requests", on this field alone
    result = run_once(iog)
    assert result.returncode == 0 and consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    assert any("rate limited" in line for line in result.stderr.decode().splitlines() if line.startswith("W! "))
    calls = len(fake.graphql_calls)
    age_the_asked_times(iog)
    fake.planned = {CAR["id"]: TONIGHT[:1]}
    again = run_once(iog)  # the pause is kept in the state directory's ledger: nothing asked yet
    assert len(fake.graphql_calls) == calls and again.returncode == 0
    assert consumption(parse(again.stdout.decode().splitlines()), IMPORT) is not None
