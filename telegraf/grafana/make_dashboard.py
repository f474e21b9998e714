"""Writes dashboards/octopus-energy.json: InfluxQL panels, for InfluxDB 1.8, 2.x (through its v1 API)
and 3.x. Run it after changing a panel; tests/test_dashboard.py runs every query on a real InfluxDB."""

import json
from pathlib import Path

DS = {"type": "influxdb", "uid": "${datasource}"}
LONDON_DAYS = "fill(none) tz('Europe/London')"

# (title, type, unit, grid (x, y, w, h), relative time or None, description, [(alias, query)])
PANELS = [
    ("Now: demand (W)", "stat", "watt", (0, 0, 6, 6), "15m",
     "The newest Home Mini reading (octopus-telegraf live).",
     [("", 'SELECT last("demand_w") FROM "octopus_live" WHERE $timeFilter AND "fuel" = \'electricity\' '
           'GROUP BY "direction"')]),
    ("Demand, last hour (10 s readings)", "timeseries", "watt", (6, 0, 12, 6), "1h",
     "Home Mini readings every 10 seconds.",
     [("", 'SELECT mean("demand_w") FROM "octopus_live" WHERE $timeFilter AND "fuel" = \'electricity\' '
           'GROUP BY time(10s), "direction" fill(none)')]),
    ("Today so far (kWh, from the register)", "stat", "kwatth", (18, 0, 6, 6), "now/d",
     "How far the meter's register moved since London midnight (electricity every 10 s, gas every 30 min).",
     [("", 'SELECT spread("register_kwh") FROM "octopus_live" WHERE $timeFilter GROUP BY "fuel", "direction"')]),
    ("Half-hourly energy (kWh)", "timeseries", "kwatth", (0, 6, 24, 8), None,
     "Smart-meter half-hours, about a day late.",
     [("", 'SELECT sum("kwh") FROM "octopus_consumption" WHERE $timeFilter '
           'GROUP BY time($__interval), "fuel", "direction" fill(none)')]),
    ("Daily energy (kWh, London days)", "barchart", "kwatth", (0, 14, 12, 8), None,
     "One point per meter and complete London day (octopus_daily).",
     [("", f'SELECT sum("kwh") FROM "octopus_daily" WHERE $timeFilter GROUP BY time(1d), "fuel", "direction" '
           f'{LONDON_DAYS}')]),
    ("Daily bill (£): unit costs + standing charge", "barchart", "currencyGBP", (12, 14, 12, 8), None,
     "What each London day cost, inc VAT, per fuel: the plugin's own octopus_daily totals.",
     [("", f'SELECT sum("cost_gbp") FROM "octopus_daily" WHERE $timeFilter AND "direction" = \'import\' '
           f'GROUP BY time(1d), "fuel" {LONDON_DAYS}')]),
    ("Unit rates (p/kWh inc VAT), with prices published ahead", "timeseries", "none", (0, 22, 24, 8), None,
     "The rate in force: Agile half-hours, time-of-use periods, and a point each London day for fixed rates.",
     [("", 'SELECT last("inc_vat") FROM "octopus_unit_rate" WHERE time >= ${__from}ms AND time <= ${__to}ms + 2d '
           'GROUP BY time(30m), "tariff", "register" fill(previous)')]),
    ("Gas per day: m³ and kWh", "barchart", "none", (0, 30, 12, 8), None, "Gas meters that report m³ also show kWh.",
     [("", f'SELECT sum("m3") AS "m3", sum("kwh") AS "kWh" FROM "octopus_consumption" WHERE $timeFilter '
           f'AND "fuel" = \'gas\' GROUP BY time(1d) {LONDON_DAYS}')]),
    ("Export earnings per day (£)", "barchart", "currencyGBP", (12, 30, 12, 8), None,
     "What the export meter earned each London day (never mixed into costs).",
     [("", f'SELECT sum("earnings_gbp") FROM "octopus_daily" WHERE $timeFilter AND "direction" = \'export\' '
           f'GROUP BY time(1d) {LONDON_DAYS}')]),
    ("Smart-charge dispatches: £ saved and kWh into the car, per day", "barchart", "none", (0, 38, 12, 8), None,
     "Intelligent Octopus bills the home off-peak during a smart-charge dispatch. Saved = kWh x (tariff rate - "
     "off-peak rate). Dispatches are known from the first time the plugin read them (the API keeps 12 hours).",
     [("saved £", f'SELECT sum("dispatch_saving_gbp") FROM "octopus_consumption" WHERE $timeFilter '
                  f'GROUP BY time(1d) {LONDON_DAYS}'),
      ("", f'SELECT sum("energy_kwh") FROM "octopus_dispatch" WHERE $timeFilter GROUP BY time(1d), "source" '
           f'{LONDON_DAYS}')]),
    ("Data freshness: age of the newest half-hour per meter", "stat", "s", (0, 46, 12, 6), "7d",
     "Octopus publishes half-hours about a day late; much more than two days means trouble.",
     [("", 'SELECT last("lag_seconds") FROM "octopus_collector" WHERE $timeFilter '
           'GROUP BY "fuel", "direction", "meter_point"')]),
    ("Collector requests and errors (last 24 h)", "stat", "none", (12, 46, 12, 6), "24h",
     "API requests made and failed attempts, summed over the last day.",
     [("", 'SELECT sum("requests") AS "requests", sum("errors") AS "errors" FROM "octopus_collector" '
           'WHERE $timeFilter')]),
    ("Compare tariffs: import and gas over the window (£, yours beside each)", "bargauge", "currencyGBP",
     (0, 52, 12, 8), None,
     "OCTO_COMPARE: what your own half-hours would have cost on each compared tariff (the product on sale each "
     "day), beside what you paid for the same meters and days. Complete London days only.",
     [("$tag_compare", 'SELECT sum("cost_gbp") AS "compared", sum("actual_gbp") AS "yours" '
                       'FROM "octopus_comparison_daily" WHERE $timeFilter AND "direction" = \'import\' '
                       'GROUP BY "compare"')]),
    ("Compare tariffs per day (£)", "timeseries", "currencyGBP", (12, 52, 12, 8), None,
     "Each comparison's daily cost (export: earnings) and your actual bill of the same meters.",
     [("", f'SELECT sum("cost_gbp") AS "compared", sum("earnings_gbp") AS "earned", sum("actual_gbp") AS "yours" '
           f'FROM "octopus_comparison_daily" WHERE $timeFilter GROUP BY time(1d), "compare" {LONDON_DAYS}')]),
    ("Octopoints", "stat", "none", (0, 60, 6, 4), "7d",
     "The Octoplus points balance (OCTO_EVENTS=true, enrolled accounts), read at most hourly.",
     [("", 'SELECT last("balance") FROM "octopus_octopoints" WHERE $timeFilter')]),
    ("Car allowance per IOG day (12:00-12:00): smart-charge hours, and £ the cap cost", "barchart", "h",
     (12, 38, 12, 8), None,
     "Intelligent Octopus with the Charge Cap (four-rate products): smart charging makes the home off-peak for up "
     "to OCTO_IOG_ALLOWANCE_HOURS (6 h) per 12:00-12:00 London day. Past it, the home pays the day rate: "
     "'beyond' hours, and what they cost more than the night rate. Shown for days the plugin watched whole (the "
     "API keeps dispatches 12 hours).",
     [("", 'SELECT "dispatch_s" / 3600 AS "smart charging (h)", "allowance_s" / 3600 AS "allowance (h)", '
           '"beyond_allowance_s" / 3600 AS "beyond the allowance (h)" FROM "octopus_iog_day" WHERE $timeFilter'),
      ("", 'SELECT last("cap_cost_gbp") AS "£ the cap cost" FROM "octopus_iog_day" WHERE $timeFilter '
           'GROUP BY time(1d, 12h) fill(none) tz(\'Europe/London\')')],
     {"fieldConfig": {"defaults": {"unit": "h", "decimals": 1}, "overrides": [
         {"matcher": {"id": "byName", "options": "£ the cap cost"},
          "properties": [{"id": "unit", "value": "currencyGBP"}, {"id": "decimals", "value": 2},
                         {"id": "custom.axisPlacement", "value": "right"}]}]},
      "options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("Grid carbon intensity (gCO₂/kWh), with the forecast ahead", "timeseries", "none", (0, 64, 24, 8), None,
     "OCTO_CARBON: the grid operator's carbon intensity for your region each half-hour (Carbon Intensity API, "
     "CC BY 4.0), its forecast two days ahead. Lower is cleaner: a good time for the dishwasher or the car.",
     [("$tag_region", 'SELECT last("intensity_g") FROM "octopus_carbon" WHERE time >= ${__from}ms AND '
                      'time <= ${__to}ms + 2d GROUP BY time(30m), "region" fill(none)')]),
    ("CO₂ per day (kg) beside the bill (£)", "barchart", "none", (0, 72, 12, 8), None,
     "Your import electricity's carbon each London day (kWh x the grid's intensity), beside what the day cost.",
     [("", f'SELECT sum("co2_kg") AS "kg CO₂", sum("cost_gbp") AS "£" FROM "octopus_daily" WHERE $timeFilter '
           f'AND "direction" = \'import\' AND "fuel" = \'electricity\' GROUP BY time(1d) {LONDON_DAYS}')],
     {"fieldConfig": {"defaults": {"unit": "none", "decimals": 2}, "overrides": [
         {"matcher": {"id": "byName", "options": "£"},
          "properties": [{"id": "unit", "value": "currencyGBP"}, {"id": "custom.axisPlacement", "value": "right"}]}]},
      "options": {"xTickLabelRotation": -45, "stacking": "none"}}),
    ("The cleanest hours of the next 48 (gCO₂/kWh)", "table", "none", (12, 72, 12, 8), None,
     "The forecast's eight lowest half-hours from now to 48 hours ahead (the dashboard's range ends a day ahead).",
     [("", 'SELECT bottom("intensity_g", 8) AS "gCO₂/kWh" FROM "octopus_carbon" WHERE time >= ${__to}ms - 1d '
           'AND time < ${__to}ms + 1d')],
     {"resultFormat": "table"}),
    ("Smart-charge devices", "table", "none", (6, 60, 18, 4), "7d",
     "The account's smart-charge devices as Octopus lists them (read every 6 hours): planned slots are asked for "
     "LIVE ones.",
     [("", 'SELECT last("status") AS "status", last("state") AS "state", last("suspended") AS "suspended" '
           'FROM "octopus_device" WHERE $timeFilter GROUP BY "device_type", "provider"')],
     {"resultFormat": "table"}),
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


def dashboard() -> dict:
    panels = []
    for number, (title, kind, unit, (x, y, w, h), relative, description, targets, *more) in enumerate(PANELS, 1):
        extra = dict(more[0]) if more else {}  # a panel's own field config, options or result format
        result_format = extra.pop("resultFormat", "time_series")
        panel = {"id": number, "title": title, "type": kind, "description": description, "datasource": DS,
                 "gridPos": {"x": x, "y": y, "w": w, "h": h},
                 "targets": [{"refId": chr(65 + i), "datasource": DS, "rawQuery": True, "resultFormat": result_format,
                              "alias": alias, "query": query} for i, (alias, query) in enumerate(targets)],
                 "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}}
        if relative:
            panel["timeFrom"] = relative
        if kind == "barchart":
            panel["options"] = {"xTickLabelRotation": -45, "stacking": "normal"}
        panel.update(extra)
        panels.append(panel)
    return {"uid": "octopus-energy", "title": "Octopus Energy", "tags": ["octopus", "energy"],
            "timezone": "Europe/London", "schemaVersion": 39, "version": 2, "editable": True, "refresh": "1m",
            "time": {"from": "now-7d", "to": "now+1d"},  # tomorrow's prices and planned charge slots
            # the provisioned data source first (it is not Grafana's default); any InfluxDB one can be chosen
            "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "influxdb",
                                     "label": "Data source",
                                     "current": {"text": "InfluxDB (octopus)", "value": "octopus-influxdb"}}]},
            "annotations": {"list": [
                {"name": name, "datasource": DS, "enable": True, "iconColor": colour, "query": query,
                 "textColumn": text, "tagsColumn": tags} for name, colour, query, text, tags in ANNOTATIONS]},
            "panels": panels}


if __name__ == "__main__":
    path = Path(__file__).parent / "dashboards" / "octopus-energy.json"
    path.write_text(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
