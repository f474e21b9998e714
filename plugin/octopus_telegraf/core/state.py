"""Progress per meter, saved atomically (0600 file in a 0700 directory) after points are flushed.

Only the look-back window's printed values are kept, so the file stays small however long it runs.
"""

import fcntl
import glob
import json
import os
import tempfile
from dataclasses import dataclass, field

from octopus_telegraf.base import log
from octopus_telegraf.base.timeutil import DAY_NS, floor_half_hour
from octopus_telegraf.prices.intelligent import DispatchLog
from octopus_telegraf.prices.rates import RateSeries

STATE_FILE = "state.json"
FORMAT_VERSION = 1
LARGEST_NS = 2**62  # beyond the year 2116: a cursor this large is damage, not progress
COMPARE_BACKLOG_DAYS = 400  # half-hours kept for a comparison that waits (no region, no price), at most
COMPARE_BACKLOG_NS = COMPARE_BACKLOG_DAYS * DAY_NS


class DirectoryInUse(Exception):
    """Another octopus-telegraf process holds the state directory."""


def lock_directory(directory: str, name: str):
    """An advisory lock on `directory/name.lock`, held while the returned file stays open. The kernel
    releases it when the process dies, however it dies. Raises DirectoryInUse."""
    path = os.path.join(directory, f"{name}.lock")
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()[:20]
        handle.close()
        raise DirectoryInUse(f"process {holder or '?'} holds {path}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def remove_leftovers(directory: str, filename: str) -> None:
    """Temporary files of saves of `filename` that a kill interrupted; only called while holding the lock
    of the service that owns that file: another service saving its own file beside it is left alone."""
    for path in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(filename)}-*.tmp")):
        try:
            os.unlink(path)
        except OSError:
            pass


def _ns(value, optional=True) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or not 0 <= value < LARGEST_NS:
        raise ValueError(f"{value!r:.30} is not a time")
    return value


@dataclass
class MeterProgress:
    start_ns: int  # where this meter's backfill began; never read before it
    cursor_ns: int | None = None  # start of the newest interval printed (or confirmed unchanged)
    newest_end_ns: int | None = None  # end of the newest interval the API has returned
    # interval start ns -> (value, p/kWh or None, rate a dispatch replaced or None, beyond the car's allowance
    # or None where none applies) as printed; the look-back only
    printed: dict[int, tuple] = field(default_factory=dict)
    standing_through_ns: int | None = None  # London midnight of the last day whose standing charge was printed
    daily: dict[int, tuple] = field(default_factory=dict)  # London midnight -> octopus_daily values as printed
    gas_unit: str | None = None  # the unit gas values were printed in: another one later means print them again
    # (London midnight, comparison name) -> octopus_comparison_daily values as printed
    compared: dict[tuple, tuple] = field(default_factory=dict)
    # comparison name -> London midnight of the first day it has still to price: its half-hours are kept
    compare_from: dict[str, int] = field(default_factory=dict)
    compare_holes: dict[str, list] = field(default_factory=dict)  # name -> days it could not price yet

    def period_from(self, lookback_ns: int) -> int:
        """Where the next read starts: the newest interval seen minus the look-back, never before the start."""
        if self.cursor_ns is None:
            return self.start_ns
        return max(self.start_ns, self.cursor_ns - lookback_ns)

    def prune(self, lookback_ns: int) -> None:
        """Keep the printed values the next read can return again, and those a comparison has still to
        price (for COMPARE_BACKLOG_NS at most), nothing older."""
        if self.cursor_ns is not None:
            keep_from = self.period_from(lookback_ns)
            kept_for_comparisons = self.kept_from(lookback_ns)
            if self.compare_from:
                for name, day in self.compare_from.items():
                    self.compare_from[name] = max(day, kept_for_comparisons)
                for days in self.compare_holes.values():
                    days[:] = [day for day in days if day >= kept_for_comparisons]
            self._keep_only(lambda key: key >= kept_for_comparisons, lambda key: key >= kept_for_comparisons - DAY_NS,
                            lambda key: key[0] >= min(keep_from, kept_for_comparisons) - DAY_NS)

    def kept_from(self, lookback_ns: int) -> int:
        """The oldest half-hour still needed: the next read's, or a waiting comparison's (COMPARE_BACKLOG_NS
        at most before it)."""
        keep_from = self.period_from(lookback_ns)
        wanted = [*self.compare_from.values(), *(d for days in self.compare_holes.values() for d in days)]
        return max(min(keep_from, *wanted), keep_from - COMPARE_BACKLOG_NS) if wanted else keep_from

    def clamp(self, now_ns: int, fresh_start_ns: int) -> bool:
        """Bring a position in the future (a clock that was wrong, a backfill date since corrected) back
        to what now allows. True when anything changed."""
        changed = False
        if self.start_ns > now_ns:
            self.start_ns, changed = fresh_start_ns, True
        if self.cursor_ns is not None and self.cursor_ns > now_ns:
            self.cursor_ns = max((s for s in self.printed if s <= now_ns), default=floor_half_hour(now_ns))
            changed = True
        if self.newest_end_ns is not None and self.newest_end_ns > now_ns:
            self.newest_end_ns, changed = None, True
        self._keep_only(lambda key: key <= now_ns, lambda key: key <= now_ns, lambda key: key[0] <= now_ns)
        for name, day in self.compare_from.items():
            self.compare_from[name] = min(day, now_ns)
        if self.standing_through_ns is not None and self.standing_through_ns > now_ns:
            self.standing_through_ns, changed = None, True
        return changed

    def _keep_only(self, printed_kept, daily_kept, compared_kept) -> None:
        """Drop the entries of `printed`, `daily` and `compared` whose key each test refuses, in place (a
        gather in progress holds these very dicts)."""
        for table, kept in ((self.printed, printed_kept), (self.daily, daily_kept), (self.compared, compared_kept)):
            for key in [key for key in table if not kept(key)]:
                del table[key]

    def to_json(self) -> dict:
        return {"start": self.start_ns, "cursor": self.cursor_ns, "newest_end": self.newest_end_ns,
                "printed": [[start, *(mark if mark[3] is not None else mark[:3])]
                            for start, mark in sorted(self.printed.items())],
                "standing_through": self.standing_through_ns,
                "daily": [[day, *values] for day, values in sorted(self.daily.items())], "gas_unit": self.gas_unit,
                "compared": [[*key, *values] for key, values in sorted(self.compared.items())],
                "compare_from": self.compare_from, "compare_holes": self.compare_holes}

    @classmethod
    def from_json(cls, data: dict) -> "MeterProgress":
        printed = {}
        for start, value, *price in data.get("printed", []):
            rate, replaced = (*[None if p is None else float(p) for p in price[:2]], None, None)[:2]
            beyond = price[2] if len(price) > 2 and isinstance(price[2], bool) else None  # written when known
            printed[_ns(start, optional=False)] = (float(value), rate, replaced, beyond)
        return cls(
            start_ns=_ns(data["start"], optional=False),
            cursor_ns=_ns(data.get("cursor")),
            newest_end_ns=_ns(data.get("newest_end")),
            printed=printed,
            standing_through_ns=_ns(data.get("standing_through")),
            daily={_ns(day, optional=False): tuple(None if v is None else float(v) for v in values)
                   for day, *values in data.get("daily", [])},
            gas_unit={None: None, "m3": "m3", "kWh": "kWh"}[data.get("gas_unit")],
            compared={(_ns(day, optional=False), str(name)): (str(tariff), *(None if v is None else float(v)
                                                                              for v in numbers[:-1]), int(numbers[-1]))
                      for day, name, tariff, *numbers in data.get("compared", [])},
            compare_from={str(name): _ns(day, optional=False) for name, day in data.get("compare_from", {}).items()},
            compare_holes={str(name): sorted(_ns(day, optional=False) for day in days)[-COMPARE_BACKLOG_DAYS:]
                           for name, days in data.get("compare_holes", {}).items()},
        )


class State:
    """In memory: progress by meter key. `path` None keeps nothing on disk (the demo)."""

    def __init__(self, directory: str | None, name: str = STATE_FILE, read_only: bool = False):
        self.path = os.path.join(directory, name) if directory else None
        self.read_only = read_only  # --dry-run: reads where it stands, remembers nothing
        self.meters: dict[str, MeterProgress] = {}
        self.tariffs: dict[str, RateSeries] = {}  # "tariff code|kind" -> rates
        self.dispatches = DispatchLog()  # Intelligent Octopus smart charges, the look-back's only
        self.compare: dict = {}  # tariff comparison: products' sale windows, regions (catalogue.py)
        self.events: dict = {}  # Octoplus events, Octopoints, Greener Nights: asked when, printed what (events.py)
        self.flex: dict = {}  # smart-charge devices and planned dispatches: asked when, printed what (flex.py)

    def load(self) -> None:
        if self.path and load_json(self.path, self._decode, "info", "no saved state", "a fresh backfill"):
            log.debug(f"state loaded from {self.path}: {len(self.meters)} meters")

    def _decode(self, data: dict) -> None:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        meters = {key: MeterProgress.from_json(value) for key, value in data["meters"].items()}
        tariffs = {key: RateSeries.from_json(value) for key, value in data.get("tariffs", {}).items()}
        self.meters, self.tariffs = meters, tariffs
        try:
            self.dispatches = DispatchLog.from_json(data.get("dispatches", {}))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            log.warn(f"state: the dispatches section is damaged ({type(exc).__name__}); dropped")
            self.dispatches = DispatchLog()
        sections = [data.get(name, {}) for name in ("compare", "events", "flex")]
        for name, section in zip(("compare", "events", "flex"), sections, strict=True):
            if not isinstance(section, dict):
                log.warn(f"state: the {name} section is damaged; dropped")
        self.compare, self.events, self.flex = (s if isinstance(s, dict) else {} for s in sections)

    def save(self) -> None:
        if not self.path or self.read_only:
            return
        write_atomic(self.path, json.dumps({"version": FORMAT_VERSION,
                                            "meters": {key: p.to_json() for key, p in self.meters.items()},
                                            "tariffs": {key: s.to_json() for key, s in self.tariffs.items()},
                                            "dispatches": self.dispatches.to_json(), "compare": self.compare,
                                            "events": self.events, "flex": self.flex},
                                           separators=(",", ":")))


def load_json(path: str, decode, missing_level: str, missing: str, fresh: str) -> bool:
    """`decode(data)` the JSON file at `path`. A missing file is one line at `missing_level`, a damaged
    one (any shape, any depth) one W!: either way the caller starts with `fresh`, never a crash."""
    try:
        with open(path, encoding="utf-8") as handle:
            decode(json.load(handle))
        return True
    except FileNotFoundError:
        log.log(missing_level, f"{missing} at {path}: starting with {fresh}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        log.warn(f"state file {path} is unreadable ({type(exc).__name__}: {log.clip(str(exc), 80)}); "
                 f"starting with {fresh}")
    return False


def write_atomic(path: str, text: str) -> None:
    """Replace `path` with `text`: mkstemp makes the file 0600, and rename is atomic, so a crash leaves
    the old file or the new one. A failure is one E! line: the next start may repeat data."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=directory)
    except OSError as exc:
        log.error(f"cannot save progress in {directory}: {exc.strerror}; the next start may repeat data")
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        log.error(f"cannot save progress to {path}: {exc.strerror}; the next start may repeat data")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
