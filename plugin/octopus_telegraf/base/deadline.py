"""Deadlines: an enrichment's share of a gather (`time_share`), and a hard deadline for one whole HTTP
exchange, connect, headers and body, whatever the server does. The socket's own timeout is per read,
so a server that drips a header byte a second would never meet it; a watchdog shuts the connection's
socket at the deadline instead, which ends any read in progress (`deadline_session`)."""

import socket
import threading
import time
from contextlib import contextmanager

import requests
import urllib3

_limit = threading.local()  # the deadline of the work in hand in this thread (monotonic), if any


@contextmanager
def time_share(seconds: float):
    """Within this block no request of this thread outlasts `seconds` from now (nor an outer share): an
    enrichment's share of a gather, so that what it meets never holds up the rest."""
    outer = getattr(_limit, "deadline", None)
    deadline = time.monotonic() + seconds
    _limit.deadline = deadline if outer is None else min(outer, deadline)
    try:
        yield
    finally:
        _limit.deadline = outer


def time_left() -> float | None:
    """Seconds left of the current share, or None when there is none."""
    deadline = getattr(_limit, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


class Watchdog:
    """A hard deadline for one whole exchange: at the deadline the connection's socket is shut."""

    def __init__(self, seconds: float):
        self.connection = None  # set by _DeadlineConnection when the request goes out on it
        self.fired = False
        self.timer = threading.Timer(max(seconds, 0.0), self._fire)
        self.timer.daemon = True

    def __enter__(self):
        self.outer = getattr(_limit, "watchdog", None)
        _limit.watchdog = self
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        _limit.watchdog = self.outer

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _DeadlineConnection:
    """Mixed into urllib3's connections: each request tells the watchdog of its thread which socket it uses."""

    def request(self, *args, **kwargs):
        watchdog = getattr(_limit, "watchdog", None)
        if watchdog is not None:
            watchdog.connection = self
            if watchdog.fired:
                raise urllib3.exceptions.ReadTimeoutError(None, None, "deadline passed")
        return super().request(*args, **kwargs)


class _HTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that a watchdog can cut at the exchange's deadline."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def deadline_session() -> requests.Session:
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, DeadlineAdapter())
    return session
