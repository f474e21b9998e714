"""A built-in, deterministic demo account, served to the real client through a requests adapter.

Four weeks of half-hours around the October 2025 clock change (26 October has 50), for an import
meter, an export meter and an m³ gas meter. Nothing touches the network.
"""

import io
import json
import math
from datetime import date, datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .settings import Meter
from .timeutil import HALF_HOUR_NS, LONDON, NS_PER_SECOND, iso_to_ns, london_midnight_ns

DEMO_ORIGIN = "https://demo.octopus-telegraf.invalid"
DEMO_START_NS = london_midnight_ns(date(2025, 10, 6))
DEMO_END_NS = london_midnight_ns(date(2025, 11, 3))
DEMO_METERS = [
    Meter("electricity", "import", "1900000000001", "DEMO-E-0001"),
    Meter("electricity", "export", "1900000000002", "DEMO-E-0001"),
    Meter("gas", "import", "9100000001", "DEMO-G-0001", "m3"),
]
DEMO_COSTS = {"import": 24.5, "export": 15.0, "gas": 6.2}  # p/kWh, used unless OCTO_*_COST says otherwise


def _london_text(ns: int) -> str:
    local = datetime.fromtimestamp(ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    text = local.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text  # as the API writes winter times


def _wobble(index: int, salt: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for half-hour `index`."""
    return ((index * 2654435761 + salt * 40503) % 9973) / 9973


def demo_value(meter: Meter, start_ns: int) -> float:
    local = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    hour = local.hour + local.minute / 60
    index = (start_ns - DEMO_START_NS) // HALF_HOUR_NS
    noise = _wobble(index, len(meter.point) + ord(meter.direction[0]))
    if meter.fuel == "gas":  # m³: heating morning and evening
        heating = 0.45 if 6 <= hour < 9 or 17 <= hour < 22 else 0.02
        return round(heating * (0.6 + 0.8 * noise), 3)
    if meter.direction == "export":  # solar, October: roughly 08:00-17:00
        sun = max(0.0, math.sin(math.pi * (hour - 8) / 9)) if 8 <= hour < 17 else 0.0
        cloud = 0.3 + 0.7 * _wobble(local.toordinal(), 7)
        return round(0.9 * sun * cloud * (0.8 + 0.4 * noise), 3)
    base = 0.11 + (0.35 if 7 <= hour < 9 else 0) + (0.55 if 17 <= hour < 21 else 0)
    return round(base * (0.7 + 0.6 * noise), 3)


def _consumption_page(meter: Meter, url: str) -> dict:
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    start = max(DEMO_START_NS, iso_to_ns(query["period_from"])) if "period_from" in query else DEMO_START_NS
    end = min(DEMO_END_NS, iso_to_ns(query["period_to"])) if "period_to" in query else DEMO_END_NS
    starts = list(range(start - start % HALF_HOUR_NS, end, HALF_HOUR_NS))
    if query.get("order_by") != "period":
        starts.reverse()
    size = min(int(query.get("page_size", 100)), 25000)
    page = int(query.get("page", 1))
    chosen = starts[(page - 1) * size: page * size]
    more = page * size < len(starts)
    return {
        "count": len(starts),
        "next": f"{DEMO_ORIGIN}{urlsplit(url).path}?{urlencode({**query, 'page': page + 1})}" if more else None,
        "previous": None,
        "results": [{"consumption": demo_value(meter, s), "interval_start": _london_text(s),
                     "interval_end": _london_text(s + HALF_HOUR_NS)} for s in chosen],
    }


class DemoAdapter(BaseAdapter):
    """Answers the consumption endpoints for the demo meters as the API would."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        path = urlsplit(request.url).path.strip("/").split("/")
        body, status = {"detail": "Not found."}, 404
        if len(path) == 6 and path[0] == "v1" and path[5] == "consumption":
            for meter in DEMO_METERS:
                kind = "electricity-meter-points" if meter.fuel == "electricity" else "gas-meter-points"
                if [path[1], path[2], path[4]] == [kind, meter.point, meter.serial]:
                    body, status = _consumption_page(meter, request.url), 200
        return self._response(request, status, json.dumps(body).encode())

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
    return session
