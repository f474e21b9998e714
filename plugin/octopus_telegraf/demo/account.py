"""A built-in, deterministic demo account, served to the real client through a requests adapter.

Four weeks of half-hours ending at today's London midnight (OCTO_DEMO_UNTIL pins them: the tests use
the four weeks over the October 2025 clock change), for an import meter (Agile, a fixed tariff from
day 14, Intelligent Octopus Go's four-rate product from day 18 with a car smart-charged in a few
dispatches, one day past its allowance, and tonight's planned slots), an
export meter and an m³ gas meter, with their account, products, unit rates, standing charges and
GraphQL. Nothing touches the network.
"""

import io
import json
import math
from datetime import datetime, time, timedelta, timezone
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from octopus_telegraf.base.timeutil import HALF_HOUR_NS, LONDON, NS_PER_SECOND, datetime_to_ns, iso_to_ns
from octopus_telegraf.config.settings import Meter
from octopus_telegraf.demo.tariffs import (
    AGILE,
    DEMO_END_NS,
    DEMO_IOG_NS,
    DEMO_ORIGIN,
    DEMO_SINCE_NS,
    DEMO_START_DATE,
    DEMO_START_NS,
    DEMO_SWITCH_NS,
    FIXED,
    GAS,
    IOG,
    OUTGOING,
    london_text,
    page_of,
    product_document,
    product_list,
    query_of,
    rates,
    wobble,
)

DEMO_METERS = [
    Meter("electricity", "import", "1900000000001", "DEMO-E-0001"),
    Meter("electricity", "export", "1900000000002", "DEMO-E-0001"),
    Meter("gas", "import", "9100000001", "DEMO-G-0001", "m3"),
]
DEMO_ACCOUNT = "A-DEMO0001"
DEMO_COMPARE = "agile=agile,go=go,tracker=tracker,agile_outgoing=agile_outgoing"


def _at(day: int, clock: str, minutes: int = 0) -> str:
    """London local time `clock` on day `day` of the demo (0 = its first), `minutes` later, as the API writes it."""
    hour, minute = map(int, clock.split(":"))
    local = datetime.combine(DEMO_START_DATE + timedelta(days=day), time(hour, minute), tzinfo=LONDON)
    return london_text(datetime_to_ns(local) + minutes * 60 * NS_PER_SECOND)


DEMO_DISPATCHES = [  # (London start, London end, kWh into the car, source), on Intelligent Octopus Go's days
    (_at(20, "11:10"), _at(20, "11:10", 30), 3.4, "smart-charge"),  # part of two half-hours
    (_at(21, "16:00"), _at(21, "16:00", 30), 3.5, "bump-charge"),  # asked for: never off-peak, never counted
    (_at(22, "13:00"), _at(22, "13:00", 240), 27.2, "smart-charge"),  # a long day: 4 h, then 3 h more...
    (_at(22, "19:00"), _at(22, "19:00", 180), 20.4, "smart-charge"),  # ...the last hour past the 6-hour allowance
    (_at(23, "01:00"), _at(23, "01:00", 120), 13.6, "smart-charge"),  # the night: counted, off-peak anyway
    (_at(24, "14:00"), _at(24, "14:00", 60), 6.8, None),  # a null source counts as a smart charge
]
DEMO_CAR = {"id": "00000000-demo-4000-8000-00000000ca01", "deviceType": "ELECTRIC_VEHICLES", "provider": "DEMO_CAR",
            "status": {"current": "LIVE", "currentState": "SMART_CONTROL_CAPABLE", "isSuspended": False}}
DEMO_PLANNED = [  # tonight's slots, as flexPlannedDispatches lists them (London start, minutes, kWh)
    (_at(28, "20:00"), 60, "-6.800"), (_at(28, "23:30"), 120, "-13.600")]
DEMO_AGREEMENTS = {  # meter point -> (tariff code, from, to)
    "1900000000001": [(AGILE, london_text(DEMO_SINCE_NS), london_text(DEMO_SWITCH_NS)),
                      (FIXED, london_text(DEMO_SWITCH_NS), london_text(DEMO_IOG_NS)),
                      (IOG, london_text(DEMO_IOG_NS), None)],
    "1900000000002": [(OUTGOING, london_text(DEMO_SINCE_NS), None)],
    "9100000001": [(GAS, london_text(DEMO_SINCE_NS), None)],
}


def demo_value(meter: Meter, start_ns: int) -> float:
    local = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    hour = local.hour + local.minute / 60
    index = (start_ns - DEMO_START_NS) // HALF_HOUR_NS
    noise = wobble(index, len(meter.point) + ord(meter.direction[0]))
    if meter.fuel == "gas":  # m³: heating morning and evening
        heating = 0.45 if 6 <= hour < 9 or 17 <= hour < 22 else 0.02
        return round(heating * (0.6 + 0.8 * noise), 3)
    if meter.direction == "export":  # solar, October: roughly 08:00-17:00
        sun = max(0.0, math.sin(math.pi * (hour - 8) / 9)) if 8 <= hour < 17 else 0.0
        cloud = 0.3 + 0.7 * wobble(local.toordinal(), 7)
        return round(0.9 * sun * cloud * (0.8 + 0.4 * noise), 3)
    base = 0.11 + (0.35 if 7 <= hour < 9 else 0) + (0.55 if 17 <= hour < 21 else 0)
    return round(base * (0.7 + 0.6 * noise) + _car_kwh(start_ns), 3)


def _car_kwh(start_ns: int) -> float:
    """The car's share of a half-hour: 7 kW for the part of it that a dispatch covers."""
    end_ns = start_ns + HALF_HOUR_NS
    kwh = 0.0
    for start, end, _, _ in DEMO_DISPATCHES:
        overlap = min(end_ns, iso_to_ns(end)) - max(start_ns, iso_to_ns(start))
        if overlap > 0:
            kwh += 7.0 * overlap / (3600 * NS_PER_SECOND)
    return kwh


def _account() -> dict:
    def point(meter):
        return {"meters": [{"serial_number": meter.serial, "registers": []}],
                "agreements": [{"tariff_code": code, "valid_from": start, "valid_to": end}
                               for code, start, end in DEMO_AGREEMENTS[meter.point]]}

    electricity = [{"mpan": m.point, "is_export": m.direction == "export", **point(m)}
                   for m in DEMO_METERS if m.fuel == "electricity"]
    gas = [{"mprn": m.point, **point(m)} for m in DEMO_METERS if m.fuel == "gas"]
    return {"number": DEMO_ACCOUNT, "properties": [{"id": 1, "moved_in_at": "2020-01-01T00:00:00Z",
                                                    "moved_out_at": None, "electricity_meter_points": electricity,
                                                    "gas_meter_points": gas}]}


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
    "octoplus-saving-sessions": [{"code": "DEMO-POWER-DOWN-1", "startAt": _at(23, "17:30"), "endAt": _at(23, "18:30")}],
    "free_electricity": [{"code": "DEMO-POWER-UP-1", "startAt": _at(25, "12:00"), "endAt": _at(25, "13:00")}],
}
_nights_asked = [0]  # the second Greener Night loses its flag after the first forecast, as Octopus may do


def _greener_nights() -> list[dict]:
    _nights_asked[0] += 1
    first, second = (DEMO_START_DATE + timedelta(days=d) for d in (26, 27))
    return [{"date": first.isoformat(), "isGreenerNight": True, "greennessScore": 82, "greennessIndex": "HIGH"},
            {"date": second.isoformat(), "isGreenerNight": _nights_asked[0] == 1, "greennessScore": 61,
             "greennessIndex": "MEDIUM"}]


def _graphql(payload: dict) -> dict:
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


def _consumptionpage_of(meter: Meter, url: str) -> dict:
    query = query_of(url)
    start = max(DEMO_START_NS, iso_to_ns(query["period_from"])) if "period_from" in query else DEMO_START_NS
    end = min(DEMO_END_NS, iso_to_ns(query["period_to"])) if "period_to" in query else DEMO_END_NS
    starts = list(range(start - start % HALF_HOUR_NS, end, HALF_HOUR_NS))
    if query.get("order_by") != "period":
        starts.reverse()
    rows = [{"consumption": demo_value(meter, s), "interval_start": london_text(s),
             "interval_end": london_text(s + HALF_HOUR_NS)} for s in starts]
    return page_of(url, rows, query, 100)


class DemoAdapter(BaseAdapter):
    """Answers the account, consumption, product and rate endpoints for the demo account as the API would."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        path = urlsplit(request.url).path.strip("/").split("/")
        body = None
        if len(path) == 6 and path[0] == "v1" and path[5] == "consumption":
            for meter in DEMO_METERS:
                kind = "electricity-meter-points" if meter.fuel == "electricity" else "gas-meter-points"
                if [path[1], path[2], path[4]] == [kind, meter.point, meter.serial]:
                    body = _consumptionpage_of(meter, request.url)
        elif path == ["v1", "accounts", DEMO_ACCOUNT]:
            body = _account()
        elif len(path) in (2, 3) and path[:2] == ["v1", "products"]:
            body = product_document(path[2]) if len(path) == 3 else product_list(request.url)
        elif len(path) == 6 and path[:2] == ["v1", "products"]:
            body = rates(path[4], path[5], request.url)
        elif len(path) == 3 and path[:2] == ["v1", "electricity-meter-points"]:
            body = {"mpan": path[2], "gsp": "_A", "profile_class": 1} if path[2] in DEMO_AGREEMENTS else None
        elif path == ["v1", "graphql"] and request.method == "POST":
            body = _graphql(json.loads(request.body or b"{}"))
        status = 200 if body is not None else 404
        return self._response(request, status, json.dumps(body or {"detail": "Not found."}).encode())

    @staticmethod
    def _response(request, status: int, content: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.raw = io.BytesIO(content)
        response._content = content  # already complete: iter_content serves it from memory
        response._content_consumed = True
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


def demo_session() -> requests.Session:
    session = requests.Session()
    session.mount(DEMO_ORIGIN, DemoAdapter())
    session.mount(DEMO_BACKEND, DemoAdapter())
    return session
