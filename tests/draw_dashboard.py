"""Draws docs/dashboard.png: the demo (main and live, up to today, as the README loads it) in a throwaway
Debian InfluxDB, every panel's own query over the dashboard's default range, each panel drawn where the
dashboard puts it. The tests run the same queries (tests/test_dashboard.py); this only draws them.

    .venv/bin/pip install matplotlib && .venv/bin/python tests/draw_dashboard.py [OUT.png]

Needs Debian's influxd and matplotlib (a docs tool: neither the plugin nor its tests need matplotlib)."""

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import matplotlib
import matplotlib.dates

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from influx import default_window, fill_macros, find_influxd, running_influxd  # noqa: E402
from octopus_telegraf.base.timeutil import LONDON  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "telegraf" / "grafana" / "dashboards" / "octopus-energy.json"
COMMAND = Path(sys.executable).parent / "octopus-telegraf"
UNITS = {"watt": "W", "kwatth": "kWh", "currencyGBP": "£", "h": "h", "s": "s", "masskg": "kg", "m3": "m³",
         "short": "", "none": ""}
ROW_HEIGHT = 0.42  # inches per grid row of Grafana's 30 px


def unit_text(unit: str) -> str:
    return unit.removeprefix("suffix:").strip() if unit.startswith("suffix:") else UNITS.get(unit, unit)


def shown(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value / 3600:.1f} h"
    return f"{value:,.4g} {unit_text(unit)}".rstrip()


def series_of(panel, influx) -> list[tuple[str, list, list, str]]:
    """(label, times, values, unit) of each series a panel's queries return, named as Grafana would."""
    defaults, overrides = panel["fieldConfig"]["defaults"], panel["fieldConfig"]["overrides"]
    own = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]} for o in overrides}
    out = []
    for target in panel["targets"]:
        rows = influx.query("demo", fill_macros(target["query"], *default_window(panel)))
        grouped = defaultdict(lambda: defaultdict(list))
        for row in rows:
            tags = {k: v for k, v in row.items() if k != "time" and not isinstance(v, (int, float, bool))}
            for column, value in row.items():
                if column == "time" or column in tags or not isinstance(value, (int, float)):
                    continue
                label = target["alias"] or column
                label = label.replace("$col", column)
                for tag, text in tags.items():
                    label = label.replace(f"$tag_{tag}", str(text))
                grouped[label]["t"].append(datetime.fromtimestamp(row["time"] / 1e9, LONDON))
                grouped[label]["v"].append(value)
        for label, data in grouped.items():
            unit = own.get(label, {}).get("unit", defaults["unit"])
            out.append((label, data["t"], data["v"], unit))
    return out


def draw(panel, axes, influx) -> None:
    axes.set_title(panel["title"], fontsize=7, loc="left")
    axes.tick_params(labelsize=5)
    series = series_of(panel, influx)
    kind = panel["type"]
    if kind in ("stat", "table"):
        axes.axis("off")
        text = "\n".join(f"{label}: {shown(values[-1], unit)}" for label, _, values, unit in series[:8])
        axes.text(0.02, 0.9, text or "no data", fontsize=6, va="top", family="monospace", transform=axes.transAxes)
        return
    if kind == "bargauge":
        labels = [label for label, *_ in series]
        axes.barh(labels, [values[-1] for _, _, values, _ in series], color="#5794f2")
        axes.set_xlabel(unit_text(panel["fieldConfig"]["defaults"]["unit"]), fontsize=6)
        return
    left_unit = panel["fieldConfig"]["defaults"]["unit"]
    right = axes.twinx() if any(unit != left_unit for *_, unit in series) else None
    stacked = panel.get("options", {}).get("stacking") == "normal"
    width = 0.8 / (1 if stacked else max(len(series), 1))  # days: side by side unless the panel stacks
    bottoms: dict = defaultdict(float)
    for number, (label, times, values, unit) in enumerate(series):
        target = right if right is not None and unit != left_unit else axes
        if kind == "barchart":
            shift = 0 if stacked else number * width
            places = [matplotlib.dates.date2num(t) + shift for t in times]
            base = [bottoms[t] for t in times] if stacked else None
            target.bar(places, values, width=width, bottom=base, label=label, align="edge",
                       color=f"C{number}")
            if stacked:
                for t, v in zip(times, values, strict=True):
                    bottoms[t] += v
            target.xaxis_date()
        else:
            target.plot(times, values, linewidth=0.8, label=label)
        if target is right:
            right.set_ylabel(unit_text(unit), fontsize=6)
            right.tick_params(labelsize=5)
    axes.set_ylabel(unit_text(left_unit), fontsize=6)
    if series:
        axes.legend(fontsize=4, loc="upper left", ncol=3)
    axes.figure.autofmt_xdate()


def main(out: str) -> None:
    influxd = find_influxd()
    if not influxd:
        sys.exit("influxd not found: apt-get install influxdb")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ["PATH"], "HOME": tmp}
        lines = []
        for args in (("--demo", "--once"), ("--demo", "live", "--once")):
            lines += subprocess.run([str(COMMAND), *args], env=env, capture_output=True, check=True).stdout.decode(
                ).splitlines()
        with running_influxd(influxd, Path(tmp)) as influx:
            influx.create_database("demo")
            influx.write("demo", lines)
            panels = json.loads(DASHBOARD.read_text())["panels"]
            rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
            figure = plt.figure(figsize=(16, rows * ROW_HEIGHT))
            grid = figure.add_gridspec(rows, 24, hspace=2.5, wspace=1.5, top=0.965, bottom=0.02)
            for panel in panels:
                x, y, w, h = (panel["gridPos"][k] for k in ("x", "y", "w", "h"))
                draw(panel, figure.add_subplot(grid[y:y + h, x:x + w]), influx)
            figure.suptitle("Octopus Energy (the demo, as the README loads it)", fontsize=10)
            figure.savefig(out, dpi=80, bbox_inches="tight")
    print(f"{out}: {len(panels)} panels")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "dashboard.png"))
