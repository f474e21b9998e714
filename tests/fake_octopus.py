"""A fake Octopus Energy REST API on loopback, realistic where clients go wrong.

Times are London local with offsets (`Z` in winter and `+01:00` in summer, as the API writes them,
or `+00:00` / `+0100` on request), `next` links are absolute and carry every original parameter,
pages are 1-based, the default order is newest first, and faults can be injected per request:
429 with or without Retry-After, 5xx, HTML error pages, slow answers, connection resets, truncated
JSON, over-returned rows and `next` links to another origin.
"""

import base64
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from dateutil import tz

LONDON = tz.gettz("Europe/London")
UTC = timezone.utc
HALF_HOUR_NS = 1_800_000_000_000
# serve_forever looks for shutdown() this often: its default (0.5 s) was up to a second per test's teardown
QUICK_STOP = {"poll_interval": 0.05}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns(moment: datetime) -> int:
    """Ground truth for the tests, computed independently of the plugin: whole seconds, then ns."""
    return int((moment - EPOCH).total_seconds()) * 1_000_000_000


def london(year, month, day, hour=0, minute=0) -> int:
    return ns(datetime(year, month, day, hour, minute, tzinfo=LONDON))


def render(start_ns: int, style: str) -> str:
    local = datetime.fromtimestamp(start_ns // 1_000_000_000, tz=UTC).astimezone(LONDON)
    offset = local.utcoffset()
    if style == "api":
        suffix = "Z" if offset == timedelta(0) else local.strftime("%z")[:3] + ":00"
        return local.strftime("%Y-%m-%dT%H:%M:%S") + suffix
    if style == "colon":
        return local.isoformat()
    if style == "compact":
        return local.strftime("%Y-%m-%dT%H:%M:%S%z")
    raise ValueError(style)


def render_utc(moment_ns: int) -> str:
    return datetime.fromtimestamp(moment_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_query_time(text: str) -> int:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return ns(moment)


@dataclass
class Fault:
    kind: str  # status | html | slow | drip | header_drip | reset | cut | truncated | foreign_next | over_return | raw
    path: str = ""  # applies to requests whose path contains this
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    extra_rows: int = 0
    body: bytes = b""  # kind "raw": sent as it is, HTTP 200
    exact: bool = False  # the path must be `path` itself, not merely contain it


@dataclass
class Request:
    path: str
    query: dict
    authorization: str | None
    user_agent: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def api_key(self) -> str | None:
        if not self.authorization or not self.authorization.startswith("Basic "):
            return None
        return base64.b64decode(self.authorization[6:]).decode().split(":", 1)[0]


def send_reply(handler, status, raw, content_type="application/json", headers=None):
    """One whole answer of a fake server's handler (a client that went away meanwhile is no error)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(raw)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    try:
        handler.wfile.write(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass


def header_drip(handler, seconds: float, limit_s: float = 120.0) -> None:
    """The status line, then one header byte every `seconds`, never ending the headers (until `limit_s`)."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        handler.wfile.flush()
        for _ in range(int(limit_s / seconds)):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(seconds)
    except OSError:
        pass
    handler.close_connection = True


class FakeOctopus:
    def __init__(self, api_key="sk_live_fake_key_0123456789", time_style="api"):
        self.api_key = api_key
        self.time_style = time_style
        self.meters: dict[tuple[str, str, str], dict[int, float]] = {}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.foreign_url = "http://127.0.0.2:9/"
        self._rendered: dict[tuple, str] = {}  # rendering is slow; a 5-year benchmark asks for it often
        self.accounts: dict[str, dict] = {}  # number -> the /v1/accounts/ document
        self.products: dict[str, dict] = {}  # product code -> the /v1/products/ document
        self.rates: dict[tuple[str, str], list[dict]] = {}  # (tariff code, kind path) -> rate rows
        self.refused_rates: set[tuple[str, str]] = set()  # (tariff, kind path) answering HTTP 400 (E-2R standard)
        self.product_list: list[dict] = []  # what /v1/products/ lists, filtered by available_at
        self.list_page_size = 3  # the list's pages are short here, so that every test follows `next`
        self.gsp: dict[str, str] = {}  # MPAN -> "_H", for /v1/electricity-meter-points/{mpan}/
        self.gas_units: dict[str, str] = {}  # GraphQL consumptionUnits by gas serial ("m³" or "kWh")
        self.graphql_calls: list[dict] = []
        # answers given as they are to the next GraphQL calls whose query holds the word: (word, answer), where
        # the answer is a JSON document, or (HTTP status, headers, raw body)
        self.graphql_replies: list[tuple[str, object]] = []
        self.graphql_errors: list[str] = []  # error codes the next GraphQL calls answer with, one each
        self.graphql_now_ns: int | None = None  # the clock of the 12-hour dispatch window; None: real time
        self.dispatches: list[dict] = []  # {"start": ns, "end": ns, "delta": "-1.20", "source": ...}
        # smart-charge devices as `devices` lists them, and each one's planned slots: a list of
        # {"start": ns, "end": ns, "type": "SMART", "energyAddedKwh": "-6.521"}, or an error code to answer
        self.flex_devices: list[dict] = []
        self.planned: dict[str, object] = {}
        self.live_tokens: set[str] = set()
        self.devices: dict[str, tuple] = {}  # Home Mini device id -> (fuel, direction, point, serial)
        self.telemetry: dict[str, dict | None] = {}  # device id -> readings; None answers KT-GB-4039
        self.telemetry_calls: list[dict] = []
        self.telemetry_lag_s = 20
        self.telemetry_extra_before = 0
        self.tokens_issued = 0
        self.chaos = None  # a callable(path) -> Fault or None, asked when no queued fault applies
        self.unknown_points: set[str] = set()  # meter points that answer 404 for now
        self.raw_requests: list[tuple[str, bytes]] = []  # (origin, request line + headers) as received
        self.lock = threading.Lock()
        # Octoplus: campaign slug -> [{"code", "startAt", "endAt"}], enrolment, the Octopoints balance, and the
        # Greener Nights forecast that the second origin (`backend_url`) answers
        self.campaign_events: dict[str, list[dict]] = {"octoplus-saving-sessions": [], "free_electricity": []}
        self.enrolled = True
        self.points_balance: object = "1234"
        self.greener_nights: list[dict] = []
        self.backend_calls: list[tuple[str | None, dict]] = []  # (Authorization, body) as the backend got them
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients killed mid-request are expected
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs=QUICK_STOP, daemon=True)
        self.thread.start()
        self.backend = ThreadingHTTPServer(("127.0.0.1", 0), self._backend_class())
        self.backend.daemon_threads = True
        threading.Thread(target=self.backend.serve_forever, kwargs=QUICK_STOP, daemon=True).start()

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend.server_address[1]}"

    def _backend_class(self):
        """The second GraphQL origin: the bare token only (no `JWT `, never the key), Greener Nights."""
        fake = self

        class Backend(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                authorization = self.headers.get("Authorization")
                with fake.lock:
                    fake.backend_calls.append((authorization, body))
                fault = fake._take_fault("/backend/v1/graphql/")
                if fault and fault.kind == "header_drip":
                    return header_drip(self, fault.seconds)
                reply = fake._take_reply(body)
                if reply is None:
                    if authorization not in fake.live_tokens:  # a `JWT ` prefix, the key, or nothing: refused
                        reply = {"errors": [{"message": "Invalid token.", "extensions": {"errorCode": "KT-CT-1139"}}]}
                    else:
                        reply = {"data": {"greenerNightsForecast": fake.greener_nights}}
                status, headers, raw = reply if isinstance(reply, tuple) else (200, {}, json.dumps(reply).encode())
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(raw)),
                                   **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        return Backend

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        for server in (self.server, self.backend):
            server.shutdown()
            server.server_close()

    # -- data -------------------------------------------------------------------------------
    def add_meter(self, fuel, point, serial, start_ns, end_ns, value=None):
        """Half-hours from start to end (UTC steps, so DST days get 46 or 50)."""
        value = value or (lambda i: round(0.05 + (i * 37 % 101) / 200, 3))
        data = {s: value(i) for i, s in enumerate(range(start_ns, end_ns, HALF_HOUR_NS))}
        self.meters[(fuel, point, serial)] = data
        return data

    def data(self, fuel, point, serial) -> dict[int, float]:
        return self.meters[(fuel, point, serial)]

    def inject(self, kind, **kwargs) -> Fault:
        fault = Fault(kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def consumption_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/consumption/")]

    # -- serving ----------------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.path == path if fault.exact else fault.path in path):
                    fault.times -= 1
                    return fault
        return self.chaos(path) if self.chaos else None

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args):
                pass

            def parse_request(self):
                ok = super().parse_request()
                with fake.lock:  # the bytes as they came off the socket, for the key checks
                    fake.raw_requests.append((fake.url, self.raw_requestline + bytes(self.headers)))
                return ok

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with fake.lock:
                    fake.requests.append(Request(parts.path, query, self.headers.get("Authorization"),
                                                 self.headers.get("User-Agent")))
                fault = fake._take_fault(parts.path)
                if fault and fault.kind == "reset":
                    self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.request.close()
                    self.close_connection = True
                    return
                if fault and fault.kind == "slow":
                    time.sleep(fault.seconds)
                if fault and fault.kind == "header_drip":
                    return header_drip(self, fault.seconds)
                if fault and fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    body = {"detail": "Request was throttled."} if fault.status == 429 else {"detail": "Server Error"}
                    return self._send(fault.status, fault.body or json.dumps(body).encode(), "application/json",
                                      headers)
                if fault and fault.kind == "raw":
                    return self._send(200, fault.body, "application/json")
                if fault and fault.kind == "drip":  # headers at once, then a byte every `seconds`
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    try:
                        for _ in range(int(60 / fault.seconds)):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(fault.seconds)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if fault and fault.kind == "html":
                    page = (b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
                            b"<body><h1>Sorry, you have been blocked</h1>\n<p>Ray ID: 7f00</p></body></html>")
                    return self._send(fault.status, page, "text/html; charset=UTF-8")
                status, body = fake._route(parts.path, query, self.headers.get("Authorization"), fault)
                raw = json.dumps(body).encode()
                if fault and fault.kind == "truncated":
                    raw = raw[: len(raw) // 2]
                if fault and fault.kind == "cut":  # `extra_rows` rows of the body, then a connection reset
                    end = 0
                    for _ in range(fault.extra_rows):
                        end = raw.index(b"}", raw.index(b'"interval_end"', end)) + 1
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw[:end])
                    self.wfile.flush()
                    time.sleep(0.05)
                    self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.request.close()
                    self.close_connection = True
                    return
                self._send(status, raw, "application/json")

            def do_POST(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append(Request(parts.path, {}, self.headers.get("Authorization"),
                                                 self.headers.get("User-Agent")))
                fault = fake._take_fault(parts.path)
                if fault and fault.kind == "header_drip":
                    return header_drip(self, fault.seconds)
                if fault and fault.kind == "slow":
                    time.sleep(fault.seconds)
                if fault and fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    return self._send(fault.status, fault.body or b'{"detail": "Server Error"}', "application/json",
                                      headers)
                if fault and fault.kind == "html":
                    return self._send(fault.status, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                                      "text/html")
                if parts.path != "/v1/graphql/":
                    return self._send(404, b'{"detail": "Not found."}', "application/json")
                reply = fake._take_reply(body)
                if isinstance(reply, tuple):
                    status, headers, raw = reply
                    return self._send(status, raw, "application/json", headers)
                if reply is not None:
                    with fake.lock:
                        fake.graphql_calls.append(body)
                    return self._send(200, json.dumps(reply).encode(), "application/json")
                self._send(200, json.dumps(fake.graphql(body, self.headers.get("Authorization"))).encode(),
                           "application/json")

            _send = send_reply

        return Handler

    def _authorized(self, authorization) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        return authorization == expected

    def _route(self, path, query, authorization, fault):
        pieces = [unquote(piece) for piece in path.strip("/").split("/")]
        if len(pieces) == 6 and pieces[0] == "v1" and pieces[5] == "consumption":
            if not self._authorized(authorization):
                return 401, {"detail": "Authentication credentials were not provided."}
            if pieces[2] in self.unknown_points:
                return 404, {"detail": "Not found."}
            fuel = {"electricity-meter-points": "electricity", "gas-meter-points": "gas"}.get(pieces[1])
            data = self.meters.get((fuel, pieces[2], pieces[4]))
            if data is None:  # the real API: unknown meters and serials give an empty list
                return 200, {"count": 0, "next": None, "previous": None, "results": []}
            return 200, self._consumption(path, query, data, fault)
        if len(pieces) == 3 and pieces[:2] == ["v1", "accounts"]:
            if not self._authorized(authorization):
                return 401, {"detail": "Authentication credentials were not provided."}
            account = self.accounts.get(pieces[2])
            return (200, account) if account else (404, {"detail": "Not found."})
        if pieces == ["v1", "products"]:
            return 200, self._product_list(path, query)
        if len(pieces) == 3 and pieces[:2] == ["v1", "electricity-meter-points"] and pieces[2] in self.gsp:
            return 200, {"gsp": self.gsp[pieces[2]], "mpan": pieces[2], "profile_class": 1}
        if len(pieces) == 3 and pieces[:2] == ["v1", "products"] and pieces[2] in self.products:
            return 200, self.products[pieces[2]]
        if len(pieces) == 6 and pieces[:2] == ["v1", "products"] and pieces[3].endswith("-tariffs"):
            if (pieces[4], pieces[5]) in self.refused_rates:
                return 400, {"detail": "This tariff has no standard unit rates."}
            rows = self.rates.get((pieces[4], pieces[5]))
            if rows is None:
                return 404, {"detail": "Not found."}
            return 200, self._rates(path, query, rows)
        return 404, {"detail": "Not found."}

    # -- tariffs ------------------------------------------------------------------------------
    def add_product(self, product: str, region: str, tariffs: dict[str, str], fuel="electricity", dual=False,
                    group=None, kinds=None):
        """A product listing `tariffs` (payment block -> tariff code) in one region, with links (`kinds`: the
        rate paths it links, e.g. a four-rate tariff's day, night and EV rates)."""
        group = group or (("dual_register_electricity_tariffs" if dual else "single_register_electricity_tariffs"
                           ) if fuel == "electricity" else "single_register_gas_tariffs")
        kinds = kinds or (["day-unit-rates", "night-unit-rates"] if dual else ["standard-unit-rates"]) + \
            ["standing-charges"]
        fuel_path = "electricity-tariffs" if fuel == "electricity" else "gas-tariffs"
        blocks = {}
        for payment, code in tariffs.items():
            links = [{"href": f"{self.url}/v1/products/{product}/{fuel_path}/{code}/{kind}/",
                      "method": "GET", "rel": kind.replace("-", "_")} for kind in kinds]
            blocks[payment] = {"code": code, "standing_charge_exc_vat": 40.0, "standing_charge_inc_vat": 42.0,
                               "online_discount_exc_vat": 0, "links": links}
        document = self.products.setdefault(product, {"code": product, "full_name": product.title(),
                                                      "is_variable": True, "links": []})
        document.setdefault(group, {})[f"_{region}"] = blocks

    def list_product(self, code: str, available_from: int, available_to: int | None = None, restricted=False,
                     direction="IMPORT"):
        """An entry of /v1/products/ (on sale from `available_from` until `available_to`)."""
        self.product_list.append({
            "code": code, "direction": direction, "full_name": code.title(), "display_name": code.title(),
            "is_variable": True, "is_green": False, "is_tracker": code.startswith("SILVER"), "is_prepay": False,
            "is_business": False, "is_restricted": restricted, "term": None, "brand": "OCTOPUS_ENERGY",
            "available_from": render_utc(available_from),
            "available_to": render_utc(available_to) if available_to is not None else None,
            "links": [{"href": f"{self.url}/v1/products/{code}/", "method": "GET", "rel": "self"}]})

    def _product_list(self, path, query):
        listed = self.product_list
        if "available_at" in query:
            moment = parse_query_time(query["available_at"])
            listed = [p for p in listed if parse_query_time(p["available_from"]) <= moment
                      and (p["available_to"] is None or moment < parse_query_time(p["available_to"]))]
        size = min(int(query.get("page_size", 100)), self.list_page_size)
        page = int(query.get("page", 1))
        more = page * size < len(listed)
        return {"count": len(listed),
                "next": f"{self.url}{path}?{urlencode({**query, 'page': page + 1})}" if more else None,
                "previous": None, "results": listed[(page - 1) * size: page * size]}

    def add_rates(self, tariff: str, kind: str, rows: list[tuple]):
        """rows: (valid_from ns, valid_to ns or None, inc_vat, exc_vat, payment_method or None)."""
        self.rates[(tariff, kind)] = [
            {"value_exc_vat": exc, "value_inc_vat": inc, "valid_from": render_utc(start),
             "valid_to": render_utc(end) if end is not None else None, "payment_method": method}
            for start, end, inc, exc, method in rows]

    def _rates(self, path, query, rows):
        def overlaps(row):
            start = parse_query_time(row["valid_from"])
            end = parse_query_time(row["valid_to"]) if row["valid_to"] else None
            if "period_to" in query and start >= parse_query_time(query["period_to"]):
                return False
            return not ("period_from" in query and end is not None and end <= parse_query_time(query["period_from"]))

        chosen = sorted((r for r in rows if overlaps(r)), key=lambda r: r["valid_from"], reverse=True)  # newest first
        size = int(query.get("page_size", 100))
        page = int(query.get("page", 1))
        more = page * size < len(chosen)
        return {"count": len(chosen),
                "next": f"{self.url}{path}?{urlencode({**query, 'page': page + 1})}" if more else None,
                "previous": None, "results": chosen[(page - 1) * size: page * size]}

    def _take_reply(self, body: dict):
        with self.lock:
            for index, (word, reply) in enumerate(self.graphql_replies):
                if word in body.get("query", ""):
                    del self.graphql_replies[index]
                    return reply
        return None

    def graphql(self, body: dict, authorization: str | None):
        """Kraken as clients meet it: always HTTP 200, errors by code; tokens that expire; dispatches
        that vanish 12 hours after they end, on a clock the test controls (`graphql_now_ns`)."""
        with self.lock:
            self.graphql_calls.append(body)
            forced = self.graphql_errors.pop(0) if self.graphql_errors else None
        query = body.get("query", "")
        if forced:
            message = "Too many requests." if forced in ("KT-CT-1199", "OE-0002") else "Error"
            return {"errors": [{"message": message, "extensions": {"errorCode": forced}}]}
        if "obtainKrakenToken" in query:
            if body.get("variables", {}).get("key") != self.api_key:
                return {"errors": [{"message": "Invalid key", "extensions": {"errorCode": "KT-CT-1139"}}]}
            with self.lock:
                self.tokens_issued += 1
                token = f"kraken-token-{self.tokens_issued}"
                self.live_tokens.add(token)
            return {"data": {"obtainKrakenToken": {"token": token, "refreshToken": f"refresh-{token}",
                                                   "refreshExpiresIn": 604800}}}
        token = (authorization or "").removeprefix("JWT ")
        if token not in self.live_tokens:
            code = "KT-CT-1124" if token.startswith("kraken-token-") else "KT-CT-1139"
            return {"errors": [{"message": "Signature of the JWT has expired." if code == "KT-CT-1124"
                                else "Unauthorized", "extensions": {"errorCode": code}}]}
        if "smartMeterTelemetry" in query:
            return self._telemetry(body.get("variables") or {})
        if "smartImportElectricityMeter" in query:
            return {"data": {"account": self._devices()}}
        variables = body.get("variables") or {}
        if "customerFlexibilityCampaignEvents" in query:
            events = self.campaign_events.get(variables.get("slug"), [])
            return {"data": {"customerFlexibilityCampaignEvents": {"edges": [{"node": e} for e in events]}}}
        if "octoplusAccountInfo" in query:
            return {"data": {"octoplusAccountInfo": {"isOctoplusEnrolled": self.enrolled}}}
        if "loyaltyPointLedgers" in query:
            return {"data": {"loyaltyPointLedgers": [{"balanceCarriedForward": self.points_balance}]}}
        if "plannedDispatches" in query and "flexPlannedDispatches" not in query:
            return {"errors": [{"message": "Cannot query field 'plannedDispatches' on type 'Query'.",
                                "extensions": {"errorCode": "GRAPHQL_VALIDATION_FAILED"}}]}
        if "flexPlannedDispatches" in query:
            planned = self.planned.get(variables.get("id"), [])
            if isinstance(planned, str):
                return {"errors": [{"message": "Unable to fetch planned dispatches",
                                    "extensions": {"errorCode": planned}}], "data": {"flexPlannedDispatches": None}}
            return {"data": {"flexPlannedDispatches": [
                {"start": render(p["start"], "colon"), "end": render(p["end"], "colon"), "type": p.get("type", "SMART"),
                 "energyAddedKwh": p.get("energyAddedKwh")} for p in planned]}}
        if "devices(accountNumber" in query:
            return {"data": {"devices": self.flex_devices}}
        if "completedDispatches" in query:
            now = self.graphql_now_ns if self.graphql_now_ns is not None else time.time_ns()
            shown = [d for d in self.dispatches if now - 12 * 3600 * 10**9 < d["end"] <= now]
            return {"data": {"completedDispatches": [
                {"start": render(d["start"], "colon"), "end": render(d["end"], "colon"), "delta": d.get("delta"),
                 "meta": {"source": d.get("source"), "location": "AT_HOME"}} for d in shown]}}
        meters = [{"serialNumber": serial, "consumptionUnits": unit} for serial, unit in self.gas_units.items()]
        return {"data": {"account": {"gasAgreements": [{"meterPoint": {"mprn": "x", "meters": meters}}]}}}

    # -- Home Mini ---------------------------------------------------------------------------
    def add_device(self, device_id: str, fuel: str, direction: str, point: str, serial: str, readings):
        """readings: {readAt ns: (consumption Wh, delta Wh, demand W[, export Wh])}, None values printed as null;
        readings None: the device answers KT-GB-4039 (no telemetry: no Home Mini)."""
        self.devices[device_id] = (fuel, direction, point, serial)
        self.telemetry[device_id] = readings

    def _devices(self) -> dict:
        electricity, gas = {}, {}
        for device_id, (fuel, direction, point, serial) in self.devices.items():
            target = electricity if fuel == "electricity" else gas
            meter = target.setdefault(point, {"serialNumber": serial, "smartImportElectricityMeter": None,
                                              "smartExportElectricityMeter": None, "smartGasMeter": None})
            key = "smartGasMeter" if fuel == "gas" else ("smartImportElectricityMeter" if direction == "import"
                                                         else "smartExportElectricityMeter")
            meter[key] = {"deviceId": device_id}
        return {"electricityAgreements": [{"meterPoint": {"mpan": p, "direction": "IMPORT", "meters": [m]}}
                                          for p, m in electricity.items()],
                "gasAgreements": [{"meterPoint": {"mprn": p, "meters": [m]}} for p, m in gas.items()]}

    def _telemetry(self, variables: dict) -> dict:
        device_id = variables.get("deviceId")
        with self.lock:
            self.telemetry_calls.append(dict(variables))
        if device_id not in self.devices:
            return {"errors": [{"message": "Device not found.", "extensions": {"errorCode": "KT-CT-4301"}}]}
        readings = self.telemetry[device_id]
        if readings is None:
            return {"errors": [{"message": "No telemetry.", "extensions": {"errorCode": "KT-GB-4039"}}]}
        step = {"TEN_SECONDS": 10, "ONE_MINUTE": 60, "FIVE_MINUTES": 300, "FIFTEEN_MINUTES": 900,
                "THIRTY_MINUTES": 1800, "ONE_HOUR": 3600}[variables["grouping"]] * 10**9
        start, end = parse_query_time(variables["start"]), parse_query_time(variables["end"])
        available = time.time_ns() - self.telemetry_lag_s * 10**9  # the newest seconds are not there yet
        start -= self.telemetry_extra_before * 10**9  # over-returned readings, as the REST API does too

        def text(value):
            return None if value is None else f"{value:.3f}"  # decimals arrive as strings

        return {"data": {"smartMeterTelemetry": [
            {"readAt": render(at, "colon"), "consumption": text(wh), "consumptionDelta": text(delta),
             "demand": text(demand), "export": text(exported[0] if exported else 0.0)}
            for at, (wh, delta, demand, *exported) in sorted(readings.items())
            if start <= at <= min(end, available) and at % step == 0]}}

    def expire_tokens(self):
        with self.lock:
            self.live_tokens.clear()

    def graphql_queries(self, word: str) -> list[dict]:
        return [call for call in self.graphql_calls if word in call.get("query", "")]

    def _render(self, start_ns: int) -> str:
        text = self._rendered.get((start_ns, self.time_style))
        if text is None:
            text = self._rendered[(start_ns, self.time_style)] = render(start_ns, self.time_style)
        return text

    def _consumption(self, path, query, data, fault):
        starts = sorted(data)
        if "period_from" in query:
            start = parse_query_time(query["period_from"])
            first = next((i for i, s in enumerate(starts) if s >= start), len(starts))
            if fault and fault.kind == "over_return":  # the API sometimes includes rows before the period
                first = max(0, first - fault.extra_rows)
            starts = starts[first:]
        if "period_to" in query:
            end = parse_query_time(query["period_to"])
            starts = [s for s in starts if s < end]
        if query.get("order_by", "-period") != "period":
            starts.reverse()
        size = int(query.get("page_size", 100))
        page = int(query.get("page", 1))
        chosen = starts[(page - 1) * size: page * size]
        more = page * size < len(starts)
        base = self.foreign_url.rstrip("/") if fault and fault.kind == "foreign_next" else self.url
        return {
            "count": len(starts),
            "next": f"{base}{path}?{urlencode({**query, 'page': page + 1})}" if more else None,
            "previous": f"{self.url}{path}?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "results": [{"consumption": data[s], "interval_start": self._render(s),
                         "interval_end": self._render(s + HALF_HOUR_NS)} for s in chosen],
        }
