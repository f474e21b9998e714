"""Execd behaviour as SPEC section 4: the installed command under pipes, as Telegraf runs it."""

import json
import os
import signal
import stat
import time

import pytest

from conftest import EXPORT, GAS, IMPORT, consumption, meter_env, parse, run_once
from fake_octopus import london


@pytest.fixture
def three_meters(fake, plugin_env):
    start, end = london(2024, 3, 1), london(2024, 3, 8)
    for meter in (IMPORT, EXPORT, GAS):
        fake.add_meter(*meter, start, end)
    return {**plugin_env, **meter_env(IMPORT, EXPORT, GAS), "OCTO_BACKFILL_FROM": "2024-03-01"}


def test_no_output_before_a_trigger_then_one_gather_per_read(fake, three_meters, launch):
    plugin = launch(three_meters)
    time.sleep(1.5)
    assert plugin.stdout == [] and fake.requests == []  # signal = "STDIN": nothing until Telegraf asks
    plugin.trigger(b"\n\n\n")  # newlines queued while busy arrive in one read: one gather
    plugin.wait_gathers(1, 3)
    time.sleep(1.5)
    assert len(plugin.collector_lines()) == 3
    assert len(fake.consumption_requests()) == 3
    points = parse(plugin.stdout)
    assert len(consumption(points, IMPORT)) == 7 * 48
    code, elapsed = plugin.stop()
    assert code == 0 and elapsed < 3


def test_stdout_is_line_protocol_only_and_stderr_prefixed(three_meters, launch):
    plugin = launch({**three_meters, "OCTO_LOG_LEVEL": "debug"})
    plugin.gather(3)
    plugin.stop()
    assert all(line.startswith(("octopus_consumption,", "octopus_daily,", "octopus_collector,"))
               for line in plugin.stdout)
    parse(plugin.stdout)  # raises on any malformed line
    assert plugin.stderr, "debug logging printed nothing"
    for line in plugin.stderr:
        assert line[:3] in ("E! ", "W! ", "I! ", "D! "), line
        assert len(line.encode()) < 1024


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_signals_trigger_a_gather(three_meters, launch, signum):
    plugin = launch(three_meters)
    plugin.wait_until(lambda: any("meters" in line for line in plugin.stderr), 10, "start-up log")
    plugin.signal(signum)
    plugin.wait_gathers(1, 3)
    assert plugin.proc.poll() is None
    code, _ = plugin.stop()
    assert code == 0


def test_loop_time_gathers_at_start_and_then_on_its_own(three_meters, launch):
    plugin = launch({**three_meters, "LOOP_TIME": "1"})
    plugin.wait_gathers(3, 3, timeout=15)
    code, elapsed = plugin.stop()
    assert code == 0 and elapsed < 3
    first = [line for line in plugin.stdout if line.startswith("octopus_consumption,")]
    assert len(first) == 3 * 7 * 48  # later gathers printed nothing again


def test_sigterm_during_a_slow_request_exits_0_within_3s_and_saves(fake, three_meters, launch, tmp_path):
    plugin = launch({**three_meters, "OCTO_HTTP_TIMEOUT": "60"})
    plugin.gather(3)
    fake.inject("slow", seconds=30)
    plugin.trigger()
    plugin.wait_until(lambda: len(fake.requests) == 4, 10, "the slow request")
    started = time.monotonic()
    plugin.signal(signal.SIGTERM)
    code = plugin.proc.wait(10)
    assert code == 0 and time.monotonic() - started < 3
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert len(saved["meters"]) == 3


def test_stdin_eof_during_a_slow_request_exits_0_within_3s(fake, three_meters, launch):
    plugin = launch({**three_meters, "OCTO_HTTP_TIMEOUT": "60"})
    fake.inject("slow", seconds=30)
    plugin.trigger()
    plugin.wait_until(lambda: len(fake.requests) == 1, 10, "the slow request")
    code, elapsed = plugin.stop()
    assert code == 0 and elapsed < 3


def test_state_file_is_private_and_restart_repeats_nothing(fake, three_meters, launch, tmp_path):
    plugin = launch(three_meters)
    plugin.gather(3)
    plugin.stop()
    path = tmp_path / "state" / "state.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    # no temporary files left; status.json is what `octopus-telegraf status` reads, private like the state
    assert {p.name for p in path.parent.iterdir()} == {"state.json", "main.lock", "status.json"}
    assert stat.S_IMODE(os.stat(path.parent / "status.json").st_mode) == 0o600
    again = launch(three_meters)
    again.gather(3)
    again.stop()
    assert [line for line in again.stdout if line.startswith("octopus_consumption")] == []


def test_once_exits_0_when_one_meter_fails_and_1_when_all_fail(fake, three_meters):
    fake.inject("status", status=403, path=IMPORT[1])
    result = run_once(three_meters)
    assert result.returncode == 0, result.stderr
    points = parse(result.stdout.decode().splitlines())
    assert consumption(points, EXPORT) and consumption(points, GAS) and not consumption(points, IMPORT)
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith("E! ")]
    assert len(errors) == 1 and IMPORT[1] in errors[0] and "403" in errors[0]

    bad_key = {**three_meters, "OCTO_API_KEY": "sk_live_wrong", "OCTO_STATE_DIR": three_meters["OCTO_STATE_DIR"] + "2"}
    result = run_once(bad_key)
    assert result.returncode == 1
    assert result.stderr.decode().count("E! ") == 3


def test_collector_point_per_meter_per_gather(fake, three_meters, launch):
    plugin = launch(three_meters)
    before = time.time_ns()
    plugin.gather(3)
    after = time.time_ns()
    collectors = [p for p in parse(plugin.stdout) if p["measurement"] == "octopus_collector"]
    assert len(collectors) == 3
    for point in collectors:
        assert before <= point["time"] <= after
        assert point["fields"]["points"] == 7 * 48 + 7 and point["fields"]["requests"] == 1  # and 7 daily points
        assert point["fields"]["errors"] == 0
        newest_end = london(2024, 3, 8)
        expected_lag = (point["time"] - newest_end) / 1e9
        assert abs(point["fields"]["lag_seconds"] - expected_lag) < 0.01  # 10 significant digits
    assert {p["tags"]["meter_point"] for p in collectors} == {IMPORT[1], EXPORT[1], GAS[1]}
    plugin.stop()


def test_steady_state_gather_is_one_request_per_meter(fake, three_meters, launch):
    plugin = launch(three_meters)
    plugin.gather(3)
    count = len(fake.consumption_requests())
    plugin.gather(3)
    plugin.gather(3)
    assert len(fake.consumption_requests()) - count == 6
    plugin.stop()


def test_a_closed_stdout_ends_the_service_quietly(three_meters):
    import subprocess

    from conftest import COMMAND

    proc = subprocess.Popen([COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=three_meters)
    try:
        proc.stdout.close()  # Telegraf went away without closing our stdin
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_state_dir_that_cannot_be_made_is_refused(three_meters, tmp_path):
    (tmp_path / "a-file").write_text("")
    result = run_once({**three_meters, "OCTO_STATE_DIR": str(tmp_path / "a-file" / "state")})
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "OCTO_STATE_DIR" in lines[0]
