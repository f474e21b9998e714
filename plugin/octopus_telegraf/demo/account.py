"""A built-in, deterministic demo account, served to the real client through a requests adapter.

Four weeks of half-hours ending at today's London midnight (OCTO_DEMO_UNTIL pins them: the tests use
the four weeks over the October 2025 clock change), for an import meter (Agile, a fixed tariff from
day 14, Intelligent Octopus Go's four-rate product from day 18 with a car smart-charged in a few
dispatches, one day past its allowance, and tonight's planned slots), an export meter and an m³ gas
meter (household.py), with their account, products, unit rates, standing charges (tariffs.py) and
GraphQL (graphql.py). Nothing touches the network.
"""

import io
import json
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from octopus_telegraf.base.timeutil import HALF_HOUR_NS, iso_to_ns
from octopus_telegraf.config.settings import Meter
from octopus_telegraf.demo.carbon import DEMO_CARBON, carbon_answer
from octopus_telegraf.demo.graphql import DEMO_BACKEND
from octopus_telegraf.demo.graphql import answer as graphql_answer
from octopus_telegraf.demo.household import DEMO_ACCOUNT, DEMO_AGREEMENTS, DEMO_METERS, demo_value
from octopus_telegraf.demo.tariffs import (
    DEMO_END_NS,
    DEMO_ORIGIN,
    DEMO_START_NS,
    london_text,
    page_of,
    product_document,
    product_list,
    query_of,
    rates,
)


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
            body = graphql_answer(json.loads(request.body or b"{}"))
        elif request.url.startswith(DEMO_CARBON):
            body = carbon_answer(path)
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
    session.mount(DEMO_CARBON, DemoAdapter())
    return session
