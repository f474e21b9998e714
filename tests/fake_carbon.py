"""A fake Carbon Intensity API (the grid operator's, api.carbonintensity.org.uk) on loopback: regional and national
routes as the real one answers them, its 14-day limit (HTTP 400), and faults on demand (500, an HTML 502,
429 with Retry-After, answers of the wrong shape, a body that never ends). Its tables are a deterministic
function of region and time; national actuals exist only for half-hours past the fake's clock."""

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_octopus import QUICK_STOP, send_reply

HALF_HOUR_NS = 1800 * 10**9
DAY_NS = 86400 * 10**9


def parse(text: str) -> int:
    """`2026-10-25T00:00Z` -> ns."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc).timestamp()) * 10**9


def render(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def forecast(region: int, start_ns: int) -> int:
    """gCO2/kWh: a daily swing, a region offset, a little noise; whole numbers, as the API gives them."""
    half_hour = start_ns // HALF_HOUR_NS
    return 60 + (half_hour % 48) * 4 + region * 3 + (half_hour * 7919) % 23


def actual(start_ns: int) -> int:
    return forecast(18, start_ns) - 9


class FakeCarbon:
    def __init__(self):
        self.requests: list[tuple[str, dict]] = []  # (path, headers) as received
        self.faults: list = []  # what the next requests get, one each: "500", "html", "429", "shape", "drip"
        self.now_ns: int | None = None  # national actuals exist before this (None: real time)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None
        threading.Thread(target=self.server.serve_forever, kwargs=QUICK_STOP, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.requests.append((self.path, dict(self.headers)))
                    fault = fake.faults.pop(0) if fake.faults else None
                if fault == "500":
                    return self._send(500, b'{"error": "boom"}')
                if fault == "html":
                    return self._send(502, b"<html><body>Bad Gateway</body></html>", "text/html")
                if fault == "429":
                    return self._send(429, b'{"error": "slow down"}', headers={"Retry-After": "1"})
                if fault == "drip":  # a body that never ends
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        self.wfile.write(b'{"data": [')
                        for _ in range(600):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.1)
                    except OSError:
                        pass
                    return None
                parts = self.path.strip("/").split("/")
                try:
                    if len(parts) == 6 and parts[:2] == ["regional", "intensity"] and parts[4] == "regionid":
                        low, high, region, national = parse(parts[2]), parse(parts[3]), int(parts[5]), False
                    elif len(parts) == 3 and parts[0] == "intensity":
                        low, high, region, national = parse(parts[1]), parse(parts[2]), 18, True
                    else:
                        return self._send(404, b'{"error": {"code": "404 Not Found"}}')
                except ValueError:
                    return self._send(400, b'{"error": {"code": "400 Bad Request", "message": "Invalid date"}}')
                if high - low > 14 * DAY_NS or high <= low:
                    return self._send(400, b'{"error": {"code": "400 Bad Request", "message": '
                                           b'"Date range must be less than 14 days"}}')
                now = fake.now_ns if fake.now_ns is not None else time.time_ns()
                entries = []
                for start in range(low - low % HALF_HOUR_NS, high, HALF_HOUR_NS):
                    value = {"forecast": forecast(region, start), "index": "moderate"}
                    if national:
                        value["actual"] = actual(start) if start + HALF_HOUR_NS <= now else None
                    entries.append({"from": render(start), "to": render(start + HALF_HOUR_NS), "intensity": value})
                body = {"data": entries} if national else \
                    {"data": {"regionid": region, "shortname": "Fake", "data": entries}}
                if fault == "empty":  # a 200 with no half-hour in it (the API has nothing for now)
                    body = {"data": []} if national else {"data": {"regionid": region, "data": []}}
                if fault == "huge":  # 10,000 entries, nearly all outside the span asked
                    extra = [{"from": render(low - (i + 1) * HALF_HOUR_NS), "to": render(low - i * HALF_HOUR_NS),
                              "intensity": {"forecast": 1, "index": "low"}} for i in range(10_000)]
                    body = {"data": extra + entries} if national else {"data": {"regionid": region,
                                                                               "data": extra + entries}}
                if fault == "shape":  # by region, `data` as a list: the national shape where an object belongs
                    body = {"data": [body["data"]]} if not national else {"data": {"data": entries}}
                return self._send(200, json.dumps(body).encode())

            _send = send_reply

        return Handler
