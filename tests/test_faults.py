"""API trouble never ends the process, retries are bounded, and the key never leaks."""

import time

import pytest

from conftest import EXPORT, GAS, IMPORT, consumption, meter_env, parse
from fake_octopus import london


@pytest.fixture
def env(fake, plugin_env):
    for meter in (IMPORT, GAS):
        fake.add_meter(*meter, london(2024, 5, 1), london(2024, 5, 3))
    return {**plugin_env, **meter_env(IMPORT, GAS), "OCTO_BACKFILL_FROM": "2024-05-01", "OCTO_HTTP_TIMEOUT": "1.5",
            "OCTO_LOG_LEVEL": "debug"}


def requests_for(fake, meter):
    return [r for r in fake.consumption_requests() if meter[1] in r.path]


def assert_all_printed_once(plugin, fake):
    for meter in (IMPORT, GAS):
        printed = [p for p in parse(plugin.stdout) if p["measurement"] == "octopus_consumption"
                   and p["tags"]["meter_point"] == meter[1]]
        assert sorted(p["time"] for p in printed) == sorted(fake.data(*meter))


@pytest.mark.parametrize("fault", [
    dict(kind="status", status=429, retry_after="1"),
    dict(kind="status", status=429),
    dict(kind="status", status=500),
    dict(kind="status", status=503, retry_after="0"),
    dict(kind="reset"),
    dict(kind="slow", seconds=3),  # past OCTO_HTTP_TIMEOUT
    dict(kind="truncated"),
    dict(kind="html", status=502),
], ids=lambda f: "-".join(str(v) for v in f.values()))
def test_a_transient_fault_is_retried_within_the_gather(fake, env, launch, fault):
    fake.inject(path=IMPORT[1], **fault)
    plugin = launch(env)
    started = time.monotonic()
    plugin.gather(2)
    elapsed = time.monotonic() - started
    assert len(requests_for(fake, IMPORT)) == 2  # the failure and one retry
    assert_all_printed_once(plugin, fake)
    if fault.get("retry_after") == "1":
        first, second = requests_for(fake, IMPORT)
        assert second.at - first.at >= 0.9
    assert elapsed < 15
    collector = [p for p in parse(plugin.stdout) if p["measurement"] == "octopus_collector"
                 and p["tags"]["meter_point"] == IMPORT[1]]
    assert collector[0]["fields"]["errors"] == 1 and collector[0]["fields"]["requests"] == 2
    code, _ = plugin.stop()
    assert code == 0


def test_three_failures_give_up_until_the_next_gather_without_exiting(fake, env, launch):
    fake.inject("status", status=500, path=IMPORT[1], times=3)
    plugin = launch(env)
    plugin.gather(2)
    assert len(requests_for(fake, IMPORT)) == 3  # at most two retries
    assert any(line.startswith("W! ") and IMPORT[1] in line and "500" in line for line in plugin.stderr)
    assert len(consumption(parse(plugin.stdout), GAS)) == 96  # the other meter carried on
    assert consumption(parse(plugin.stdout), IMPORT) == {}
    plugin.gather(2)  # the next gather gets it
    assert_all_printed_once(plugin, fake)
    assert plugin.proc.poll() is None
    plugin.stop()


@pytest.mark.parametrize("status,html", [(401, False), (403, False), (403, True)])
def test_auth_failures_are_not_retried(fake, env, launch, status, html):
    fake.inject("html" if html else "status", status=status, path=IMPORT[1])
    plugin = launch(env)
    plugin.gather(2)
    assert len(requests_for(fake, IMPORT)) == 1
    errors = [line for line in plugin.stderr if line.startswith("E! ")]
    assert len(errors) == 1 and str(status) in errors[0] and "OCTO_API_KEY" in errors[0]  # what to check
    if html:
        assert "HTML" in errors[0] and "<" not in errors[0]
    plugin.gather(2)
    assert_all_printed_once(plugin, fake)
    plugin.stop()


def test_a_long_retry_after_leaves_the_meter_alone_until_then(fake, env, launch):
    fake.inject("status", status=429, retry_after="4", path=IMPORT[1])
    env["OCTO_HTTP_TIMEOUT"] = "10"
    # 4 s is within the 30 s bound: waited for inside the gather
    plugin = launch(env)
    plugin.gather(2)
    first, second = requests_for(fake, IMPORT)
    assert second.at - first.at >= 3.9
    plugin.stop()


def test_retry_after_beyond_30s_skips_the_meter_on_later_gathers(fake, env, launch):
    fake.inject("status", status=429, retry_after="3600", path=IMPORT[1])
    plugin = launch(env)
    plugin.gather(2)
    plugin.gather(2)
    plugin.gather(2)
    assert len(requests_for(fake, IMPORT)) == 1  # asked once, then left alone
    assert len(requests_for(fake, GAS)) == 3
    assert any("3600" in line for line in plugin.stderr)
    plugin.stop()


def test_the_key_never_reaches_stdout_or_stderr(fake, env, launch):
    for kind in ("reset", "truncated", "html"):
        fake.inject(kind, path=IMPORT[1])
    fake.inject("status", status=401, path=GAS[1])
    plugin = launch({**env, **meter_env(IMPORT, EXPORT, GAS)})
    for _ in range(3):
        plugin.gather(3)
    plugin.stop()
    assert fake.api_key.encode() not in plugin.raw_stdout
    assert fake.api_key.encode() not in plugin.raw_stderr
    assert all(r.api_key == fake.api_key for r in fake.requests)
