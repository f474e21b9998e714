"""The execd service: triggers from stdin, signals or LOOP_TIME; a clean stop within 3 seconds.

The main thread only waits for events; gathers run in one worker thread, so a stop can be honoured
while a slow request is still in flight, or while a write waits on a stdout nobody reads (the
worker is abandoned, flushed progress is saved). `--once` runs the same way, with one gather.
"""

import os
import select
import selectors
import signal
import stat
import sys
import threading
import time
from itertools import chain

from octopus_telegraf.base import log

STOP_GRACE = 1.5  # seconds the worker gets to finish; Telegraf waits 5 s before SIGTERM, SIGKILL 5 s after
PIPE_ATOMIC = getattr(select, "PIPE_BUF", 512)  # a pipe write this small is never split by a kill


def write_lines(lines: list[str]) -> None:
    """Line protocol to stdout, now, always UTF-8 whatever the locale: straight to the file descriptor,
    in line-aligned writes of at most PIPE_BUF bytes, so that a kill at any moment leaves whole lines
    only (half a line can parse as a valid point with a wrong value). Holds no lock a stop needs."""
    data = "\n".join(chain(lines, ("",))).encode("utf-8")  # built once, encoded once: no copy per line
    view = memoryview(data)
    done, size = 0, len(data)
    while done < size:
        cut = size
        if size - done > PIPE_ATOMIC:
            cut = data.rfind(b"\n", done, done + PIPE_ATOMIC) + 1
            if cut <= done:  # one line longer than PIPE_BUF (none is, in practice): it goes whole
                cut = data.find(b"\n", done) + 1
        done += os.write(1, view[done:cut])


class Signals:
    """Installed first thing at start: a stop or trigger signal met during start-up is kept for the
    service, not a traceback. SIGTERM/SIGINT stop; SIGHUP/SIGUSR1/SIGUSR2 ask for a gather.

    The handler only notes what came (a plain assignment: no lock, so a signal arriving inside the
    handler of another cannot deadlock it); the wake-up pipe rouses the main thread, which turns the
    notes into events in `take()`."""

    def __init__(self):
        self.stop = threading.Event()
        self.trigger = threading.Event()  # one pending gather at most, as Telegraf's own shim keeps
        self.stop_noted = self.trigger_noted = False
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, self._on_signal)

    def release(self) -> None:
        """Back to the defaults, for a command that is not a service."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)

    def _on_signal(self, signum, frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stop_noted = True
        else:
            self.trigger_noted = True

    def take(self) -> None:
        """In the main thread: what the handler noted becomes the events the worker waits on."""
        if self.trigger_noted:
            self.trigger_noted = False
            self.trigger.set()
        if self.stop_noted:
            self.stop.set()

    def wake(self) -> None:
        try:
            os.write(self.wake_write, b"!")
        except BlockingIOError:
            pass  # already awake

    def drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_read, 512):
                pass
        except BlockingIOError:
            pass


def _stdin_is_a_channel() -> bool:
    """A pipe, socket or terminal carries triggers; /dev/null or a file only says EOF at once."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(sys.stdin.fileno())
    except (ValueError, OSError, AttributeError):
        return False


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError, AttributeError):
        return False


class Service:
    def __init__(self, collector, signals: Signals, loop_time: float | None, once: bool = False):
        self.collector = collector
        self.signals = signals
        self.stop = signals.stop
        self.trigger = signals.trigger
        self.loop_time = loop_time
        self.once = once
        self.failed: int | None = None  # meters failed in the last gather
        self.worker = threading.Thread(target=self._work, name="gather", daemon=True)

    def _work(self) -> None:
        while True:
            self.trigger.wait()
            if self.stop.is_set():
                return
            self.trigger.clear()
            started = time.monotonic()
            try:
                self.failed = self.collector.gather()
            except OSError as exc:  # stdout is gone (EPIPE) or broken: nobody reads what we print
                log.info(f"stdout closed ({exc.strerror or type(exc).__name__}): stopping")
                self._finish()
                return
            except Exception as exc:  # a bug must not end the service: report it on one line, carry on
                log.error(f"gather failed: {type(exc).__name__}: {exc}")
                self.failed = len(self.collector.meters) or 1
            else:
                log.debug(f"gather done in {time.monotonic() - started:.2f}s, {self.failed} meters failed")
            if self.once:
                self._finish()
                return

    def _finish(self) -> None:
        self.stop.set()
        self.signals.wake()  # the main thread must hear of it

    def run(self) -> int:
        selector = selectors.PollSelector()  # poll, unlike epoll, also takes /dev/null and files
        selector.register(self.signals.wake_read, selectors.EVENT_READ, "signal")
        if self.once:
            self.trigger.set()
        elif self.loop_time and not _stdin_is_a_channel():
            log.debug("stdin is not a pipe: gathering every LOOP_TIME seconds")
        else:
            if not self.loop_time and _stdin_is_a_terminal():
                log.info("stdin is a terminal: each Enter is a gather, Ctrl-D stops (under Telegraf, each interval "
                         "sends one line); --once gathers once and exits")
            try:
                selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
            except (ValueError, OSError, AttributeError):
                log.warn("no usable stdin: gathers come from signals or LOOP_TIME only")
        self.signals.take()  # what came during start-up
        self.worker.start()
        next_loop = time.monotonic() if self.loop_time and not self.once else None
        while not self.stop.is_set() and self.worker.is_alive():
            if next_loop is not None and time.monotonic() >= next_loop:
                self.trigger.set()
                next_loop = max(next_loop + self.loop_time, time.monotonic())
            timeout = None if next_loop is None else max(0.0, next_loop - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.data == "stdin":
                    # One read takes every queued newline: however many there were, one gather.
                    if not os.read(key.fd, 65536):
                        log.info("stdin closed: stopping")
                        self.stop.set()
                    else:
                        self.trigger.set()
                else:
                    self.signals.drain_wakeups()
            self.signals.take()
        return self.shutdown()

    def shutdown(self) -> int:
        self.stop.set()
        self.trigger.set()
        self.worker.join(STOP_GRACE)
        if self.worker.is_alive():
            log.info("abandoning the gather in progress to stop in time")
        # What was flushed is saved; a meter half-read in the worker is simply read again next time.
        # A worker stuck writing to a stdout nobody reads holds the lock: its batch was never saved.
        if self.collector.lock.acquire(timeout=0.3):
            try:
                self.collector.state.save()
            finally:
                self.collector.lock.release()
        if not self.once:
            log.info("stopped")
        return 0
