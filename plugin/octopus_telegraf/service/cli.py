"""Command line: the execd service, --once, --demo, sample-config. Heavy imports wait until needed,
so that `--help` stays fast."""

import os
import sys

from octopus_telegraf.service.execd import Signals

# First of all, before any heavier import: a trigger signal that Telegraf sends while the process is still
# starting is a gather, not a death (SIGHUP's default). Only when this module runs as the command.
STARTED_AS_COMMAND = os.path.basename(sys.argv[0] if sys.argv else "") in ("octopus-telegraf", "__main__.py")
EARLY_SIGNALS = Signals() if STARTED_AS_COMMAND else None

import argparse  # noqa: E402 - after the signal handlers, on purpose
import threading  # noqa: E402

from octopus_telegraf import __version__  # noqa: E402
from octopus_telegraf.base import log  # noqa: E402
from octopus_telegraf.config.settings import load  # noqa: E402
from octopus_telegraf.config.table import SECRET_SETTINGS, SETTINGS, flag_name, unknown_names  # noqa: E402
from octopus_telegraf.config.values import SettingsError  # noqa: E402

EXIT_BAD_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A wrong flag is bad configuration too: one E! line and exit 2, as for a bad setting."""
        if any(word.split("=")[0] in ("--api-key", "--key", "--octo-api-key") for word in sys.argv[1:]):
            log.error("the API key is read from OCTO_API_KEY only, never from a flag (a flag shows in `ps`): "
                      "export OCTO_API_KEY=... or put it in the environment file")
        else:
            log.error(f"{message} (see octopus-telegraf --help)")
        raise SystemExit(EXIT_BAD_CONFIG)


_CONNECTION = ("OCTO_API_KEY", "OCTO_ACCOUNT_NUMBER", "OCTO_API_URL", "OCTO_HTTP_TIMEOUT", "OCTO_RETRY_PAUSE",
               "OCTO_LOG_LEVEL")
_LIVE_ONLY = ("OCTO_LIVE_BACKFILL_MINUTES", "OCTO_LIVE_GROUPING")
# command -> (what it does, its options, the settings it reads (None: all but live's own))
COMMANDS = {
    "run": ("the execd service (the default command): a gather of what is new on each stdin line or trigger "
            "signal, or every LOOP_TIME seconds; stops on stdin EOF or SIGTERM",
            ("--once", "--dry-run", "--demo"), None),
    "live": ("the Home Mini near-real-time service, a second execd block: every reading since the newest printed, "
             "as octopus_live (needs OCTO_API_KEY and OCTO_ACCOUNT_NUMBER)", ("--once", "--dry-run", "--demo"),
             (*_CONNECTION, "OCTO_STATE_DIR", "OCTO_GRAPHQL_MAX_PER_HOUR", "LOOP_TIME", *_LIVE_ONLY,
              "OCTO_DEMO_UNTIL")),
    "discover": ("list the account's meter points, serials, tariff agreements and whether each has data, then "
                 "the OCTO_* lines to paste (needs OCTO_API_KEY and OCTO_ACCOUNT_NUMBER)", ("--demo",), _CONNECTION),
    "sample-config": ("print the [[inputs.execd]] block for a Telegraf config (the live block commented out)",
                      ("--live",), ()),
    "compare": ("a table: what the last --days complete London days of your half-hours cost on your tariffs and "
                "on each OCTO_COMPARE tariff, per meter, with the difference; saves nothing",
                ("--days", "--demo"),
                (*_CONNECTION, "OCTO_COMPARE", "OCTO_REGION", "OCTO_PAYMENT_METHOD", "OCTO_E7_NIGHT",
                 "OCTO_ELECTRIC_MPAN", "OCTO_ELECTRIC_SN", "OCTO_EXPORT_MPAN", "OCTO_EXPORT_SN", "OCTO_GAS_MPRN",
                 "OCTO_GAS_SN", "OCTO_GAS_UNIT", "VOLUME_CORRECTION", "CALORIFIC_VALUE", "JOULES_CONVERSION",
                 "OCTO_BACKFILL_FROM", "OCTO_DEMO_UNTIL")),
    "status": ("is it working? Per meter the newest half-hour and its lag, the last gather and what it met, the "
               "GraphQL calls of the last hour, what each extra waits for; --json for scripts. Exit status 1 when "
               "data are late (no half-hour in 48 hours) or no service has gathered here",
               ("--json",), ("OCTO_STATE_DIR", "OCTO_GRAPHQL_MAX_PER_HOUR")),
}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, its help shows that command's options and settings only."""
    what, options, reads = COMMANDS[command] if command else (None, None, None)
    epilog = ["settings (environment variables; the flag beside each overrides it):"]
    for name, default, text in SETTINGS:
        if reads is not None and name not in reads or command == "run" and name in _LIVE_ONLY:
            continue
        flag = "" if name in SECRET_SETTINGS else f" ({flag_name(name)})"
        shown = f" [default: {default}]" if default is not None else ""
        epilog.append(f"  {name}{flag}\n      {text}{shown}")
    parser = _Parser(
        prog=f"octopus-telegraf {command}" if command else "octopus-telegraf",
        description=what or "Octopus Energy smart-meter data as InfluxDB line protocol, for Telegraf's inputs.execd.",
        epilog="\n".join(epilog) if len(epilog) > 1 else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def shown(option: str, text: str) -> str:
        return text if options is None or option in options else argparse.SUPPRESS
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), default="run",
                        help=shown("command", "; ".join(f"{name}: {text[0]}" for name, text in COMMANDS.items())
                                   + " (octopus-telegraf COMMAND --help says more)"))
    parser.add_argument("--once", action="store_true", help=shown("--once", "gather once, print, save progress, "
                        "exit (for inputs.exec or cron: what it prints is marked as sent)"))
    parser.add_argument("--dry-run", action="store_true", help=shown("--dry-run", "with --once: print, save no "
                        "progress (for trying it by hand)"))
    parser.add_argument("--demo", action="store_true", help=shown("--demo", "use the built-in demo account (no "
                        "API key needed)"))
    parser.add_argument("--live", action="store_true", help=shown("--live", "with sample-config: only the live "
                        "block, uncommented"))
    parser.add_argument("--days", type=int, default=30, metavar="N", help=shown("--days", "with compare: how many "
                        "complete London days to add up (default 30)"))
    parser.add_argument("--json", action="store_true", help=shown("--json", "with status: the same as JSON"))
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
    argv = sys.argv[1:] if argv is None else argv
    # masked from the first line on: a key pasted into another setting must not reach an error line
    log.configure("info", secrets=[os.environ.get("OCTO_API_KEY", "").strip()])
    if {"-h", "--help"} & set(argv):  # the help of the command named, if any
        _parser(next((word for word in argv if word in COMMANDS), None)).print_help()
        return 0
    args = _parser().parse_args(argv)
    if args.live and args.command != "sample-config":
        log.error("--live goes with sample-config; the live service is `octopus-telegraf live`")
        return EXIT_BAD_CONFIG
    if args.command in ("run", "live"):
        signals = EARLY_SIGNALS or Signals()  # a signal during start-up is kept, not a traceback
    elif EARLY_SIGNALS is not None:
        EARLY_SIGNALS.release()  # the other commands stop on a signal, as any command does
    if args.command == "sample-config":
        sys.stdout.write(sample_config(live=args.live))
        return 0
    if args.json and args.command != "status":
        log.error("--json goes with status")
        return EXIT_BAD_CONFIG
    overrides = {name: getattr(args, name) for name, _, _ in SETTINGS if name not in SECRET_SETTINGS}
    for line in unknown_names(os.environ):  # first: a misspelt name may be why a setting below is missing
        log.warn(line)
    if args.command == "status":  # reads the state directory only: no key, no meters needed
        from octopus_telegraf.config.settings import status_settings
        from octopus_telegraf.service.status import command

        try:
            return command(status_settings(os.environ, overrides), args.json)
        except SettingsError as exc:
            log.error(str(exc))
            return EXIT_BAD_CONFIG
    try:
        settings = load(os.environ, overrides, demo=args.demo,
                        needs_account=args.command if args.command in ("discover", "live") else None)
        if args.dry_run and not args.once:
            raise SettingsError("--dry-run goes with --once")
    except SettingsError as exc:
        log.error(str(exc))
        return EXIT_BAD_CONFIG
    log.configure(settings.log_level, secrets=[settings.api_key, os.environ.get("OCTO_API_KEY", "").strip()])
    if settings.demo_until:  # the demo's calendar is read when its module is first imported
        os.environ["OCTO_DEMO_UNTIL"] = settings.demo_until
    from octopus_telegraf.service import launch

    if args.command == "compare":
        return launch.compare(settings, args.days)
    if args.command == "discover":
        from octopus_telegraf.core.account import discover

        session = launch.use_demo(settings) if settings.demo else None
        api = launch.client(settings, threading.Event(), session=session)
        return discover(api, settings.account_number, sys.stdout)
    # the demo prints its whole account on every start, unless told where to keep its progress
    keep_demo = bool(os.environ.get("OCTO_STATE_DIR") or getattr(args, "OCTO_STATE_DIR", None))
    return launch.run(settings, signals, once=args.once, dry_run=args.dry_run, live=args.command == "live",
                      keep_demo=keep_demo)
