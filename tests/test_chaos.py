"""A seeded chaos run: hundreds of gathers of the installed command against an API that misbehaves
in every way we know of (header drips included), with comparisons and events on, while the process
is SIGKILLed and restarted, or stopped as Telegraf stops it. Afterwards, what was printed must be
exactly what the API served, with repeats only where a kill made them unavoidable, and what InfluxDB
holds must be what a clean run leaves. Loopback only; bounded in gathers and in time. CHAOS_SEED /
CHAOS_GATHERS change the run."""

import json
import os
import random
import signal
import threading
import time
from collections import Counter

import pytest

from test_containment import influx_view
from test_events import NIGHTS, POWER_DOWN, POWER_UP
from test_prices import (
    ACCOUNT,
    AGILE,
    GAS_VARIABLE,
    OUTGOING,
    SWITCH,
    VARIABLE,
    account_document,
    agile_price,
    agreement,
    half_hours,
)

from conftest import EXPORT, GAS, IMPORT, meter_env, parse, run_once
from fake_octopus import HALF_HOUR_NS, Fault, london

SEED = int(os.environ.get("CHAOS_SEED", "20261127"))
GATHERS = int(os.environ.get("CHAOS_GATHERS", "300"))
DEADLINE_SECONDS = 600
METERS = (IMPORT, EXPORT, GAS)
DAY_NS = 48 * HALF_HOUR_NS


def expected_rate(meter, start_ns):
    if meter == GAS:
        return 6.89
    if meter == EXPORT:
        return agile_price(start_ns) / 2
    return agile_price(start_ns) if start_ns < SWITCH else 24.5


class ChaosApi:
    """Decides, per request, whether and how the fake API misbehaves; counts what it injected."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lock = threading.Lock()
        self.injected = Counter()
        self.enabled = True

    def __call__(self, path: str) -> Fault | None:
        with self.lock:
            if not self.enabled or self.rng.random() > 0.16:
                return None
            roll = self.rng.random()
            if roll < 0.12:
                fault = Fault("status", status=429, retry_after=self.rng.choice([None, "0", "1"]))
            elif roll < 0.14:
                fault = Fault("status", status=429, retry_after="3600")  # leave this meter alone for now
            elif roll < 0.32:
                fault = Fault("status", status=self.rng.choice([500, 502, 503]))
            elif roll < 0.37:
                fault = Fault("slow", seconds=1.0)  # past OCTO_HTTP_TIMEOUT=0.5
            elif roll < 0.42:
                fault = Fault("header_drip", seconds=0.2)  # a status line, then a header byte every 0.2 s
            elif roll < 0.54:
                fault = Fault("reset")
            elif roll < 0.66:
                fault = Fault("truncated")
            elif roll < 0.78:
                fault = Fault("html", status=self.rng.choice([403, 502]))
            else:
                fault = Fault("over_return", extra_rows=self.rng.randint(1, 12))
            name = fault.kind + (f"-{fault.status}" if fault.kind in ("status", "html") else "")
            if fault.retry_after:
                name += f"-retry-after-{fault.retry_after}"
            self.injected[name] += 1
            return fault


class Process:
    def __init__(self, launch, env):
        self.plugin = launch(env)
        self.last_trigger_line = 0  # stdout lines before the newest trigger
        self.killed = False


def test_chaos_nothing_lost_nothing_repeated_without_a_kill(fake, plugin_env, launch, tmp_path):
    rng = random.Random(SEED)
    started = time.monotonic()
    start, initial_end = london(2024, 1, 1), london(2024, 1, 12)
    for meter in METERS:
        fake.add_meter(*meter, start, initial_end, value=lambda i: round(rng.uniform(0.0, 2.5), 3))
    fake.accounts[ACCOUNT] = account_document(
        [agreement(AGILE, london(2023, 6, 1), SWITCH), agreement(VARIABLE, SWITCH)],
        [agreement(OUTGOING, london(2023, 6, 1))], [agreement(GAS_VARIABLE, london(2023, 6, 1))])
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE})
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": VARIABLE})
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": GAS_VARIABLE}, fuel="gas")
    fake.add_product("AGILE-OUTGOING-19-05-13", "C", {"direct_debit_monthly": OUTGOING})
    rates_from, rates_to = london(2023, 12, 1), london(2024, 4, 1)
    fake.add_rates(AGILE, "standard-unit-rates", [(s, s + HALF_HOUR_NS, agile_price(s), agile_price(s), None)
                                                  for s in half_hours(rates_from, rates_to)])
    fake.add_rates(OUTGOING, "standard-unit-rates", [(s, s + HALF_HOUR_NS, agile_price(s) / 2, agile_price(s) / 2,
                                                      None) for s in half_hours(rates_from, rates_to)])
    fake.add_rates(VARIABLE, "standard-unit-rates", [(london(2023, 10, 1), None, 24.5, 23.33, "DIRECT_DEBIT"),
                                                     (london(2023, 10, 1), None, 25.9, 24.67, "NON_DIRECT_DEBIT")])
    fake.add_rates(GAS_VARIABLE, "standard-unit-rates", [(london(2023, 10, 1), None, 6.89, 6.56, None)])
    for code in (AGILE, VARIABLE, GAS_VARIABLE, OUTGOING):
        fake.add_rates(code, "standing-charges", [(london(2023, 10, 1), None, 40.0, 38.1, None)])
    # comparisons (a family, a product code, the export family) and events, all behind the boundary
    fake.list_product("AGILE-FLEX-22-11-25", london(2022, 11, 25))
    fake.list_product("VAR-22-11-01", london(2022, 11, 1))
    fake.list_product("AGILE-OUTGOING-19-05-13", london(2019, 5, 13), direction="EXPORT")
    fake.campaign_events = {"octoplus-saving-sessions": [POWER_DOWN], "free_electricity": [POWER_UP]}
    fake.greener_nights = [dict(night) for night in NIGHTS]
    chaos = ChaosApi(random.Random(SEED + 1))
    fake.chaos = chaos
    env = {**plugin_env, **meter_env(*METERS), "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2024-01-01",
           "OCTO_MAX_POINTS": "400", "OCTO_HTTP_TIMEOUT": "0.5", "OCTO_RETRY_PAUSE": "0.05",
           "OCTO_LOG_LEVEL": "debug", "OCTO_COMPARE": "agile=agile,flex=VAR-22-11-01,out=agile_outgoing",
           "OCTO_EVENTS": "true", "OCTO_BACKEND_API_URL": fake.backend_url}

    processes = [Process(launch, env)]
    held: dict = {}  # (meter, start) -> value kept back: a gap the API fills later
    counts = Counter()

    def newest_printed(meter):
        stamps = [p["time"] for proc in processes for p in parse(proc.plugin.stdout)
                  if p["measurement"] == "octopus_consumption" and p["tags"]["meter_point"] == meter[1]]
        return max(stamps, default=None)

    def advance_data():
        """A new day of data with a few gaps; yesterday's gaps filled; a few recent values corrected."""
        for (meter, stamp), value in list(held.items()):
            fake.data(*meter)[stamp] = value
            del held[(meter, stamp)]
            counts["gaps filled late"] += 1
        for meter in METERS:
            data = fake.data(*meter)
            end = max(data) + HALF_HOUR_NS
            for stamp in range(end, end + DAY_NS, HALF_HOUR_NS):
                data[stamp] = round(rng.uniform(0.0, 2.5), 3)
            for stamp in rng.sample(range(end, end + DAY_NS - HALF_HOUR_NS, HALF_HOUR_NS), 2):
                held[(meter, stamp)] = data.pop(stamp)
            newest = newest_printed(meter)
            if newest is not None:  # corrections inside the look-back window of what was printed
                recent = [s for s in data if newest - DAY_NS <= s <= newest]
                for stamp in rng.sample(recent, min(2, len(recent))):
                    data[stamp] = round(data[stamp] + 0.5, 3)
                    counts["values corrected"] += 1

    def restart():
        processes.append(Process(launch, env))
        counts["restarts"] += 1

    for gather in range(GATHERS):
        assert time.monotonic() - started < DEADLINE_SECONDS - 120, f"too slow at gather {gather}"
        current = processes[-1]
        assert current.plugin.proc.poll() is None, f"exited by itself: {current.plugin.stderr[-3:]}"
        if gather % 10 == 9:
            advance_data()
        if gather % 37 == 5:
            fake.unknown_points ^= {GAS[1]}  # the gas meter 404s for a while, then comes back
            counts["404 periods"] += 1
        action = rng.random()
        current.last_trigger_line = len(current.plugin.stdout)
        counts["gathers"] += 1
        if action < 0.05:  # SIGKILL at a random moment of the gather
            current.plugin.trigger()
            time.sleep(rng.uniform(0, 0.4))
            current.plugin.proc.send_signal(signal.SIGKILL)
            current.plugin.proc.wait(5)
            current.killed = True
            counts["kills at random"] += 1
            restart()
        elif action < 0.08:  # SIGKILL just after output appears: between the print and the state save
            before = len(current.plugin.stdout)
            current.plugin.trigger()
            current.plugin.wait_until(lambda out=current.plugin.stdout, n=before: len(out) > n, 30, "output")
            current.plugin.proc.send_signal(signal.SIGKILL)
            current.plugin.proc.wait(5)
            current.killed = True
            counts["kills after print"] += 1
            restart()
        elif action < 0.10:  # Telegraf stops it: stdin closed
            current.plugin.gather(3, timeout=60)
            code, elapsed = current.plugin.stop()
            assert code == 0 and elapsed < 3, (code, elapsed)
            counts["stdin closes"] += 1
            restart()
        else:
            current.plugin.gather(3, timeout=60)

    # Calm: no more faults; gather until nothing new comes, as a fresh process would.
    chaos.enabled = False
    fake.unknown_points.clear()
    for (meter, stamp), value in list(held.items()):
        fake.data(*meter)[stamp] = value
    held.clear()
    processes[-1].plugin.stop()
    final = Process(launch, env)
    processes.append(final)
    quiet = 0
    for _ in range(60):
        before = len(final.plugin.stdout)
        final.plugin.gather(3, timeout=60)
        new = [line for line in final.plugin.stdout[before:] if not line.startswith(("octopus_collector,",
                                                                                     "octopus_octopoints,"))]
        quiet = quiet + 1 if not new else 0
        if quiet == 2:
            break
    code, _ = final.plugin.stop()
    assert code == 0

    # 1. every half-hour the API served, with its final value and the right price; nothing else
    last_value: dict = {}
    first_seen: dict = {}
    printed_count = Counter()
    repeats = excused = 0
    for number, proc in enumerate(processes):
        for index, line in enumerate(proc.plugin.stdout):
            point = parse([line])[0]
            if point["measurement"] == "octopus_collector":
                continue
            key = (point["measurement"], tuple(sorted(point["tags"].items())), point["time"],
                   tuple(sorted(point["fields"].items())))
            printed_count[key] += 1
            if key in first_seen:
                repeats += 1
                first_number, first_index = first_seen[key]
                first = processes[first_number]
                # unavoidable only if first printed in the last gather of a process that was SIGKILLed
                assert first.killed and first_index >= first.last_trigger_line, f"needless repeat: {line}"
                excused += 1
            else:
                first_seen[key] = (number, index)
            if point["measurement"] == "octopus_consumption":
                last_value[(point["tags"]["meter_point"], point["time"])] = point["fields"]
    half_hours_served = 0
    for meter in METERS:
        served = fake.data(*meter)
        half_hours_served += len(served)
        printed = {stamp: fields for (point, stamp), fields in last_value.items() if point == meter[1]}
        assert sorted(printed) == sorted(served), f"{meter[1]}: missing or extra half-hours"
        for stamp, fields in printed.items():
            assert fields["kwh" if meter != GAS else "m3"] == served[stamp], (meter[1], stamp)
            assert fields["unit_rate_pence"] == pytest.approx(expected_rate(meter, stamp)), (meter[1], stamp)
    # 2. what InfluxDB holds is what a clean run of the same account leaves (the unit rates published ahead
    # aside: how far ahead they reach depends on when they were last looked for, not on the chaos)
    def view(lines):
        return {k: v for k, v in influx_view(lines).items() if k[0] != "octopus_unit_rate"}

    holds = view([line for proc in processes for line in proc.plugin.stdout])
    clean = view(run_once({**env, "OCTO_STATE_DIR": str(tmp_path / "clean"), "OCTO_MAX_POINTS": "100000"},
                          timeout=120).stdout.decode().splitlines())
    assert {k[0] for k in clean} >= {"octopus_comparison_daily", "octopus_event", "octopus_greener_night"}
    differing = sorted(set(holds) ^ set(clean)) + [(k, holds[k], clean[k]) for k in holds
                                                   if k in clean and holds[k] != clean[k]]
    assert not differing, differing[:3]
    # 3. the key never reached stdout, stderr or the state directory
    for proc in processes:
        assert fake.api_key.encode() not in proc.plugin.raw_stdout + proc.plugin.raw_stderr
    for path in (tmp_path / "state").iterdir():
        assert fake.api_key.encode() not in path.read_bytes()
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert all(len(progress["printed"]) <= 72 * 2 + 2 for progress in saved["meters"].values())

    figures = {"seed": SEED, "gathers": counts["gathers"], "faults injected": dict(sorted(chaos.injected.items())),
               "faults total": sum(chaos.injected.values()), "kills at random": counts["kills at random"],
               "kills after print": counts["kills after print"], "stdin closes": counts["stdin closes"],
               "restarts": counts["restarts"], "404 periods": counts["404 periods"],
               "gaps filled late": counts["gaps filled late"], "values corrected": counts["values corrected"],
               "half-hours served": half_hours_served, "half-hours printed (distinct)": len(last_value),
               "repeats (all after a SIGKILL)": repeats, "unexpected exits": 0,
               "requests": len(fake.requests), "seconds": round(time.monotonic() - started, 1)}
    print("\nCHAOS " + json.dumps(figures))
    (tmp_path.parent / "chaos-figures.json").write_text(json.dumps(figures))
    assert counts["gathers"] >= 300 or GATHERS < 300
    assert counts["kills at random"] + counts["kills after print"] > 0 and sum(chaos.injected.values()) > 100
