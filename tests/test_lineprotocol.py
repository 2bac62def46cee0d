"""Line protocol both ways: what the store writes, the embedded store and the backtest read back unchanged.

The read path is the real one: `split_line` (EmbeddedStore keeps the series key and the fields of each
line), then `series_tags` and `reading_fields` (what `riverwatch backtest --store` and `report` read);
tests/test_store.py runs it through the embedded store itself.
Station ids and parameters are what the decoder lets through to the store (monitor.ingest.decode):
printable, no backslash before a space, comma, `=` or another backslash, and none at the end.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monitor.domain.reading import Reading
from monitor.store.lineprotocol import (
    MEASUREMENT,
    LineProtocolError,
    escape_tag,
    reading_fields,
    reading_line,
    series_tags,
    split_line,
)

_AMBIGUOUS_BACKSLASH = re.compile(r"\\[\\ ,=]")
# Characters that need escaping or quoting, and a few others, so that most examples contain some.
_AWKWARD = st.sampled_from([" ", ",", "=", "\\", '"', "'", "#", "中", "é", "-", "_", "."])


def _writable_tag(s: str) -> bool:
    return s.isprintable() and not s.endswith("\\") and not _AMBIGUOUS_BACKSLASH.search(s)


tag_values = st.lists(st.one_of(_AWKWARD, st.characters(codec="utf-8")), min_size=1, max_size=24).map("".join)
tag_values = tag_values.filter(_writable_tag)
flags = st.none() | st.lists(
    st.one_of(_AWKWARD, st.sampled_from(["\n", "\\n", '\\"', "\t"]), st.characters(codec="utf-8")),
    min_size=1,
    max_size=16,
).map("".join)
readings = st.builds(
    Reading,
    station=tag_values,
    parameter=tag_values,
    ts_ns=st.integers(-(2**63), 2**63 - 1),
    value=st.floats(allow_nan=False, allow_infinity=False),
    flag=flags,
)


def _read_back(line: str) -> Reading:
    key, fields, ts = split_line(line)
    assert key.startswith(MEASUREMENT + ",")
    tags = series_tags(key)
    value, flag = reading_fields(fields)
    return Reading(tags["station"], tags["parameter"], int(ts), value, flag)


@given(readings)
@example(Reading("Lalang dam,km=0", "cd", 1326585600 * 10**9, 0.041, None))
@example(Reading("a\\b", 'quote"d', 0, -0.0, 'cal "a", then \\n rinse\nwater'))
@example(Reading("x y,station=evil z=1", "cd", 5, 1e-300, "value=2"))
def test_a_written_reading_reads_back_unchanged(r: Reading) -> None:
    line = reading_line(r)
    assert "\n" not in line  # one point, one line
    back = _read_back(line)
    assert back == r, line
    assert str(back.value) == str(r.value)  # the same float, bit for bit (-0.0 stays -0.0)


def test_reading_line_schema() -> None:
    line = reading_line(Reading("lalang", "cd", 1326585600 * 10**9, 0.041, None))
    assert line == "water_quality,parameter=cd,station=lalang value=0.041 1326585600000000000"


def test_flag_is_a_string_field() -> None:
    line = reading_line(Reading("s1", "cd", 1, 0.1, 'cal "a"'))
    assert line == 'water_quality,parameter=cd,station=s1 value=0.1,flag="cal \\"a\\"" 1'


def test_tag_escaping() -> None:
    assert escape_tag("Lalang dam,km=0") == "Lalang\\ dam\\,km\\=0"
    assert escape_tag("a\\b") == "a\\b"  # InfluxDB reads backslashes literally
    line = reading_line(Reading("x y,station=evil z=1", "cd", 5, 1.0, None))
    assert line.count(" ") - line.count("\\ ") == 2  # still exactly: series, fields, timestamp


@pytest.mark.parametrize("line", ["water_quality,station=a value=1", "water_quality value=1 2 3", ""])
def test_a_line_that_is_not_one_point_is_refused(line: str) -> None:
    with pytest.raises(LineProtocolError):
        split_line(line)
