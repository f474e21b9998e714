"""How long ago something was done, whatever the wall clock does. A stamp is [boot id, seconds on the boot
clock, wall-clock time]: within one boot the boot clock answers (no wall-clock step moves it); across a
reboot only the wall clock can. A plain number (a state written before stamps) is a wall-clock time."""

import time


def boot_clock() -> float:
    """Seconds on the clock that counts since boot, suspend included, and that no wall-clock step moves."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def stamp() -> list:
    return [boot_id(), boot_clock(), time.time()]


def is_stamp(value) -> bool:
    return (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and all(type(v) in (int, float) for v in value[1:])) or type(value) in (int, float)


def seconds_since(recorded) -> float | None:
    """Seconds since `recorded` (a stamp, or a wall-clock time); None for anything else."""
    if isinstance(recorded, list) and is_stamp(recorded):
        if recorded[0] and recorded[0] == boot_id():
            return boot_clock() - recorded[1]
        return time.time() - recorded[2]
    if type(recorded) in (int, float):
        return time.time() - recorded
    return None


def due(recorded, every: float) -> bool:
    """Is it `every` seconds or more since `recorded`? (Never recorded, damaged, or in the future: yes.)"""
    elapsed = seconds_since(recorded)
    return elapsed is None or not 0 <= elapsed < every
