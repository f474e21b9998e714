"""The GraphQL call budget: calls in any rolling hour, shared by every octopus-telegraf process that uses
the same state directory (the main service and `live`), and the pause the API asks for."""

import fcntl
import json
import math
import os
import threading
import time

from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.base import log
from octopus_telegraf.base.clock import boot_clock as _boot_clock
from octopus_telegraf.base.clock import boot_id as _boot_id

FIRST_PAUSE, LONGEST_PAUSE = 300.0, 1800.0
LONGEST_ASKED = 3600.0  # a Retry-After, or a damaged ledger, never pauses GraphQL for longer
LOCK_WAIT = 2.0
LEDGER = "graphql-calls.json"


class BudgetSpent(ApiError):
    """No GraphQL call may be made now: the hourly budget is used, or the API asked for a pause."""


class Budget:
    """Calls in any rolling hour, kept in a small ledger file under a lock so that the main service
    and `live` draw on one budget. Without a directory (the demo) it is kept in memory.

    The ledger counts on the machine's boot clock, which no wall-clock step moves: a clock put right
    after a year ahead, or stepped back 20 minutes, neither freezes GraphQL nor lets extra calls
    through. Only across a reboot is the wall clock asked how long ago the calls were, capped at an
    hour. A damaged ledger is read as far as it makes sense; a pause is never longer than the API
    asked for, or an hour; a lock held by a stuck neighbour is waited for LOCK_WAIT seconds at most."""

    def __init__(self, directory: str | None, per_hour: int):
        self.path = os.path.join(directory, LEDGER) if directory else None
        self.per_hour = per_hour
        self.memory = _fresh_ledger()
        self.lock = threading.Lock()
        self.waiting = False  # one W! line per episode of waiting, not one per gather

    def _update(self, change):
        """Run `change(ledger, now)` on the current ledger under the lock; write it back; return its result.
        Raises OSError (the ledger cannot be kept) or TimeoutError (another process holds it)."""
        if not self.lock.acquire(timeout=LOCK_WAIT):
            raise TimeoutError("the call ledger is busy")
        try:
            now = _boot_clock()
            if self.path is None:
                self.memory = _sane(self.memory, now, self.per_hour)
                return change(self.memory, now)
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            with os.fdopen(fd, "r+", encoding="utf-8") as handle:
                _lock_within(handle, LOCK_WAIT)  # released on close
                try:
                    ledger = _sane(json.loads(handle.read() or "{}"), now, self.per_hour)
                except (ValueError, TypeError, AttributeError, RecursionError):
                    ledger = _fresh_ledger()  # unreadable: start again
                result = change(ledger, now)
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps({**ledger, "boot": _boot_id(), "wall": time.time(), "at": now}))
            return result
        finally:
            self.lock.release()

    def take(self) -> None:
        """Count one call now, or raise BudgetSpent."""

        def change(ledger, now):
            if ledger["paused_until"] > now:
                until = time.gmtime(time.time() + ledger["paused_until"] - now)
                return f"the API asked to slow down; waiting until {time.strftime('%Y-%m-%d %H:%M', until)} UTC"
            if len(ledger["calls"]) >= self.per_hour:
                return f"{self.per_hour} calls in the last hour (OCTO_GRAPHQL_MAX_PER_HOUR)"
            ledger["calls"].append(now)
            return None

        try:
            refused = self._update(change)
        except (OSError, TimeoutError) as exc:
            refused = f"cannot keep the call ledger: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
        if refused:
            if not self.waiting:
                log.warn(f"GraphQL budget: {refused}; GraphQL work waits, the rest carries on")
            self.waiting = True
            raise BudgetSpent(f"GraphQL waits: {refused}")
        if self.waiting:
            log.info("GraphQL budget: calls resume")
        self.waiting = False

    def rate_limited(self, retry_after: float | None = None) -> None:
        """The API said too many requests: pause every process, as long as its Retry-After says (an hour at
        most); without one, 5 minutes, doubling to 30 when it says so again soon after the last pause."""

        def change(ledger, now):
            if retry_after is not None:
                ledger["pause"] = min(max(retry_after, 1.0), LONGEST_ASKED)
            else:
                again_soon = now - ledger["paused_until"] < LONGEST_PAUSE and ledger["pause"]
                ledger["pause"] = min(LONGEST_PAUSE, ledger["pause"] * 2) if again_soon else FIRST_PAUSE
            ledger["paused_until"] = now + ledger["pause"]
            return ledger["pause"]

        try:
            pause = self._update(change)
        except (OSError, TimeoutError):
            pause = FIRST_PAUSE
        log.warn(f"GraphQL: rate limited by the API; GraphQL work pauses for {max(pause / 60, 1):.0f} minutes")
        self.waiting = True


def usage(directory: str, per_hour: int) -> tuple[int, float | None]:
    """(calls in the last hour, seconds the pause has still to run or None), read from the ledger without
    taking its lock or writing it: for `octopus-telegraf status`. (0, None) when there is none."""
    try:
        with open(os.path.join(directory, LEDGER), encoding="utf-8") as handle:
            now = _boot_clock()
            ledger = _sane(json.loads(handle.read() or "{}"), now, per_hour)
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        return 0, None
    left = ledger["paused_until"] - now
    return len(ledger["calls"]), (left if left > 0 else None)


def _lock_within(handle, seconds: float) -> None:
    """flock, waiting at most `seconds`: a neighbour frozen while holding the ledger must not hold us."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError("another octopus-telegraf holds the call ledger") from None
            time.sleep(0.05)


def _sane(raw, now: float, per_hour: int) -> dict:
    """The ledger as this boot's clock reads it: calls of the last hour (the newest `per_hour`), a pause of
    at most what was asked. Times of another boot are moved by what the wall clock says has passed
    (0 to an hour). Non-numbers are dropped. Raises TypeError/AttributeError for a ledger of no shape."""
    at = _finite(raw.get("at"), None)  # the writer's boot clock when it wrote
    if at is None:  # a ledger of an older version: wall-clock times
        shift = now - time.time()
    elif raw.get("boot") == _boot_id():
        shift = 0.0
    else:  # written before a reboot: the wall clock says how long ago, at most an hour
        wall = _finite(raw.get("wall"), time.time())
        shift = now - min(max(time.time() - wall, 0.0), 3600.0) - at
    calls = sorted(min(t + shift, now) for t in raw.get("calls", []) if _finite(t, 0.0))
    pause = min(max(_finite(raw.get("pause"), 0.0), 0.0), LONGEST_ASKED)
    paused_until = min(_finite(raw.get("paused_until"), 0.0) + shift, now + pause)
    return {"calls": [t for t in calls if t > now - 3600][-per_hour:], "paused_until": paused_until, "pause": pause}


def _finite(value, default):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else default


def _fresh_ledger() -> dict:
    return {"calls": [], "paused_until": 0.0, "pause": 0.0}
