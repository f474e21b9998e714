"""Debian's InfluxDB 1.x for the tests and the dashboard's picture: started on loopback in a directory of
its own, written to and queried over HTTP."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

from octopus_telegraf.base.timeutil import london_day_start


class InfluxdFailed(RuntimeError):
    pass


def find_influxd() -> str | None:
    return shutil.which("influxd") or ("/usr/bin/influxd" if os.path.exists("/usr/bin/influxd") else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Influx:
    def __init__(self, url: str):
        self.url = url

    def _call(self, path: str, params: dict, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", data=data,
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def create_database(self, name: str):
        status, body = self._call("/query", {"q": f'CREATE DATABASE "{name}"'}, data=b"")
        assert status == 200, body

    def write(self, database: str, lines: list[str]) -> list[int]:
        statuses = []
        for index in range(0, len(lines), 5000):
            status, body = self._call("/write", {"db": database, "precision": "ns"},
                                      ("\n".join(lines[index:index + 5000]) + "\n").encode())
            assert status == 204, f"InfluxDB refused the batch: {status} {body[:300]!r}"
            statuses.append(status)
        return statuses

    def query(self, database: str, q: str) -> list[dict]:
        import json

        status, body = self._call("/query", {"db": database, "q": q, "epoch": "ns"})
        assert status == 200, body
        result = json.loads(body)["results"][0]
        assert "error" not in result, result
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                rows.append(row)
        return rows


@contextmanager
def running_influxd(influxd: str, root):
    """influxd on two free loopback ports, its files under `root`; stopped on leaving."""
    http_port, bind_port = _free_port(), _free_port()
    config = root / "influxdb.conf"
    config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{bind_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
    log = open(root / "influxd.log", "wb")
    proc = subprocess.Popen([influxd, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
                    if response.status == 204:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise InfluxdFailed(f"influxd did not start: {(root / 'influxd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield Influx(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# -- Grafana's side: its macros filled in as it would, over the range it would ask for --------------------
RELATIVE = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}


def fill_macros(query: str, start_ms: int, end_ms: int) -> str:
    return (query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
            .replace("${__from}", str(start_ms)).replace("${__to}", str(end_ms)).replace("$__interval", "30m")
            .replace("$meter", ".*"))  # the meter variable's "All"


def default_window(panel, whole: tuple[int, int] | None = None) -> tuple[int, int]:
    """The range Grafana asks a panel for, in ms: its own relative time, else `whole`, else the dashboard's
    default range ("now-7d" to "now+1d")."""
    now_ms = time.time_ns() // 10**6
    relative = panel.get("timeFrom")
    if relative == "now/d":
        return london_day_start(time.time_ns()) // 10**6, now_ms
    if relative:
        return now_ms - RELATIVE[relative] * 1000, now_ms
    return whole or (now_ms - 7 * 86400 * 1000, now_ms + 86400 * 1000)
