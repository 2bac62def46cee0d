"""Line protocol and the embedded store: the schema of interface.md, escaped so ids cannot inject points."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.domain.reading import Reading
from monitor.store.influx import EmbeddedStore, escape_tag, reading_line


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


def test_embedded_store_is_idempotent_per_series_and_time(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.sqlite")
    lines = [reading_line(Reading("s 1", "cd", i, 0.1, None)) for i in range(10)]
    asyncio.run(store.write(lines))
    asyncio.run(store.write(lines[:5]))
    assert store.count() == 10
    asyncio.run(store.close())
