"""One-line stderr logs with Telegraf's level prefixes; secrets are masked before anything is written."""

import sys
import threading

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}
PREFIX = {"debug": "D! ", "info": "I! ", "warn": "W! ", "error": "E! "}
MAX_LINE = 900  # Telegraf stops reading stderr after one 64 KiB line; stay far below 1 KiB

_threshold = LEVELS["info"]
_secrets: list[str] = []
_lock = threading.Lock()


def configure(level: str, secrets=()) -> None:
    global _threshold
    _threshold = LEVELS[level]
    _secrets[:] = [s for s in secrets if s]


def _clean(message: str) -> str:
    for secret in _secrets:
        message = message.replace(secret, "***")
    message = " ".join(message.split())  # no newline may split a log entry
    if len(message) > MAX_LINE:
        message = message[: MAX_LINE - 3] + "..."
    return message


def log(level: str, message: str) -> None:
    if LEVELS[level] < _threshold:
        return
    line = PREFIX[level] + _clean(str(message)) + "\n"
    with _lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass  # Telegraf went away; nothing useful left to do with the message


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)
