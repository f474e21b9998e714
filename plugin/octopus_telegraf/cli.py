"""Command line: the execd service, --once, --demo, sample-config. Heavy imports wait until needed,
so that `--help` stays fast."""

import argparse
import os
import sys
import threading

from . import __version__, log
from .settings import SECRET_SETTINGS, SETTINGS, SettingsError, flag_name, load, unknown_names

EXIT_BAD_CONFIG = 2
EXIT_ALL_FAILED = 1
_HELD = []  # the state directory's lock file, open for the life of the process


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A wrong flag is bad configuration too: one E! line and exit 2, as for a bad setting."""
        log.error(f"{message} (see octopus-telegraf --help)")
        raise SystemExit(EXIT_BAD_CONFIG)


def _parser() -> argparse.ArgumentParser:
    epilog = ["settings (environment variables; the flag beside each overrides it):"]
    for name, default, text in SETTINGS:
        flag = "" if name in SECRET_SETTINGS else f" ({flag_name(name)})"
        shown = f" [default: {default}]" if default is not None else ""
        epilog.append(f"  {name}{flag}\n      {text}{shown}")
    parser = _Parser(
        prog="octopus-telegraf",
        description="Octopus Energy smart-meter data as InfluxDB line protocol, for Telegraf's inputs.execd.",
        epilog="\n".join(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", choices=["run", "live", "discover", "sample-config", "compare"],
                        default="run",
                        help="run (default): the execd service; live: the Home Mini near-real-time service (needs "
                             "OCTO_API_KEY and OCTO_ACCOUNT_NUMBER); discover: list the account's meters and tariffs "
                             "(needs OCTO_API_KEY and OCTO_ACCOUNT_NUMBER); sample-config: print the "
                             "[[inputs.execd]] blocks; compare: what your last --days would have cost on each "
                             "OCTO_COMPARE tariff, as a table")
    parser.add_argument("--once", action="store_true", help="gather once, print, save progress, exit "
                        "(for inputs.exec or cron: what it prints is marked as sent)")
    parser.add_argument("--dry-run", action="store_true", help="with --once: print, save no progress "
                        "(for trying it by hand)")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo account (no API key needed)")
    parser.add_argument("--live", action="store_true", help="with sample-config: only the live block, uncommented")
    parser.add_argument("--days", type=int, default=30, metavar="N", help="with compare: how many complete London "
                        "days to add up (default 30)")
    parser.add_argument("--version", action="version", version=f"octopus-telegraf {__version__}")
    for name, _, _ in SETTINGS:
        if name not in SECRET_SETTINGS:  # a key on the command line would show in `ps`
            parser.add_argument(flag_name(name), dest=name, metavar="VALUE", help=argparse.SUPPRESS)
    return parser


LIVE_MARKER = "# --- Live data from a Home Mini"


def sample_config(live: bool = False) -> str:
    """The drop-in file; with `live`, only its commented-out live block, uncommented (for the container)."""
    from importlib.resources import files

    text = files("octopus_telegraf").joinpath("sample-config.toml").read_text(encoding="utf-8")
    if not live:
        return text
    block = text[text.index(LIVE_MARKER):].splitlines()[1:]
    return "".join((line[1:] if line.startswith("##") else line[2:]) + "\n" for line in block)


def main(argv=None) -> int:
    try:
        return _main(argv)
    finally:
        log.drain()


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("run", "live"):
        from .execd import Signals

        signals = Signals()  # first of all: a signal during start-up is kept, not a traceback
    if args.command == "sample-config":
        sys.stdout.write(sample_config(live=args.live))
        return 0
    overrides = {name: getattr(args, name) for name, _, _ in SETTINGS if name not in SECRET_SETTINGS}
    for line in unknown_names(os.environ):  # first: a misspelt name may be why a setting below is missing
        log.warn(line)
    try:
        settings = load(os.environ, overrides, demo=args.demo,
                        needs_account=args.command if args.command in ("discover", "live") else None)
        if args.dry_run and not args.once:
            raise SettingsError("--dry-run goes with --once")
    except SettingsError as exc:
        log.error(str(exc))
        return EXIT_BAD_CONFIG
    log.configure(settings.log_level, secrets=[settings.api_key])
    if settings.demo_until:  # the demo's calendar is read when its module is first imported
        os.environ["OCTO_DEMO_UNTIL"] = settings.demo_until
    if args.command == "compare":
        return _compare(settings, args.days)
    if args.command == "discover":
        from .account import discover

        session = _use_demo(settings) if settings.demo else None
        return discover(_client(settings, threading.Event(), session=session), settings.account_number, sys.stdout)
    # the demo prints its whole account on every start, unless told where to keep its progress
    keep_demo = bool(os.environ.get("OCTO_STATE_DIR") or getattr(args, "OCTO_STATE_DIR", None))
    return _run(settings, signals, once=args.once, dry_run=args.dry_run, live=args.command == "live",
                keep_demo=keep_demo)


def _compare(settings, days: int) -> int:
    from .account import Account
    from .compare_report import compare

    start = None
    if settings.demo:
        from .demo_tariffs import DEMO_START_NS

        session = _use_demo(settings)
        start = DEMO_START_NS
    else:
        session = None
    if not settings.compare:
        log.error("OCTO_COMPARE is not set: say which tariffs to compare, e.g. OCTO_COMPARE=agile=agile,go=go")
        return EXIT_BAD_CONFIG
    if not 1 <= days <= 3660:
        log.error(f"--days must be from 1 to 3660, not {days}")
        return EXIT_BAD_CONFIG
    client = _client(settings, threading.Event(), session=session)
    account = Account(client, settings.account_number, settings.gas_unit) if settings.account_number else None
    return compare(settings, client, account, days, sys.stdout, start)


def _client(settings, stop: threading.Event, session=None):
    from .api import Client

    return Client(settings.api_url, settings.api_key, settings.http_timeout, stop, session=session,
                  retry_pause=settings.retry_pause)


def _run(settings, signals, once: bool, dry_run: bool, live: bool = False, keep_demo: bool = False) -> int:
    from .execd import Service

    if settings.demo:
        client = _client(settings, signals.stop, session=_use_demo(settings))
        directory = settings.state_dir if keep_demo else None
    else:
        client = _client(settings, signals.stop)
        directory = settings.state_dir
    if directory and not dry_run:
        code = _take_state_dir(directory, "live" if live else "main")
        if code:
            return code
    kraken = None
    if settings.account_number:
        from .graphql import Budget, Kraken

        kraken = Kraken(client, settings.api_key, Budget(directory, settings.graphql_per_hour))
    collector = _live_collector(settings, kraken, directory, dry_run) if live else \
        _collector(settings, client, kraken, directory, dry_run)
    service = Service(collector, signals, settings.loop_time, once=once)
    code = service.run()
    if once and service.failed and service.failed >= len(collector.meters):
        code = EXIT_ALL_FAILED
    log.drain(0.5)
    os._exit(code)  # a request or a write abandoned in the worker thread must not hold up the exit


def _use_demo(settings):
    """Point the settings at the built-in demo account; its requests session answers for the API."""
    from .catalogue import parse_compare
    from .demo import DEMO_ACCOUNT, DEMO_COMPARE, DEMO_ORIGIN, DEMO_START_NS, demo_session

    settings.meters = []  # all found in the demo account, with their tariffs
    settings.account_number = DEMO_ACCOUNT
    settings.gas_unit = "m3"
    settings.api_url = DEMO_ORIGIN
    settings.api_key = None  # the demo needs none, and a real one must not go anywhere
    if settings.backfill_from_ns is None:
        settings.backfill_from_ns = DEMO_START_NS
    if not settings.compare:  # what the demo household would have paid on Agile, Go and Tracker
        settings.compare = parse_compare(DEMO_COMPARE)
    if not settings.max_points_given:  # the whole demo in one gather: every measurement shows at once
        settings.max_points = 10**9
    return demo_session()


def _collector(settings, client, kraken, directory, dry_run):
    from .collector import Collector
    from .execd import write_lines
    from .state import State

    state = State(directory, read_only=dry_run)
    state.load()
    account = dispatches = None
    if kraken is not None:
        from .account import Account
        from .dispatches import Dispatches

        account = Account(client, settings.account_number, settings.gas_unit, kraken)
        dispatches = Dispatches(kraken, settings.account_number, state.dispatches)
    collector = Collector(settings, client, state, write_lines, account, dispatches)
    meters = ", ".join(f"{m.fuel} {m.direction} {m.point}/{m.serial}" for m in collector.meters) or "none"
    source = f" + account {settings.account_number}" if account else ""
    kept = "not kept (demo)" if not directory else f"{state.path} (read only: --dry-run)" if dry_run else state.path
    log.info(f"octopus-telegraf {__version__}: meters {meters}{source}; schema {settings.schema}; state {kept}")
    return collector


def _live_collector(settings, kraken, directory, dry_run):
    from .execd import write_lines
    from .live import LiveCollector, LiveProgress

    progress = LiveProgress(directory, read_only=dry_run)
    progress.load()
    log.info(f"octopus-telegraf {__version__} live: account {settings.account_number}, grouping "
             f"{settings.live_grouping}; progress {progress.path or 'not kept (demo)'}")
    return LiveCollector(settings, kraken, progress, write_lines)


def _take_state_dir(directory: str, name: str) -> int:
    """Made if missing, private, and locked for this process: one service of each kind per directory."""
    from .live import LIVE_FILE
    from .state import STATE_FILE, DirectoryInUse, lock_directory, remove_leftovers

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
