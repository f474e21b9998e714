"""The one boundary every enrichment runs through (dispatches, gas units, live devices, and whatever
comes next). The REST half is the product: whatever an enrichment meets (a wrong type, a null, a
bad token, HTTP 429, a bug) becomes one log line per episode and a wait: the next gather tries
again, then 1, 2, 4... 30 minutes apart. It never fails or delays a gather; what it would have
changed is corrected by its owner when it next succeeds."""

import time

from . import log
from .api import ApiError
from .budget import BudgetSpent

FIRST_WAIT = 60.0
LONGEST_WAIT = 1800.0


class ShapeError(ValueError):
    """An answer that is not of the shape asked for (GraphQL or REST)."""


def listed(data, *path) -> list[dict]:
    """The dicts found by following `path` through nested objects and lists, skipping nulls; ShapeError
    when a step is neither an object, a list of them, nor null."""
    found = [data]
    for key in path:
        step = []
        for item in found:
            value = item.get(key)
            if isinstance(value, list):
                step += [v for v in value if v is not None]
            elif value is not None:
                step.append(value)
        if not all(isinstance(v, dict) for v in step):
            raise ShapeError(f"`{key}` is not an object")
        found = step
    return found


class Enrichment:
    def __init__(self, name: str):
        self.name = name
        self.failures = 0
        self.wait_until = 0.0  # monotonic
        self.in_episode = False

    def ready(self) -> bool:
        return time.monotonic() >= self.wait_until

    def run(self, work, *args):
        """`work(*args)` inside the boundary: its result, or None when it waits, is refused or fails."""
        if not self.ready():
            return None
        try:
            result = work(*args)
        except BrokenPipeError:
            raise  # stdout is gone: the service ends, whoever noticed it
        except BudgetSpent:
            return None  # the budget says so itself, once per episode
        except Exception as exc:  # noqa: BLE001 - containment: nothing an enrichment meets may stop a gather
            self._failed(exc)
            return None
        if self.in_episode:
            log.info(f"{self.name}: working again")
        self.in_episode, self.failures = False, 0
        return result

    def _failed(self, exc: Exception) -> None:
        # a passing fault is tried again at the next gather; one that persists, after 1, 2, 4... 30 minutes
        wait = min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(self.failures - 1, 10)) if self.failures else 0.0
        if isinstance(exc, ApiError) and exc.wait_until:
            wait = max(wait, min(exc.wait_until - time.monotonic(), 3600.0))
        self.failures += 1
        self.wait_until = time.monotonic() + wait
        if isinstance(exc, ApiError):
            what, needs_user = str(exc), exc.needs_user
        else:  # an answer of a shape nobody expected, or a bug: either way, not the user's gather
            what, needs_user = f"unexpected answer ({type(exc).__name__}: {log.clip(str(exc), 120)})", False
        when = f"in {wait / 60:.0f} min" if wait else "at the next gather"
        message = f"{self.name}: {what}; it waits (next try {when}), the rest carries on"
        if self.in_episode:
            log.debug(message)
        else:
            (log.error if needs_user else log.warn)(message)
        self.in_episode = True
