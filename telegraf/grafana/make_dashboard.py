"""Writes dashboards/octopus-energy.json: InfluxQL panels, for InfluxDB 1.8, 2.x (through its v1 API)
and 3.x. Run it after changing a panel; tests/test_dashboard.py runs every query on a real InfluxDB and
checks what a person reads: one unit per axis, labels, thresholds that mean something.

Conventions: one fuel and direction per panel where they would otherwise add up; money on its own axis;
`$meter` (the meter variable) on every per-meter query; `${datasource}` everywhere, so the demo's data
source and your own never mix."""

import json
from pathlib import Path

DS = {"type": "influxdb", "uid": "${datasource}"}
LONDON_DAYS = "fill(none) tz('Europe/London')"
METER = '"meter_point" =~ /^$meter$/'
AHEAD = "time >= ${__from}ms AND time <= ${__to}ms + 2d"  # prices and forecasts published ahead
P_PER_KWH, G_PER_KWH = "suffix: p/kWh", "suffix: gCO₂/kWh"
FRESH_S, LATE_S = 36 * 3600, 48 * 3600  # Octopus publishes a day late; past two days something is wrong
PLAIN = {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}  # a quantity: no colour means bad
FRESHNESS = {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": FRESH_S},
                                           {"color": "red", "value": LATE_S}]}


def right_axis(name: str, unit: str, decimals: int | None = None) -> dict:
    """A series with a unit of its own, on its own (right-hand) axis."""
    properties = [{"id": "unit", "value": unit}, {"id": "custom.axisPlacement", "value": "right"}]
    if decimals is not None:
        properties.append({"id": "decimals", "value": decimals})
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


def compare_panels(fuel: str, direction: str, label: str, y: int, x: int) -> list[tuple]:
    """Two panels per fuel and direction: over the window, yours beside each compared tariff; and per day,
    each compared tariff minus yours."""
    money = "earnings_gbp" if direction == "export" else "cost_gbp"
    where = f'$timeFilter AND "fuel" = \'{fuel}\' AND "direction" = \'{direction}\' AND {METER}'
    sign = "above zero: it would have earned more" if direction == "export" else "below zero: it would have been cheaper"
    return [
        (f"Compare: {label}, the range's total (£)", "bargauge", "currencyGBP", (x, y, 8, 8), None,
         f"OCTO_COMPARE: what your own {label} half-hours would have come to on each compared tariff (the product "
         "on sale each day), and 'yours': what you were billed for the same days. Complete London days only.",
         [("yours", f'SELECT max("yours") FROM (SELECT sum("actual_gbp") AS "yours" FROM "octopus_comparison_daily" '
                    f'WHERE {where} GROUP BY "compare")'),
          ("$tag_compare", f'SELECT sum("{money}") FROM "octopus_comparison_daily" WHERE {where} GROUP BY "compare"')],
         {"options": {"displayMode": "basic", "orientation": "horizontal", "showUnfilled": False}}),
        (f"Compare: {label} per day, each tariff minus yours (£)", "barchart", "currencyGBP", (x, y + 8, 8, 8), None,
         f"Each London day: the compared tariff's figure minus yours ({sign}).",
         [("$tag_compare", f'SELECT sum("{money}") - sum("actual_gbp") FROM "octopus_comparison_daily" '
                           f'WHERE {where} GROUP BY time(1d), "compare" {LONDON_DAYS}')],
         {"options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ]


# (title, type, unit, grid (x, y, w, h), relative time or None, description, [(alias, query)], extra). Aliases:
# Grafana names a series "measurement.column {tags}" unless told: `$col` for columns named with AS (which the
# overrides match by name), `$tag_x` for each GROUP BY tag, a word for a lone series.
PANELS = [
    ("Now: demand (W)", "stat", "watt", (0, 0, 6, 6), "15m",
     "The newest Home Mini reading (octopus-telegraf live).",
     [("$tag_direction", 'SELECT last("demand_w") FROM "octopus_live" WHERE $timeFilter AND "fuel" = \'electricity\' '
                         'GROUP BY "direction"')]),
    ("Demand, last hour (W, 10 s readings)", "timeseries", "watt", (6, 0, 12, 6), "1h",
     "Home Mini readings every 10 seconds.",
     [("$tag_direction", 'SELECT mean("demand_w") FROM "octopus_live" WHERE $timeFilter AND "fuel" = \'electricity\' '
                         'GROUP BY time(10s), "direction" fill(none)')]),
    ("Today so far (kWh, from the register)", "stat", "kwatth", (18, 0, 6, 6), "now/d",
     "How far each meter's register moved since London midnight (electricity every 10 s, gas every 30 min).",
     [("$tag_fuel $tag_direction", 'SELECT spread("register_kwh") FROM "octopus_live" WHERE $timeFilter '
                                   'GROUP BY "fuel", "direction"')]),
    ("Half-hourly energy (kWh)", "timeseries", "kwatth", (0, 6, 24, 8), None,
     "Smart-meter half-hours, about a day late. Export is its own series, never added to import.",
     [("$tag_fuel $tag_direction", f'SELECT sum("kwh") FROM "octopus_consumption" WHERE $timeFilter AND {METER} '
                                   'GROUP BY time($__interval), "fuel", "direction" fill(none)')]),
    ("Daily energy (kWh, London days)", "barchart", "kwatth", (0, 14, 12, 8), None,
     "One bar per meter and complete London day (octopus_daily); import, export and gas side by side.",
     [("$tag_fuel $tag_direction", f'SELECT sum("kwh") FROM "octopus_daily" WHERE $timeFilter AND {METER} '
                                   f'GROUP BY time(1d), "fuel", "direction" {LONDON_DAYS}')],
     {"options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("Daily bill (£): unit costs + standing charge", "barchart", "currencyGBP", (12, 14, 12, 8), None,
     "What each London day cost, inc VAT, stacked per fuel: the plugin's own octopus_daily totals.",
     [("$tag_fuel", f'SELECT sum("cost_gbp") FROM "octopus_daily" WHERE $timeFilter AND "direction" = \'import\' '
                    f'AND {METER} GROUP BY time(1d), "fuel" {LONDON_DAYS}')]),
    ("Electricity import rates (p/kWh inc VAT), tomorrow's included", "timeseries", P_PER_KWH, (0, 22, 24, 8), None,
     "The rate in force for each tariff and register: yours, and the compared tariffs' (OCTO_COMPARE). Agile "
     "publishes the next day's half-hours in the afternoon.",
     [("$tag_tariff $tag_register", f'SELECT last("inc_vat") FROM "octopus_unit_rate" WHERE {AHEAD} AND '
                                    '"fuel" = \'electricity\' AND "direction" = \'import\' '
                                    'GROUP BY time(30m), "tariff", "register" fill(previous)')]),
    ("Export rates (p/kWh)", "timeseries", P_PER_KWH, (0, 30, 12, 7), None,
     "What each exported kWh earns: your export tariff, and the compared ones.",
     [("$tag_tariff", f'SELECT last("inc_vat") FROM "octopus_unit_rate" WHERE {AHEAD} AND "direction" = \'export\' '
                      'GROUP BY time(30m), "tariff" fill(previous)')]),
    ("Gas rates (p/kWh inc VAT)", "timeseries", P_PER_KWH, (12, 30, 12, 7), None,
     "The gas unit rate in force (Tracker changes daily).",
     [("$tag_tariff", f'SELECT last("inc_vat") FROM "octopus_unit_rate" WHERE {AHEAD} AND "fuel" = \'gas\' '
                      'GROUP BY time(30m), "tariff" fill(previous)')]),
    ("Gas per day: kWh, and m³ on the right", "barchart", "kwatth", (0, 37, 12, 8), None,
     "Gas meters that report m³ also show the volume (right-hand axis); the bill counts kWh.",
     [("$col", f'SELECT sum("kwh") AS "kWh", sum("m3") AS "m³" FROM "octopus_consumption" WHERE $timeFilter '
           f'AND "fuel" = \'gas\' AND {METER} GROUP BY time(1d) {LONDON_DAYS}')],
     {"fieldConfig": {"defaults": {"unit": "kwatth"}, "overrides": [right_axis("m³", "m3", 2)]},
      "options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("Export earnings per day (£)", "barchart", "currencyGBP", (12, 37, 12, 8), None,
     "What the export meter earned each London day (never mixed into costs).",
     [("earned", f'SELECT sum("earnings_gbp") FROM "octopus_daily" WHERE $timeFilter AND "direction" = \'export\' '
                 f'AND {METER} GROUP BY time(1d) {LONDON_DAYS}')]),
    ("Smart charging per day (kWh into the car)", "barchart", "kwatth", (0, 45, 12, 8), None,
     "Intelligent Octopus dispatches (smart: planned by Octopus; bump: asked for in the app), known from the first "
     "time the plugin read them (the API keeps 12 hours).",
     [("$tag_source", f'SELECT sum("energy_kwh") FROM "octopus_dispatch" WHERE $timeFilter GROUP BY time(1d), '
                      f'"source" {LONDON_DAYS}')]),
    ("Smart charging per day: £ saved", "barchart", "currencyGBP", (12, 45, 12, 8), None,
     "During a smart-charge dispatch the whole home is billed off-peak: saved = kWh x (tariff rate - off-peak).",
     [("saved", f'SELECT sum("dispatch_saving_gbp") FROM "octopus_consumption" WHERE $timeFilter AND {METER} '
                f'GROUP BY time(1d) {LONDON_DAYS}')]),
    ("Car allowance per IOG day (12:00-12:00): hours, and £ the cap cost", "barchart", "h", (0, 53, 12, 8), None,
     "Intelligent Octopus with the Charge Cap (four-rate products): smart charging makes the home off-peak for up "
     "to OCTO_IOG_ALLOWANCE_HOURS (6 h) per 12:00-12:00 London day. Past it, the home pays the day rate: "
     "'beyond' hours, and what they cost more than the night rate (right-hand axis). Shown for days the plugin "
     "watched whole (the API keeps dispatches 12 hours).",
     [("$col", 'SELECT "dispatch_s" / 3600 AS "smart charging", "allowance_s" / 3600 AS "allowance", '
           '"beyond_allowance_s" / 3600 AS "beyond the allowance" FROM "octopus_iog_day" WHERE $timeFilter'),
      ("$col", 'SELECT last("cap_cost_gbp") AS "£ the cap cost" FROM "octopus_iog_day" WHERE $timeFilter '
           'GROUP BY time(1d, 12h) fill(none) tz(\'Europe/London\')')],
     {"fieldConfig": {"defaults": {"unit": "h", "decimals": 1},
                      "overrides": [right_axis("£ the cap cost", "currencyGBP", 2)]},
      "options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("Smart-charge devices", "table", "none", (12, 53, 12, 8), "7d",
     "The account's smart-charge devices as Octopus lists them (read every 6 hours): planned slots are asked for "
     "LIVE ones.",
     [("", 'SELECT last("status") AS "status", last("state") AS "state", last("suspended") AS "suspended" '
           'FROM "octopus_device" WHERE $timeFilter GROUP BY "device_type", "provider"')],
     {"resultFormat": "table"}),
    *compare_panels("electricity", "import", "electricity import", 61, 0),
    *compare_panels("gas", "import", "gas", 61, 8),
    *compare_panels("electricity", "export", "export earnings", 61, 16),
    ("Grid carbon intensity (gCO₂/kWh), with the forecast ahead", "timeseries", G_PER_KWH, (0, 77, 24, 8), None,
     "OCTO_CARBON: the grid operator's carbon intensity for your region each half-hour (Carbon Intensity API, "
     "CC BY 4.0), its forecast two days ahead. Lower is cleaner: a good time for the dishwasher or the car.",
     [("$tag_region", f'SELECT last("intensity_g") FROM "octopus_carbon" WHERE {AHEAD} '
                      'GROUP BY time(30m), "region" fill(none)')]),
    ("CO₂ per day (kg), and the bill on the right (£)", "barchart", "masskg", (0, 85, 12, 8), None,
     "Your import electricity's carbon each London day (kWh x the grid's intensity), beside what the day cost.",
     [("$col", f'SELECT sum("co2_kg") AS "kg CO₂", sum("cost_gbp") AS "£" FROM "octopus_daily" WHERE $timeFilter '
           f'AND "direction" = \'import\' AND "fuel" = \'electricity\' AND {METER} GROUP BY time(1d) {LONDON_DAYS}')],
     {"fieldConfig": {"defaults": {"unit": "masskg", "decimals": 2}, "overrides": [right_axis("£", "currencyGBP")]},
      "options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("The cleanest hours of the next 48 (gCO₂/kWh)", "table", G_PER_KWH, (12, 85, 12, 8), None,
     "The forecast's eight lowest half-hours from now to 48 hours ahead (the dashboard's range ends a day ahead).",
     [("", 'SELECT bottom("intensity_g", 8) AS "gCO₂/kWh" FROM "octopus_carbon" WHERE time >= ${__to}ms - 1d '
           'AND time < ${__to}ms + 1d')],
     {"resultFormat": "table"}),
    ("Data freshness: age of the newest half-hour", "stat", "s", (0, 93, 12, 6), "7d",
     "Octopus publishes half-hours about a day late: orange past 36 hours, red past 48 (something is wrong: "
     "`octopus-telegraf status` says what).",
     [("$tag_fuel $tag_direction $tag_meter_point", f'SELECT last("lag_seconds") FROM "octopus_collector" WHERE '
                                                    f'$timeFilter AND {METER} GROUP BY "fuel", "direction", '
                                                    f'"meter_point"')],
     {"fieldConfig": {"defaults": {"unit": "s", "thresholds": FRESHNESS, "color": {"mode": "thresholds"}},
                      "overrides": []},
      "options": {"colorMode": "background", "graphMode": "none"}}),
    ("Collector requests and errors (last 24 h)", "stat", "short", (12, 93, 6, 6), "24h",
     "API requests made and failed attempts (each retried or logged), summed over the last day.",
     [("$col", f'SELECT sum("requests") AS "requests", sum("errors") AS "errors" FROM "octopus_collector" '
           f'WHERE $timeFilter AND {METER}')]),
    ("Octopoints", "stat", "short", (18, 93, 6, 6), "7d",
     "The Octoplus points balance (OCTO_EVENTS=true, enrolled accounts), read at most hourly.",
     [("balance", 'SELECT last("balance") FROM "octopus_octopoints" WHERE $timeFilter')]),
]
# (name, colour, query, text column, tags column): marks on every time-series panel (OCTO_EVENTS=true)
ANNOTATIONS = [
    ("Power Down / Power Up sessions", "orange",
     'SELECT "duration_s", "code", "kind" FROM "octopus_event" WHERE $timeFilter', "code", "kind"),
    ("Greener Nights (ever flagged)", "green",
     'SELECT "score", "index" FROM "octopus_greener_night" WHERE $timeFilter AND "ever_flagged" = true',
     "index", ""),
    ("Planned charge slots (Intelligent Octopus)", "blue",
     'SELECT "duration_s", "energy_kwh", "type" FROM "octopus_planned_dispatch" WHERE $timeFilter '
     'AND "cancelled" = false', "type", ""),
]
VARIABLES = [
    # the provisioned data source first; "InfluxDB (octopus demo)" is the demo's bucket, never mixed with yours
    {"name": "datasource", "type": "datasource", "query": "influxdb", "label": "Data source",
     "current": {"text": "InfluxDB (octopus)", "value": "octopus-influxdb"}},
    # several meters (an export meter, a second import, a meter swap): one, some or all
    {"name": "meter", "type": "query", "label": "Meter point", "datasource": DS, "refresh": 2, "multi": True,
     "includeAll": True, "current": {"text": "All", "value": "$__all"}, "sort": 1,
     "query": 'SHOW TAG VALUES FROM "octopus_daily" WITH KEY = "meter_point"',
     "definition": 'SHOW TAG VALUES FROM "octopus_daily" WITH KEY = "meter_point"'},
]


def dashboard() -> dict:
    panels = []
    for number, (title, kind, unit, (x, y, w, h), relative, description, targets, *more) in enumerate(PANELS, 1):
        extra = dict(more[0]) if more else {}  # a panel's own field config, options or result format
        result_format = extra.pop("resultFormat", "time_series")
        defaults = {"unit": unit, "thresholds": PLAIN}  # Grafana's own default turns values past 80 red
        if kind in ("timeseries", "barchart", "bargauge"):
            defaults["color"] = {"mode": "palette-classic"}
        panel = {"id": number, "title": title, "type": kind, "description": description, "datasource": DS,
                 "gridPos": {"x": x, "y": y, "w": w, "h": h},
                 "targets": [{"refId": chr(65 + i), "datasource": DS, "rawQuery": True, "resultFormat": result_format,
                              "alias": alias, "query": query} for i, (alias, query) in enumerate(targets)],
                 "fieldConfig": {"defaults": defaults, "overrides": []}}
        if relative:
            panel["timeFrom"] = relative
        if kind == "barchart":
            panel["options"] = {"xTickLabelRotation": -45, "stacking": "normal"}
        if kind == "stat":
            panel["options"] = {"colorMode": "none", "graphMode": "none"}
        if "fieldConfig" in extra:
            own = extra.pop("fieldConfig")
            panel["fieldConfig"] = {"defaults": {**defaults, **own["defaults"]}, "overrides": own["overrides"]}
        panel.update(extra)
        panels.append(panel)
    return {"uid": "octopus-energy", "title": "Octopus Energy", "tags": ["octopus", "energy"],
            "timezone": "Europe/London", "schemaVersion": 39, "version": 3, "editable": True, "refresh": "1m",
            "time": {"from": "now-7d", "to": "now+1d"},  # tomorrow's prices and planned charge slots
            "templating": {"list": VARIABLES},
            "annotations": {"list": [
                {"name": name, "datasource": DS, "enable": True, "iconColor": colour, "query": query,
                 "textColumn": text, "tagsColumn": tags} for name, colour, query, text, tags in ANNOTATIONS]},
            "panels": panels}


if __name__ == "__main__":
    path = Path(__file__).parent / "dashboards" / "octopus-energy.json"
    path.write_text(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
