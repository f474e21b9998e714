"""Octopus's Kraken GraphQL API: one token per process, errors by code, and a call budget shared by
every octopus-telegraf process that uses the same state directory.

Octopus allows about 100 GraphQL calls an hour per account, shared with its own app. Every call,
token calls included, is drawn from OCTO_GRAPHQL_MAX_PER_HOUR in any rolling hour; a rate-limit
answer pauses GraphQL work for everyone (5 minutes, doubling to 30); nothing is retried in a loop.
"""

import fcntl
import json
import os
import threading
import time

from . import log
from .api import ApiError

TOKEN_SECONDS = 55 * 60  # a Kraken token lasts 60 minutes: renewed a little before
RATE_LIMITED = {"KT-CT-1199", "OE-0002"}
TOKEN_EXPIRED = {"KT-CT-1124"}
AUTH_FAILED = {"KT-CT-1111", "KT-CT-1134", "KT-CT-1135", "KT-CT-1139", "KT-CT-1143"}
DEVICE_NOT_FOUND = "KT-CT-4301"
NO_TELEMETRY = "KT-GB-4039"
FIRST_PAUSE, LONGEST_PAUSE = 300.0, 1800.0
LEDGER = "graphql-calls.json"
TOKEN_MUTATION = ("mutation Token($key: String!) { obtainKrakenToken(input: {APIKey: $key}) "
                  "{ token refreshToken refreshExpiresIn } }")


class GraphQLError(ApiError):
    """The API answered with `errors`; `code` is the first errorCode (KT-CT-...), if any."""

    def __init__(self, message: str, code: str | None = None, *, needs_user: bool = False):
        super().__init__(message, needs_user=needs_user)
        self.code = code


class BudgetSpent(ApiError):
    """No GraphQL call may be made now: the hourly budget is used, or the API asked for a pause."""


class Budget:
    """Calls in any rolling hour, kept in a small ledger file under a lock so that the main service
    and `live` draw on one budget. Without a directory (the demo) it is kept in memory."""

    def __init__(self, directory: str | None, per_hour: int):
        self.path = os.path.join(directory, LEDGER) if directory else None
        self.per_hour = per_hour
        self.memory = _fresh_ledger()
        self.lock = threading.Lock()
        self.waiting = False  # one W! line per episode of waiting, not one per gather

    def _update(self, change):
        """Run `change(ledger)` on the current ledger under the lock; write it back; return its result."""
        with self.lock:
            if self.path is None:
                return change(self.memory)
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            with os.fdopen(fd, "r+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released on close
                try:
                    ledger = json.loads(handle.read() or "{}")
                    calls = [float(t) for t in ledger.get("calls", [])]
                    ledger = {"calls": calls, "paused_until": float(ledger.get("paused_until", 0)),
                              "pause": float(ledger.get("pause", 0))}
                except (ValueError, TypeError, AttributeError, RecursionError):
                    ledger = _fresh_ledger()  # damaged: start again
                result = change(ledger)
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(ledger))
            return result

    def take(self) -> None:
        """Count one call now, or raise BudgetSpent."""
        now = time.time()

        def change(ledger):
            ledger["calls"] = [t for t in ledger["calls"] if now - 3600 < t <= now]
            if ledger["paused_until"] > now:
                until = time.strftime("%H:%M", time.gmtime(ledger["paused_until"]))
                return f"the API asked to slow down; waiting until {until} UTC"
            if len(ledger["calls"]) >= self.per_hour:
                return f"{self.per_hour} calls in the last hour (OCTO_GRAPHQL_MAX_PER_HOUR)"
            ledger["calls"].append(now)
            return None

        try:
            refused = self._update(change)
        except OSError as exc:
            refused = f"cannot keep the call ledger: {exc.strerror}"
        if refused:
            if not self.waiting:
                log.warn(f"GraphQL budget: {refused}; GraphQL work waits, the rest carries on")
            self.waiting = True
            raise BudgetSpent(f"GraphQL waits: {refused}")
        if self.waiting:
            log.info("GraphQL budget: calls resume")
        self.waiting = False

    def rate_limited(self) -> None:
        """The API said too many requests: pause every process; longer (to 30 minutes) when it says so
        again soon after the last pause ended, the shortest pause again after a quiet spell."""
        now = time.time()

        def change(ledger):
            again_soon = now - ledger["paused_until"] < LONGEST_PAUSE
            ledger["pause"] = min(LONGEST_PAUSE, ledger["pause"] * 2) if again_soon and ledger["pause"] else FIRST_PAUSE
            ledger["paused_until"] = now + ledger["pause"]
            return ledger["pause"]

        try:
            pause = self._update(change)
        except OSError:
            pause = FIRST_PAUSE
        log.warn(f"GraphQL: rate limited by the API; GraphQL work pauses for {pause / 60:.0f} minutes")
        self.waiting = True


def _fresh_ledger() -> dict:
    return {"calls": [], "paused_until": 0.0, "pause": 0.0}


class Kraken:
    """Queries with a token, renewed once on an expired or refused token; every call budgeted."""

    def __init__(self, client, api_key: str | None, budget: Budget):
        self.client = client
        self.api_key = api_key
        self.budget = budget
        self.url = client.url("/v1/graphql/")
        self.calls = 0  # made by this process, token calls included
        self._token: tuple[str, float] | None = None

    def query(self, query: str, variables: dict) -> dict:
        """The `data` of a query. Raises GraphQLError, BudgetSpent or ApiError."""
        try:
            return self._call(query, variables, self._token_now())
        except GraphQLError as exc:
            if exc.code not in TOKEN_EXPIRED | AUTH_FAILED:
                raise
            log.debug(f"GraphQL: token refused ({exc.code}); obtaining a new one")
            self._token = None  # once: a new token, the call repeated once
            return self._call(query, variables, self._token_now())

    def _token_now(self) -> str:
        if self._token and time.monotonic() < self._token[1]:
            return self._token[0]
        data = self._call(TOKEN_MUTATION, {"key": self.api_key}, None)
        token = (data.get("obtainKrakenToken") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise GraphQLError("GraphQL gave no token", needs_user=True)
        log.add_secret(token)
        self._token = (token, time.monotonic() + TOKEN_SECONDS)
        return token

    def _call(self, query: str, variables: dict, token: str | None) -> dict:
        self.budget.take()
        self.calls += 1
        headers = {"Authorization": f"JWT {token}"} if token else None
        body = self.client.get_json(self.url, authenticated=False, payload={"query": query, "variables": variables},
                                    headers=headers, retries=0)  # a failed call is not repeated in a loop
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
            code = (first.get("extensions") or {}).get("errorCode")
            message = str(first.get("message", ""))[:120]
            if code in RATE_LIMITED or "too many requests" in message.lower():
                self.budget.rate_limited()
                raise BudgetSpent(f"GraphQL rate limited ({code or message})")
            if code in TOKEN_EXPIRED:
                raise GraphQLError(f"GraphQL {code}: token expired", code)
            if code in AUTH_FAILED:
                raise GraphQLError(f"GraphQL {code}: authentication failed ({message}); check OCTO_API_KEY", code,
                                   needs_user=True)
            raise GraphQLError(f"GraphQL {code or 'error'}: {message}", code)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise GraphQLError("GraphQL response has no data", needs_user=True)
        return body["data"]
