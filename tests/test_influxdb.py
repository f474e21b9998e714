"""The real round trip: what the plugin prints is accepted by InfluxDB and reads back exactly."""

import pytest

from test_prices import priced  # noqa: F401  (a fixture)

from conftest import EXPORT, GAS, IMPORT, meter_env
from fake_octopus import london


def test_sixty_day_backfill_of_three_meters_round_trips_through_influxdb(fake, plugin_env, launch, influxdb):
    start, end = london(2024, 9, 15), london(2024, 11, 14)  # crosses the October clock change
    served = {meter: fake.add_meter(*meter, start, end) for meter in (IMPORT, EXPORT, GAS)}
    env = {**plugin_env, **meter_env(IMPORT, EXPORT, GAS), "OCTO_BACKFILL_FROM": "2024-09-15",
           "OCTO_ELECTRIC_COST": "24.57", "OCTO_EXPORT_COST": "15", "OCTO_GAS_COST": "6.1"}
    plugin = launch(env)
    total = sum(len(d) for d in served.values())
    assert total == 3 * (60 * 48 + 2)
    gathers = 0
    while sum(1 for line in plugin.stdout if line.startswith("octopus_consumption,")) < total:
        plugin.gather(3)  # OCTO_MAX_POINTS (5000) spreads the backfill over several gathers
        gathers += 1
        assert gathers < 10
    plugin.stop()
    assert gathers == 2

    influxdb.create_database("octopus")
    influxdb.write("octopus", plugin.stdout)  # asserts HTTP 204 for every batch

    rows = influxdb.query("octopus", 'SELECT * FROM "octopus_consumption" GROUP BY *')
    assert len(rows) == total
    for meter, data in served.items():
        fuel, point, serial = meter
        back = {row["time"]: row for row in rows if row["meter_point"] == point}
        assert sorted(back) == sorted(data)  # the same exact nanosecond timestamps
        for stamp, value in data.items():
            row = back[stamp]
            assert row["serial"] == serial and row["fuel"] == fuel
            if fuel == "gas":
                assert row["m3"] == value
                assert row["kwh"] == pytest.approx(value * 1.02264 * 39.5 / 3.6, rel=1e-9)
            else:
                assert row["kwh"] == value
    collectors = influxdb.query("octopus", 'SELECT * FROM "octopus_collector" GROUP BY *')
    assert len(collectors) == 3 * gathers
    # The stored types, not the JSON values: InfluxDB returns a whole-second float lag as `12`.
    types = {row["fieldKey"]: row["fieldType"]
             for row in influxdb.query("octopus", 'SHOW FIELD KEYS FROM "octopus_collector"')}
    assert types == {"points": "integer", "requests": "integer", "errors": "integer", "lag_seconds": "float"}


def test_all_four_measurements_round_trip_through_influxdb(fake, priced, influxdb):  # noqa: F811
    from conftest import parse, run_once

    result = run_once(priced)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    influxdb.create_database("priced")
    influxdb.write("priced", lines)
    printed = parse(lines)
    for measurement in ("octopus_consumption", "octopus_unit_rate", "octopus_standing_charge", "octopus_collector"):
        mine = {(p["time"], tuple(sorted(p["tags"].items()))): p["fields"] for p in printed
                if p["measurement"] == measurement}
        assert mine, measurement
        rows = influxdb.query("priced", f'SELECT * FROM "{measurement}" GROUP BY *')
        back = {}
        for row in rows:
            tags = tuple(sorted((k, v) for k, v in row.items() if k in ("fuel", "direction", "meter_point",
                                                                     "serial", "tariff", "register")))
            back[(row["time"], tags)] = {k: v for k, v in row.items() if k in mine[(row["time"], tags)]}
        assert back == mine, measurement
