"""The execd service: triggers from stdin, signals or LOOP_TIME; a clean stop within 3 seconds.

The main thread only waits for events; gathers run in one worker thread, so a stop can be honoured
while a slow request is still in flight (the request is abandoned, flushed progress is saved).
"""

import os
import selectors
import signal
import sys
import threading
import time

from . import log

STOP_GRACE = 2.0  # seconds the worker gets to finish; Telegraf waits 5 s before SIGTERM, SIGKILL 5 s after


def write_lines(lines: list[str]) -> None:
    """Line protocol to stdout, flushed now: Python block-buffers a pipe otherwise. Always UTF-8,
    whatever locale Telegraf was started in."""
    sys.stdout.buffer.write(("\n".join(lines) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()


class Service:
    def __init__(self, collector, stop: threading.Event, loop_time: float | None):
        self.collector = collector
        self.stop = stop
        self.loop_time = loop_time
        self.trigger = threading.Event()  # one pending gather at most, as Telegraf's own shim keeps
        self.worker = threading.Thread(target=self._work, name="gather", daemon=True)
        # Handlers go in first: Python's default for SIGHUP/SIGUSR1/SIGUSR2 is to die.
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)
        signal.set_wakeup_fd(self.wake_write)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, self._on_signal)

    def _work(self) -> None:
        while True:
            self.trigger.wait()
            if self.stop.is_set():
                return
            self.trigger.clear()
            started = time.monotonic()
            try:
                failed = self.collector.gather()
            except BrokenPipeError:
                self.stop.set()  # Telegraf is gone: nobody reads what we print
                os.write(self.wake_write, b"!")  # and the main thread must hear of it
                return
            except Exception as exc:  # a bug must not end the service: report it on one line, carry on
                log.error(f"gather failed: {type(exc).__name__}: {exc}")
                continue
            log.debug(f"gather done in {time.monotonic() - started:.2f}s, {failed} meters failed")

    def _on_signal(self, signum, frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stop.set()
        else:
            self.trigger.set()

    def run(self) -> int:
        wake_read = self.wake_read
        selector = selectors.PollSelector()  # poll, unlike epoll, also takes /dev/null and files
        selector.register(wake_read, selectors.EVENT_READ, "signal")
        try:
            selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        except (ValueError, OSError, AttributeError):
            log.warn("no usable stdin: gathers come from signals or LOOP_TIME only")
        self.worker.start()
        next_loop = time.monotonic() if self.loop_time else None
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
                    try:
                        while os.read(wake_read, 512):
                            pass
                    except BlockingIOError:
                        pass
        return self.shutdown()

    def shutdown(self) -> int:
        self.stop.set()
        self.trigger.set()
        self.worker.join(STOP_GRACE)
        if self.worker.is_alive():
            log.info("abandoning the request in flight to stop in time")
        # What was flushed is saved; a meter half-read in the worker is simply read again next time.
        if self.collector.lock.acquire(timeout=0.5):
            try:
                self.collector.state.save()
            except OSError as exc:
                log.error(f"cannot save state: {exc}")
        log.info("stopped")
        sys.stderr.flush()
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        return 0
