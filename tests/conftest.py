"""Fixtures: the fake API, the installed command run as Telegraf runs it, and a real InfluxDB."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import line_protocol_parser
import pytest

sys.path.insert(0, os.path.dirname(__file__))
# The tests run the installed command, ruff and hadolint from the environment running pytest (a venv
# is not on PATH when pytest is started as .venv/bin/python -m pytest), and so do the children.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")

# The demo's four weeks end today unless pinned: the tests pin them to the four weeks over the October 2025
# clock change, here for the modules they import and, through demo_env(), for the commands they run.
DEMO_UNTIL = "2025-11-03"
os.environ["OCTO_DEMO_UNTIL"] = DEMO_UNTIL

from influx import InfluxdFailed, find_influxd, running_influxd  # noqa: E402

from fake_octopus import FakeOctopus  # noqa: E402

COMMAND = shutil.which("octopus-telegraf")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
IMPORT = ("electricity", "1200000000001", "21L0000001")
EXPORT = ("electricity", "1200000000002", "21L0000001")
GAS = ("gas", "3100000001", "G4A00000001")


@pytest.fixture
def fake():
    server = FakeOctopus()
    yield server
    server.close()


def meter_env(*meters) -> dict:
    env = {}
    for meter in meters:
        if meter == IMPORT:
            env.update(OCTO_ELECTRIC_MPAN=meter[1], OCTO_ELECTRIC_SN=meter[2])
        elif meter == EXPORT:
            env.update(OCTO_EXPORT_MPAN=meter[1], OCTO_EXPORT_SN=meter[2])
        elif meter == GAS:
            env.update(OCTO_GAS_MPRN=meter[1], OCTO_GAS_SN=meter[2])
    return env


@pytest.fixture
def plugin_env(fake, tmp_path):
    """A clean environment: nothing of the developer's own OCTO_* settings leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "OCTO_API_KEY": fake.api_key,
        "OCTO_API_URL": fake.url,
        "OCTO_STATE_DIR": str(tmp_path / "state"),
    }


def demo_env(env: dict, args) -> dict:
    """`env`, with the demo's calendar pinned when the command is a demo (unless the test sets its own)."""
    return {"OCTO_DEMO_UNTIL": DEMO_UNTIL, **env} if "--demo" in args else env


class Plugin:
    """The installed command under pipes, driven the way Telegraf's inputs.execd drives it."""

    def __init__(self, env: dict, args=()):
        assert COMMAND, "octopus-telegraf is not installed (pip install .)"
        self.proc = subprocess.Popen([COMMAND, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=demo_env(env, args))
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.raw_stdout = bytearray()
        self.raw_stderr = bytearray()
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, self.raw_stdout),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, self.raw_stderr),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines, raw):
        for chunk in iter(stream.readline, b""):
            with self._changed:
                raw.extend(chunk)
                lines.append(chunk.decode("utf-8").rstrip("\n"))
                self._changed.notify_all()

    def trigger(self, data: bytes = b"\n"):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait_until(self, predicate, timeout=20.0, what="condition"):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; stderr: {self.stderr[-5:]}")
                self._changed.wait(min(left, 0.2))

    def collector_lines(self) -> list[str]:
        return [line for line in self.stdout if line.startswith("octopus_collector,")]

    def wait_gathers(self, count: int, meters: int, timeout=30.0):
        """Each gather ends every meter's batch with one octopus_collector line."""
        self.wait_until(lambda: len(self.collector_lines()) >= count * meters, timeout,
                        f"{count} gathers of {meters} meters")

    def gather(self, meters: int, timeout=30.0):
        done = len(self.collector_lines()) // meters
        self.trigger()
        self.wait_gathers(done + 1, meters, timeout)

    def stop(self, timeout=10.0) -> tuple[int, float]:
        """Close stdin, as Telegraf does first; return (exit code, seconds taken)."""
        started = time.monotonic()
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self.proc.wait(timeout)
        elapsed = time.monotonic() - started
        for reader in self._readers:
            reader.join(5)
        return code, elapsed

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def launch():
    started = []

    def _launch(env, args=()):
        plugin = Plugin(env, args)
        started.append(plugin)
        return plugin

    yield _launch
    for plugin in started:
        plugin.kill()


@contextmanager
def saved_state(env):
    """The state file as a dict for a test to change (as if time had passed, or a section were damaged),
    written back on leaving."""
    path = os.path.join(env["OCTO_STATE_DIR"], "state.json")
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    yield state
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(state, handle)


def run_once(env, args=("--once",), timeout=60) -> subprocess.CompletedProcess:
    assert COMMAND, "octopus-telegraf is not installed (pip install .)"
    return subprocess.run([COMMAND, *args], env=demo_env(env, args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def parse(lines) -> list[dict]:
    return [line_protocol_parser.parse_line(line) for line in lines if line]


def consumption(points, meter=None) -> dict[int, dict]:
    """octopus_consumption points by timestamp, for one (fuel, point, serial) meter if given."""
    out = {}
    for point in points:
        if point["measurement"] != "octopus_consumption":
            continue
        tags = point["tags"]
        if meter and (tags["fuel"], tags["meter_point"], tags["serial"]) != meter:
            continue
        assert point["time"] not in out or meter is None, f"duplicate point at {point['time']}"
        out[point["time"]] = point["fields"]
    return out


# -- a real InfluxDB (Debian's influxdb 1.x package) on loopback ----------------------------------

@pytest.fixture(scope="session")
def influxdb(tmp_path_factory):
    influxd = find_influxd()
    if not influxd:
        if IN_CI:
            pytest.fail("influxd is not installed, and CI=true forbids skipping the InfluxDB round trip")
        pytest.skip("influxd not found: install Debian's influxdb package (apt-get install influxdb) to run this")
    try:
        with running_influxd(influxd, tmp_path_factory.mktemp("influxdb")) as influx:
            yield influx
    except InfluxdFailed as exc:
        pytest.fail(str(exc))
