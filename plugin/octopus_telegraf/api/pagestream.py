"""One API page read as its body arrives: `{"count": .., "next": .., "results": [{..}, ..]}`, in any
key order. Rows come out a chunk at a time, so no whole page of text, dicts or tuples is alive at once.

The complete rows of a chunk are decoded by the json module in one call; only when that run does not
decode (a row cut at a brace inside a string, a damaged body) are they taken one value at a time.
"""

import codecs
import json
import re

_ROWS_FROM = re.compile(r"\s*,?\s*")  # what may lie between the rows read so far and the next row
_SPACE = re.compile(r"\s*")
_DECODER = json.JSONDecoder()
STUCK_CHARS = 1 << 20  # this much text that still does not parse is damage, not a value still arriving


def row_start_text(row) -> str | None:
    """The interval_start text of a row as `PageStream.feed` gives it (any JSON value)."""
    return row.get("interval_start") if type(row) is dict else None


class PageError(ValueError):
    """The body is not a page: not JSON, or cut short (worth asking again)."""


class PageShapeError(PageError):
    """The body is JSON of another shape: not an object, or no `results` list (asking again will not help)."""


class PageStream:
    def __init__(self):
        self.text = ""
        self.pos = 0
        self.decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self.state = "start"  # start -> key -> (value | array) -> ... -> done
        self.key = None
        self.next = None  # the `next` link, once read
        self.has_results = False
        self.one_by_one_until = 0  # rows before this position did not decode as a run

    def feed(self, chunk: bytes) -> list:
        """Rows completed by this chunk, decoded: a dict for each row of the API's shape."""
        self.text = self.text[self.pos:] + self.decode(chunk)
        self.one_by_one_until -= self.pos
        self.pos = 0
        rows = []
        try:
            self._parse(rows)
        except _Incomplete:
            if len(self.text) - self.pos > STUCK_CHARS:
                raise PageError("the response is not the API's JSON") from None
        return rows

    def close(self) -> None:
        self.feed(b"")
        if self.state != "done":
            raise PageError("the response ended before the page did" if self.state != "start"
                            else "the response is empty")
        if not self.has_results:
            raise PageShapeError("response has no `results` list")

    def _space(self) -> str:
        self.pos = _SPACE.match(self.text, self.pos).end()
        if self.pos >= len(self.text):
            raise _Incomplete
        return self.text[self.pos]

    def _value(self):
        self._space()  # raw_decode does not skip white space itself
        try:
            value, end = _DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError:
            raise _Incomplete from None
        if end >= len(self.text) and isinstance(value, (int, float)):
            raise _Incomplete  # a number may go on in the next chunk
        self.pos = end
        return value

    def _rows_at_once(self, rows: list) -> None:
        """The rows from `pos` to the last complete one (before the `]` if it has come), in one json
        call. Rows are flat objects, so a `}` ends one; if it does not (a brace inside a string, a
        damaged body), the run does not decode, and its rows are taken one at a time."""
        text = self.text
        if self.pos < self.one_by_one_until:
            return
        start = _ROWS_FROM.match(text, self.pos).end()
        close = text.find("]", start)
        end = text.rfind("}", start, len(text) if close < 0 else close) + 1
        if end <= start:
            return
        try:
            rows += json.loads(f"[{text[start:end]}]")
        except json.JSONDecodeError:
            self.one_by_one_until = end
            return
        self.pos = end

    def _parse(self, rows: list) -> None:
        while True:
            if self.state == "start":
                if self._space() != "{":
                    raise PageShapeError("the response is not a JSON object")
                self.pos += 1
                self.state = "key"
            elif self.state == "key":
                char = self._space()
                if char == "}":
                    self.pos += 1
                    self.state = "done"
                    return
                if char == ",":
                    self.pos += 1
                    continue
                if char != '"':
                    raise PageError("the response is not the API's JSON")
                start = self.pos
                try:
                    key = self._value()
                    colon = self._space()
                except _Incomplete:
                    self.pos = start  # read the key again when the rest has come
                    raise
                if colon != ":":
                    raise PageError("the response is not the API's JSON")
                self.pos += 1
                self.key = key
                self.state = "value"
            elif self.state == "value":
                if self.key == "results":
                    if self._space() != "[":
                        raise PageShapeError("response has no `results` list")
                    self.pos += 1
                    self.has_results = True
                    self.state = "array"
                    continue
                value = self._value()
                if self.key == "next":
                    self.next = value
                self.state = "key"
            elif self.state == "array":
                self._rows_at_once(rows)
                char = self._space()
                if char == "]":
                    self.pos += 1
                    self.state = "key"
                elif char == ",":
                    self.pos += 1
                else:
                    rows.append(self._value())
            else:
                self._space()
                raise PageError("more after the end of the page")


class _Incomplete(Exception):
    """Wait for the next chunk."""
