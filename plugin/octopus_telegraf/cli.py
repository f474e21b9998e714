"""Command line: the execd service, --once, --demo, sample-config. Heavy imports wait until needed,
so that `--help` stays fast."""

import argparse
import os
import sys
import threading

from . import __version__, log
from .settings import SECRET_SETTINGS, SETTINGS, SettingsError, flag_name, load

EXIT_BAD_CONFIG = 2
EXIT_ALL_FAILED = 1


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
    parser.add_argument("command", nargs="?", choices=["run", "discover", "sample-config"], default="run",
                        help="run (default): the execd service; discover: list the account's meters and tariffs "
                             "(needs OCTO_API_KEY and OCTO_ACCOUNT_NUMBER); sample-config: print an "
                             "[[inputs.execd]] block")
    parser.add_argument("--once", action="store_true", help="gather once, print, exit")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo account (no API key needed)")
    parser.add_argument("--version", action="version", version=f"octopus-telegraf {__version__}")
    for name, _, _ in SETTINGS:
        if name not in SECRET_SETTINGS:  # a key on the command line would show in `ps`
            parser.add_argument(flag_name(name), dest=name, metavar="VALUE", help=argparse.SUPPRESS)
    return parser


def sample_config() -> str:
    from importlib.resources import files

    return files("octopus_telegraf").joinpath("sample-config.toml").read_text(encoding="utf-8")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sample-config":
        sys.stdout.write(sample_config())
        return 0
    overrides = {name: getattr(args, name) for name, _, _ in SETTINGS if name not in SECRET_SETTINGS}
    try:
        settings = load(os.environ, overrides, demo=args.demo)
        if args.command == "discover" and not settings.account_number:
            raise SettingsError("OCTO_ACCOUNT_NUMBER is required for discover")
    except SettingsError as exc:
        log.error(str(exc))
        return EXIT_BAD_CONFIG
    log.configure(settings.log_level, secrets=[settings.api_key])
    if args.command == "discover":
        from .account import discover

        return discover(_client(settings, threading.Event()), settings.account_number, sys.stdout)
    return _run(settings, once=args.once)


def _client(settings, stop: threading.Event, session=None):
    from .api import Client

    return Client(settings.api_url, settings.api_key, settings.http_timeout, stop, session=session,
                  retry_pause=settings.retry_pause)


def _run(settings, once: bool) -> int:
    from .collector import Collector
    from .execd import Service, write_lines
    from .state import State

    stop = threading.Event()
    if settings.demo:
        from .demo import DEMO_ACCOUNT, DEMO_ORIGIN, DEMO_START_NS, demo_session

        settings.meters = []  # all found in the demo account, with their tariffs
        settings.account_number = DEMO_ACCOUNT
        settings.gas_unit = "m3"
        settings.api_url = DEMO_ORIGIN
        settings.api_key = None  # the demo needs none, and a real one must not go anywhere
        if settings.backfill_from_ns is None:
            settings.backfill_from_ns = DEMO_START_NS
        client = _client(settings, stop, session=demo_session())
        state = State(None)  # the demo prints its whole account on every start: nothing to remember
    else:
        client = _client(settings, stop)
        try:
            os.makedirs(settings.state_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            log.error(f"OCTO_STATE_DIR {settings.state_dir!r} cannot be created: {exc.strerror}")
            return EXIT_BAD_CONFIG
        try:
            if os.stat(settings.state_dir).st_mode & 0o077:
                os.chmod(settings.state_dir, 0o700)  # progress is nobody else's business
        except OSError:
            log.warn(f"OCTO_STATE_DIR {settings.state_dir!r}: cannot make it private (0700)")
        state = State(settings.state_dir)
        state.load()
    account = None
    if settings.account_number:
        from .account import Account

        account = Account(client, settings.account_number, settings.gas_unit)
    collector = Collector(settings, client, state, write_lines, account)
    service = None if once else Service(collector, stop, settings.loop_time)
    meters = ", ".join(f"{m.fuel} {m.direction} {m.point}/{m.serial}" for m in collector.meters) or "none"
    source = f" + account {settings.account_number}" if account else ""
    log.info(f"octopus-telegraf {__version__}: meters {meters}{source}; "
             f"schema {settings.schema}; state {state.path or 'not kept (demo)'}")
    if once:
        try:
            failed = collector.gather()
        except BrokenPipeError:
            return 0
        return EXIT_ALL_FAILED if failed and failed >= len(collector.meters) else 0
    code = service.run()
    os._exit(code)  # a request abandoned in the worker thread must not hold up the exit
