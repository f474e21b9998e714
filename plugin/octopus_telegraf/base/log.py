"""One-line stderr logs with Telegraf's level prefixes; secrets are masked before anything is written.

Lines go through a small queue to a writer thread: when nobody reads stderr and its pipe is full, a
log call must not block the thread that is stopping the service. What does not fit is dropped.
"""

import os
import queue
import re
import threading

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}
PREFIX = {"debug": "D! ", "info": "I! ", "warn": "W! ", "error": "E! "}
MAX_LINE = 900  # Telegraf stops reading stderr after one 64 KiB line; stay far below 1 KiB
QUEUE_LINES = 1000

_threshold = LEVELS["info"]
_secrets: list[str] = []
_queue: "queue.Queue[bytes]" = queue.Queue(QUEUE_LINES)
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()


def configure(level: str, secrets=()) -> None:
    global _threshold
    _threshold = LEVELS[level]
    _secrets[:] = [s for s in secrets if s and len(s) >= 6]  # a one-letter "key" would mask every word


_once = False  # --once: there is no next gather to speak of


def running_once(once: bool) -> None:
    global _once
    _once = once


def once() -> bool:
    return _once


def next_gather(many: bool = False) -> str:
    """When what did not happen now happens: the service's next gather(s), or a run of --once again."""
    if _once:
        return "when it is run again"
    return "on the next gathers" if many else "at the next gather"


def add_secret(secret: str) -> None:
    """A token learned at run time is masked like the key."""
    if secret and secret not in _secrets:
        _secrets.append(secret)


_KEY_LIKE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9]+")  # an Octopus key, even one not given as OCTO_API_KEY
_SECRET_LIKE = re.compile(r"sk_(?:live|test)_|[A-Za-z0-9]{20,}")


def mask(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


def shown(value) -> str:
    """A refused setting's value as an error line may quote it: only when it cannot be a secret (a pasted
    key or token: a long run of key characters), else a note that it is not shown."""
    text = str(value)
    if _SECRET_LIKE.search(text) or mask(text) != text:
        return "that value (not shown: it could be a key)"
    return repr(text)


def clip(text: str, length: int) -> str:
    """`text` cut to `length` characters, secrets masked first: a key straddling the cut must not leave
    its first characters behind."""
    text = mask(text)
    return text if len(text) <= length else text[: length - 3] + "..."


def _clean(message: str) -> str:
    message = mask(message)
    message = " ".join(message.split())  # no newline may split a log entry
    if len(message) > MAX_LINE:
        message = message[: MAX_LINE - 3] + "..."
    return message


def _write_forever() -> None:
    while True:
        data = _queue.get()
        try:
            while data:
                data = data[os.write(2, data):]
        except OSError:
            pass  # Telegraf went away; nothing useful left to do with the message
        _queue.task_done()


def log(level: str, message: str) -> None:
    global _writer
    if LEVELS[level] < _threshold:
        return
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = threading.Thread(target=_write_forever, name="stderr", daemon=True)
                _writer.start()
    try:
        _queue.put_nowait((PREFIX[level] + _clean(str(message)) + "\n").encode("utf-8", "replace"))
    except queue.Full:
        pass


def drain(timeout: float = 1.0) -> None:
    """Give the writer up to `timeout` seconds to write what is queued (a blocked stderr gets no more)."""
    if _writer is None:
        return
    done = threading.Event()
    threading.Thread(target=lambda: (_queue.join(), done.set()), daemon=True).start()
    done.wait(timeout)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)
