"""`octopus-telegraf live`: Home Mini readings, each printed once across restarts and failures, on the
shared GraphQL budget, under the same execd contract as the main service."""

import signal
import time

import pytest

from test_prices import ACCOUNT, account_document, agreement

from conftest import parse, run_once
from fake_octopus import london

SECOND = 10**9
ELECTRIC, GAS_DEVICE, EXPORT_DEVICE = "00-11-22-33-44-55-66-01", "00-11-22-33-44-55-66-02", "00-11-22-33-44-55-66-03"


def readings(every_s: int, hours_back: float, hours_ahead: float = 1.0) -> dict:
    """Readings around now, on multiples of `every_s`; every seventh has a null demand."""
    now = time.time_ns() // (every_s * SECOND) * every_s * SECOND
    out = {}
    for index, at in enumerate(range(now - int(hours_back * 3600) * SECOND, now + int(hours_ahead * 3600) * SECOND,
                                     every_s * SECOND)):
        out[at] = (1_000_000 + index * 1.5, 1.5, None if index % 7 == 0 else 540.0 + index % 5)
    return out


@pytest.fixture
def live_env(fake, plugin_env):
    fake.accounts[ACCOUNT] = account_document([agreement("E-1R-VAR-22-11-01-C", london(2024, 1, 1))])
    fake.add_device(ELECTRIC, "electricity", "import", "1200000000001", "21L0000001", readings(10, 3))
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT}


def live_points(lines, device=ELECTRIC) -> dict[int, dict]:
    out = {}
    for point in parse(lines):
        assert point["measurement"] == "octopus_live"
        if point["tags"]["device_id"] == device:
            assert point["time"] not in out, "a reading printed twice"
            out[point["time"]] = point
    return out


def available(fake, device, since_ns) -> list[int]:
    limit = time.time_ns() - fake.telemetry_lag_s * SECOND
    return [at for at in sorted(fake.telemetry[device]) if since_ns <= at <= limit]


def test_first_start_prints_the_last_hour_with_exact_fields(fake, live_env):
    started = time.time_ns()
    result = run_once(live_env, args=("live", "--once"))
    assert result.returncode == 0, result.stderr
    points = live_points(result.stdout.decode().splitlines())
    expected = available(fake, ELECTRIC, started - 3600 * SECOND)
    assert abs(len(points) - len(expected)) <= 1 and len(points) >= 350  # an hour of 10 s readings, minus 20 s
    for at, point in points.items():
        wh, delta, demand = fake.telemetry[ELECTRIC][at]
        assert point["fields"]["register_kwh"] == pytest.approx(wh / 1000, rel=1e-12)
        assert point["fields"]["delta_kwh"] == pytest.approx(delta / 1000, rel=1e-12)
        assert point["fields"].get("demand_w") == demand  # null -> no field
        assert point["tags"] == {"fuel": "electricity", "direction": "import", "meter_point": "1200000000001",
                                 "device_id": ELECTRIC}
        assert isinstance(point["fields"]["register_kwh"], float)
    (call,) = fake.telemetry_calls
    assert call["grouping"] == "TEN_SECONDS" and call["start"].endswith("Z")


def test_a_restart_and_a_failed_gather_skip_nothing_and_repeat_nothing(fake, live_env, launch):
    fake.telemetry_lag_s = 600  # the newest ten minutes are not there yet
    plugin = launch(live_env, args=("live",))
    plugin.trigger()
    plugin.wait_until(lambda: len(plugin.stdout) > 100, what="the first readings")
    time.sleep(0.3)
    code, _ = plugin.stop()
    assert code == 0
    first = live_points(plugin.stdout)
    fake.telemetry_lag_s = 300
    fake.graphql_errors = ["KT-CT-9999"]  # the next call fails: a W!, nothing printed, nothing skipped
    again = launch(live_env, args=("live",))
    again.trigger()
    again.wait_until(lambda: any(line.startswith("W! ") for line in again.stderr), what="the failure")
    fake.telemetry_lag_s = 20
    again.trigger()
    again.wait_until(lambda: len(again.stdout) > 50, what="the rest")
    time.sleep(0.3)
    again.stop()
    second = live_points(again.stdout)
    assert not set(first) & set(second)
    together = sorted([*first, *second])
    assert together == available(fake, ELECTRIC, together[0])[: len(together)]  # contiguous: none skipped


def test_an_expired_token_loses_no_gather(fake, live_env, launch):
    plugin = launch(live_env, args=("live",))
    plugin.trigger()
    plugin.wait_until(lambda: len(plugin.stdout) > 100)
    fake.expire_tokens()
    before = len(fake.graphql_calls)
    plugin.trigger()
    plugin.wait_until(lambda: len(fake.telemetry_calls) == 2, what="the call repeated with a new token")
    time.sleep(0.3)
    plugin.stop()
    made = [c["query"].split("(")[0].split()[-1] for c in fake.graphql_calls[before:]]
    assert made == ["Telemetry", "Token", "Telemetry"]  # refused, one new token, the call once more
    assert not [line for line in plugin.stderr if line.startswith(("W! ", "E! "))]


def test_a_device_without_data_is_one_info_line_and_no_retry_storm(fake, live_env, launch):
    fake.add_device(EXPORT_DEVICE, "electricity", "export", "1200000000002", "21L0000001", None)  # KT-GB-4039
    plugin = launch(live_env, args=("live",))
    for _ in range(3):
        plugin.trigger()
        time.sleep(0.4)
    plugin.stop()
    asked = [call for call in fake.telemetry_calls if call["deviceId"] == EXPORT_DEVICE]
    assert len(asked) == 1
    infos = [line for line in plugin.stderr if EXPORT_DEVICE in line and "no data" in line]
    assert len(infos) == 1 and infos[0].startswith("I! ") and "KT-GB-4039" in infos[0]
    assert len([call for call in fake.telemetry_calls if call["deviceId"] == ELECTRIC]) == 3


def test_gas_is_asked_at_most_every_30_minutes(fake, live_env, launch):
    fake.add_device(GAS_DEVICE, "gas", "import", "3100000001", "G4A00000001", readings(1800, 3))
    plugin = launch(live_env, args=("live",))
    for _ in range(3):
        plugin.trigger()
        time.sleep(0.4)
    plugin.stop()
    assert len([call for call in fake.telemetry_calls if call["deviceId"] == GAS_DEVICE]) == 1
    gas = live_points(plugin.stdout, GAS_DEVICE)
    assert 1 <= len(gas) <= 3 and all(p["tags"]["fuel"] == "gas" for p in gas.values())


def test_readings_outside_the_asked_window_are_dropped(fake, live_env):
    fake.telemetry_extra_before = 600  # ten minutes more than asked
    started = time.time_ns()
    result = run_once(live_env, args=("live", "--once"))
    points = live_points(result.stdout.decode().splitlines())
    assert min(points) >= started - 3600 * SECOND - SECOND


def test_main_and_live_run_side_by_side_on_one_budget(fake, live_env, launch, tmp_path):
    fake.add_meter("electricity", "1200000000001", "21L0000001", london(2024, 1, 1), london(2024, 1, 2))
    env = {**live_env, "OCTO_BACKFILL_FROM": "2024-01-01", "OCTO_GRAPHQL_MAX_PER_HOUR": "4",
           "OCTO_GAS_UNIT": "auto"}
    main = launch(env)
    live = launch(env, args=("live",))
    for _ in range(3):
        main.trigger()
        live.trigger()
        time.sleep(0.5)
    main.stop()
    live.stop()
    assert len(fake.graphql_calls) == 4  # the shared ledger: never more than the budget
    assert main.proc.returncode == 0 and live.proc.returncode == 0
    assert {p.name for p in (tmp_path / "state").iterdir()} >= {"main.lock", "live.lock", "graphql-calls.json"}


def test_a_second_live_service_is_refused_and_stop_is_prompt(live_env, launch):
    live = launch(live_env, args=("live",))
    live.trigger()
    live.wait_until(lambda: len(live.stdout) > 100)
    refused = run_once(live_env, args=("live", "--once"))
    assert refused.returncode == 2 and "in use" in refused.stderr.decode()
    started = time.monotonic()
    live.signal(signal.SIGTERM)
    assert live.proc.wait(5) == 0 and time.monotonic() - started < 3


def test_demo_live_prints_a_deterministic_stream(tmp_path):
    env = {"PATH": "/usr/bin:/bin:" + __import__("os").environ["PATH"], "HOME": str(tmp_path)}
    first = run_once(env, args=("--demo", "live", "--once"))
    second = run_once(env, args=("live", "--demo", "--once"))
    assert first.returncode == 0
    a = {p["time"]: p for p in parse(first.stdout.decode().splitlines())}
    b = {p["time"]: p for p in parse(second.stdout.decode().splitlines())}
    shared = set(a) & set(b)
    assert len(shared) > 300 and all(a[t] == b[t] for t in shared)
    assert {p["tags"]["fuel"] for p in a.values()} == {"electricity", "gas"}
    assert all("demand_w" in p["fields"] for p in a.values() if p["tags"]["fuel"] == "electricity")
