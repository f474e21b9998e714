"""`octopus-telegraf status` answers "is it working?" from the state directory the service writes: each
meter's newest half-hour and its lag, what the last gather met, the GraphQL calls of the last hour, what
each extra waits for; exit 1 when data are late or no service has gathered there."""

import json
import os
import time

from conftest import IMPORT, meter_env, run_once
from fake_octopus import HALF_HOUR_NS

DAY_NS = 48 * HALF_HOUR_NS


def status(env, *args):
    result = run_once(env, args=("status", *args))
    assert not result.stderr, result.stderr  # stdout only: nothing to log
    return result.returncode, result.stdout.decode()


def recent_end() -> int:
    return time.time_ns() // HALF_HOUR_NS * HALF_HOUR_NS - 4 * HALF_HOUR_NS


def test_status_names_each_meter_its_newest_half_hour_and_says_on_time(fake, plugin_env):
    end = recent_end()
    fake.add_meter(*IMPORT, end - 2 * DAY_NS, end)
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_ELECTRIC_COST": "24.5"}
    code, text = status(env)
    assert code == 1 and "no service has run" in text  # a healthcheck must not pass before anything ran
    assert run_once(env).returncode == 0
    code, text = status(env, "--json")
    record = json.loads(text)
    assert code == 0 and record["late"] is None and record["failed"] == 0
    (meter,) = record["meters"]
    assert [meter[name] for name in ("fuel", "direction", "point", "serial")] == ["electricity", "import", *IMPORT[1:]]
    assert meter["newest_end"] == end and meter["error"] is None
    assert record["graphql"] == {"calls_last_hour": 0, "per_hour": 60, "paused_for_s": None}
    code, text = status(env)
    assert code == 0 and text.splitlines()[-1] == "Data: on time"
    row = next(line for line in text.splitlines() if IMPORT[1] in line)
    assert row.endswith("ok") and " h " in row  # its lag, in hours


def test_late_data_and_a_failing_gather_are_said_and_exit_1(fake, plugin_env):
    end = recent_end() - 3 * DAY_NS
    fake.add_meter(*IMPORT, end - DAY_NS, end)
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_ELECTRIC_COST": "24.5", "OCTO_RETRY_PAUSE": "0"}
    assert run_once(env).returncode == 0
    code, text = status(env)
    assert code == 1 and f"LATE: no half-hour in the last 48 hours: electricity import {IMPORT[1]}" in text
    fake.inject("status", path="/consumption/", times=10, status=503)
    failed = run_once(env)
    assert failed.returncode == 1  # every meter failed: --once says so
    assert "will retry when it is run again" in failed.stderr.decode()  # --once has no next gather
    assert "next gather" not in failed.stderr.decode()
    code, text = status(env)
    row = next(line for line in text.splitlines() if IMPORT[1] in line)
    assert code == 1 and "HTTP 503" in row and "1 of 1 meters failed" in text


def test_a_service_waiting_for_telegrafs_first_tick_is_not_late(fake, plugin_env, launch):
    fake.add_meter(*IMPORT, recent_end() - DAY_NS, recent_end())
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_ELECTRIC_COST": "24.5"}
    plugin = launch(env)
    path = os.path.join(env["OCTO_STATE_DIR"], "status.json")
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    code, text = status(env)
    assert code == 0 and "waiting for the first gather" in text
    assert plugin.stop()[0] == 0
    code, text = status(env)  # a service that ended (a bad setting, a crash) is not working, whatever it wrote
    assert code == 1 and "is not running" in text


def test_an_extra_in_trouble_says_what_it_waits_for(fake, plugin_env):
    from test_prices import ACCOUNT, account_document, agreement

    end = recent_end()
    fake.add_meter(*IMPORT, end - DAY_NS, end)
    fake.accounts[ACCOUNT] = account_document([agreement("E-1R-VAR-22-11-01-C", end - 400 * DAY_NS)])
    fake.inject("status", path="/graphql/", times=50, status=502)
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_EVENTS": "true", "OCTO_RETRY_PAUSE": "0"}
    assert run_once(env).returncode == 0
    code, text = status(env, "--json")
    extras = {item["name"]: item for item in json.loads(text)["enrichments"]}
    waiting = [item for item in extras.values() if item["state"] == "waiting"]
    assert waiting and all("502" in item["error"] for item in waiting), extras
    assert code == 0  # an extra in trouble is not late data


def test_once_speaks_of_running_it_again_and_status_of_more_to_come(fake, plugin_env):
    end = recent_end()
    fake.add_meter(*IMPORT, end - DAY_NS, end)
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_ELECTRIC_COST": "24.5", "OCTO_MAX_POINTS": "10"}
    result = run_once(env)
    assert "the rest follows when it is run again" in result.stderr.decode() and result.returncode == 0
    code, text = status(env)
    assert code == 0 and "more to come (OCTO_MAX_POINTS)" in text
