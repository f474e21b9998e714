"""Octopus REST client: polite requests, bounded retries, the key kept to the configured origin."""

import http.client
import json
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
import urllib3

from octopus_telegraf import __version__
from octopus_telegraf.api.faults import (
    MAX_RETRIES,
    ApiError,
    OutOfTime,
    Retryable,
    cause,
    describe,
    origin,
    path_of,
    retry_after_seconds,
)
from octopus_telegraf.api.paging import Paging
from octopus_telegraf.base import log
from octopus_telegraf.base.deadline import Watchdog, deadline_session, time_left

USER_AGENT = f"octopus-telegraf/{__version__} (python-requests)"
MAX_RETRY_AFTER = 30.0  # a longer Retry-After means: leave the meter alone until then
RETRY_BACKOFF = 3  # the second retry waits three times as long as the first
MAX_BODY_BYTES = 64 * 1024 * 1024  # a 25000-row page is about 3 MB


class Client(Paging):
    """One per process. `stop` is a threading.Event: pauses end early when it is set."""

    def __init__(self, api_url: str, api_key: str | None, timeout: float, stop, session=None, retry_pause=1.0):
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry_pause = retry_pause
        self.stop = stop
        self.token_origins: set[tuple] = set()  # other origins a GraphQL token may go to (OCTO_BACKEND_API_URL)
        self.requests_made = 0
        self.errors_seen = 0  # failed attempts, retried or not
        self.session = session or deadline_session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"

    def same_origin(self, url: str) -> bool:
        return origin(url) == origin(self.api_url)

    def get_json(self, url: str, *, authenticated: bool = True, payload=None, headers=None, retries=MAX_RETRIES):
        """GET (or with `payload`, POST) a JSON document, retrying transient faults at most `retries`
        times. Public endpoints (products, rates) are asked with `authenticated=False`: no key."""
        attempt = 0
        while True:
            try:
                with self._exchange(url) as exchange:
                    response = self._open(url, exchange, authenticated, payload, headers)
                    with response:
                        body = b"".join(self._body(response, exchange))
                    try:
                        return json.loads(body)
                    except ValueError:
                        raise Retryable(f"HTTP 200 but not JSON{describe(response, body)}", 200) from None
            except ApiError:
                self.errors_seen += 1
                raise
            except Retryable as fault:
                self._after_failure(fault, attempt, retries)
                attempt += 1

    @contextmanager
    def _exchange(self, url: str):
        """The whole of one request: at most OCTO_HTTP_TIMEOUT, or what is left of the share it runs in."""
        left = time_left()
        if left is not None and left <= 0.05:
            raise OutOfTime("its share of this gather is spent")
        seconds = self.timeout if left is None else min(self.timeout, left)
        exchange = _Exchange(urlsplit(url).hostname, seconds, cut_by_share=left is not None and left < self.timeout)
        with Watchdog(seconds) as watchdog:
            exchange.watchdog = watchdog
            try:
                yield exchange
            except Exception:  # whatever the cut left behind (an empty body, half a page) is the deadline's doing
                if watchdog.fired:
                    raise exchange.timed_out() from None
                raise

    def _after_failure(self, fault: "Retryable", attempt: int, retries: int) -> None:
        """Count a failed attempt, then wait before the next one, or raise ApiError if there is none."""
        self.errors_seen += 1
        if fault.retry_after is not None and fault.retry_after > MAX_RETRY_AFTER:
            raise ApiError(f"{fault}; Retry-After {fault.retry_after:.0f}s, waiting until then",
                           status=fault.status, wait_until=time.monotonic() + fault.retry_after,
                           retry_after=fault.retry_after) from None
        left = time_left()
        pause = fault.retry_after if fault.retry_after is not None else self.retry_pause * RETRY_BACKOFF ** attempt
        if left is not None and attempt < retries and pause >= left:
            raise OutOfTime(f"{fault} (no time left in this gather to try again)", status=fault.status) from None
        if attempt >= retries or self.stop.is_set():
            tries = f"after {attempt + 1} attempts" if attempt else "not retried"
            raise ApiError(f"{fault} ({tries})", status=fault.status, retry_after=fault.retry_after) from None
        log.debug(f"{fault}; retrying in {pause:g}s")
        if self.stop.wait(pause):
            raise ApiError(f"{fault} (stopping)", status=fault.status) from None

    def _open(self, url: str, exchange: "_Exchange", authenticated: bool = True, payload=None, headers=None):
        """Send one request; the response of an HTTP 200, its body still to read."""
        # The key goes to the configured origin only, whatever a `next` link says.
        auth = (self.api_key, "") if authenticated and self.api_key and self.same_origin(url) else None
        if headers and not (self.same_origin(url) or origin(url) in self.token_origins):
            headers = None  # a GraphQL token is as secret as the key
        self.requests_made += 1
        host = urlsplit(url).hostname
        method = "POST" if payload is not None else "GET"
        seconds = exchange.seconds
        try:
            response = self.session.request(method, url, auth=auth, json=payload, headers=headers,
                                            timeout=(min(seconds, 15.0), seconds),
                                            allow_redirects=False, stream=True)
            log.debug(f"{method} {path_of(url)} -> {response.status_code} in {exchange.elapsed():.2f}s")
            status = response.status_code
            if status == 200:
                return response
            with response:
                body = b"".join(self._body(response, exchange))
        except requests.Timeout:
            raise Retryable(f"{host}: timed out after {seconds:g}s") from None
        except requests.exceptions.SSLError as exc:  # a wrong certificate does not mend itself in seconds
            if exchange.watchdog.fired:
                raise Retryable(f"{host}: timed out after {seconds:g}s") from None
            raise ApiError(f"{host}: TLS failure: {cause(exc)}", needs_user=True) from None
        except requests.RequestException as exc:
            raise Retryable(f"{host}: network error: {cause(exc)}") from None
        if status == 429 or status >= 500:
            raise Retryable(f"HTTP {status}{describe(response, body)}", status,
                             retry_after_seconds(response.headers.get("Retry-After")))
        hint = "; check OCTO_API_KEY" if status in (401, 403) and auth else ""
        raise ApiError(f"HTTP {status}{describe(response, body)}{hint}", status=status)

    def _body(self, response, exchange: "_Exchange"):
        """The body as it arrives, all of it within the exchange's deadline: the socket's timeout is per
        read, and a server dripping a byte at a time would otherwise hold the gather for ever."""
        size = 0
        host = urlsplit(response.url).hostname
        try:
            for chunk in _chunks(response):
                if exchange.over():
                    raise Retryable(f"{host}: timed out after {exchange.seconds:g}s (the body was still arriving)")
                if self.stop.is_set():
                    raise ApiError("stopping")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(f"response larger than {MAX_BODY_BYTES >> 20} MiB, refused",
                                   status=response.status_code, malformed=True)
                yield chunk
        except requests.RequestException as exc:  # a reset in the middle of the body
            raise Retryable(f"{host}: network error: {cause(exc)}") from None
        except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:  # urllib3's own, via read1
            raise Retryable(f"{host}: network error: {cause(exc)}") from None


    def url(self, path: str) -> str:
        return f"{self.api_url}{path}"


class _Exchange:
    """One request's clock: its deadline, and whether it was the gather's share that set it."""

    def __init__(self, host: str | None, seconds: float, cut_by_share: bool):
        self.host = host
        self.seconds = seconds
        self.cut_by_share = cut_by_share
        self.started = time.monotonic()
        self.watchdog = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def over(self) -> bool:
        return self.elapsed() > self.seconds

    def timed_out(self) -> ApiError:
        if self.cut_by_share:
            return OutOfTime(f"its share of this gather ran out after {self.seconds:.0f}s")
        return Retryable(f"{self.host}: timed out after {self.seconds:g}s")


def _chunks(response):
    """The body as it arrives, each piece from a single read of the socket where urllib3 allows it."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None or not hasattr(response.raw, "decode_content"):  # the demo's in-memory responses
        yield from response.iter_content(1 << 16)
        return
    while chunk := read1(1 << 16, decode_content=True):
        yield chunk


