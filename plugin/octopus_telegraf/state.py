"""Progress per meter, saved atomically (0600 file in a 0700 directory) after points are flushed.

Only the look-back window's printed values are kept, so the file stays small however long it runs.
"""

import json
import os
import tempfile
from dataclasses import dataclass, field

from . import log
from .tariffs import RateSeries

STATE_FILE = "state.json"
FORMAT_VERSION = 1


@dataclass
class MeterProgress:
    start_ns: int  # where this meter's backfill began; never read before it
    cursor_ns: int | None = None  # start of the newest interval printed (or confirmed unchanged)
    newest_end_ns: int | None = None  # end of the newest interval the API has returned
    printed: dict[int, float] = field(default_factory=dict)  # interval start ns -> value, look-back window only
    standing_through_ns: int | None = None  # London midnight of the last day whose standing charge was printed

    def period_from(self, lookback_ns: int) -> int:
        """Where the next read starts: the newest interval seen minus the look-back, never before the start."""
        if self.cursor_ns is None:
            return self.start_ns
        return max(self.start_ns, self.cursor_ns - lookback_ns)

    def prune(self, lookback_ns: int) -> None:
        """Keep the printed values the next read can return again, nothing older."""
        if self.cursor_ns is not None:
            keep_from = self.period_from(lookback_ns)
            for start in [start for start in self.printed if start < keep_from]:
                del self.printed[start]  # in place: a gather in progress holds this very dict

    def to_json(self) -> dict:
        return {"start": self.start_ns, "cursor": self.cursor_ns, "newest_end": self.newest_end_ns,
                "printed": [[start, value] for start, value in sorted(self.printed.items())],
                "standing_through": self.standing_through_ns}

    @classmethod
    def from_json(cls, data: dict) -> "MeterProgress":
        def optional_int(value):
            if value is not None and type(value) is not int:
                raise ValueError("not an integer")
            return value

        return cls(
            start_ns=optional_int(data["start"]) or 0,
            cursor_ns=optional_int(data.get("cursor")),
            newest_end_ns=optional_int(data.get("newest_end")),
            printed={int(start): float(value) for start, value in data.get("printed", [])},
            standing_through_ns=optional_int(data.get("standing_through")),
        )


class State:
    """In memory: progress by meter key. `path` None keeps nothing on disk (the demo)."""

    def __init__(self, directory: str | None):
        self.path = os.path.join(directory, STATE_FILE) if directory else None
        self.meters: dict[str, MeterProgress] = {}
        self.tariffs: dict[str, RateSeries] = {}  # "tariff code|kind" -> rates

    def load(self) -> None:
        if not self.path:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            self.meters = {key: MeterProgress.from_json(value) for key, value in data["meters"].items()}
            self.tariffs = {key: RateSeries.from_json(value) for key, value in data.get("tariffs", {}).items()}
            log.debug(f"state loaded from {self.path}: {len(self.meters)} meters")
        except FileNotFoundError:
            log.warn(f"no saved state at {self.path}: starting a fresh backfill")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self.meters, self.tariffs = {}, {}
            log.warn(f"state file {self.path} is unreadable ({type(exc).__name__}: {exc}); starting a fresh backfill")

    def save(self) -> None:
        if not self.path:
            return
        directory = os.path.dirname(self.path)
        text = json.dumps({"version": FORMAT_VERSION,
                           "meters": {key: progress.to_json() for key, progress in self.meters.items()},
                           "tariffs": {key: series.to_json() for key, series in self.tariffs.items()}},
                          separators=(",", ":"))
        # mkstemp creates the file 0600; rename is atomic, so a crash leaves the old file or the new one.
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=directory)
        except OSError as exc:
            log.error(f"cannot save progress in {directory}: {exc.strerror}; the next start may repeat data")
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            log.error(f"cannot save progress to {self.path}: {exc.strerror}; the next start may repeat data")
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
