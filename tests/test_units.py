"""In-process checks of the pieces: time parsing, line protocol escaping, state, the demo account."""

import os
import stat
import sys

import line_protocol_parser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from octopus_telegraf.base import lineprotocol, log
from octopus_telegraf.base.timeutil import iso_to_ns, ns_to_utc_z, parse_date_or_datetime
from octopus_telegraf.core.progress import MeterProgress
from octopus_telegraf.core.state import State

from fake_octopus import render

SECOND = 10**9


@given(st.integers(min_value=946_684_800, max_value=2_208_988_800), st.sampled_from(["api", "colon", "compact"]))
def test_any_london_time_parses_to_the_exact_instant(seconds, style):
    assert iso_to_ns(render(seconds * SECOND, style)) == seconds * SECOND


def test_times_without_offset_are_london():
    assert iso_to_ns("2024-07-01T00:00:00") == iso_to_ns("2024-06-30T23:00:00Z")
    assert parse_date_or_datetime("2024-01-15") == iso_to_ns("2024-01-15T00:00:00Z")
    assert parse_date_or_datetime("2024-06-15") == iso_to_ns("2024-06-14T23:00:00Z")


def test_query_times_are_utc_z():
    assert ns_to_utc_z(iso_to_ns("2024-05-07T00:30:00+01:00")) == "2024-05-06T23:30:00Z"


printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30)
printable = printable.filter(lambda text: text.isprintable() and "\\" not in text)


@given(printable, printable, st.floats(allow_nan=False, allow_infinity=False))
def test_any_tag_value_is_escaped_into_one_parseable_line(serial, point, value):
    prefix = lineprotocol.tag_prefix("octopus_consumption", {"serial": serial, "meter_point": point})
    text = lineprotocol.line(prefix, {"kwh": value}, 1_700_000_000 * SECOND)
    assert "\n" not in text
    parsed = line_protocol_parser.parse_line(text)
    assert parsed["tags"] == {"serial": serial, "meter_point": point}
    # subnormals (which no meter reads) print as 0.0: line-protocol-parser refuses them
    # rounded to 10 significant digits, no more than a meter carries
    assert parsed["fields"]["kwh"] == pytest.approx(value if abs(value) >= sys.float_info.min else 0.0, rel=1e-9)
    assert parsed["time"] == 1_700_000_000 * SECOND


@pytest.mark.parametrize("bad", ["", "a\nb", "tab\there", "\x00", "back\\slash", "trailing\\"])
def test_unprintable_or_empty_tag_values_are_refused(bad):
    with pytest.raises(lineprotocol.LineProtocolError):
        lineprotocol.tag_prefix("m", {"serial": bad})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused(bad):
    with pytest.raises(lineprotocol.LineProtocolError):
        lineprotocol.format_value(bad)


def test_field_types_are_kept():
    assert lineprotocol.format_value(0.0) == "0.0"
    assert lineprotocol.format_value(3) == "3i"
    assert lineprotocol.format_value(True) == "true"


def test_state_round_trip_is_atomic_and_private(tmp_path):
    state = State(str(tmp_path / "s"))
    marks = {5: (0.25, 7.0, 27.5, False, None), 6: (0.5, 27.0, None, True, 210), 7: (0.5, 9.0, None, None, 95)}
    state.meters["k"] = MeterProgress(1, 2, 3, marks)
    state.save()
    path = tmp_path / "s" / "state.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = State(str(tmp_path / "s"))
    again.load()
    assert again.meters == state.meters


@pytest.mark.parametrize("text", ["", "[]", '{"version": 1, "meters": {"k": {"start": "x"}}}', '{"version": 9}',
                                  "\x00\x01garbage"])
def test_a_corrupt_state_file_loads_as_empty(tmp_path, text, capfd):
    (tmp_path / "state.json").write_text(text)
    state = State(str(tmp_path))
    state.load()
    assert state.meters == {}
    log.drain()
    assert capfd.readouterr().err.startswith("W! ")


def test_demo_account_is_deterministic_and_spans_the_clock_change():
    from octopus_telegraf.demo.household import DEMO_METERS, demo_value
    from octopus_telegraf.demo.tariffs import DEMO_END_NS, DEMO_START_NS

    starts = range(DEMO_START_NS, DEMO_END_NS, 1800 * SECOND)
    assert len(starts) == 28 * 48 + 2  # 26 October 2025 has 50 half-hours
    for meter in DEMO_METERS:
        values = [demo_value(meter, s) for s in starts]
        assert values == [demo_value(meter, s) for s in starts]
        assert min(values) >= 0 and max(values) > 0


def test_a_huge_budget_is_printed_and_saved_page_by_page(tmp_path):
    """OCTO_MAX_POINTS far above a page: lines leave at page boundaries, progress saved with them."""
    import threading

    from octopus_telegraf.config.settings import load
    from octopus_telegraf.core.reading import Batch
    from octopus_telegraf.service.collector import Collector

    start = 1_577_836_800 * SECOND  # 2020-01-01T00:00Z: three pages end in 2023, before today
    pages = []
    for page in range(3):
        rows = []
        for i in range(page * Batch.FLUSH_LINES, (page + 1) * Batch.FLUSH_LINES):
            s = start + i * 1800 * SECOND
            rows.append({"consumption": 0.25, "interval_start": render(s, "api"),
                         "interval_end": render(s + 1800 * SECOND, "api")})
        pages.append(rows)

    class PagesClient:
        requests_made = errors_seen = 0
        stop = threading.Event()

        def consumption_rows(self, meter, period_from, page_size):
            yield from pages  # chunks of rows as the page stream gives them

    settings = load({"OCTO_API_KEY": "k", "OCTO_ELECTRIC_MPAN": "1200000000001", "OCTO_ELECTRIC_SN": "S",
                     "OCTO_BACKFILL_FROM": "2020-01-01", "OCTO_MAX_POINTS": "1000000"})
    state = State(str(tmp_path))
    batches, saved_cursors, days = [], [], []

    def output(lines):
        batches.append(len(lines) - sum(line.startswith("octopus_daily,") for line in lines))
        days.append(sum(line.startswith("octopus_daily,") for line in lines))
        saved = State(str(tmp_path))
        saved.load()  # what a SIGKILL now would leave: the progress of the batches before this one
        saved_cursors.append(next(iter(saved.meters.values())).cursor_ns if saved.meters else None)

    Collector(settings, PagesClient(), state, output).gather()
    # chunk by chunk, each chunk's last row held until the next (a duplicate may straddle the edge),
    # then the last row, and the collector point as the gather's last line
    lines_per_chunk = Batch.FLUSH_LINES
    assert batches == [lines_per_chunk - 1, lines_per_chunk, lines_per_chunk, 1, 1]
    assert sum(days) == 3 * Batch.FLUSH_LINES // 48  # every complete London day once, chunks or not
    step = Batch.FLUSH_LINES * 1800 * SECOND
    last = start + (3 * Batch.FLUSH_LINES - 1) * 1800 * SECOND
    assert saved_cursors == [None, start + step - 2 * 1800 * SECOND, start + 2 * step - 2 * 1800 * SECOND,
                             start + 3 * step - 2 * 1800 * SECOND, last]  # the collector point: all saved
    again = State(str(tmp_path))
    again.load()
    (progress,) = again.meters.values()
    assert progress.cursor_ns == start + (3 * Batch.FLUSH_LINES - 1) * 1800 * SECOND
    assert len(progress.printed) == 72 * 2 + 1  # the look-back window only


@pytest.mark.parametrize("value,text", [(0.0034920000000000003, "0.003492"), (0.14586823333333332, "0.1458682333"),
                                        (0.25053000000000003, "0.25053"), (1.5, "1.5"), (-4.5, "-4.5"),
                                        (123456.789, "123456.789"), (1e-05, "1e-05")])
def test_floats_carry_no_binary_noise(value, text):
    assert lineprotocol.float_text(value) == text
