"""The one boundary every enrichment runs through (dispatches, gas units, live devices, and whatever
comes next). The REST half is the product: whatever an enrichment meets (a wrong type, a null, a
bad token, HTTP 429, a bug) becomes one log line per episode and a wait: the next gather tries
again, then 1, 2, 4... 30 minutes apart. An episode ends only after RECOVERED_AFTER successes in a row,
so a flapping source is one line, not two per gather. It never fails or delays a gather: each run
has a share of the gather's time (`share` seconds, every request included), and what does not fit
goes on at the next gather; what it would have changed is corrected by its owner when it next succeeds."""

import time

from octopus_telegraf.api.budget import BudgetSpent
from octopus_telegraf.api.faults import ApiError, OutOfTime
from octopus_telegraf.base import log
from octopus_telegraf.base.deadline import time_share

FIRST_WAIT = 60.0
LONGEST_WAIT = 1800.0
RECOVERED_AFTER = 3  # successes in a row that end an episode
EVERY: list["Enrichment"] = []  # this process's boundaries, for `octopus-telegraf status`


class Enrichment:
    def __init__(self, name: str, share: float | None = None):
        self.name = name
        self.share = share  # seconds of a gather one run may take, requests included; None: no limit of its own
        self.failures = 0
        self.wait_until = 0.0  # monotonic
        self.in_episode = False
        self.good_runs = 0  # successes in a row since the episode began
        self.noted = False  # this run met a fault it handled itself: not a success
        self.runs = 0
        self.last_error: str | None = None  # of the episode under way
        EVERY.append(self)

    def status(self) -> dict:
        """What `octopus-telegraf status` says of it: ok, waiting (until when, after what), or not run yet."""
        if not self.runs:
            return {"name": self.name, "state": "not run yet"}
        if not self.in_episode:
            return {"name": self.name, "state": "ok"}
        left = self.wait_until - time.monotonic()
        next_try = time.time_ns() + int(left * 1e9) if left > 0 else None
        return {"name": self.name, "state": "waiting", "error": self.last_error, "next_try": next_try}

    def ready(self) -> bool:
        return time.monotonic() >= self.wait_until

    def run(self, work, *args):
        """`work(*args)` inside the boundary: its result, or None when it waits, is refused or fails."""
        if not self.ready():
            return None
        self.noted, self.runs = False, self.runs + 1
        try:
            if self.share is None:
                result = work(*args)
            else:
                with time_share(self.share):
                    result = work(*args)
        except BrokenPipeError:
            raise  # stdout is gone: the service ends, whoever noticed it
        except OutOfTime as exc:  # its share of this gather is spent: not a fault, it goes on at the next
            log.debug(f"{self.name}: {exc}; it goes on {log.next_gather()}")
            return None
        except BudgetSpent:
            return None  # the budget says so itself, once per episode
        except Exception as exc:  # noqa: BLE001 - containment: nothing an enrichment meets may stop a gather
            self._failed(exc)
            return None
        if not self.noted:
            self.succeeded()
        return result

    def succeeded(self) -> None:
        """A success: an episode ends after RECOVERED_AFTER of them in a row, and its back-off with it."""
        if not self.in_episode:
            self.failures = 0
            return
        self.good_runs += 1
        if self.good_runs >= RECOVERED_AFTER:
            log.info(f"{self.name}: working again")
            self.in_episode, self.failures, self.good_runs = False, 0, 0

    def note(self, exc: Exception) -> None:
        """A fault its owner met and went round (a day without a price, say): one line per episode like any
        other, but no wait: the rest of its work goes on."""
        self.noted, self.good_runs = True, 0
        self.last_error = log.clip(str(exc), 200)
        message = f"{self.name}: {exc}; it is asked again later, the rest carries on"
        (log.debug if self.in_episode else log.warn)(message)
        self.in_episode = True

    def _failed(self, exc: Exception) -> None:
        # a passing fault is tried again at the next gather; one that persists, after 1, 2, 4... 30 minutes
        wait = min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(self.failures - 1, 10)) if self.failures else 0.0
        if isinstance(exc, ApiError) and exc.wait_until:
            wait = max(wait, min(exc.wait_until - time.monotonic(), 3600.0))
        self.failures += 1
        self.good_runs = 0
        self.wait_until = time.monotonic() + wait
        if isinstance(exc, ApiError):
            what, needs_user = str(exc), exc.needs_user
        else:  # an answer of a shape nobody expected, or a bug: either way, not the user's gather
            what, needs_user = f"unexpected answer ({type(exc).__name__}: {log.clip(str(exc), 120)})", False
        self.last_error = log.clip(what, 200)
        when = f"in {wait / 60:.0f} min" if wait and not log.once() else log.next_gather()
        message = f"{self.name}: {what}; it waits (next try {when}), the rest carries on"
        if self.in_episode:
            log.debug(message)
        else:
            (log.error if needs_user else log.warn)(message)
        self.in_episode = True
