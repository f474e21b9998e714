"""The Grafana dashboard answers on a real database: the demo's output goes into InfluxDB, and every
panel's InfluxQL (Grafana's macros filled in as Grafana would) returns data, over the demo's weeks and
over the dashboard's default range after the README's demo load; the daily bill equals the plugin's own
totals; every name a panel uses is one the plugin prints; and what a person reads holds: one unit per
axis, labels that tell the series apart, thresholds only where a colour means something."""

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from influx import default_window, fill_macros
from octopus_telegraf.base.timeutil import london_day_start
from octopus_telegraf.demo.tariffs import DEMO_END_NS, DEMO_START_NS

from conftest import parse, run_once

DASHBOARD = Path(__file__).resolve().parent.parent / "telegraf" / "grafana" / "dashboards" / "octopus-energy.json"
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def demo_lines(tmp_path_factory):
    env = {"PATH": __import__("os").environ["PATH"], "HOME": str(tmp_path_factory.mktemp("home"))}
    main = run_once(env, args=("--demo", "--once", "--max-points", "100000"))
    live = run_once(env, args=("--demo", "live", "--once"))
    assert main.returncode == 0 and live.returncode == 0
    return main.stdout.decode().splitlines() + live.stdout.decode().splitlines()


@pytest.fixture(scope="module")
def loaded(influxdb, demo_lines):
    influxdb.create_database("dashboard")
    influxdb.write("dashboard", demo_lines)
    return influxdb


def panels():
    return json.loads(DASHBOARD.read_text())["panels"]


def annotations():
    return json.loads(DASHBOARD.read_text())["annotations"]["list"]


def window(panel) -> tuple[int, int]:
    """The time range Grafana would ask for, in ms: the pinned demo's four weeks, or the panel's own."""
    return default_window(panel, (DEMO_START_NS // 10**6, DEMO_END_NS // 10**6))


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: panel["title"])
def test_every_panel_query_returns_data(loaded, panel):
    for target in panel["targets"]:
        rows = loaded.query("dashboard", fill_macros(target["query"], *window(panel)))
        values = [v for row in rows for k, v in row.items() if k != "time" and isinstance(v, (int, float))]
        assert values, f"{panel['title']}: no data for {target['query']}"


def test_the_daily_bill_panel_equals_the_plugins_own_totals(loaded, demo_lines):
    (panel,) = [p for p in panels() if p["title"].startswith("Daily bill")]
    rows = loaded.query("dashboard", fill_macros(panel["targets"][0]["query"], *window(panel)))
    shown = {(row["fuel"], row["time"]): row["sum"] for row in rows if row["sum"] is not None}
    expected = defaultdict(float)
    for point in parse(demo_lines):
        tags, fields = point["tags"], point["fields"]
        if point["measurement"] == "octopus_consumption" and tags["direction"] == "import":
            expected[(tags["fuel"], london_day_start(point["time"]))] += fields["cost_gbp"]
        if point["measurement"] == "octopus_standing_charge":
            expected[(tags["fuel"], point["time"])] += fields["inc_vat"] / 100
    assert len(shown) == 2 * 28  # electricity and gas, every London day of the demo
    for key, total in shown.items():
        assert total == pytest.approx(expected[key], abs=1e-6), key
    assert sum(shown.values()) == pytest.approx(sum(expected.values()), abs=1e-4)


def names_in(query: str) -> tuple[set, set, set]:
    measurements = set(re.findall(r'FROM "([a-z_]+)"', query))
    aliases = set(re.findall(r'AS "([^"]+)"', query))  # a subquery's columns are not fields
    fields = set(re.findall(r'\(\s*"([a-z_0-9]+)"\s*\)', query)) - aliases
    tags = set(re.findall(r'"([a-z_]+)" = \'', query))
    for clause in re.findall(r"GROUP BY ([^)]*?)(?: fill| tz|$)", query):
        tags |= set(re.findall(r'"([a-z_]+)"', clause))
    return measurements, fields, tags


def test_every_name_a_panel_uses_is_printed_and_every_measurement_is_shown(demo_lines):
    schema = {}
    for point in parse(demo_lines):
        entry = schema.setdefault(point["measurement"], (set(), set()))
        entry[0].update(point["tags"])
        entry[1].update(point["fields"])
    shown = set()
    for panel in panels():
        for target in panel["targets"]:
            measurements, fields, tags = names_in(target["query"])
            assert measurements and measurements <= set(schema), (panel["title"], measurements)
            shown |= measurements
            assert all(any(f in schema[m][1] for m in measurements) for f in fields), (panel["title"], fields)
            assert all(any(t in schema[m][0] for m in measurements) for t in tags), (panel["title"], tags)
    for annotation in annotations():
        measurements, fields, tags = names_in(annotation["query"])
        assert measurements <= set(schema), annotation["name"]
        shown |= measurements
    assert shown == set(schema) - {"octopus_standing_charge"}  # standing charges are inside the daily bill
    assert "Flux" not in DASHBOARD.read_text() and "from(bucket" not in DASHBOARD.read_text()


@pytest.mark.parametrize("fuel,direction,money", [("electricity", "import", "cost_gbp"), ("gas", "import", "cost_gbp"),
                                                 ("electricity", "export", "earnings_gbp")])
def test_the_compare_panels_show_yours_beside_each_tariff_and_the_daily_difference(loaded, demo_lines, fuel,
                                                                                 direction, money):
    total, per_day = [p for p in panels() if p["title"].startswith("Compare: ") and
                      all(f'"{name}" = \'{value}\'' in p["targets"][-1]["query"]
                          for name, value in (("fuel", fuel), ("direction", direction)))]
    expected, yours, daily = defaultdict(float), defaultdict(float), defaultdict(float)
    for point in parse(demo_lines):
        tags, fields = point["tags"], point["fields"]
        if point["measurement"] == "octopus_comparison_daily" and (tags["fuel"], tags["direction"]) == (fuel,
                                                                                                    direction):
            expected[tags["compare"]] += fields[money]
            yours[tags["compare"]] += fields["actual_gbp"]
            daily[(tags["compare"], point["time"])] += fields[money] - fields["actual_gbp"]
    assert expected and len(set(map(round, yours.values()))) == 1  # each comparison prices the same days
    mine, theirs = (loaded.query("dashboard", fill_macros(t["query"], *window(total))) for t in total["targets"])
    assert [t["alias"] for t in total["targets"]] == ["yours", "$tag_compare"]  # "yours" is never a tariff's name
    assert mine[0]["max"] == pytest.approx(max(yours.values()), abs=1e-6)
    assert {row["compare"]: row["sum"] for row in theirs} == pytest.approx(dict(expected), abs=1e-6)
    rows = loaded.query("dashboard", fill_macros(per_day["targets"][0]["query"], *window(per_day)))
    shown = {(row["compare"], row["time"]): value for row in rows if (value := row["sum_sum"]) is not None}
    assert shown == pytest.approx(dict(daily), abs=1e-6)


DOCKER_SHIM = """import os, subprocess, sys
args = sys.argv[1:]
assert args[:3] == ["compose", "exec", "-T"] and args[3] == "telegraf", args  # the stack's plugin container
assert os.path.basename(os.getcwd()) == "telegraf", "docker compose runs beside docker-compose.yml"
command = [a.replace("PATH=/usr/local/bin:", f"PATH={os.environ['PLUGIN_BIN']}:") for a in args[4:]]
sys.exit(subprocess.run(command).returncode)  # the image's /usr/local/bin is where pip put the command
"""
CURL_SHIM = """import os, sys, urllib.parse, urllib.request
args, headers, data, url = sys.argv[1:], [], None, None
for i, a in enumerate(args):
    if a == "-H": headers.append(args[i + 1])
    elif a == "--data-binary": data = open(args[i + 1].removeprefix("@"), "rb").read()
    elif a.startswith("http"): url = a
if f"Authorization: Token {os.environ['EXPECTED_TOKEN']}" not in headers: sys.exit(22)  # InfluxDB: 401
query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
assert urllib.parse.urlsplit(url).path == "/api/v2/write" and query["precision"] == ["ns"], url
target = f"{os.environ['INFLUX_URL']}/write?db={query['bucket'][0]}&precision=ns"  # InfluxDB 1's own write
urllib.request.urlopen(urllib.request.Request(target, data=data, method="POST"), timeout=30)
"""


@pytest.fixture(scope="module")
def loaded_today(influxdb, tmp_path_factory):
    """The README's demo load, run as written in a shell that has only telegraf/.env: `docker` and `curl`
    stand in for the stack (the plugin's own command in the container; InfluxDB 1's write for InfluxDB 2's),
    and curl answers 401 unless the token is the one in telegraf/.env. Into the demo's bucket; the user's own
    bucket beside it gets none of it."""
    import os
    import subprocess
    import sys

    from conftest import COMMAND

    root = tmp_path_factory.mktemp("checkout")
    (root / "telegraf").mkdir()
    example = (README.parent / "telegraf" / ".env.example").read_text()
    (root / "telegraf" / ".env").write_text(example.replace("INFLUXDB_DEMO_BUCKET=octopus-demo",
                                                            "INFLUXDB_DEMO_BUCKET=octopus_demo"))
    shims = root / "bin"
    shims.mkdir()
    for name, text in (("docker", DOCKER_SHIM), ("curl", CURL_SHIM)):
        (shims / name).write_text(f"#!{sys.executable}\n{text}")
        (shims / name).chmod(0o755)
    influxdb.create_database("octopus_demo")
    influxdb.create_database("octopus")  # the user's own
    token = next(line.split("=", 1)[1] for line in example.splitlines() if line.startswith("INFLUXDB_TOKEN="))
    block = re.findall(r"```sh\n(.*?)```", README.read_text().split("## Dashboard", 1)[1], re.S)[0]
    result = subprocess.run(["bash", "-euc", block], cwd=root, capture_output=True, timeout=120, env={
        "PATH": f"{shims}:/usr/bin:/bin", "HOME": str(root), "PLUGIN_BIN": os.path.dirname(COMMAND),
        "INFLUX_URL": influxdb.url, "EXPECTED_TOKEN": token})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return influxdb


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: panel["title"])
def test_every_panel_has_data_over_the_default_range_after_the_readme_demo_load(loaded_today, panel):
    assert json.loads(DASHBOARD.read_text())["time"] == {"from": "now-7d", "to": "now+1d"}  # default_window's
    for target in panel["targets"]:
        query = fill_macros(target["query"], *default_window(panel))
        rows = loaded_today.query("octopus_demo", query)
        values = [v for row in rows for k, v in row.items() if k != "time" and isinstance(v, (int, float))]
        assert values, f"{panel['title']}: no data over the default range for {target['query']}"
        assert not loaded_today.query("octopus", query)  # the user's own data source: none of the demo


UNIT_WORDS = {"£": "currencyGBP", "m³": "m3", "kWh": "kwatth", "kg": "masskg"}


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: panel["title"])
def test_no_panel_mixes_units_on_one_axis(panel):
    defaults, overrides = panel["fieldConfig"]["defaults"], panel["fieldConfig"]["overrides"]
    if panel["type"] != "table":
        assert defaults["unit"] not in ("", "none"), "every axis says its unit"
    axes = {"left": defaults["unit"]}
    for override in overrides:
        props = {p["id"]: p["value"] for p in override["properties"]}
        if "unit" in props and props["unit"] != defaults["unit"]:
            side = props.get("custom.axisPlacement", "left")
            assert axes.setdefault(side, props["unit"]) == props["unit"], f"two units on the {side} axis"
    if len(axes) > 1:
        assert panel.get("options", {}).get("stacking", "none") == "none", "bars of two units stacked"
    if any('"direction"' in target["query"].split("GROUP BY")[-1] for target in panel["targets"]):
        assert panel.get("options", {}).get("stacking", "none") == "none", "export stacked on import"
    # a series named after a unit is drawn on an axis of that unit
    named = {override["matcher"]["options"]: {p["id"]: p["value"] for p in override["properties"]}.get("unit")
             for override in overrides}
    for target in panel["targets"]:
        for alias in re.findall(r'AS "([^"]+)"', target["query"]):
            for word, unit in UNIT_WORDS.items():
                if word in alias.split():
                    assert (named.get(alias) or defaults["unit"]) == unit, (alias, unit)


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: panel["title"])
def test_every_series_is_labelled_and_only_freshness_turns_red(panel):
    for target in panel["targets"]:
        grouped = re.findall(r'GROUP BY [^()]*?((?:"[a-z_]+"(?:, )?)+)', target["query"].split(") FROM (")[-1])
        tags = re.findall(r'"([a-z_]+)"', " ".join(grouped))
        if panel["type"] != "table" and tags and "FROM (" not in target["query"]:
            assert all(f"$tag_{tag}" in target["alias"] for tag in tags), (target["alias"], tags)
        elif panel["type"] != "table" and re.search(r'AS "', target["query"].split(" FROM ")[0]):
            assert "$col" in target["alias"], "columns named with AS are the series' names (the overrides' too)"
        elif panel["type"] != "table":
            assert target["alias"], "a lone series has a name (not the query's 'sum' or 'last')"
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0]["value"] is None and steps[0]["color"] != "red"
    if panel["title"].startswith("Data freshness"):
        assert [step["color"] for step in steps] == ["green", "orange", "red"]
        assert steps[2]["value"] >= 36 * 3600  # a day-late half-hour is normal, two days late is not
    else:
        assert len(steps) == 1, "a plain quantity has no colour that means bad"


def test_per_meter_panels_follow_the_meter_variable_and_every_query_the_data_source():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["meter"]["multi"]
    per_meter = ("octopus_consumption", "octopus_daily", "octopus_comparison_daily", "octopus_collector")
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            if any(f'FROM "{name}"' in target["query"] for name in per_meter):
                assert '"meter_point" =~ /^$meter$/' in target["query"], panel["title"]


@pytest.mark.parametrize("annotation", annotations(), ids=lambda annotation: annotation["name"])
def test_every_annotation_query_marks_the_demos_moments(loaded, annotation):
    # the dashboard's range reaches a day ahead (now+1d): tonight's planned charge slots are inside it
    ahead_ms = json.loads(DASHBOARD.read_text())["time"]["to"] == "now+1d" and 86400 * 1000
    rows = loaded.query("dashboard", fill_macros(annotation["query"], DEMO_START_NS // 10**6,
                                                 DEMO_END_NS // 10**6 + ahead_ms))
    assert rows, annotation["name"]
    assert all(row.get(annotation["textColumn"]) for row in rows)
    if annotation["tagsColumn"]:
        assert {row[annotation["tagsColumn"]] for row in rows} == {"power_down", "power_up"}
    else:  # the demo's two Greener Nights, one of which lost its flag: both stay marked; tonight's two slots
        assert len(rows) == 2


def test_the_committed_dashboard_is_what_its_generator_makes():
    import runpy

    made = runpy.run_path(str(DASHBOARD.parent.parent / "make_dashboard.py"))["dashboard"]()
    assert json.loads(DASHBOARD.read_text()) == made
