"""InfluxDB line protocol: escaping and formatting. Timestamps are integer nanoseconds."""

import math
import sys

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})


_SMALLEST = sys.float_info.min


class LineProtocolError(ValueError):
    pass


def escape_key(text: str) -> str:
    """Tag keys, tag values and field keys."""
    if not text:
        raise LineProtocolError("empty tag or field key/value")
    if not text.isprintable():
        raise LineProtocolError(f"control character in {text!r}")
    if "\\" in text:  # parsers disagree on backslashes in tags (Telegraf, InfluxDB 1.x, 2.x): refuse them
        raise LineProtocolError(f"backslash in {text!r}")
    return text.translate(_KEY_ESCAPES)


def tag_prefix(measurement: str, tags: dict[str, str]) -> str:
    """`measurement,tag=v,...`, tags sorted as InfluxDB prefers. Built once per series, reused per point."""
    parts = [measurement.translate(_MEASUREMENT_ESCAPES)]
    parts += [f"{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items())]
    return ",".join(parts)


def float_text(value: float) -> str:
    """The text of a float rounded to 10 significant digits, more than any meter or tariff carries,
    so that no binary noise is printed (`0.25053` for 0.25053000000000003). Subnormals (below
    2.2e-308) are written as 0.0, which every parser reads; NaN and infinity are refused, as
    InfluxDB refuses them."""
    if -_SMALLEST < value < _SMALLEST:
        return "0.0"
    if not math.isfinite(value):
        raise LineProtocolError(f"non-finite float {value}")
    text = repr(value)
    if len(text) > 12:  # `0.0034920000000000003`: more digits than the data carry
        rounded = float(f"{value:.10g}")
        if math.isfinite(rounded):  # 1.7976931348623157e308 would round past the largest float
            text = repr(rounded)
    return text


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a string field: quotes and backslashes escaped, no newline allowed
        if not value.isprintable():
            raise LineProtocolError(f"control character in {value!r}")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return f"{value}i"
    return float_text(float(value))


def line(prefix: str, fields: dict, timestamp_ns: int) -> str:
    """One point from a `tag_prefix` string; fields keep their Python type (float, int, bool)."""
    body = ",".join(f"{escape_key(k)}={format_value(v)}" for k, v in fields.items())
    return f"{prefix} {body} {int(timestamp_ns)}"
