"""The Grafana dashboard answers on a real database: the demo's output goes into InfluxDB, and every
panel's InfluxQL (Grafana's macros filled in as Grafana would) returns data; the daily bill equals
the plugin's own totals; and every name a panel uses is one the plugin prints."""

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from octopus_telegraf.base.timeutil import london_day_start
from octopus_telegraf.demo.tariffs import DEMO_END_NS, DEMO_START_NS

from conftest import parse, run_once

DASHBOARD = Path(__file__).resolve().parent.parent / "telegraf" / "grafana" / "dashboards" / "octopus-energy.json"
RELATIVE = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}


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
    """The time range Grafana would ask for, in ms: the demo's four weeks, or the panel's own relative time."""
    now_ms = time.time_ns() // 10**6
    relative = panel.get("timeFrom")
    if relative == "now/d":
        return london_day_start(time.time_ns()) // 10**6, now_ms
    if relative:
        return now_ms - RELATIVE[relative] * 1000, now_ms
    return DEMO_START_NS // 10**6, DEMO_END_NS // 10**6


def fill_macros(query: str, start_ms: int, end_ms: int) -> str:
    return (query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
            .replace("${__from}", str(start_ms)).replace("${__to}", str(end_ms)).replace("$__interval", "30m"))


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
    fields = set(re.findall(r'\(\s*"([a-z_0-9]+)"\s*\)', query))
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


def test_the_compare_panel_adds_up_the_plugins_comparison_days(loaded, demo_lines):
    (panel,) = [p for p in panels() if p["title"].startswith("Compare tariffs: import")]
    rows = loaded.query("dashboard", fill_macros(panel["targets"][0]["query"], *window(panel)))
    shown = {row["compare"]: (row["compared"], row["yours"]) for row in rows}
    expected = defaultdict(lambda: [0.0, 0.0])
    for point in parse(demo_lines):
        if point["measurement"] == "octopus_comparison_daily" and point["tags"]["direction"] == "import":
            expected[point["tags"]["compare"]][0] += point["fields"]["cost_gbp"]
            expected[point["tags"]["compare"]][1] += point["fields"]["actual_gbp"]
    assert set(shown) == {"agile", "go", "tracker"} == set(expected)
    for name, (compared, yours) in shown.items():
        assert compared == pytest.approx(expected[name][0], abs=1e-6)
        assert yours == pytest.approx(expected[name][1], abs=1e-6)
    assert shown["go"][1] == pytest.approx(shown["agile"][1], abs=1e-6)  # the same electricity days: the same bill


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
