"""Hostile input: whatever a setting or the API carries comes out escaped, or is refused on one line.

Every printed line must parse with line-protocol-parser *and* be accepted by the real InfluxDB,
and no input may make the plugin print a line it should not.
"""

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_prices import ACCOUNT, account_document, agreement

from conftest import GAS, IMPORT, meter_env, parse, run_once
from fake_octopus import FakeOctopus, london

# what an environment variable can hold: any text but NUL and lone surrogates
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=24)
nasty = st.one_of(env_text, st.sampled_from([
    "21L 0001", "21L,0001", 'say "hi"', "back\\slash", "trail\\", "new\nline", "tab\tbed", "é☃𝄞", "a=b", " lead",
    "x" * 200, "DROP MEASUREMENT octopus_consumption", "1200 0000 0000 01"]))
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_accepted(lines, influxdb, database="hostile"):
    """Every line parses, and InfluxDB takes the lot (HTTP 204)."""
    points = parse(lines)
    if lines:
        influxdb.create_database(database)
        influxdb.write(database, lines)
    return points


@HYPOTHESIS
@given(serial=nasty, mpan=nasty)
def test_any_meter_setting_is_escaped_or_refused(fake, plugin_env, influxdb, serial, mpan):
    fake.meters.clear()
    fake.add_meter("electricity", "".join(mpan.split()), serial.strip(), london(2024, 1, 1), london(2024, 1, 1, 3))
    env = {**plugin_env, "OCTO_ELECTRIC_MPAN": mpan, "OCTO_ELECTRIC_SN": serial, "OCTO_BACKFILL_FROM": "2024-01-01",
           "OCTO_STATE_DIR": plugin_env["OCTO_STATE_DIR"] + str(abs(hash((serial, mpan))))}
    result = run_once(env)
    errors = result.stderr.decode().splitlines()
    if result.returncode == 2:
        assert len(errors) == 1 and errors[0].startswith("E! ") and "OCTO_ELECTRIC_" in errors[0]
        assert result.stdout == b""
        return
    assert result.returncode == 0, errors
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 6 + 1  # six half-hours and the collector point: nothing more, nothing less
    points = check_accepted(lines, influxdb)
    assert {p["tags"]["serial"] for p in points} == {serial.strip()}
    assert {p["tags"]["meter_point"] for p in points} == {"".join(mpan.split())}


@HYPOTHESIS
@given(middle=nasty, serial=nasty)
def test_any_tariff_code_or_serial_from_the_account_is_escaped_or_skipped(fake, plugin_env, influxdb, middle, serial):
    code = f"E-1R-{middle}-C"
    fake.meters.clear()
    fake.add_meter("electricity", IMPORT[1], serial, london(2024, 1, 1), london(2024, 1, 1, 2))
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2023, 1, 1))])
    fake.accounts[ACCOUNT]["properties"][0]["electricity_meter_points"][0]["meters"] = [{"serial_number": serial}]
    fake.add_rates(code, "standard-unit-rates", [(london(2023, 1, 1), None, 20.0, 19.05, None)])
    fake.add_rates(code, "standing-charges", [(london(2023, 1, 1), None, 40.0, 38.1, None)])
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01",
           "OCTO_STATE_DIR": plugin_env["OCTO_STATE_DIR"] + str(abs(hash((serial, middle))))}
    result = run_once(env)
    logs = result.stderr.decode().splitlines()
    assert all(line[:3] in ("E! ", "W! ", "I! ", "D! ") for line in logs)
    lines = result.stdout.decode().splitlines()
    points = check_accepted(lines, influxdb)
    consumption = [p for p in points if p["measurement"] == "octopus_consumption"]
    if consumption:  # collected: the serial came out exactly, and every half-hour once
        assert {p["tags"]["serial"] for p in consumption} == {serial.strip()}
        assert len(consumption) == 4
        tariffs = {p["tags"]["tariff"] for p in points if "tariff" in p["tags"]}
        assert tariffs <= {code.strip()}
    else:  # refused: said so on a warning line
        # (a serial the API wrote with spaces around it asks for one without: no data, said on an I! line)
        assert any(line.startswith(("W! ", "E! ")) or "no data, not collected" in line for line in logs), logs
    assert len(lines) == len(points)


@pytest.mark.parametrize("body,level", [
    (b'{"count": 1, "next": null, "results": {"not": "a list"}}', "E! "),
    (b'{"count": 1, "next": null, "results": ["a string", 7, null, {"interval_start": 5}]}', "W! "),  # rows
    (b'{"count": 1, "next": 17, "results": []}', "E! "),
    (b'[1, 2, 3]', "E! "),
    (b'{"results": [{"consumption": "NaN", "interval_start": "2024-01-01T00:00:00Z",'
     b' "interval_end": "2024-01-01T00:30:00Z"}]}', "W! "),
    (b'{"results": [{"consumption": 1e999, "interval_start": "2024-01-01T00:00:00Z",'
     b' "interval_end": "2024-01-01T00:30:00Z"}]}', "W! "),
    (b" " * (65 * 1024 * 1024) + b"{}", "E! "),
], ids=["results-dict", "rows-garbage", "next-number", "top-list", "nan-string", "infinity", "65-MiB"])
def test_a_response_of_the_wrong_shape_or_size_is_one_line_not_a_crash(fake, plugin_env, launch, body, level):
    """A response that cannot be read is one E! line; rows that cannot be read, one W! line."""
    fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 1, 2))
    fake.add_meter(*GAS, london(2024, 1, 1), london(2024, 1, 2))
    fake.inject("raw", body=body, path=IMPORT[1])
    env = {**plugin_env, **meter_env(IMPORT, GAS), "OCTO_BACKFILL_FROM": "2024-01-01", "OCTO_RETRY_PAUSE": "0.05"}
    plugin = launch(env)
    plugin.gather(2, timeout=60)
    plugin.gather(2, timeout=60)  # the next gather reads it properly
    code, _ = plugin.stop()
    assert code == 0
    points = parse(plugin.stdout)
    for meter in (IMPORT, GAS):
        stamps = [p["time"] for p in points if p["measurement"] == "octopus_consumption"
                  and p["tags"]["meter_point"] == meter[1]]
        assert sorted(stamps) == sorted(fake.data(*meter))  # once each, nothing lost
    about_it = [line for line in plugin.stderr if line.startswith(("E! ", "W! ")) and IMPORT[1] in line]
    assert [line[:3] for line in about_it] == [level], plugin.stderr
    assert all(len(line) < 1024 for line in plugin.stderr)


def test_the_key_goes_to_the_configured_origin_only_at_the_socket(fake, plugin_env):
    """Raw request bytes: the key, in any form, only ever to OCTO_API_URL, and never to public endpoints."""
    other = FakeOctopus(api_key=fake.api_key)
    try:
        fake.foreign_url = other.url
        fake.add_meter(*IMPORT, london(2024, 1, 1), london(2024, 1, 3))
        fake.accounts[ACCOUNT] = account_document([agreement("E-1R-VAR-22-11-01-C", london(2023, 1, 1))])
        fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": "E-1R-VAR-22-11-01-C"})
        fake.products["VAR-22-11-01"]["single_register_electricity_tariffs"]["_C"]["direct_debit_monthly"][
            "links"][0]["href"] = f"{other.url}/v1/products/VAR-22-11-01/electricity-tariffs/E-1R-VAR-22-11-01-C/" \
                                  "standard-unit-rates/"  # a link to another origin: not followed
        fake.add_rates("E-1R-VAR-22-11-01-C", "standard-unit-rates", [(london(2023, 1, 1), None, 20.0, 19.0, None)])
        fake.add_rates("E-1R-VAR-22-11-01-C", "standing-charges", [(london(2023, 1, 1), None, 40.0, 38.1, None)])
        fake.inject("foreign_next")
        env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01", "PAGE_SIZE": "40",
               "OCTO_LOG_LEVEL": "debug"}
        result = run_once(env)
        assert result.returncode == 0, result.stderr
        key = fake.api_key.encode()
        forms = [key, base64.b64encode(key + b":"), base64.b64encode(key)]
        assert other.raw_requests == []
        for _, raw in fake.raw_requests:
            line = raw.split(b"\r\n")[0]
            carries = any(form in raw for form in forms)
            if b"/v1/products/" in line:
                assert not carries, line  # public endpoints get no key
            elif b"/consumption/" in line or b"/v1/accounts/" in line:
                assert carries, line
        assert not any(form in result.stdout + result.stderr for form in forms)
    finally:
        other.close()


def test_fifty_meters_in_one_process(fake, plugin_env):
    points = [{"mpan": f"12000000{n:05d}", "is_export": False, "meters": [{"serial_number": f"S{n:03d}"}],
               "agreements": []} for n in range(50)]
    for point in points:
        fake.add_meter("electricity", point["mpan"], point["meters"][0]["serial_number"],
                       london(2024, 1, 1), london(2024, 1, 2))
    fake.accounts[ACCOUNT] = {"number": ACCOUNT, "properties": [
        {"id": 1, "moved_out_at": None, "electricity_meter_points": points, "gas_meter_points": []}]}
    env = {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01",
           "OCTO_ELECTRIC_COST": "25"}
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    printed = parse(result.stdout.decode().splitlines())
    per_meter = {}
    for point in printed:
        if point["measurement"] == "octopus_consumption":
            per_meter[point["tags"]["meter_point"]] = per_meter.get(point["tags"]["meter_point"], 0) + 1
    assert len(per_meter) == 50 and set(per_meter.values()) == {48}


def test_output_is_utf8_whatever_the_locale(fake, plugin_env):
    serial = "É☃-0001"
    fake.add_meter("electricity", IMPORT[1], serial, london(2024, 1, 1), london(2024, 1, 1, 1))
    env = {**plugin_env, "OCTO_ELECTRIC_MPAN": IMPORT[1], "OCTO_ELECTRIC_SN": serial,
           "OCTO_BACKFILL_FROM": "2024-01-01", "PYTHONIOENCODING": "latin-1", "LANG": "C", "OCTO_LOG_LEVEL": "debug"}
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    points = parse(result.stdout.decode("utf-8").splitlines())
    assert {p["tags"]["serial"] for p in points} == {serial}
    assert all(line[:3] in ("E! ", "W! ", "I! ", "D! ") for line in result.stderr.decode("latin-1").splitlines())
