"""Each setting's value parsed and checked: a number in its range, a choice, an origin (HTTPS, or HTTP on
loopback), a meter point, a region, the Economy 7 night, the comparisons. Every refusal is one
SettingsError that names the variable and quotes the value only when it cannot be a key."""

import ipaddress
import math
import os
import re
from urllib.parse import urlsplit

from octopus_telegraf.base.log import shown
from octopus_telegraf.config.table import SETTINGS
from octopus_telegraf.prices.families import parse_compare


class SettingsError(Exception):
    """A bad setting: the message names the variable and what is wrong with it."""


ACCOUNT_NUMBER = re.compile(r"A-[0-9A-Z]{8}")
METER_POINT = {"MPAN": re.compile(r"[0-9]{13}"), "MPRN": re.compile(r"[0-9]{6,10}")}
UNEXPANDED = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def number_of(raw: dict, name: str, *, integer=False, minimum=None, maximum=None, above=None):
    text = raw.get(name)
    if text is None:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}, not {shown(text)}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, not {shown(text)}")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {shown(text)}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, not {shown(text)}")
    if above is not None and value <= above:
        raise SettingsError(f"{name} must be greater than {above}, not {shown(text)}")
    return value


def choice_of(raw: dict, name: str, choices: dict[str, str]) -> str:
    """`choices` maps the lower-cased accepted spelling to the canonical value."""
    text = raw[name]
    try:
        return choices[text.lower()]
    except KeyError:
        allowed = ", ".join(dict.fromkeys(str(v).lower() if isinstance(v, bool) else v for v in choices.values()))
        raise SettingsError(f"{name} must be one of {allowed}, not {shown(text)}") from None


def origin_of(raw: dict, name: str = "OCTO_API_URL") -> str:
    text = raw[name].rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
        default = next(d for n, d, _ in SETTINGS if n == name)
        raise SettingsError(f"{name} must be an origin like {default}, not {shown(text)}")
    try:
        parts.port  # noqa: B018 - urllib raises for a port outside 0-65535
    except ValueError:
        raise SettingsError(f"{name} has a port that does not exist: {shown(text)}") from None
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError(f"{name} must use https unless its host is loopback (a secret would travel in clear)")
    return text


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def meter_id_of(raw: dict, name: str, label: str) -> str | None:
    text = raw.get(name)
    if text is None:
        return None
    compact = "".join(text.split())  # people paste "1200 0000 0000 0"
    if not METER_POINT[label].fullmatch(compact):
        size = "13 digits" if label == "MPAN" else "6 to 10 digits"
        raise SettingsError(f"{name} must be the {label}'s {size}, not {shown(text)}")
    return compact


def serial_of(raw: dict, name: str) -> str | None:
    text = raw.get(name)
    if text is not None and (not text.isprintable() or "\\" in text):
        raise SettingsError(f"{name} must be printable text without control characters or backslashes")
    return text


def default_state_dir(env) -> str:
    if env.get("STATE_DIRECTORY"):
        return env["STATE_DIRECTORY"].split(":")[0]  # systemd may give several
    if env.get("XDG_STATE_HOME"):
        return os.path.join(env["XDG_STATE_HOME"], "octopus-telegraf")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "octopus-telegraf")


def comparisons_of(text: str | None) -> list:
    try:
        return parse_compare(text) if text else []
    except ValueError as exc:
        raise SettingsError(f"OCTO_COMPARE: {exc}") from None


def region_of(text: str | None) -> str | None:
    if text is None:
        return None
    letter = text.upper().removeprefix("_")
    if len(letter) != 1 or not "A" <= letter <= "P":
        raise SettingsError(f"OCTO_REGION must be a region letter from A to P, not {shown(text)}")
    return letter


def e7_night_of(raw: dict) -> tuple[int, int]:
    """`00:30-07:30` (UTC) -> seconds after midnight of the window's start and end."""
    text = raw["OCTO_E7_NIGHT"]
    try:
        times = [[int(n) for n in part.strip().split(":")] for part in text.split("-")]
        ok = len(times) == 2 and all(len(t) == 2 and 0 <= t[0] <= 24 and 0 <= t[1] < 60 for t in times)
    except ValueError:
        ok = False
    if not ok:
        raise SettingsError(f"OCTO_E7_NIGHT must be like 00:30-07:30 (UTC), not {shown(text)}")
    return times[0][0] * 3600 + times[0][1] * 60, times[1][0] * 3600 + times[1][1] * 60
