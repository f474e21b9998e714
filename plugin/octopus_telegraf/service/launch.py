"""Building and starting each command once its settings are checked: the API client (real or the demo's),
the state directory and its lock, the collector or the live collector, and the execd service."""

import os
import sys
import threading

from octopus_telegraf import __version__
from octopus_telegraf.base import log

EXIT_BAD_CONFIG = 2
EXIT_ALL_FAILED = 1
_HELD = []  # the state directory's lock file, open for the life of the process


def compare(settings, days: int) -> int:
    """`octopus-telegraf compare`: the table, for the account or the demo."""
    from octopus_telegraf.core.account import Account
    from octopus_telegraf.service.report import compare_table

    start = None
    if settings.demo:
        from octopus_telegraf.demo.tariffs import DEMO_START_NS

        session = use_demo(settings)
        start = DEMO_START_NS
    else:
        session = None
    if not settings.compare:
        log.error("OCTO_COMPARE is not set: say which tariffs to compare, e.g. OCTO_COMPARE=agile=agile,go=go")
        return EXIT_BAD_CONFIG
    if not 1 <= days <= 3660:
        log.error(f"--days must be from 1 to 3660, not {days}")
        return EXIT_BAD_CONFIG
    api = client(settings, threading.Event(), session=session)
    account = Account(api, settings.account_number, settings.gas_unit) if settings.account_number else None
    return compare_table(settings, api, account, days, sys.stdout, start)


def client(settings, stop: threading.Event, session=None, third_party: str | None = None):
    """The Octopus API's client; with `third_party`, a client of that origin, which never holds the key."""
    from octopus_telegraf.api.client import Client

    url, key = (third_party, None) if third_party else (settings.api_url, settings.api_key)
    return Client(url, key, settings.http_timeout, stop, session=session, retry_pause=settings.retry_pause)


def run(settings, signals, once: bool, dry_run: bool, live: bool = False, keep_demo: bool = False) -> int:
    from octopus_telegraf.service.execd import Service

    if settings.demo:
        api = client(settings, signals.stop, session=use_demo(settings))
        directory = settings.state_dir if keep_demo else None
    else:
        api = client(settings, signals.stop)
        directory = settings.state_dir
    if directory and not dry_run:
        code = _take_state_dir(directory, "live" if live else "main")
        if code:
            return code
    kraken = None
    if settings.account_number:
        from octopus_telegraf.api.budget import Budget
        from octopus_telegraf.api.graphql import Kraken

        kraken = Kraken(api, settings.api_key, Budget(directory, settings.graphql_per_hour))
    collector = _live_collector(settings, kraken, directory, dry_run) if live else \
        _collector(settings, api, kraken, directory, dry_run)
    log.running_once(once)  # its lines speak of running it again, not of a next gather that never comes
    if directory and not dry_run and not live:
        from octopus_telegraf.service import status

        status.started(directory)  # `octopus-telegraf status` knows it is waiting for its first gather
    service = Service(collector, signals, settings.loop_time, once=once)
    code = service.run()
    if once and service.failed and service.failed >= len(collector.meters):
        code = EXIT_ALL_FAILED
    log.drain(0.5)
    os._exit(code)  # a request or a write abandoned in the worker thread must not hold up the exit


def use_demo(settings):
    """Point the settings at the built-in demo account; its requests session answers for the API."""
    from octopus_telegraf.demo.account import demo_session
    from octopus_telegraf.demo.carbon import DEMO_CARBON
    from octopus_telegraf.demo.graphql import DEMO_BACKEND
    from octopus_telegraf.demo.household import DEMO_ACCOUNT, DEMO_COMPARE
    from octopus_telegraf.demo.tariffs import DEMO_ORIGIN, DEMO_START_NS
    from octopus_telegraf.prices.families import parse_compare

    settings.meters = []  # all found in the demo account, with their tariffs
    settings.account_number = DEMO_ACCOUNT
    settings.gas_unit = "m3"
    settings.api_url, settings.backend_url = DEMO_ORIGIN, DEMO_BACKEND
    if os.environ.get("OCTO_EVENTS", "").strip().lower() not in ("false", "0", "no"):
        settings.events = True  # the demo's Power Down and Power Up sessions, Octopoints and Greener Nights
    if os.environ.get("OCTO_CARBON", "").strip().lower() != "off":
        settings.carbon = "regional"  # the demo's grid (demo/carbon.py): its dashboard row has data
    settings.carbon_url = DEMO_CARBON
    settings.api_key = None  # the demo needs none, and a real one must not go anywhere
    if settings.backfill_from_ns is None:
        settings.backfill_from_ns = DEMO_START_NS
    if not settings.compare:  # what the demo household would have paid on Agile, Go and Tracker
        settings.compare = parse_compare(DEMO_COMPARE)
    if not settings.max_points_given:  # the whole demo in one gather: every measurement shows at once
        settings.max_points = 10**9
    return demo_session()


def _collector(settings, api, kraken, directory, dry_run):
    from octopus_telegraf.core.state import State
    from octopus_telegraf.service.collector import Collector
    from octopus_telegraf.service.execd import write_lines

    state = State(directory, read_only=dry_run)
    state.load()
    account = dispatches = flex = None
    if kraken is not None:
        from octopus_telegraf.core.account import Account
        from octopus_telegraf.extras.dispatches import Dispatches
        from octopus_telegraf.extras.flex import FlexDevices

        account = Account(api, settings.account_number, settings.gas_unit, kraken)
        dispatches = Dispatches(kraken, settings.account_number, state.dispatches)
        if settings.schema == "octopus":
            flex = FlexDevices(kraken, settings.account_number, state.flex)
    events = None
    if settings.events and kraken is not None and settings.schema == "octopus":
        from octopus_telegraf.extras.events import Events

        events = Events(kraken, settings, state.events)
    carbon = None
    if settings.carbon != "off" and settings.schema == "octopus":
        from octopus_telegraf.extras.carbon.carbon import Carbon

        # a client of its own, without any key: no Octopus credential can reach the third party
        carbon = Carbon(client(settings, api.stop, session=api.session if settings.demo else None,
                               third_party=settings.carbon_url), settings.carbon, state.carbon)
    collector = Collector(settings, api, state, write_lines, account, dispatches, events, flex, carbon)
    given = ", ".join(f"{m.fuel} {m.direction} {m.point}/{m.serial}" for m in collector.meters)
    meters = (f"{given} + those of account {settings.account_number}" if given and account else given
              or f"from account {settings.account_number}")
    kept = "not kept (demo)" if not directory else f"{state.path} (read only: --dry-run)" if dry_run else state.path
    log.info(f"octopus-telegraf {__version__}: meters {meters}; schema {settings.schema}; state {kept}")
    return collector


def _live_collector(settings, kraken, directory, dry_run):
    from octopus_telegraf.extras.live.live import LiveCollector, LiveProgress
    from octopus_telegraf.service.execd import write_lines

    progress = LiveProgress(directory, read_only=dry_run)
    progress.load()
    log.info(f"octopus-telegraf {__version__} live: account {settings.account_number}, grouping "
             f"{settings.live_grouping}; progress {progress.path or 'not kept (demo)'}")
    return LiveCollector(settings, kraken, progress, write_lines)


def _take_state_dir(directory: str, name: str) -> int:
    """Made if missing, private, and locked for this process: one service of each kind per directory."""
    from octopus_telegraf.core.state import STATE_FILE, DirectoryInUse, lock_directory, remove_leftovers
    from octopus_telegraf.extras.live.live import LIVE_FILE

    code = _prepare_state_dir(directory)
    if code:
        return code
    try:
        _HELD.append(lock_directory(directory, name))  # held until the process ends
    except DirectoryInUse as exc:
        log.error(f"OCTO_STATE_DIR {directory!r} is in use by another octopus-telegraf ({exc}); "
                  f"stop it first, or try it by hand with --once --dry-run")
        return EXIT_BAD_CONFIG
    except OSError as exc:
        log.error(f"OCTO_STATE_DIR {directory!r}: cannot lock it: {exc.strerror}")
        return EXIT_BAD_CONFIG
    remove_leftovers(directory, LIVE_FILE if name == "live" else STATE_FILE)
    return 0


def _prepare_state_dir(directory: str) -> int:
    """Made if missing, and private: progress is nobody else's business. Non-zero: cannot be used."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        log.error(f"OCTO_STATE_DIR {directory!r} cannot be created: {exc.strerror}")
        return EXIT_BAD_CONFIG
    try:
        if os.stat(directory).st_mode & 0o077:
            os.chmod(directory, 0o700)
    except OSError:
        log.warn(f"OCTO_STATE_DIR {directory!r}: cannot make it private (0700)")
    return 0
