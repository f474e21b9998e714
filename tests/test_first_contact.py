"""What a new user meets first: the README's schema is what the demo prints, discover speaks London
dates, and the demo works for discover too."""

import os
import re
import time
from pathlib import Path

import pytest

from conftest import parse, run_once

README = Path(__file__).resolve().parent.parent / "README.md"


def demo_schema(tmp_path) -> dict:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    lines = []
    for args in (("--demo", "--once"), ("--demo", "live", "--once"), ("--demo", "--once", "--compare-detail",
                                                                         "half-hour")):
        result = run_once(env, args=args)  # the README's demo command as it is: no --max-points
        assert result.returncode == 0 and b"OCTO_MAX_POINTS" not in result.stderr
        lines += result.stdout.decode().splitlines()
    schema = {}
    for point in parse(lines):
        tags, fields = schema.setdefault(point["measurement"], (set(), set()))
        tags.update(point["tags"])
        fields.update(point["fields"])
    return schema


def readme_schema() -> dict:
    section = (README.parent / "docs" / "schema.md").read_text()
    schema = {}
    for row in re.findall(r"^\| `(octopus_[a-z_]+)` \|([^|]*)\|([^|]*)\|", section, re.M):
        measurement, tags, fields = row
        schema[measurement] = (set(re.findall(r"`([a-z_0-9]+)`", tags)), set(re.findall(r"`([a-z_0-9]+)`", fields)))
    return schema


def test_the_readme_schema_is_what_the_demo_prints(tmp_path):
    assert readme_schema() == demo_schema(tmp_path)


def test_discover_works_with_the_demo_and_prints_london_dates(tmp_path):
    result = run_once({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, args=("discover", "--demo"))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    # the agreement starts 2025-04-01T00:00:00+01:00: London's 1 April, though 31 March in UTC
    assert "E-1R-AGILE-24-10-01-A from 2025-04-01 to 2025-10-20" in text and "2025-03-31" not in text
    assert "* E-1R-IOG-SMB-VAR-24-10-29-A from 2025-10-24" in text
    assert "OCTO_ACCOUNT_NUMBER=A-DEMO0001" in text


def bare_env(tmp_path, **more) -> dict:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", **more}


def test_the_readme_demo_command_is_the_one_the_schema_test_runs():
    first = re.findall(r"```sh\n(apt-get update[^\n]*)\n```", README.read_text())[0]
    assert first.endswith("&& .venv/bin/octopus-telegraf --demo --once")


def test_the_demo_lies_in_the_dashboards_default_last_7_days(tmp_path):
    import json

    dashboard = json.loads((README.parent / "telegraf/grafana/dashboards/octopus-energy.json").read_text())
    assert dashboard["time"] == {"from": "now-7d", "to": "now+1d"}  # tomorrow's prices and planned slots too
    result = run_once(bare_env(tmp_path, OCTO_DEMO_UNTIL=""), args=("--demo", "--once"))  # not pinned: today
    stamps = [p["time"] for p in parse(result.stdout.decode().splitlines())
              if p["measurement"] == "octopus_consumption"]
    now = time.time_ns()
    week = [s for s in stamps if s >= now - 7 * 86400 * 10**9]
    assert max(stamps) <= now and len(week) >= 3 * 46 * 6  # at least six London days of all three meters
    lag = [p["fields"]["lag_seconds"] for p in parse(result.stdout.decode().splitlines())
           if p["measurement"] == "octopus_collector"]
    assert max(lag) < 86400 + 3600  # no "397 days late"


def test_each_command_has_its_own_help(tmp_path):
    texts = {}
    for command in ("run", "live", "discover", "sample-config", "compare"):
        result = run_once(bare_env(tmp_path), args=(command, "--help"))
        assert result.returncode == 0
        texts[command] = result.stdout.decode()
        assert texts[command].startswith(f"usage: octopus-telegraf {command}")
    assert len(set(texts.values())) == 5
    assert "--days" in texts["compare"] and "--days" not in texts["run"]
    assert "--live" in texts["sample-config"] and "OCTO_" not in texts["sample-config"]
    assert "OCTO_LIVE_GROUPING" in texts["live"] and "OCTO_LIVE_GROUPING" not in texts["run"]
    assert "OCTO_COMPARE" in texts["compare"] and "OCTO_COMPARE" not in texts["discover"]


def test_live_as_a_flag_outside_sample_config_is_refused(tmp_path):
    result = run_once(bare_env(tmp_path), args=("--demo", "--live", "--once"))
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode().startswith("E! --live goes with sample-config")


def test_a_misspelt_setting_is_named_with_the_one_meant(tmp_path):
    result = run_once(bare_env(tmp_path, OCTO_API_KEY="sk_live_x", OCTO_ACOUNT_NUMBER="A-1234ABCD",
                               OCTO_LOG_LEVL="debug"))
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2
    unknown = "is not a setting octopus-telegraf reads; did you mean"
    assert lines[0] == f"W! OCTO_ACOUNT_NUMBER {unknown} OCTO_ACCOUNT_NUMBER?"
    assert lines[1] == f"W! OCTO_LOG_LEVL {unknown} OCTO_LOG_LEVEL?"
    assert lines[2].startswith("E! ") and "no meter is configured" in lines[2]


@pytest.mark.parametrize("name,value", [("OCTO_ELECTRIC_MPAN", "123"), ("OCTO_GAS_MPRN", "12345"),
                                        ("OCTO_GAS_MPRN", "12345678901"), ("OCTO_ACCOUNT_NUMBER", "A-123")])
def test_meter_and_account_numbers_are_checked_at_start(tmp_path, name, value):
    serial = {"OCTO_ELECTRIC_MPAN": "OCTO_ELECTRIC_SN", "OCTO_GAS_MPRN": "OCTO_GAS_SN"}.get(name)
    env = bare_env(tmp_path, OCTO_API_KEY="sk_live_x", **{name: value}, **({serial: "S1"} if serial else {}))
    started = time.monotonic()
    result = run_once(env)
    assert result.returncode == 2 and time.monotonic() - started < 5  # refused at once, not a DNS error later
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"E! {name} must")


def test_discover_asks_for_the_account_number_first(tmp_path):
    result = run_once(bare_env(tmp_path, OCTO_API_KEY="sk_live_x"), args=("discover",))
    assert result.returncode == 2
    assert result.stderr.decode().startswith("E! OCTO_ACCOUNT_NUMBER is required for discover")


def test_a_first_start_is_information_not_a_warning(fake, plugin_env):
    from conftest import IMPORT, meter_env
    from fake_octopus import london

    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    result = run_once({**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-03-01"})
    stderr = result.stderr.decode()
    assert "I! no saved state at" in stderr and not [line for line in stderr.splitlines() if line[:3] in ("W! ", "E! ")]


def test_the_readme_has_no_step_a_newcomer_trips_over():
    text = README.read_text()
    assert "`bucket` constant" not in text  # the data source's dbName is what names the bucket
    assert 'tagexclude = ["host"]' in text and "omit_hostname = true` in `[agent]` would" in text
    assert "git clone" in text.split("## Two commands on a fresh machine", 1)[1].split("```", 1)[0]
    bare = re.findall(r"(?<![/\w])octopus-telegraf (?:discover --demo|--demo live --once|live --once)", text)
    assert not bare, bare  # every command a reader copies works without an activated venv
    for name in ("OCTO_LIVE_BACKFILL_MINUTES", "OCTO_LIVE_GROUPING", "OCTO_COMPARE", "OCTO_EVENTS"):
        assert f"| `{name}`" in text, name
    assert "tz('Europe/London')" in text and "InfluxDB 3" in text
    dockerfile = (README.parent / "Dockerfile").read_text()
    assert "--env-file telegraf/.env" in dockerfile and "drops the InfluxDB and Grafana passwords" in dockerfile


def test_a_request_tried_once_does_not_say_after_1_attempts(fake, plugin_env):
    from conftest import IMPORT, meter_env
    from fake_octopus import london

    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    fake.inject("status", status=503, path="/consumption/", times=3)
    result = run_once({**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_RETRY_PAUSE": "0"})
    stderr = result.stderr.decode()
    assert "after 3 attempts" in stderr and "after 1 attempts" not in stderr


def test_the_readme_points_only_at_what_a_user_can_see_and_says_where_the_logs_are():
    text = README.read_text()
    for hidden in ("SPEC", "<this repository's URL>", "performance issue", "the project's issue"):
        assert hidden not in text, hidden
    assert "journalctl -u telegraf" in text and "docker compose logs telegraf" in text
    assert "octopus-telegraf status" in text and "Exit statuses" in text
    assert (README.parent / "LICENSE").read_text().startswith("MIT License")
    for link in re.findall(r"\]\(((?:docs|telegraf)/[^)#]+)\)", text):
        assert (README.parent / link).exists(), link  # every file it links to is in the repository
    developer = ("## The REST half first", "## Performance", "## Layout")
    assert not any(heading in text for heading in developer)  # those are in docs/ now
