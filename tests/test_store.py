"""The embedded store: one point per series and time, what it cannot split refused, and read back unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from monitor.domain.reading import Reading
from monitor.offline.sources import Source, load_source
from monitor.store.influx import BadBatchError, EmbeddedStore
from monitor.store.lineprotocol import reading_line


def test_embedded_store_is_idempotent_per_series_and_time(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.sqlite")
    lines = [reading_line(Reading("s 1", "cd", i, 0.1, None)) for i in range(10)]
    asyncio.run(store.write(lines))
    asyncio.run(store.write(lines[:5]))
    assert store.count() == 10
    asyncio.run(store.close())


def test_the_embedded_store_refuses_a_line_it_cannot_split_as_a_bad_batch(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.sqlite")
    try:
        with pytest.raises(BadBatchError):
            asyncio.run(store.write(["water_quality,station=a value=1"]))
    finally:
        asyncio.run(store.close())


def test_awkward_readings_come_back_from_the_embedded_store(tmp_path: Path) -> None:
    """Through EmbeddedStore and `--store`, as a backtest or report of a data_dir reads them."""
    written = [
        Reading("Lalang dam,km=0", "cd", 10**18, 0.041, None),
        Reading("a\\b", "cd", 10**18 + 1, 0.5, 'cal "a", then \\n rinse\nwater'),
        Reading("中文站点", "nh3n", 10**18 + 2, 1.25, "value=2,flag=x"),
    ]
    store = EmbeddedStore(tmp_path / "store.sqlite")
    asyncio.run(store.write([reading_line(r) for r in written]))
    asyncio.run(store.close())
    ds = load_source(Source(store=tmp_path))
    assert ds.columns is not None
    c = ds.columns
    flags = [None, *ds.flags]
    back = [
        Reading(ds.stations[s], ds.parameters[p], t, v, flags[f + 1])
        for s, p, t, v, f in zip(
            c.station.tolist(), c.parameter.tolist(), c.ts.tolist(), c.value.tolist(), c.flag.tolist(), strict=True
        )
    ]
    assert back == written
