"""The fast ways through a page (a run of rows decoded at once, contiguous half-hours parsed as
columns, times worked out per day and per clock, half-hours chosen together) give exactly what the
plain ways give, for any input: the plain ways are the reference."""

import json
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from octopus_telegraf.api.pagestream import PageStream
from octopus_telegraf.base.timeutil import LONDON, NS_PER_SECOND, iso_times_to_ns, iso_to_ns, london_day_start
from octopus_telegraf.core.rows import choose, parse_rows, rows_one_by_one

from fake_octopus import render

HALF_HOUR = 1800 * NS_PER_SECOND
NOW = 1_800_000_000 * NS_PER_SECOND  # 2027: every generated row lies before it
START = 1_600_000_000 * NS_PER_SECOND  # 2020-09-13, so a few pages cross both DST changes

# A row as the API writes it, or as a damaged or different server might
text_noise = st.text(alphabet='{}[]",:\\ \nab1', max_size=6)
odd_row = st.one_of(
    st.fixed_dictionaries({"interval_start": text_noise, "consumption": st.floats(), "interval_end": text_noise}),
    st.fixed_dictionaries({"consumption": st.integers(), "interval_start": st.just("2021-01-01T00:00:00Z"),
                           "interval_end": st.just("2021-01-01T00:30:00Z"),
                           "extra": st.dictionaries(text_noise, text_noise)}),
    st.none(), st.integers(), text_noise, st.lists(st.integers(), max_size=2),
)


def api_rows(count, first=0, style="api", value=lambda i: round(i * 0.037 % 2, 3)):
    return [{"consumption": value(i), "interval_start": render(START + i * HALF_HOUR, style),
             "interval_end": render(START + (i + 1) * HALF_HOUR, style)} for i in range(first, first + count)]


def read_in_chunks(body: bytes, size: int) -> list:
    stream, rows = PageStream(), []
    for offset in range(0, len(body), size):
        rows += stream.feed(body[offset:offset + size])
    stream.close()
    return rows


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.one_of(st.builds(lambda i: api_rows(1, i)[0], st.integers(0, 40000)), odd_row), max_size=40),
       compact=st.booleans(), size=st.integers(1, 700))
def test_a_page_read_in_any_chunks_gives_exactly_its_rows(rows, compact, size):
    body = json.dumps({"count": len(rows), "next": None, "previous": None, "results": rows},
                      separators=(",", ":") if compact else None).encode()
    assert read_in_chunks(body, size) == json.loads(body)["results"]


def test_a_brace_inside_a_value_costs_one_chunk_of_one_by_one_reading_not_a_wrong_row():
    rows = api_rows(3000)
    rows[10]["interval_end"] = "}], {"  # the run cut at this `}` does not decode
    body = json.dumps({"results": rows, "next": None}).encode()
    assert read_in_chunks(body, 65536) == rows


@given(st.integers(1_500_000_000, 2_100_000_000), st.sampled_from(["api", "colon", "compact"]))
def test_times_in_bulk_are_the_times_one_by_one(seconds, style):
    texts = [render((seconds + step * 1800) * NS_PER_SECOND, style) for step in range(60)]
    assert iso_times_to_ns(texts) == [iso_to_ns(text) for text in texts]


def test_times_in_any_other_shape_are_left_to_the_one_by_one_parser():
    good = "2024-03-31T01:30:00+01:00"
    for bad in ["2024-02-30T00:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00.5Z",
                "2024-01-01", "٢٠٢٤-01-01T00:00:00Z", "", None, 17]:
        assert iso_times_to_ns([good, bad]) is None, bad
    assert iso_times_to_ns([good]) == [iso_to_ns(good)]
    try:  # midnight written as 24:00 is read as the one-by-one parser reads it (this Python's fromisoformat)
        assert iso_times_to_ns(["2024-01-01T24:00:00Z"]) == [iso_to_ns("2024-01-01T24:00:00Z")]
    except ValueError:
        assert iso_times_to_ns(["2024-01-01T24:00:00Z"]) is None


@given(st.integers(-2_000_000_000, 4_000_000_000))
def test_the_london_day_of_any_instant(seconds):
    local = datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone(LONDON)
    midnight = datetime(local.year, local.month, local.day, tzinfo=LONDON)
    expected = int((midnight - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * NS_PER_SECOND
    assert london_day_start(seconds * NS_PER_SECOND) == expected
    assert london_day_start(expected) == expected


def chunk_of(draw_ops, count):
    """API rows from START, then the drawn damage: a half-hour listed twice, a gap, a bad row."""
    rows = api_rows(count)
    for op, where in draw_ops:
        if not rows:
            break
        where %= len(rows)
        if op == "twice":
            rows.insert(where, dict(rows[where], consumption=9.5))
        elif op == "gap":
            del rows[where]
        elif op == "bad":
            rows[where] = dict(rows[where], consumption=None)
        elif op == "late":
            rows[where] = dict(rows[where], interval_start=render(NOW + 2 * 3600 * NS_PER_SECOND, "api"))
        elif op == "int":
            rows[where] = dict(rows[where], consumption=3)
    return rows


@given(ops=st.lists(st.tuples(st.sampled_from(["twice", "gap", "bad", "late", "int"]), st.integers(0, 10**6)),
                    max_size=3),
       count=st.integers(1, 200), style=st.sampled_from(["api", "colon", "compact"]))
def test_a_chunk_parsed_as_columns_is_the_chunk_parsed_row_by_row(ops, count, style):
    rows = chunk_of(ops, count)
    if style != "api":
        rows = [dict(row, interval_start=render(iso_to_ns(row["interval_start"]), style)) for row in rows]
        rows = [dict(row, interval_end=render(iso_to_ns(row["interval_end"]), style)) for row in rows]
    fast_bad, plain_bad = [], []
    assert parse_rows(rows, fast_bad.append, NOW) == rows_one_by_one(rows, plain_bad.append, NOW)
    assert fast_bad == plain_bad


def choose_one_by_one(printed, starts, ends, marks, room, per_row, per_day):
    """The reference: each half-hour in turn, as a person would count the room left."""
    chosen, cursor = [], None
    for index, (start, end, mark) in enumerate(zip(starts, ends, marks, strict=True)):
        if printed.get(start) != mark:
            first = starts[chosen[0]] if chosen else start
            if (len(chosen) + 1) * per_row + ((end - first) // (23 * 3600 * NS_PER_SECOND) + 1) * per_day > room:
                return chosen, cursor, True
            chosen.append(index)
        cursor = start
    return chosen, cursor, False


@given(count=st.integers(1, 300), printed_every=st.integers(1, 7), changed=st.integers(0, 5),
       room=st.integers(0, 900), per_row=st.integers(1, 3), per_day=st.integers(0, 2))
def test_choosing_a_chunk_at_once_is_choosing_it_half_hour_by_half_hour(count, printed_every, changed, room,
                                                                         per_row, per_day):
    starts = [START + i * HALF_HOUR for i in range(count)]
    ends = [start + HALF_HOUR for start in starts]
    marks = [(round(i * 0.1, 1), 20.0, None) for i in range(count)]
    printed = {start: mark for i, (start, mark) in enumerate(zip(starts, marks, strict=True)) if i % printed_every == 0}
    for i in range(0, count, 37)[:changed]:
        printed[starts[i]] = (99.0, 20.0, None, None, None)  # printed before with another value
    assert choose(printed, starts, ends, marks, room, per_row, per_day) == \
        choose_one_by_one(printed, starts, ends, marks, room, per_row, per_day)
