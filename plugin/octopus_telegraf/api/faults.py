"""What can go wrong in an exchange, and how it reads: the errors a request ends with (ApiError, and
OutOfTime when an enrichment's share of the gather is spent), a fault worth retrying, Retry-After
read safely, the cause under a requests exception, a short hint at an unexpected body."""

import email.utils
import json
import re
import time
from urllib.parse import urlsplit

from octopus_telegraf.base import log

MAX_RETRIES = 2  # a failed request is tried at most three times in one gather
MAX_WAIT = 3600.0  # however long a Retry-After asks for, a meter is tried again within the hour


class ApiError(Exception):
    """A request that failed for good within this gather."""

    def __init__(self, message: str, *, status: int | None = None, wait_until: float | None = None,
                 malformed: bool = False, needs_user: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds the API's Retry-After asked for, if it said
        self.wait_until = wait_until  # monotonic time before which the caller should not ask again
        self.malformed = malformed  # a response of the wrong shape or size: not a passing fault
        self._needs_user = needs_user

    @property
    def needs_user(self) -> bool:
        """A refused key, an unknown meter, a TLS failure or a response nobody can read: E!, not W!."""
        return self._needs_user or self.malformed or self.status in (401, 403, 404)


class OutOfTime(ApiError):
    """The share of the gather given to this work is spent: it goes on at the next gather (not a fault)."""


class Retryable(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def origin(url: str) -> tuple:
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait, between 0 and MAX_WAIT: `inf`, `nan` or a date in 9999 must not silence a meter."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), MAX_WAIT)


def cause(exc: BaseException) -> str:
    """The reason underneath a requests exception (`Connection refused`, `Name or service not known`),
    without the URL and the pool's repr around it."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found[-1].strip()
    for pattern in (r"Read timed out", r"Connection reset by peer", r"RemoteDisconnected\('([^']+)'",
                    r"certificate verify failed: ([^(')]+)", r"SSL: ([A-Z_]+)"):
        match = re.search(pattern, text)
        if match:
            return (match.group(1) if match.groups() else match.group(0)).strip()
    return type(exc).__name__


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def describe(response, body: bytes) -> str:
    """A short, single-line hint at what came back (an HTML page from the CDN, say)."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if "html" in kind or body.lstrip()[:1] == b"<":
        return " (an HTML page, not the API's JSON)"
    if kind == "application/json":
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if isinstance(detail, str):
            return f": {log.clip(detail, 200)}"
    return ""
