"""What an attacker-minded review broke, each reproduced here first: a stop that hung on a full pipe,
two processes on one state, a clock in the future, lost prices, poisoned rows and endless pages."""

import json
import signal
import subprocess
import threading
import time

import pytest

from test_prices import ACCOUNT, AGILE, account_document, agile_price, agreement, half_hours

from conftest import COMMAND, GAS, IMPORT, consumption, meter_env, parse, run_once
from fake_octopus import HALF_HOUR_NS, london, render

SECOND = 10**9


@pytest.fixture
def two_meters(fake, plugin_env):
    for meter in (IMPORT, GAS):
        fake.add_meter(*meter, london(2024, 3, 1), london(2024, 5, 1))  # two months: far more than a pipe holds
    return {**plugin_env, **meter_env(IMPORT, GAS), "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_MAX_POINTS": "100000"}


def unread_child(env, stdout_read: bool = False, stderr_read: bool = False, args=()):
    """The plugin with pipes that nobody reads: Telegraf hung, or gone without closing them."""
    proc = subprocess.Popen([COMMAND, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    for stream, read in ((proc.stdout, stdout_read), (proc.stderr, stderr_read)):
        if read:
            threading.Thread(target=stream.read, daemon=True).start()
    return proc


def stop_and_time(proc, how) -> tuple[int, float]:
    started = time.monotonic()
    if how == "eof":
        proc.stdin.close()
    else:
        proc.send_signal(how)
    try:
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, time.monotonic() - started


# -- 1. a stop never hangs on a pipe, and a kill never leaves half a line --------------------------

@pytest.mark.parametrize("how", ["eof", signal.SIGTERM], ids=["stdin-eof", "sigterm"])
def test_stop_exits_0_within_3s_while_stdout_is_full(two_meters, how):
    proc = unread_child(two_meters, stderr_read=True)
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    time.sleep(2.5)  # the gather fills the 64 KiB pipe and blocks in a write
    code, elapsed = stop_and_time(proc, how)
    assert code == 0 and elapsed < 3.0


def test_stop_exits_0_within_3s_while_stderr_is_full(two_meters):
    env = {**two_meters, "OCTO_LOG_LEVEL": "debug", "OCTO_MAX_POINTS": "50"}  # many gathers, many log lines
    proc = unread_child(env, stdout_read=True)
    for _ in range(400):  # each trigger logs several debug lines: far more than stderr's pipe holds
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        time.sleep(0.005)
    time.sleep(1)
    code, elapsed = stop_and_time(proc, "eof")
    assert code == 0 and elapsed < 3.0


def test_a_kill_in_mid_write_leaves_only_whole_lines(two_meters):
    proc = unread_child(two_meters, stderr_read=True)
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    time.sleep(2)  # blocked in a write with the pipe full
    chunk = proc.stdout.read(100_000)  # let some writes through, then kill it between two of them
    proc.kill()
    rest = proc.stdout.read()
    proc.wait(5)
    data = chunk + rest
    assert len(data) > 100_000
    assert data.endswith(b"\n"), "a kill left half a line on stdout"
    assert len(parse(data.decode().splitlines())) == data.count(b"\n")


# -- 2. one process per state directory; trying it by hand eats nothing ---------------------------

def test_a_second_process_on_the_same_state_dir_is_refused(two_meters, launch):
    service = launch(two_meters)
    service.gather(2)
    for args in ((), ("--once",)):
        result = run_once(two_meters, args=args, timeout=20)
        errors = result.stderr.decode().splitlines()
        assert result.returncode == 2 and result.stdout == b""
        assert len(errors) == 1 and errors[0].startswith("E! ") and "in use" in errors[0]
    assert service.proc.poll() is None
    code, _ = service.stop()
    assert code == 0
    assert run_once({**two_meters, "OCTO_BACKFILL_FROM": "2024-04-30"}).returncode == 0  # the lock went with it


def test_trying_it_by_hand_with_dry_run_loses_nothing(fake, two_meters, launch, tmp_path):
    """Service stops, someone runs it by hand, the service starts again: every half-hour reaches it."""
    service = launch({**two_meters, "OCTO_MAX_POINTS": "2000"})
    service.gather(2)
    service.stop()
    state = tmp_path / "state" / "state.json"
    saved = state.read_bytes()
    by_hand = run_once(two_meters, args=("--once", "--dry-run"))
    assert by_hand.returncode == 0 and len(consumption(parse(by_hand.stdout.decode().splitlines()))) > 0
    assert state.read_bytes() == saved  # progress untouched
    again = launch(two_meters)
    again.gather(2)
    printed = consumption(parse(service.stdout + again.stdout), IMPORT)
    assert sorted(printed) == sorted(fake.data(*IMPORT))
    again.stop()


def test_dry_run_needs_once(two_meters):
    result = run_once(two_meters, args=("--dry-run",))
    assert result.returncode == 2 and "--dry-run goes with --once" in result.stderr.decode()


# -- 3. a wrong clock, a future setting: never a meter stopped for good ---------------------------

def write_state(tmp_path, meters: dict):
    (tmp_path / "state").mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "state" / "state.json").write_text(json.dumps({"version": 1, "meters": meters, "tariffs": {}}))


@pytest.mark.parametrize("field", ["start", "cursor"])
def test_a_saved_position_in_the_future_is_clamped_with_a_warning(fake, two_meters, tmp_path, field):
    future = time.time_ns() + 365 * 86400 * SECOND
    key = f"electricity:import:{IMPORT[1]}:{IMPORT[2]}"
    saved = {"start": london(2024, 3, 1), "cursor": None, "newest_end": None, "printed": []}
    saved[field] = future
    write_state(tmp_path, {key: saved})
    fake.meters[IMPORT] = {s: 0.2 for s in half_hours(time.time_ns() // HALF_HOUR_NS * HALF_HOUR_NS - 86400 * SECOND,
                                                      time.time_ns() // HALF_HOUR_NS * HALF_HOUR_NS)}
    result = run_once({**two_meters, "OCTO_BACKFILL_DAYS": "2"})
    warnings = [line for line in result.stderr.decode().splitlines() if "future" in line]
    assert len(warnings) == 1 and warnings[0].startswith("W! ")
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == 48


def test_rows_far_in_the_future_or_beyond_int64_are_counted_and_skipped(fake, two_meters):
    good = [{"consumption": 0.5, "interval_start": render(s, "api"), "interval_end": render(s + HALF_HOUR_NS, "api")}
            for s in half_hours(london(2024, 3, 1), london(2024, 3, 1, 2))]
    bad = [{"consumption": 0.5, "interval_start": "9999-12-31T00:00:00Z", "interval_end": "9999-12-31T00:30:00Z"},
           {"consumption": 0.5, "interval_start": "2099-01-01T00:00:00Z", "interval_end": "2099-01-01T00:30:00Z"}]
    fake.inject("raw", path=IMPORT[1], body=json.dumps({"count": 6, "next": None, "results": good + bad}).encode())
    result = run_once(two_meters)
    printed = consumption(parse(result.stdout.decode().splitlines()), IMPORT)
    assert sorted(printed) == list(half_hours(london(2024, 3, 1), london(2024, 3, 1, 2)))
    warnings = [line for line in result.stderr.decode().splitlines() if "unreadable rows" in line]
    assert warnings == [f"W! electricity import meter {IMPORT[1]}: skipped 2 unreadable rows"]


# -- 4, 5. prices: a transient 404 and a broken pipe lose nothing ---------------------------------

@pytest.fixture
def agile(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 1, 3))
    fake.accounts[ACCOUNT] = account_document([agreement(AGILE, london(2023, 6, 1))])
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE})
    fake.add_rates(AGILE, "standard-unit-rates", [(s, s + HALF_HOUR_NS, agile_price(s), agile_price(s), None)
                                                  for s in half_hours(london(2023, 12, 30), london(2024, 1, 4))])
    fake.add_rates(AGILE, "standing-charges", [(london(2023, 6, 1), None, 45.0, 42.86, None)])
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01",
            "OCTO_LOOKBACK_HOURS": "96"}


def test_a_transient_404_from_a_rates_endpoint_removes_no_price_for_good(fake, agile, launch):
    fake.inject("status", status=404, path="standard-unit-rates")
    plugin = launch(agile)
    plugin.gather(1)
    first = consumption(parse(plugin.stdout), IMPORT)
    assert len(first) == 96 and not any("cost_gbp" in fields for fields in first.values())
    plugin.stop()
    again = launch(agile)  # a restart: what the 404 left must not be taken as "no price"
    again.gather(1)
    # the unit rates follow the collector points
    again.wait_until(lambda: sum(line.startswith("octopus_unit_rate") for line in again.stdout) >= 96)
    again.stop()
    points = parse(again.stdout)
    costs = consumption(points, IMPORT)
    assert len(costs) == 96
    assert all(fields["unit_rate_pence"] == agile_price(start) for start, fields in costs.items())
    assert len([p for p in points if p["measurement"] == "octopus_unit_rate"]) >= 96


def test_unit_rates_are_not_marked_printed_when_the_write_fails(fake, agile, tmp_path):
    from octopus_telegraf.api.client import Client
    from octopus_telegraf.config.settings import load
    from octopus_telegraf.core.account import Account
    from octopus_telegraf.core.state import State
    from octopus_telegraf.service.collector import Collector

    settings = load(agile)

    def collect(output):
        client = Client(settings.api_url, settings.api_key, 10, threading.Event())
        state = State(settings.state_dir)
        state.load()
        Collector(settings, client, state, output, Account(client, ACCOUNT, "m3")).gather()

    def dies_on_unit_rates(lines):
        if any(line.startswith("octopus_unit_rate") for line in lines):
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        collect(dies_on_unit_rates)
    written = []
    collect(written.extend)
    assert len([line for line in written if line.startswith("octopus_unit_rate")]) >= 96


# -- 6, 7. poisoned rows -------------------------------------------------------------------------

@pytest.mark.parametrize("poison", [
    {"interval_start": None}, {"consumption": 10**400}, {"consumption": "1e400"}, {"interval_end": 12},
    {"consumption": None}, {"interval_start": "yesterday"}], ids=str)
def test_one_bad_row_is_a_counted_warning_and_every_meter_carries_on(fake, two_meters, poison):
    rows = [{"consumption": 0.5, "interval_start": render(s, "api"), "interval_end": render(s + HALF_HOUR_NS, "api")}
            for s in half_hours(london(2024, 3, 1), london(2024, 3, 1, 3))]
    rows[0].update(poison)
    body = json.dumps({"count": 6, "next": None, "results": rows}).replace("1e+400", "1e400")
    body = body.replace(str(10**400), "1" + "0" * 400)
    fake.inject("raw", path=IMPORT[1], body=body.encode())
    result = run_once({**two_meters, "OCTO_MAX_POINTS": "5000"})
    points = parse(result.stdout.decode().splitlines())
    assert len(consumption(points, IMPORT)) == 5
    assert len(consumption(points, GAS)) > 0  # the healthy meter is gathered
    assert len([p for p in points if p["measurement"] == "octopus_collector"]) == 2
    warnings = [line for line in result.stderr.decode().splitlines() if "unreadable rows" in line]
    assert warnings == [f"W! electricity import meter {IMPORT[1]}: skipped 1 unreadable rows"]


def test_a_half_hour_listed_twice_keeps_the_last_value_and_does_not_flip(fake, two_meters, launch):
    start = london(2024, 3, 1)
    rows = [{"consumption": value, "interval_start": render(start, "api"),
             "interval_end": render(start + HALF_HOUR_NS, "api")} for value in (0.1, 0.7)]
    fake.inject("raw", path=IMPORT[1], times=3, body=json.dumps({"count": 2, "next": None, "results": rows}).encode())
    plugin = launch(two_meters)
    for _ in range(3):
        plugin.gather(2)
    printed = [p for p in parse(plugin.stdout) if p["measurement"] == "octopus_consumption"
               and p["tags"]["meter_point"] == IMPORT[1]]
    assert [p["fields"]["kwh"] for p in printed] == [0.7]  # once, the last in the page, never again
    plugin.stop()


# -- 8, 9. requests that never end --------------------------------------------------------------

def test_a_dripping_body_is_cut_at_the_whole_request_deadline(fake, two_meters):
    fake.inject("drip", path=IMPORT[1], seconds=0.5, times=3)
    started = time.monotonic()
    result = run_once({**two_meters, "OCTO_HTTP_TIMEOUT": "2", "OCTO_RETRY_PAUSE": "0.1", "OCTO_MAX_POINTS": "500"},
                      timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 15  # three attempts of at most ~2.5 s each, not one that never ends
    assert any("timed out" in line and IMPORT[1] in line for line in result.stderr.decode().splitlines())
    assert len(consumption(parse(result.stdout.decode().splitlines()), GAS)) > 0


def test_a_next_link_to_the_same_page_ends_with_one_error(fake, two_meters, launch):
    rows = [{"consumption": 0.5, "interval_start": render(london(2024, 3, 1), "api"),
             "interval_end": render(london(2024, 3, 1) + HALF_HOUR_NS, "api")}]
    page = f"{fake.url}/v1/electricity-meter-points/{IMPORT[1]}/meters/{IMPORT[2]}/consumption/?page=1"
    fake.inject("raw", path=IMPORT[1], times=1000,
                body=json.dumps({"count": 99, "next": page, "results": rows}).encode())
    plugin = launch({**two_meters, "OCTO_MAX_POINTS": "500"})
    plugin.gather(2, timeout=20)
    asked = len([r for r in fake.consumption_requests() if IMPORT[1] in r.path])
    assert asked <= 3  # the first page, its `next`, the same `next` again: then it stops
    errors = [line for line in plugin.stderr if line.startswith("E! ") and "loop" in line]
    assert len(errors) == 1
    plugin.stop()


# -- 10. the smaller ones ------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"version": 1, "meters": {"k": {"start": 1, "cursor": 1' + "0" * 4000 + "}}}",
                                  '{"version": 1, "meters": {"k": {"start": 99999999999999999999999}}}'])
def test_a_poisoned_state_is_a_warning_and_a_fresh_backfill(fake, two_meters, tmp_path, text):
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "state.json").write_text(text)
    result = run_once({**two_meters, "OCTO_MAX_POINTS": "500"})
    assert result.returncode == 0
    assert any(line.startswith("W! state file") for line in result.stderr.decode().splitlines())
    assert "Traceback" not in result.stderr.decode()
    assert len(consumption(parse(result.stdout.decode().splitlines()))) > 0


def test_retry_after_is_bounded_whatever_the_api_says():
    from octopus_telegraf.api.faults import MAX_WAIT
    from octopus_telegraf.api.faults import retry_after_seconds as _retry_after_seconds

    assert _retry_after_seconds("inf") == MAX_WAIT
    assert _retry_after_seconds("nan") is None
    assert _retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT") == MAX_WAIT
    assert _retry_after_seconds("1e400") == MAX_WAIT
    assert _retry_after_seconds("5") == 5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_a_signal_during_start_up_is_no_traceback(two_meters, signum):
    proc = subprocess.Popen([COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**two_meters, "OCTO_MAX_POINTS": "100"})
    time.sleep(0.25)  # start-up: before the fix, handlers came only after ~0.3 s of imports
    proc.send_signal(signum)
    if signum in (signal.SIGHUP, signal.SIGUSR1):
        time.sleep(1.5)
        assert proc.poll() is None, "a trigger signal during start-up killed it"
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Traceback" not in err


def test_temporary_files_left_by_kills_are_removed_at_start(two_meters, tmp_path):
    (tmp_path / "state").mkdir(mode=0o700)
    for name in (".state.json-abc.tmp", ".state.json-def.tmp", ".live.json-ghi.tmp"):
        (tmp_path / "state" / name).write_text("{")
    assert run_once({**two_meters, "OCTO_MAX_POINTS": "100"}).returncode == 0
    # live's own save, beside it, is live's to clear
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [".live.json-ghi.tmp", "main.lock", "state.json",
                                                                        "status.json"]


def test_loop_time_with_stdin_at_dev_null_keeps_gathering(two_meters):
    proc = subprocess.Popen([COMMAND], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**two_meters, "LOOP_TIME": "1", "OCTO_MAX_POINTS": "100"})
    time.sleep(3.5)
    assert proc.poll() is None, "it exited on /dev/null's EOF"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=5)
    collectors = [line for line in out.decode().splitlines() if line.startswith("octopus_collector")]
    assert len(collectors) >= 2 * 2  # at least two gathers of two meters
    assert proc.returncode == 0


def test_a_tls_failure_is_one_error_not_retried(fake, two_meters):
    url = fake.url.replace("http://", "https://")  # the fake speaks plain HTTP: the handshake fails
    result = run_once({**two_meters, "OCTO_API_URL": url, "OCTO_LOG_LEVEL": "debug"})
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith("E! ")]
    assert len(errors) == 2 and all("TLS failure" in line and "127.0.0.1" in line for line in errors)
    assert not any("retrying" in line for line in result.stderr.decode().splitlines())


def test_network_errors_name_the_host_and_the_cause(two_meters):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens here once closed
    result = run_once({**two_meters, "OCTO_API_URL": f"http://127.0.0.1:{port}", "OCTO_RETRY_PAUSE": "0"})
    warnings = [line for line in result.stderr.decode().splitlines() if line.startswith("W! ") and "meter" in line]
    assert len(warnings) == 2 and all("127.0.0.1: network error: Connection refused" in line for line in warnings)


def test_the_point_budget_stopping_a_gather_is_one_info_line(two_meters):
    stopped = run_once({**two_meters, "OCTO_MAX_POINTS": "100"}).stderr.decode().splitlines()
    assert [line for line in stopped if "reached" in line] == [
        "I! OCTO_MAX_POINTS (100) reached: the rest follows when it is run again"]  # --once: no next gather
    whole = run_once({**two_meters, "OCTO_BACKFILL_FROM": "2024-04-30"}).stderr.decode()
    assert "reached" not in whole


@pytest.mark.parametrize("rows", [1, 1000, 2879])
def test_a_page_cut_off_mid_body_repeats_nothing_and_skips_nothing(fake, two_meters, rows):
    """Pages are printed as they stream in; a reset after some rows resumes just after the last one."""
    fake.meters.pop(GAS)
    fake.inject("cut", path=IMPORT[1], extra_rows=rows)
    env = {**two_meters, "OCTO_GAS_MPRN": "", "OCTO_GAS_SN": "", "OCTO_RETRY_PAUSE": "0"}
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    printed = [p["time"] for p in parse(result.stdout.decode().splitlines())
               if p["measurement"] == "octopus_consumption"]
    assert len(printed) == len(set(printed)) == len(fake.data(*IMPORT))  # 2,928 half-hours: each once
    assert sorted(printed) == sorted(fake.data(*IMPORT))
    asked = [r for r in fake.consumption_requests() if IMPORT[1] in r.path]
    assert len(asked) == 2  # the cut page, then the rest from just after its last row
    resumed = asked[1].query["period_from"]
    assert resumed > asked[0].query["period_from"]
