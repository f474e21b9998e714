"""The demo account's GraphQL, as Kraken would answer it: a token, gas units, dispatches, the car and its
planned slots, the Home Mini's devices and readings, Octoplus events and points, Greener Nights."""

from datetime import timedelta

from octopus_telegraf.base.timeutil import NS_PER_SECOND, iso_to_ns
from octopus_telegraf.demo.household import DEMO_CAR, DEMO_DISPATCHES, DEMO_METERS, DEMO_PLANNED, at
from octopus_telegraf.demo.tariffs import DEMO_START_DATE, london_text, wobble

DEMO_DEVICES = {"00-00-00-00-00-00-0E-01": DEMO_METERS[0], "00-00-00-00-00-00-0G-01": DEMO_METERS[2]}
DEMO_REGISTER_FROM = 1_700_000_000  # seconds: the demo registers count from here


def _telemetry(device_id: str, start_text: str, end_text: str) -> list[dict]:
    """A Home Mini's readings: every 10 s for electricity (the newest 20 s not in yet), every 30 minutes
    for gas; each a deterministic function of its time, registers that only go up."""
    meter = DEMO_DEVICES[device_id]
    step = 1800 if meter.fuel == "gas" else 10
    start = -(-iso_to_ns(start_text) // NS_PER_SECOND // step) * step
    end = iso_to_ns(end_text) // NS_PER_SECOND - (0 if meter.fuel == "gas" else 20)
    readings = []
    for second in range(start, end + 1, step):
        elapsed = second - DEMO_REGISTER_FROM
        if meter.fuel == "gas":  # Wh of gas: about 1.1 kWh an hour, in half-hour steps
            register = elapsed // 1800 * 550 + 12_000_000
            readings.append({"readAt": london_text(second * NS_PER_SECOND), "consumption": f"{register:.1f}",
                             "consumptionDelta": "550.0", "demand": None, "export": None})
            continue
        demand = 250 + 150 * wobble(second // 10, 11) + (1800 if (second // 600) % 9 == 0 else 0)
        register = elapsed * 0.12 + 5_000_000  # Wh: about 430 W on average
        readings.append({"readAt": london_text(second * NS_PER_SECOND), "consumption": f"{register:.2f}",
                         "consumptionDelta": f"{step * 0.12:.2f}", "demand": f"{demand:.1f}", "export": "0.0"})
    return readings


DEMO_BACKEND = "https://backend.demo.octopus-telegraf.invalid"
DEMO_EVENTS = {  # campaign slug -> sessions: a Power Down one evening, a Power Up hour at lunch
    "octoplus-saving-sessions": [{"code": "DEMO-POWER-DOWN-1", "startAt": at(23, "17:30"), "endAt": at(23, "18:30")}],
    "free_electricity": [{"code": "DEMO-POWER-UP-1", "startAt": at(25, "12:00"), "endAt": at(25, "13:00")}],
}
_nights_asked = [0]  # the second Greener Night loses its flag after the first forecast, as Octopus may do


def _greener_nights() -> list[dict]:
    _nights_asked[0] += 1
    first, second = (DEMO_START_DATE + timedelta(days=d) for d in (26, 27))
    return [{"date": first.isoformat(), "isGreenerNight": True, "greennessScore": 82, "greennessIndex": "HIGH"},
            {"date": second.isoformat(), "isGreenerNight": _nights_asked[0] == 1, "greennessScore": 61,
             "greennessIndex": "MEDIUM"}]


def answer(payload: dict) -> dict:
    """The GraphQL the plugin asks of the demo account: a token, the gas units, the dispatches, the
    Home Mini's devices and readings, Octoplus events and points, and Greener Nights."""
    query = payload.get("query", "")
    variables = payload.get("variables") or {}
    if "customerFlexibilityCampaignEvents" in query:
        events = DEMO_EVENTS.get(variables.get("slug"), [])
        return {"data": {"customerFlexibilityCampaignEvents": {"edges": [{"node": e} for e in events]}}}
    if "octoplusAccountInfo" in query:
        return {"data": {"octoplusAccountInfo": {"isOctoplusEnrolled": True}}}
    if "loyaltyPointLedgers" in query:
        return {"data": {"loyaltyPointLedgers": [{"balanceCarriedForward": "1850"}]}}
    if "greenerNightsForecast" in query:
        return {"data": {"greenerNightsForecast": _greener_nights()}}
    if "smartMeterTelemetry" in query:
        if variables.get("deviceId") not in DEMO_DEVICES:
            return {"errors": [{"message": "Device not found", "extensions": {"errorCode": "KT-CT-4301"}}]}
        return {"data": {"smartMeterTelemetry": _telemetry(variables["deviceId"], variables["start"],
                                                           variables["end"])}}
    if "smartImportElectricityMeter" in query:
        (electricity_id, electricity), (gas_id, gas) = DEMO_DEVICES.items()
        return {"data": {"account": {
            "electricityAgreements": [{"meterPoint": {"mpan": electricity.point, "meters": [{
                "serialNumber": electricity.serial, "smartImportElectricityMeter": {"deviceId": electricity_id},
                "smartExportElectricityMeter": None}]}}],
            "gasAgreements": [{"meterPoint": {"mprn": gas.point, "meters": [{
                "serialNumber": gas.serial, "smartGasMeter": {"deviceId": gas_id}}]}}]}}}
    if "obtainKrakenToken" in query:
        return {"data": {"obtainKrakenToken": {"token": "demo-token", "refreshToken": "demo-refresh",
                                               "refreshExpiresIn": 604800}}}
    if "flexPlannedDispatches" in query:
        return {"data": {"flexPlannedDispatches": [
            {"start": start, "end": london_text(iso_to_ns(start) + minutes * 60 * NS_PER_SECOND), "type": "SMART",
             "energyAddedKwh": kwh} for start, minutes, kwh in DEMO_PLANNED]}}
    if "devices(accountNumber" in query:
        return {"data": {"devices": [DEMO_CAR]}}
    if "completedDispatches" in query:
        return {"data": {"completedDispatches": [
            {"start": start, "end": end, "delta": f"{-kwh:.2f}", "meta": {"source": source, "location": "AT_HOME"}}
            for start, end, kwh, source in DEMO_DISPATCHES]}}
    return {"data": {"account": {"gasAgreements": [{"meterPoint": {"mprn": DEMO_METERS[2].point, "meters": [
        {"serialNumber": DEMO_METERS[2].serial, "consumptionUnits": "m³"}]}}]}}}
