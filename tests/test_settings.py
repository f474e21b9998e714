"""Settings as SPEC section 3: every bad value is refused at start, exit 2, one stderr line naming it."""

import subprocess
import time

import pytest

from octopus_telegraf.config.table import SETTINGS, flag_name

from conftest import COMMAND, GAS, IMPORT, meter_env, run_once

BAD = [
    ({"OCTO_ELECTRIC_SN": ""}, "OCTO_ELECTRIC_SN"),  # half a meter
    ({"OCTO_ELECTRIC_MPAN": ""}, "OCTO_ELECTRIC_MPAN"),
    ({"OCTO_GAS_SN": ""}, "OCTO_GAS_SN"),
    ({"OCTO_EXPORT_SN": "X1"}, "OCTO_EXPORT_MPAN"),
    ({"OCTO_ELECTRIC_MPAN": "12ab"}, "OCTO_ELECTRIC_MPAN"),
    ({"OCTO_ELECTRIC_SN": "21L\n0001"}, "OCTO_ELECTRIC_SN"),
    ({"OCTO_ELECTRIC_SN": "21L\\0001"}, "OCTO_ELECTRIC_SN"),
    ({"OCTO_ELECTRIC_COST": "cheap"}, "OCTO_ELECTRIC_COST"),
    ({"OCTO_GAS_COST": "nan"}, "OCTO_GAS_COST"),
    ({"OCTO_EXPORT_COST": "inf"}, "OCTO_EXPORT_COST"),
    ({"VOLUME_CORRECTION": "x"}, "VOLUME_CORRECTION"),
    ({"CALORIFIC_VALUE": "0"}, "CALORIFIC_VALUE"),
    ({"JOULES_CONVERSION": "-3.6"}, "JOULES_CONVERSION"),
    ({"PAGE_SIZE": "25001"}, "PAGE_SIZE"),
    ({"PAGE_SIZE": "1.5"}, "PAGE_SIZE"),
    ({"LOOP_TIME": "soon"}, "LOOP_TIME"),
    ({"LOOP_TIME": "0"}, "LOOP_TIME"),
    ({"OCTO_BACKFILL_FROM": "last tuesday"}, "OCTO_BACKFILL_FROM"),
    ({"OCTO_BACKFILL_DAYS": "-1"}, "OCTO_BACKFILL_DAYS"),
    ({"OCTO_LOOKBACK_HOURS": "many"}, "OCTO_LOOKBACK_HOURS"),
    ({"OCTO_MAX_POINTS": "0"}, "OCTO_MAX_POINTS"),
    ({"OCTO_API_URL": "http://api.octopus.energy"}, "OCTO_API_URL"),
    ({"OCTO_API_URL": "ftp://127.0.0.1"}, "OCTO_API_URL"),
    ({"OCTO_API_URL": "https://api.octopus.energy/v1/"}, "OCTO_API_URL"),
    ({"OCTO_HTTP_TIMEOUT": "0"}, "OCTO_HTTP_TIMEOUT"),
    ({"OCTO_HTTP_TIMEOUT": "1e300"}, "OCTO_HTTP_TIMEOUT"),  # accepted once, then failed every request
    ({"OCTO_API_KEY": "sk_live_ключ"}, "OCTO_API_KEY"),  # not Latin-1: every request raised
    ({"OCTO_API_URL": "http://127.0.0.1:99999"}, "OCTO_API_URL"),
    ({"OCTO_BACKFILL_FROM": "2999-01-01"}, "OCTO_BACKFILL_FROM"),  # would have waited for ever
    ({"OCTO_ACCOUNT_NUMBER": "garbage"}, "OCTO_ACCOUNT_NUMBER"),
    ({"OCTO_RETRY_PAUSE": "-1"}, "OCTO_RETRY_PAUSE"),
    ({"OCTO_E7_NIGHT": "night"}, "OCTO_E7_NIGHT"),
    ({"OCTO_TIMESTAMP": "middle"}, "OCTO_TIMESTAMP"),
    ({"OCTO_SCHEMA": "influx"}, "OCTO_SCHEMA"),
    ({"OCTO_PAYMENT_METHOD": "CASH"}, "OCTO_PAYMENT_METHOD"),
    ({"OCTO_LOG_LEVEL": "loud"}, "OCTO_LOG_LEVEL"),
    ({"OCTO_GAS_UNIT": "litres"}, "OCTO_GAS_UNIT"),
    ({"OCTO_GAS_UNIT": "auto"}, "OCTO_GAS_UNIT"),  # auto needs the account number
    ({"OCTO_API_KEY": ""}, "OCTO_API_KEY"),
]


@pytest.mark.parametrize("change,variable", BAD, ids=[f"{v}={c[v]!r}" if v in c else v for c, v in BAD])
def test_bad_setting_exits_2_with_one_line_naming_it(plugin_env, change, variable):
    env = {**plugin_env, **meter_env(IMPORT, GAS), **change}
    result = run_once(env, args=())  # the service itself must refuse to start, not only --once
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("E! ") and variable in lines[0], lines[0]
    assert result.stdout == b""


def test_no_meter_at_all_is_refused(plugin_env):
    result = run_once(plugin_env)
    assert result.returncode == 2
    line = result.stderr.decode().strip()
    assert line.startswith("E! ") and "OCTO_ELECTRIC_MPAN" in line and "\n" not in line


def test_flag_overrides_environment(plugin_env):
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_SCHEMA": "octopus"}
    result = run_once(env, args=("--once", "--schema", "nonsense"))
    assert result.returncode == 2 and "OCTO_SCHEMA" in result.stderr.decode()


def test_empty_values_mean_unset_as_docker_passes_them(plugin_env, fake):
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_EXPORT_MPAN": "", "OCTO_EXPORT_SN": "", "LOOP_TIME": "",
           "OCTO_GAS_COST": ""}
    result = run_once(env)
    assert result.returncode == 0, result.stderr


def test_help_lists_every_setting_quickly():
    started = time.monotonic()
    result = subprocess.run([COMMAND, "--help"], capture_output=True, timeout=30)
    elapsed = time.monotonic() - started
    text = result.stdout.decode()
    assert result.returncode == 0
    for name, _, _ in SETTINGS:
        assert name in text, name
    assert flag_name("OCTO_LOOKBACK_HOURS") in text
    assert elapsed < 5  # the 0.3 s target is measured by the benchmark, not asserted here


def test_version():
    from octopus_telegraf import __version__

    result = subprocess.run([COMMAND, "--version"], capture_output=True, timeout=30)
    assert result.returncode == 0 and __version__ in result.stdout.decode()


def test_python_dash_m_runs_the_same_command():
    import sys

    result = subprocess.run([sys.executable, "-m", "octopus_telegraf", "--version"], capture_output=True, timeout=30)
    assert result.returncode == 0 and b"octopus-telegraf" in result.stdout


def test_an_unknown_flag_is_one_line_and_exit_2():
    result = subprocess.run([COMMAND, "--no-such-flag"], capture_output=True, timeout=30)
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("E! ") and "--no-such-flag" in lines[0]
