"""Progress per meter, saved atomically (0600 file in a 0700 directory) after points are flushed.

Only the look-back window's printed values are kept, so the file stays small however long it runs.
"""

import fcntl
import glob
import json
import os
import tempfile

from octopus_telegraf.base import log
from octopus_telegraf.core.progress import MeterProgress
from octopus_telegraf.prices.intelligent import DispatchLog
from octopus_telegraf.prices.series import RateSeries

STATE_FILE = "state.json"
FORMAT_VERSION = 1


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
        self.carbon: dict = {}  # carbon intensity: what was answered, what printed (carbon.py)

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
        sections = [data.get(name, {}) for name in ("compare", "events", "flex", "carbon")]
        for name, section in zip(("compare", "events", "flex", "carbon"), sections, strict=True):
            if not isinstance(section, dict):
                log.warn(f"state: the {name} section is damaged; dropped")
        self.compare, self.events, self.flex, self.carbon = (s if isinstance(s, dict) else {} for s in sections)

    def save(self) -> None:
        if not self.path or self.read_only:
            return
        write_atomic(self.path, json.dumps({"version": FORMAT_VERSION,
                                            "meters": {key: p.to_json() for key, p in self.meters.items()},
                                            "tariffs": {key: s.to_json() for key, s in self.tariffs.items()},
                                            "dispatches": self.dispatches.to_json(), "compare": self.compare,
                                            "events": self.events, "flex": self.flex,
                                            "carbon": self.carbon},
                                           separators=(",", ":")))


def drop_damaged(store: dict, checks: dict, whose: str, fresh) -> dict:
    """A state section's parts as their readers expect them: each part whose check refuses it is one W! and
    dropped (asked again), then any part missing is `fresh(name)`. Never a crash at every start."""
    for name, check in checks.items():
        if name in store and not check(store[name]):
            log.warn(f"state: {whose} `{name}` section is damaged; dropped (asked again)")
            del store[name]
        store.setdefault(name, fresh(name))
    return store


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
