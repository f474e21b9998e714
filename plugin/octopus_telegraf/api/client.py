"""Octopus REST client: polite requests, bounded retries, the key kept to the configured origin."""

import email.utils
import http.client
import json
import re
import time
from contextlib import contextmanager
from urllib.parse import quote, urlencode, urljoin, urlsplit

import requests
import urllib3

from octopus_telegraf import __version__
from octopus_telegraf.base import log
from octopus_telegraf.base.deadline import Watchdog, deadline_session, time_left
from octopus_telegraf.base.timeutil import NS_PER_SECOND, iso_to_ns, ns_to_utc_z

USER_AGENT = f"octopus-telegraf/{__version__} (python-requests)"
MAX_RETRIES = 2  # a failed request is tried at most three times in one gather
MAX_RETRY_AFTER = 30.0  # a longer Retry-After means: leave the meter alone until then
RETRY_BACKOFF = 3  # the second retry waits three times as long as the first
MAX_BODY_BYTES = 64 * 1024 * 1024  # a 25000-row page is about 3 MB
MAX_WAIT = 3600.0  # however long a Retry-After asks for, a meter is tried again within the hour
MAX_PAGES = 1000  # a year of half-hours is one page at the largest size; this many means a `next` loop


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


class _Retryable(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def origin(url: str) -> tuple:
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def _retry_after_seconds(value: str | None) -> float | None:
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


def _cause(exc: BaseException) -> str:
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


class Client:
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
                        raise _Retryable(f"HTTP 200 but not JSON{_describe(response, body)}", 200) from None
            except ApiError:
                self.errors_seen += 1
                raise
            except _Retryable as fault:
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

    def _after_failure(self, fault: "_Retryable", attempt: int, retries: int) -> None:
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
            log.debug(f"{method} {_path(url)} -> {response.status_code} in {exchange.elapsed():.2f}s")
            status = response.status_code
            if status == 200:
                return response
            with response:
                body = b"".join(self._body(response, exchange))
        except requests.Timeout:
            raise _Retryable(f"{host}: timed out after {seconds:g}s") from None
        except requests.exceptions.SSLError as exc:  # a wrong certificate does not mend itself in seconds
            if exchange.watchdog.fired:
                raise _Retryable(f"{host}: timed out after {seconds:g}s") from None
            raise ApiError(f"{host}: TLS failure: {_cause(exc)}", needs_user=True) from None
        except requests.RequestException as exc:
            raise _Retryable(f"{host}: network error: {_cause(exc)}") from None
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}{_describe(response, body)}", status,
                             _retry_after_seconds(response.headers.get("Retry-After")))
        hint = "; check OCTO_API_KEY" if status in (401, 403) and auth else ""
        raise ApiError(f"HTTP {status}{_describe(response, body)}{hint}", status=status)

    def _body(self, response, exchange: "_Exchange"):
        """The body as it arrives, all of it within the exchange's deadline: the socket's timeout is per
        read, and a server dripping a byte at a time would otherwise hold the gather for ever."""
        size = 0
        host = urlsplit(response.url).hostname
        try:
            for chunk in _chunks(response):
                if exchange.over():
                    raise _Retryable(f"{host}: timed out after {exchange.seconds:g}s (the body was still arriving)")
                if self.stop.is_set():
                    raise ApiError("stopping")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(f"response larger than {MAX_BODY_BYTES >> 20} MiB, refused",
                                   status=response.status_code, malformed=True)
                yield chunk
        except requests.RequestException as exc:  # a reset in the middle of the body
            raise _Retryable(f"{host}: network error: {_cause(exc)}") from None
        except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:  # urllib3's own, via read1
            raise _Retryable(f"{host}: network error: {_cause(exc)}") from None

    def consumption_rows(self, meter, period_from_ns: int, page_size: int):
        """A meter's consumption rows as its pages arrive, oldest first, a chunk at a time: each row as
        JSON decodes it (a dict for a row of the API's shape). Same-origin `next` links are followed,
        each once. A page that fails part-way is asked again (at most
        MAX_RETRIES times) from just after the last row given out: no row twice, none skipped."""
        from octopus_telegraf.api.pagestream import PageError, PageShapeError, PageStream, row_start_text

        def url_from(moment_ns: int) -> str:
            return self.consumption_url(meter, {"period_from": ns_to_utc_z(moment_ns), "page_size": page_size,
                                                "order_by": "period"})

        url, seen, attempt, last_start = url_from(period_from_ns), set(), 0, None
        while url:
            _visit(url, seen)
            try:
                page = PageStream()
                with self._exchange(url) as exchange:
                    response = self._open(url, exchange)
                    with response:
                        for chunk in self._body(response, exchange):
                            rows = page.feed(chunk)
                            if rows:
                                last_start = row_start_text(rows[-1])
                                yield rows
                        page.close()
            except PageShapeError as exc:
                self.errors_seen += 1
                raise ApiError(f"{_path(url).split('?')[0]}: {exc}", malformed=True) from None
            except ApiError:
                self.errors_seen += 1
                raise
            except (_Retryable, PageError) as fault:
                if isinstance(fault, PageError):
                    fault = _Retryable(f"HTTP 200 but {fault}", 200)
                self._after_failure(fault, attempt, MAX_RETRIES)
                attempt += 1
                seen.discard(url)
                if isinstance(last_start, str):  # resume after what was given out
                    try:
                        url = url_from(iso_to_ns(last_start) + NS_PER_SECOND)
                    except (ValueError, OverflowError):
                        pass
                continue
            url = self._following(url, page.next)

    def pages(self, url: str, *, authenticated: bool = True, max_pages: int = MAX_PAGES):
        """Yield each page's `results` list, following same-origin `next` links only, each at most once,
        `max_pages` at most."""
        seen = set()
        while url:
            _visit(url, seen, max_pages)
            page = self.get_json(url, authenticated=authenticated)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise ApiError(f"{_path(url).split('?')[0]}: response has no `results` list", malformed=True)
            yield page["results"]
            url = self._following(url, page.get("next"))

    def _following(self, url: str, following) -> str | None:
        """The page after `url`: its `next` link, if there is one and it stays on the configured origin."""
        if following is not None and not isinstance(following, str):
            raise ApiError("response has a `next` that is not a URL", malformed=True)
        url = urljoin(url, following) if following else None  # the API's links are absolute; be lenient
        if url and not self.same_origin(url):
            log.warn(f"not following a `next` link to another origin ({origin(url)[1]})")
            return None
        return url

    def consumption_url(self, meter, query: dict) -> str:
        kind = "electricity-meter-points" if meter.fuel == "electricity" else "gas-meter-points"
        return (f"{self.api_url}/v1/{kind}/{quote(meter.point, safe='')}/meters/"
                f"{quote(meter.serial, safe='')}/consumption/?{urlencode(query)}")

    def has_consumption(self, meter) -> bool:
        """Does this meter have any data at all? (An old serial after a swap has none.) Raises ApiError."""
        page = self.get_json(self.consumption_url(meter, {"page_size": 1}))
        return bool(isinstance(page, dict) and page.get("results"))

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
        return _Retryable(f"{self.host}: timed out after {self.seconds:g}s")


def _visit(url: str, seen: set, max_pages: int = MAX_PAGES) -> None:
    """Each page once: a `next` link back to a page already read, or too many pages, is a loop."""
    if url in seen or len(seen) >= max_pages:
        raise ApiError(f"{_path(url).split('?')[0]}: `next` links go round in a loop "
                       f"({len(seen)} pages); stopped following them", malformed=True)
    seen.add(url)


def _chunks(response):
    """The body as it arrives, each piece from a single read of the socket where urllib3 allows it."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None or not hasattr(response.raw, "decode_content"):  # the demo's in-memory responses
        yield from response.iter_content(1 << 16)
        return
    while chunk := read1(1 << 16, decode_content=True):
        yield chunk


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _describe(response, body: bytes) -> str:
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
