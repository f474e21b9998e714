"""Benchmark: prints figures, asserts nothing. Run: python3 tests/benchmark.py [--years 5] [--before COMMAND]

1. in-process parse+format throughput: API JSON pages -> line protocol text, half-hours per second
2. the installed command's wall time and peak RSS for a backfill of three meters against the fake API,
   under execd with the default OCTO_MAX_POINTS, and as one `--once` that prints everything
3. `octopus-telegraf --help` wall time
4. HTTP requests per steady-state gather
5. tariff comparison: a 1-year backfill with three comparisons (Agile, Go, Tracker), requests and time
   (`--only compare` runs this part alone)
6. GraphQL calls per hour of each part, over 12 simulated hours of gathers every 30 minutes with everything
   on (`--only graphql`)
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))

from octopus_telegraf.api.pagestream import PageStream  # noqa: E402
from octopus_telegraf.config.settings import load  # noqa: E402
from octopus_telegraf.core.state import State  # noqa: E402
from octopus_telegraf.service.collector import Collector  # noqa: E402
from test_prices import ACCOUNT, account_document, agreement  # noqa: E402

from conftest import EXPORT, GAS, IMPORT, Plugin, meter_env  # noqa: E402
from fake_octopus import FakeOctopus, london  # noqa: E402

COMMAND = shutil.which("octopus-telegraf")


def throughput(rows: int = 200_000, page_size: int = 25_000, runs: int = 7) -> tuple[float, float]:
    """Half-hours per second from JSON bytes to line protocol text, one core, gas in m3 with a cost:
    (median, best) of `runs`. On a shared VM one run can be 30 % slower than the next; the best run
    is the code's speed on a core it has to itself."""
    fake = FakeOctopus()
    try:
        rng = random.Random(1)  # readings as meters give them: three decimals, mostly small, a long tail
        data = fake.add_meter(*GAS, london(2015, 1, 1), london(2015, 1, 1) + rows * 1_800_000_000_000,
                              value=lambda i: round(rng.lognormvariate(-1.6, 0.9), 3))
        starts = sorted(data)
        pages = []
        for index in range(0, rows, page_size):
            chunk = starts[index:index + page_size]
            pages.append(json.dumps({"count": rows, "next": None, "previous": None, "results": [
                {"consumption": data[s], "interval_start": fake._render(s),
                 "interval_end": fake._render(s + 1_800_000_000_000)} for s in chunk]}).encode())
    finally:
        fake.close()

    class PagesClient:
        requests_made = errors_seen = 0
        stop = threading.Event()

        def consumption_rows(self, meter, period_from, page_size):
            for page in pages:  # as the client streams them: 64 KiB at a time
                stream = PageStream()
                for offset in range(0, len(page), 1 << 16):
                    yield stream.feed(page[offset:offset + (1 << 16)])
                stream.close()

    env = {"OCTO_API_KEY": "k", **meter_env(GAS), "OCTO_BACKFILL_FROM": "2015-01-01", "OCTO_GAS_COST": "6.1",
           "OCTO_MAX_POINTS": str(2 * rows)}
    settings = load(env)
    rates = []
    for _ in range(runs):  # a fresh collector and state each time: every run prints every row
        written = []
        collector = Collector(settings, PagesClient(), State(None),
                              lambda lines, written=written: written.append("\n".join(lines)))
        started = time.perf_counter()
        collector.gather()
        rates.append(rows / (time.perf_counter() - started))
        assert sum(batch.count("octopus_consumption,") for batch in written) == rows  # every row
    return statistics.median(rates), max(rates)


def watch_peak_rss(pid: int, peak: dict) -> None:
    """VmHWM is the process's own high-water mark (ru_maxrss would carry the forking parent's)."""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak["kib"] = max(peak.get("kib", 0), int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            return
        if not os.path.exists(path) or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return
        time.sleep(0.01)


def peak_rss_run(argv, env, stdin_driver=None, cpu: list | None = None):
    """Run a child, return (wall seconds, peak RSS MiB, stdout line count); `cpu` gets the child's own CPU
    seconds (user + system: not the fakes' serving, which the wall time includes)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = {}
    watcher = threading.Thread(target=watch_peak_rss, args=(proc.pid, peak), daemon=True)
    watcher.start()
    counted = {"lines": 0, "collectors": 0}

    def count():
        for line in proc.stdout:
            counted["lines"] += 1
            counted["collectors"] += line.startswith(b"octopus_collector,")

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    if stdin_driver:
        stdin_driver(proc, counted)
    proc.stdin.close()
    watcher.join()  # ends when the child has exited (a zombie until waited for)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    reader.join()
    return time.monotonic() - started, peak.get("kib", 0) / 1024, counted["lines"]


def backfill(years: int):
    fake = FakeOctopus()
    start, end = london(2021, 1, 1), london(2021 + years, 1, 1)
    total = sum(len(fake.add_meter(*m, start, end)) for m in (IMPORT, EXPORT, GAS))
    for s in range(start, end + 1_800_000_000_000, 1_800_000_000_000):  # warm the fake's text cache
        fake._render(s)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url,
                **meter_env(IMPORT, EXPORT, GAS), "OCTO_BACKFILL_FROM": "2021-01-01", "OCTO_HTTP_TIMEOUT": "300"}

        def drive(proc, counted):  # one newline per gather, as Telegraf sends, until every half-hour is out
            gathers = 0
            while counted["lines"] - counted["collectors"] < total:
                proc.stdin.write(b"\n")
                proc.stdin.flush()
                gathers += 1
                while counted["collectors"] < 3 * gathers:  # each gather ends with one per meter
                    time.sleep(0.01)
            results["gathers"] = gathers

        env = {**base, "OCTO_STATE_DIR": f"{tmp}/execd"}
        wall, rss, lines = peak_rss_run([COMMAND], env, drive)
        results["execd"] = (wall, rss, lines - 3 * results["gathers"], len(fake.consumption_requests()))

        fake.requests.clear()
        env = {**base, "OCTO_STATE_DIR": f"{tmp}/once", "OCTO_MAX_POINTS": str(total + 10)}
        wall, rss, lines = peak_rss_run([COMMAND, "--once"], env)
        results["once"] = (wall, rss, lines - 3, len(fake.consumption_requests()))

        # steady state: after the backfill, each gather asks once per meter
        fake.requests.clear()
        plugin = Plugin({**base, "OCTO_STATE_DIR": f"{tmp}/once"})
        for _ in range(5):
            plugin.gather(3, timeout=120)
        plugin.stop()
        results["steady"] = len(fake.consumption_requests()) / 5
    fake.close()
    return total, results


def one_gather(years: int, meters, schema: str, commands: dict, runs: int = 5):
    """`octopus-telegraf --once` printing a whole backfill in one gather, for each install in `commands`
    (name -> command), their runs taken in turn so that a VM's slow spell falls on all of them alike.
    Returns (half-hours, {name: (median wall seconds, median peak RSS MiB (VmHWM of the child), lines)})."""
    fake = FakeOctopus()
    start, end = london(2021, 1, 1), london(2021 + years, 1, 1)
    total = sum(len(fake.add_meter(*m, start, end)) for m in meters)
    for s in range(start, end + 1_800_000_000_000, 1_800_000_000_000):  # warm the fake's text cache
        fake._render(s)
    measured = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for name, command in commands.items():
                env = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key,
                       "OCTO_API_URL": fake.url, **meter_env(*meters), "OCTO_BACKFILL_FROM": "2021-01-01",
                       "OCTO_HTTP_TIMEOUT": "300", "OCTO_SCHEMA": schema, "OCTO_STATE_DIR": f"{tmp}/{name}{run}",
                       "OCTO_MAX_POINTS": str(10 * total)}
                measured[name].append(peak_rss_run([command, "--once"], env))
    fake.close()
    return total, {name: (statistics.median(r[0] for r in runs_), statistics.median(r[1] for r in runs_),
                          runs_[-1][2]) for name, runs_ in measured.items()}


def comparison_fake() -> FakeOctopus:
    """A year (2023) of one import meter on a variable tariff, and Agile, Go and Tracker products to compare
    (a Tracker product change mid-year), region C."""
    fake = FakeOctopus()
    start, end = london(2023, 1, 1), london(2024, 1, 1)
    fake.add_meter(*IMPORT, start, end)
    own = "E-1R-VAR-22-11-01-C"
    fake.accounts[ACCOUNT] = account_document([agreement(own, london(2022, 1, 1))])
    fake.add_product("VAR-22-11-01", "C", {"direct_debit_monthly": own})
    fake.add_rates(own, "standard-unit-rates", [(london(2022, 1, 1), None, 27.0, 25.71, None)])
    fake.add_rates(own, "standing-charges", [(london(2022, 1, 1), None, 53.0, 50.48, None)])
    half_hours = range(london(2022, 12, 30), london(2024, 1, 3), 1_800_000_000_000)
    midnights = [london(2022, 12, 30) + d * 86_400_000_000_000 for d in range(372)]  # winter/summer: close enough
    products = {"AGILE-FLEX-22-11-25": ("E-1R-AGILE-FLEX-22-11-25-C", london(2022, 11, 25), None),
                "GO-VAR-22-10-14": ("E-1R-GO-VAR-22-10-14-C", london(2022, 10, 14), None),
                "SILVER-FLEX-22-11-25": ("E-1R-SILVER-FLEX-22-11-25-C", london(2022, 11, 25), london(2023, 7, 1)),
                "SILVER-23-07-01": ("E-1R-SILVER-23-07-01-C", london(2023, 7, 1), None)}
    for product, (code, on_sale, off_sale) in products.items():
        fake.list_product(product, on_sale, off_sale)
        fake.add_product(product, "C", {"direct_debit_monthly": code})
        fake.add_rates(code, "standing-charges", [(london(2022, 1, 1), None, 50.0, 47.62, None)])
    fake.add_rates("E-1R-AGILE-FLEX-22-11-25-C", "standard-unit-rates",
                   [(s, s + 1_800_000_000_000, 10 + s % 7, 9.5, None) for s in half_hours])
    hour = 3_600_000_000_000
    fake.add_rates("E-1R-GO-VAR-22-10-14-C", "standard-unit-rates",  # off-peak 00:30-05:30, peak until 00:30
                   [row for m in midnights for row in ((m + hour // 2, m + 11 * hour // 2, 9.0, 8.57, None),
                                                       (m + 11 * hour // 2, m + 49 * hour // 2, 30.0, 28.57, None))])
    for code in ("E-1R-SILVER-FLEX-22-11-25-C", "E-1R-SILVER-23-07-01-C"):
        fake.add_rates(code, "standard-unit-rates",
                       [(m, m + 86_400_000_000_000, 20 + m % 5, 19.0, None) for m in midnights])
    return fake


def comparison_backfill():
    """The year of comparison_fake() compared with Agile, Go and Tracker: (wall s, peak RSS MiB, lines,
    requests by kind) of one --once, and the requests of a steady gather."""
    fake = comparison_fake()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url,
               "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_BACKFILL_FROM": "2023-01-01", "OCTO_STATE_DIR": f"{tmp}/s",
               "OCTO_COMPARE": "agile=agile,go=go,tracker=tracker", "OCTO_MAX_POINTS": "10000000"}
        wall, rss, lines = peak_rss_run([COMMAND, "--once"], env)
        kinds = {}
        for request in fake.requests:
            path = request.path
            kind = ("product list" if path == "/v1/products/" else "consumption" if path.endswith("/consumption/")
                    else "rates" if path.endswith("-rates/") or path.endswith("-charges/")
                    else "product documents" if path.startswith("/v1/products/") else "account")
            kinds[kind] = kinds.get(kind, 0) + 1
        plugin = Plugin(env)
        plugin.gather(1, timeout=120)  # a new process reads the account and the product documents once
        fake.requests.clear()
        for _ in range(3):
            plugin.gather(1, timeout=120)
        plugin.stop()
        steady = len(fake.requests) / 3
    fake.close()
    return wall, rss, lines, kinds, steady


def graphql_per_hour(hours: int = 12) -> dict[str, float]:
    """The main service's GraphQL calls per hour by part, on an Intelligent account with gas (OCTO_GAS_UNIT=auto)
    and OCTO_EVENTS=true, gathering every 30 minutes for `hours` of a clock moved on between gathers."""
    from octopus_telegraf.api import budget, graphql
    from octopus_telegraf.api.client import Client
    from octopus_telegraf.base import clock, log
    from octopus_telegraf.core.account import Account
    from octopus_telegraf.extras.dispatches import Dispatches
    from octopus_telegraf.extras.events import Events
    from octopus_telegraf.extras.flex import FlexDevices

    fake = FakeOctopus()
    fake.add_meter(*IMPORT, london(2024, 3, 1), london(2024, 3, 3))
    fake.add_meter(*GAS, london(2024, 3, 1), london(2024, 3, 3))
    iog = "E-1R-INTELLI-VAR-24-10-29-C"
    fake.accounts[ACCOUNT] = account_document([agreement(iog, london(2024, 1, 1))],
                                              gas_agreements=[agreement("G-1R-VAR-22-11-01-C", london(2024, 1, 1))])
    fake.gas_units[GAS[2]] = "m³"
    fake.campaign_events = {"octoplus-saving-sessions": [], "free_electricity": []}
    fake.flex_devices = [{"id": "car-1", "deviceType": "ELECTRIC_VEHICLES", "provider": "TESLA",
                          "status": {"current": "LIVE", "currentState": "SMART_CONTROL_CAPABLE", "isSuspended": False}}]
    fake.planned = {"car-1": []}
    log.configure("error")  # the fake has no rates for these tariffs: their warnings are not the figure
    offset = [0.0]
    real = time.time, time.monotonic, time.time_ns, budget._boot_clock, clock.boot_clock
    time.time, time.monotonic = (lambda: real[0]() + offset[0]), (lambda: real[1]() + offset[0])
    time.time_ns = lambda: real[2]() + int(offset[0] * 1e9)
    budget._boot_clock = lambda: real[3]() + offset[0]
    clock.boot_clock = lambda: real[4]() + offset[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load({"OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url, "OCTO_ACCOUNT_NUMBER": ACCOUNT,
                             "OCTO_GAS_UNIT": "auto", "OCTO_EVENTS": "true", "OCTO_BACKEND_API_URL": fake.backend_url,
                             "OCTO_STATE_DIR": tmp, "OCTO_BACKFILL_FROM": "2024-03-01", "OCTO_LOG_LEVEL": "error"})
            client = Client(settings.api_url, settings.api_key, 30, threading.Event())
            kraken = graphql.Kraken(client, settings.api_key, budget.Budget(tmp, settings.graphql_per_hour))
            state = State(tmp)
            collector = Collector(settings, client, state, lambda lines: None,
                                  Account(client, ACCOUNT, "auto", kraken),
                                  Dispatches(kraken, ACCOUNT, state.dispatches), Events(kraken, settings, state.events),
                                  FlexDevices(kraken, ACCOUNT, state.flex))
            for _ in range(2 * hours):
                collector.gather()
                offset[0] += 1800
    finally:
        time.time, time.monotonic, time.time_ns, budget._boot_clock, clock.boot_clock = real
    words = {"token": "obtainKrakenToken", "dispatches": "completedDispatches", "gas units": "consumptionUnits",
             "events": "customerFlexibilityCampaignEvents", "Octoplus enrolment": "octoplusAccountInfo",
             "Octopoints": "loyaltyPointLedgers", "devices": "devices(accountNumber",
             "planned dispatches (one car)": "flexPlannedDispatches"}
    counts = {part: len(fake.graphql_queries(word)) / hours for part, word in words.items()}
    counts["Greener Nights (backend)"] = len(fake.backend_calls) / hours
    fake.close()
    return counts


def fifty_meters(days: int = 30):
    """An account of 50 meter points on one Agile tariff: a backfill gather, then steady-state gathers."""
    from test_prices import AGILE, agile_price

    fake = FakeOctopus()
    now = time.time_ns()
    end = now - now % 1_800_000_000_000 - 86_400_000_000_000  # data a day late, as the API gives it
    start = end - days * 86_400_000_000_000
    points = []
    for n in range(50):
        mpan, serial = f"19{n:011d}", f"BENCH{n:03d}"
        fake.add_meter("electricity", mpan, serial, start, end)
        points.append({"mpan": mpan, "is_export": False, "meters": [{"serial_number": serial}],
                       "agreements": [{"tariff_code": AGILE, "valid_from": "2020-01-01T00:00:00Z", "valid_to": None}]})
    fake.accounts["A-BENCH001"] = {"number": "A-BENCH001", "properties": [
        {"id": 1, "moved_out_at": None, "electricity_meter_points": points, "gas_meter_points": []}]}
    fake.add_product("AGILE-FLEX-22-11-25", "C", {"direct_debit_monthly": AGILE})
    fake.add_rates(AGILE, "standard-unit-rates", [(s, s + 1_800_000_000_000, agile_price(s), agile_price(s), None)
                                                  for s in range(start - 86_400_000_000_000, now + 86_400_000_000_000,
                                                                 1_800_000_000_000)])
    fake.add_rates(AGILE, "standing-charges", [(start - 86_400_000_000_000, None, 48.0, 45.71, None)])
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url,
               "OCTO_ACCOUNT_NUMBER": "A-BENCH001", "OCTO_BACKFILL_DAYS": str(days + 1), "OCTO_STATE_DIR": tmp,
               "OCTO_MAX_POINTS": "200000"}
        plugin = Plugin(env)
        peak = {}
        watcher = threading.Thread(target=watch_peak_rss, args=(plugin.proc.pid, peak), daemon=True)
        watcher.start()
        started = time.monotonic()
        plugin.gather(50, timeout=600)
        backfill = time.monotonic() - started
        backfill_requests = len(fake.requests)
        backfill_rss = peak.get("kib", 0) / 1024
        steady = []
        for _ in range(3):
            started = time.monotonic()
            plugin.gather(50, timeout=120)
            steady.append(time.monotonic() - started)
        printed = sum(1 for line in plugin.stdout if line.startswith("octopus_consumption,"))
        steady_requests = (len(fake.requests) - backfill_requests) / 3
        plugin.stop()
        watcher.join()
    fake.close()
    return {"backfill_s": backfill, "backfill_rss": backfill_rss, "peak_rss": peak.get("kib", 0) / 1024,
            "steady_s": statistics.median(steady), "printed": printed, "backfill_requests": backfill_requests,
            "steady_requests": steady_requests}


def live_backfill(hours: int = 24):
    """`octopus-telegraf live --once` with OCTO_LIVE_BACKFILL_MINUTES of a day: 8,640 ten-second readings."""
    from test_prices import ACCOUNT, account_document

    fake = FakeOctopus()
    now = time.time_ns() // 10_000_000_000 * 10_000_000_000
    readings = {now - i * 10_000_000_000: (5e6 + i * 1.2, 1.2, 400.0 + i % 50) for i in range(hours * 360 + 10)}
    fake.accounts[ACCOUNT] = account_document([])
    fake.add_device("00-00-00-00-00-00-00-01", "electricity", "import", IMPORT[1], IMPORT[2], readings)
    fake.telemetry_lag_s = 0
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url,
               "OCTO_ACCOUNT_NUMBER": ACCOUNT, "OCTO_STATE_DIR": tmp, "OCTO_LIVE_BACKFILL_MINUTES": str(hours * 60)}
        wall, rss, lines = peak_rss_run([COMMAND, "live", "--once"], env)
    fake.close()
    return wall, rss, lines, len(fake.graphql_calls)


def help_time(runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([COMMAND, "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--before", metavar="COMMAND",
                        help="an older install's octopus-telegraf, measured beside this one in the one-gather runs "
                        "(e.g. a venv made from the commit before the streaming rewrite)")
    parser.add_argument("--only", choices=["compare", "graphql", "carbon"], help="run one part alone")
    args = parser.parse_args()
    assert COMMAND, "pip install . first"
    if args.only == "compare":
        print_comparison()
        return
    if args.only == "carbon":
        print_carbon()
        return
    if args.only == "graphql":
        print_graphql()
        return
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for the in-process figure
    rate, best = throughput()
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    print(f"parse+format throughput: median of 7 {rate:,.0f}, best {best:,.0f} half-hours/s "
          "(one core; target >= 400,000)")
    print(f"--help wall time (median of 15): {help_time() * 1000:.0f} ms (target <= 100 ms)")
    total, results = backfill(args.years)
    wall, rss, printed, requests = results["execd"]
    print(f"{args.years}-year backfill, 3 meters, {total:,} half-hours served")
    print(f"  execd, OCTO_MAX_POINTS=5000: {results['gathers']} gathers, {wall:.1f} s wall, peak RSS {rss:.1f} MiB "
          f"(target <= 60), {printed:,} points printed, {requests} requests")
    wall, rss, printed, requests = results["once"]
    print(f"  --once, everything in one gather: {wall:.1f} s wall, peak RSS {rss:.1f} MiB, {printed:,} points, "
          f"{requests} requests")
    print(f"steady-state gather: {results['steady']:.2f} requests per meter-set of 3 "
          f"({results['steady'] / 3:.2f} per meter; target exactly 1)")
    for years, meters, schema, target in ((1, (IMPORT, GAS), "seed", "<= 0.30 s, <= 32 MB"),
                                          (5, (IMPORT, EXPORT, GAS), "octopus", "<= 35 MB")):
        print(f"{years}-year backfill of {len(meters)} meters, {schema} schema, one --once (median of 5; "
              f"target {target}):")
        commands = {"before": args.before, "now": COMMAND} if args.before else {"now": COMMAND}
        total, results = one_gather(years, meters, schema, commands)
        for name, (wall, rss, lines) in results.items():
            print(f"  {name}: {wall:.2f} s wall, peak RSS {rss:.1f} MiB, {lines:,} lines for {total:,} half-hours")
    wall, rss, lines, calls = live_backfill()
    print(f"live: 24 hours of 10-second readings in one `live --once`: {lines:,} readings, {wall:.2f} s wall, "
          f"peak RSS {rss:.1f} MiB, {calls} GraphQL calls (token, devices, telemetry)")
    print_comparison()
    print_carbon()
    print_graphql()
    fifty = fifty_meters()
    print(f"50 meters on Agile, 30-day backfill in one gather: {fifty['backfill_s']:.1f} s, peak RSS "
          f"{fifty['backfill_rss']:.1f} MiB, {fifty['printed']:,} half-hours, {fifty['backfill_requests']} requests")
    print(f"50 meters, steady-state gather: {fifty['steady_s'] * 1000:.0f} ms (median of 3), "
          f"{fifty['steady_requests']:.0f} requests; peak RSS over the run {fifty['peak_rss']:.1f} MiB")


def carbon_backfill(runs: int = 5) -> dict:
    """A year of one import meter up to yesterday, in one --once, with OCTO_CARBON off and regional (a fake
    Carbon Intensity API on loopback), taking turns: {setting: (median wall s, median peak RSS MiB, lines,
    carbon calls of the last run, median CPU s of the child alone)}."""
    from fake_carbon import FakeCarbon
    from octopus_telegraf.base.timeutil import london_day_start

    fake, carbon = FakeOctopus(), FakeCarbon()
    end = london_day_start(time.time_ns())
    start = end - 365 * 86_400_000_000_000
    fake.add_meter(*IMPORT, start, end)
    measured = {"off": [], "regional": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for name in measured:
                env = {"PATH": os.environ["PATH"], "HOME": tmp, "OCTO_API_KEY": fake.api_key, "OCTO_API_URL": fake.url,
                       **meter_env(IMPORT), "OCTO_BACKFILL_DAYS": "365", "OCTO_HTTP_TIMEOUT": "300",
                       "OCTO_STATE_DIR": f"{tmp}/{name}{run}", "OCTO_MAX_POINTS": "10000000", "OCTO_REGION": "C",
                       "OCTO_CARBON": name, "OCTO_CARBON_API_URL": carbon.url}
                before, cpu = len(carbon.requests), []
                wall, rss, lines = peak_rss_run([COMMAND, "--once"], env, cpu=cpu)
                measured[name].append((wall, rss, lines, len(carbon.requests) - before, cpu[0]))
    fake.close()
    carbon.close()
    return {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), rows[-1][2],
                   rows[-1][3], statistics.median(r[4] for r in rows)) for name, rows in measured.items()}


def print_carbon():
    results = carbon_backfill()
    (off_s, off_rss, off_lines, _, off_cpu), (on_s, on_rss, on_lines, calls, on_cpu) = \
        results["off"], results["regional"]
    print(f"1-year backfill of one import meter, one --once (median of 5, in turns; target +15 % time, +2 MB): "
          f"OCTO_CARBON=off {off_s:.3f} s wall, {off_cpu:.3f} s CPU, {off_rss:.1f} MiB, {off_lines:,} lines; "
          f"regional {on_s:.3f} s wall ({(on_s / off_s - 1) * 100:+.0f} %), {on_cpu:.3f} s CPU "
          f"({(on_cpu / off_cpu - 1) * 100:+.0f} %), {on_rss:.1f} MiB ({on_rss - off_rss:+.1f}), {on_lines:,} lines "
          f"(+{on_lines - off_lines:,}), {calls} carbon calls")


def print_comparison():
    wall, rss, lines, kinds, steady = comparison_backfill()
    print(f"1-year backfill of one import meter with 3 comparisons (Agile, Go, Tracker), one --once: {wall:.2f} s "
          f"wall, peak RSS {rss:.1f} MiB, {lines:,} lines; {sum(kinds.values())} requests "
          f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); steady-state gather: {steady:.1f} requests "
          f"(the consumption page)")


def print_graphql():
    counts = graphql_per_hour()
    print(f"GraphQL calls per hour, main service, IOG + gas auto + OCTO_EVENTS, a gather every 30 minutes for 12 "
          f"hours: {sum(counts.values()):.2f} in all; " + ", ".join(f"{k} {v:.2f}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
