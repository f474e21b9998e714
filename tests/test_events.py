"""Octoplus events, Octopoints and Greener Nights (SPEC section 10): read-only, on the shared budget, the
bare token alone on the second origin, sticky flags, exact 23:00 London stamps, and containment."""

import json
import os

import pytest

from test_live import ELECTRIC, live_env, readings  # noqa: F401 - live_env is a fixture
from test_prices import ACCOUNT, account_document, agreement

from conftest import IMPORT, consumption, parse, run_once
from fake_octopus import london, render

POWER_DOWN = {"code": "SESSION-17", "startAt": render(london(2024, 3, 1, 17, 30), "colon"),
              "endAt": render(london(2024, 3, 1, 18, 30), "colon")}
POWER_UP = {"code": "FREE-3", "startAt": render(london(2024, 7, 2, 12), "colon"),
            "endAt": render(london(2024, 7, 2, 13), "colon")}
NIGHTS = [{"date": "2024-07-01", "isGreenerNight": True, "greennessScore": 80, "greennessIndex": "HIGH"},
          {"date": "2024-12-01", "isGreenerNight": False, "greennessScore": "35", "greennessIndex": "LOW"}]


@pytest.fixture
def events_env(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 2))
    code = "E-1R-VAR-22-11-01-C"
    fake.accounts[ACCOUNT] = account_document([agreement(code, london(2024, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": code})
    fake.add_rates(code, "standard-unit-rates", [(london(2024, 1, 1), None, 24.5, 23.33, None)])
    fake.add_rates(code, "standing-charges", [(london(2024, 1, 1), None, 60.0, 57.14, None)])
    fake.campaign_events = {"octoplus-saving-sessions": [POWER_DOWN], "free_electricity": [POWER_UP]}
    fake.greener_nights = [dict(night) for night in NIGHTS]
    return {**plugin_env, "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_EVENTS": "true",
            "OCTO_BACKEND_API_URL": fake.backend_url}


def points_of(result, measurement):
    return [p for p in parse(result.stdout.decode().splitlines()) if p["measurement"] == measurement]


def state_of(env) -> dict:
    with open(os.path.join(env["OCTO_STATE_DIR"], "state.json")) as handle:
        return json.load(handle)


def let_time_pass(env):
    """As if hours had passed: every part is due again (the state keeps when each was last asked)."""
    path = os.path.join(env["OCTO_STATE_DIR"], "state.json")
    state = state_of(env)
    state["events"]["asked"] = {}
    with open(path, "w") as handle:
        json.dump(state, handle)


def test_events_points_and_nights_are_printed_with_exact_stamps(fake, events_env):
    result = run_once(events_env)
    assert result.returncode == 0, result.stderr
    events = {(p["tags"]["kind"], p["tags"]["code"]): p for p in points_of(result, "octopus_event")}
    assert events[("power_down", "SESSION-17")]["time"] == london(2024, 3, 1, 17, 30)
    assert events[("power_down", "SESSION-17")]["fields"] == {"duration_s": 3600}
    assert events[("power_up", "FREE-3")]["time"] == london(2024, 7, 2, 12)
    nights = {p["time"]: p["fields"] for p in points_of(result, "octopus_greener_night")}
    summer, winter = 1719871200 * 10**9, 1733094000 * 10**9  # 23:00 London: 22:00Z in BST, 23:00Z in GMT
    assert summer == london(2024, 7, 1, 23) and winter == london(2024, 12, 1, 23)
    assert nights[summer] == {"score": 80, "index": "HIGH", "greener_night": True, "ever_flagged": True}
    assert nights[winter] == {"score": 35, "index": "LOW", "greener_night": False, "ever_flagged": False}
    (points,) = points_of(result, "octopus_octopoints")
    assert points["tags"] == {"account": ACCOUNT} and points["fields"] == {"balance": 1234}
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == 48


def test_only_the_bare_token_goes_to_the_backend(fake, events_env):
    run_once(events_env)
    (authorization, body), = fake.backend_calls
    assert authorization in fake.live_tokens and not authorization.startswith(("JWT ", "Basic "))
    assert "greenerNightsForecast" in body["query"] and fake.api_key not in json.dumps(body)
    assert fake.api_key not in authorization


def test_the_backend_refuses_the_jwt_prefix_and_the_key(fake, events_env):
    """The fake holds the backend to its convention: what the plugin sends is the only thing it takes."""
    import urllib.request

    token = next(iter(fake.live_tokens)) if fake.live_tokens else None
    run_once(events_env)
    token = token or next(iter(fake.live_tokens))
    for header in (f"JWT {token}", fake.api_key):
        request = urllib.request.Request(f"{fake.backend_url}/v1/graphql/", method="POST",
                                         data=json.dumps({"query": "{ greenerNightsForecast { date } }"}).encode(),
                                         headers={"Authorization": header, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["errors"][0]["extensions"]["errorCode"] == "KT-CT-1139"


def test_a_night_that_loses_its_flag_stays_ever_flagged_across_a_restart(fake, events_env):
    run_once(events_env)
    fake.greener_nights[0]["isGreenerNight"] = False  # Octopus removes the flag
    let_time_pass(events_env)
    result = run_once(events_env)  # a restart
    (night,) = [p for p in points_of(result, "octopus_greener_night") if p["time"] == london(2024, 7, 1, 23)]
    assert night["fields"]["greener_night"] is False and night["fields"]["ever_flagged"] is True
    assert not [p for p in points_of(result, "octopus_greener_night") if p["time"] == london(2024, 12, 1, 23)]


def test_an_event_whose_end_moves_is_printed_again_and_only_then(fake, events_env):
    run_once(events_env)
    let_time_pass(events_env)
    assert not points_of(run_once(events_env), "octopus_event")  # nothing changed: nothing printed
    fake.campaign_events["octoplus-saving-sessions"][0]["endAt"] = render(london(2024, 3, 1, 19), "colon")
    let_time_pass(events_env)
    (event,) = points_of(run_once(events_env), "octopus_event")
    assert event["fields"]["duration_s"] == 5400 and event["tags"]["code"] == "SESSION-17"


def test_not_enrolled_asks_no_ledger(fake, events_env):
    fake.enrolled = False
    result = run_once(events_env)
    assert not points_of(result, "octopus_octopoints")
    assert fake.graphql_queries("octoplusAccountInfo") and not fake.graphql_queries("loyaltyPointLedgers")
    assert "not enrolled" in result.stderr.decode()


BROKEN = {
    "events errors": ("customerFlexibilityCampaignEvents", {"errors": [{"message": "x",
                                                                        "extensions": {"errorCode": "KT-CT-9999"}}]}),
    "events null": ("customerFlexibilityCampaignEvents", {"data": {"customerFlexibilityCampaignEvents": None}}),
    "events wrong type": ("customerFlexibilityCampaignEvents",
                          {"data": {"customerFlexibilityCampaignEvents": {"edges": "none"}}}),
    "events nodes odd": ("customerFlexibilityCampaignEvents", {"data": {"customerFlexibilityCampaignEvents": {
        "edges": [{"node": {"code": 5, "startAt": "x"}}, {"node": None}, None, {"node": {"code": "a\\b"}}]}}}),
    "events 500": ("customerFlexibilityCampaignEvents", (500, {}, b'{"detail": "Server Error"}')),
    "events 429": ("customerFlexibilityCampaignEvents", (429, {"Retry-After": "600"}, b'{"detail": "throttled"}')),
    "enrolment wrong type": ("octoplusAccountInfo", {"data": {"octoplusAccountInfo": ["yes"]}}),
    "ledger null": ("loyaltyPointLedgers", {"data": {"loyaltyPointLedgers": None}}),
    "ledger text": ("loyaltyPointLedgers", {"data": {"loyaltyPointLedgers": [{"balanceCarriedForward": "many"}]}}),
    "ledger 500": ("loyaltyPointLedgers", (500, {}, b"<html>oops</html>")),
    "nights errors": ("greenerNightsForecast", {"errors": [{"message": "gone", "extensions": {}}]}),
    "nights wrong types": ("greenerNightsForecast", {"data": {"greenerNightsForecast": [
        {"date": 20240701, "greennessScore": "high"}, {"date": "2024-13-40", "greennessScore": 1,
                                                       "greennessIndex": "X"}, "night"]}}),
    "nights an object": ("greenerNightsForecast", {"data": {"greenerNightsForecast": {"date": "2024-07-01"}}}),
    "nights 429": ("greenerNightsForecast", (429, {"Retry-After": "60"}, b"{}")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_answer_leaves_rest_consumption_printed_in_the_same_gather(fake, events_env, case):
    fake.graphql_replies = [BROKEN[case]]
    result = run_once(events_env)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert len(consumption(parse(result.stdout.decode().splitlines()), IMPORT)) == 48
    assert "Traceback" not in stderr and "gather failed" not in stderr
    assert len([line for line in stderr.splitlines() if line[:3] in ("W! ", "E! ")]) <= 1, stderr


def test_quick_gathers_do_not_ask_more(fake, events_env, launch):
    plugin = launch(events_env)
    for _ in range(6):
        plugin.gather(1)
    plugin.stop()
    asked = {word: len(fake.graphql_queries(word)) for word in (
        "customerFlexibilityCampaignEvents", "octoplusAccountInfo", "loyaltyPointLedgers", "obtainKrakenToken")}
    assert asked == {"customerFlexibilityCampaignEvents": 2, "octoplusAccountInfo": 1, "loyaltyPointLedgers": 1,
                     "obtainKrakenToken": 1}
    assert len(fake.backend_calls) == 1


def test_the_budget_holds_with_the_main_service_and_live_running(fake, events_env, launch):
    fake.add_device(ELECTRIC, "electricity", "import", IMPORT[1], IMPORT[2], readings(10, 1))
    env = {**events_env, "OCTO_GRAPHQL_MAX_PER_HOUR": "7"}
    main, live = launch(env), launch(env, args=("live",))
    for _ in range(5):
        main.gather(1)
        live.trigger()
    main.stop()
    live.stop()
    calls = len(fake.graphql_calls) + len(fake.backend_calls)
    assert calls <= 7
    assert sum("GraphQL budget" in line for line in main.stderr + live.stderr) <= 2  # one line per process


def test_events_off_makes_no_call(fake, events_env):
    run_once({**events_env, "OCTO_EVENTS": "false"})
    assert not fake.graphql_calls and not fake.backend_calls


@pytest.mark.parametrize("url", ["http://example.com", "ftp://127.0.0.1", "https://x/path"])
def test_a_backend_that_is_not_https_or_loopback_is_refused_at_start(events_env, url):
    result = run_once({**events_env, "OCTO_BACKEND_API_URL": url})
    assert result.returncode == 2
    assert result.stderr.decode().startswith("E! OCTO_BACKEND_API_URL")


def test_a_session_printed_in_a_gather_whose_other_campaign_failed_is_printed_again(fake, events_env):
    first = {"data": {"customerFlexibilityCampaignEvents": {"edges": [{"node": POWER_DOWN}]}}}
    failed = {"errors": [{"message": "x", "extensions": {"errorCode": "KT-CT-9999"}}]}
    fake.graphql_replies = [("customerFlexibilityCampaignEvents", first), ("customerFlexibilityCampaignEvents", failed)]
    assert not points_of(run_once(events_env), "octopus_event")  # the gather's events: all or nothing
    let_time_pass(events_env)
    codes = {p["tags"]["code"] for p in points_of(run_once(events_env), "octopus_event")}
    assert codes == {"SESSION-17", "FREE-3"}


def test_an_index_with_quotes_is_written_escaped(fake, events_env, influxdb):
    fake.greener_nights = [{"date": "2024-07-01", "isGreenerNight": True, "greennessScore": 80,
                            "greennessIndex": 'VERY "HIGH" \\ '}]
    lines = [line for line in run_once(events_env).stdout.decode().splitlines()
             if line.startswith("octopus_greener_night")]
    influxdb.create_database("nights")
    influxdb.write("nights", lines)
    (row,) = influxdb.query("nights", 'SELECT "index" FROM "octopus_greener_night"')
    assert row["index"] == 'VERY "HIGH" \\ '
