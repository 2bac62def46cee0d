"""The store against real databases: InfluxDB 1.6.7 (a strict line-protocol parser, auth on) proves escaping
and 4xx handling; VictoriaMetrics (InfluxDB v2 write API) proves an outage loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.servers import InfluxDB1, Victoria
from monitor.domain.reading import Reading
from monitor.journal import Journal
from monitor.metrics import Metrics
from monitor.store.influx import BadBatchError, Drain, InfluxV1Writer, InfluxV2Writer, RetryableError
from monitor.store.lineprotocol import reading_line

T2012 = 1326585600 * 10**9
NASTY = [
    "Lalang dam",
    "km,12",
    "a=b",
    'quote"d',
    "back\\slash",
    "a\\ b",
    "a\\,b",
    "中文站点",
    "x y,station=evil z=1",
]  # control characters never get this far: the decoder refuses them


def run_drain(journal: Journal, writer: object, until: object, timeout: float = 20.0) -> Metrics:
    """Run the store's journal consumer until `until(metrics)` holds, then stop it."""
    metrics = Metrics()

    async def go() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            Drain(
                journal,
                writer,
                metrics,
                wake,
                batch_size=100,  # type: ignore[arg-type]
                flush_interval_s=0.05,
                retry_cap_s=0.5,
            ).run(stop)
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(metrics):  # type: ignore[operator]
            assert asyncio.get_running_loop().time() < deadline, "drain did not get there in time"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
        await writer.close()  # type: ignore[attr-defined]

    asyncio.run(go())
    return metrics


def written(m: Metrics) -> int:
    return int(m.registry.get_sample_value("riverwatch_readings_written_total") or 0)


def test_station_ids_cannot_break_or_inject_line_protocol(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("escaping")
    writer = InfluxV1Writer(influxdb1.url, "escaping", username=influxdb1.username, password=influxdb1.password)
    readings = [Reading(s, "cd", T2012 + i * 10**9, 0.001 * (i + 1), None) for i, s in enumerate(NASTY)]

    async def go() -> None:
        await writer.write([reading_line(r) for r in readings])
        await writer.close()

    asyncio.run(go())
    rows = influxdb1.points('SELECT "value", "station" FROM "water_quality"', db="escaping")
    assert sorted(row["station"] for row in rows) == sorted(NASTY)  # exactly these series, nothing injected
    assert len(rows) == len(NASTY)
    series = influxdb1.query('SHOW SERIES FROM "water_quality"', db="escaping")["results"][0]["series"][0]["values"]
    assert len(series) == len(NASTY)


def test_flags_with_quotes_and_backslashes_come_back_as_sent(influxdb1: InfluxDB1) -> None:
    """A string field ends at its closing quote also after an escaped backslash (`flag="\\\\"`): the flag is
    read back as sent and the line is one point (tests/test_fuzz.py's reference parser follows this)."""
    influxdb1.create_database("flags")
    writer = InfluxV1Writer(influxdb1.url, "flags", username=influxdb1.username, password=influxdb1.password)
    flags = ["\\", 'a"b', "\\\\", 'end\\"', "x y,z=1"]
    readings = [Reading("lalang", "cd", T2012 + i * 10**9, 0.001, f) for i, f in enumerate(flags)]

    async def go() -> None:
        await writer.write([reading_line(r) for r in readings])
        await writer.close()

    asyncio.run(go())
    rows = influxdb1.points('SELECT "flag" FROM "water_quality"', db="flags")
    assert [row["flag"] for row in rows] == flags


def test_wrong_password_is_retried_not_thrown_away(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("auth")
    writer = InfluxV1Writer(influxdb1.url, "auth", username=influxdb1.username, password="wrong")

    async def go() -> None:
        with pytest.raises(RetryableError, match="401"):
            await writer.write([reading_line(Reading("s", "cd", T2012, 0.1, None))])
        await writer.close()

    asyncio.run(go())


def test_a_refused_reading_is_set_aside_and_the_rest_of_its_batch_is_written(
    influxdb1: InfluxDB1, tmp_path: Path
) -> None:
    influxdb1.create_database("conflict")
    # In InfluxDB 1.x a field's type is fixed per measurement and shard: make `value` a string in 2011's shard.
    status, _ = influxdb1.write("conflict", 'water_quality,parameter=cd,station=old value="text" 1293840000000000000')
    assert status == 204
    journal = Journal(tmp_path / "journal.sqlite")
    good = [Reading("s1", "cd", T2012 + i * 10**9, 0.001 * i, None) for i in range(9)]
    bad = Reading("s1", "cd", 1293840000 * 10**9 + 5, 0.5, None)  # 2011: refused with a field type conflict
    journal.append([*good[:4], bad, *good[4:]])
    writer = InfluxV1Writer(influxdb1.url, "conflict", username=influxdb1.username, password=influxdb1.password)

    async def direct() -> None:
        with pytest.raises(BadBatchError, match="400"):
            await writer.write([reading_line(bad)])
        await writer.close()

    asyncio.run(direct())
    writer = InfluxV1Writer(influxdb1.url, "conflict", username=influxdb1.username, password=influxdb1.password)
    metrics = run_drain(journal, writer, lambda m: journal.backlog("store") == 0)
    assert written(metrics) == 9
    assert journal.set_aside_count() == 1
    rows = influxdb1.points('SELECT "value" FROM "water_quality" WHERE "station" = \'s1\'', db="conflict")
    assert len(rows) == 9


def test_database_outage_loses_nothing_and_drains_in_order(victoria: Victoria, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    station = "outage"
    readings = [Reading(station, "cd", T2012 + i * 60 * 10**9, 0.0001 * i, None) for i in range(500)]
    journal.append(readings[:200])
    victoria.stop()
    try:
        writer = InfluxV2Writer(victoria.influx_url, "bureau", "water", "token", timeout_s=2)
        metrics = run_drain(
            journal, writer, lambda m: (m.registry.get_sample_value("riverwatch_store_retries_total") or 0) >= 2
        )
        assert written(metrics) == 0
        assert journal.backlog("store") == 200  # held, not dropped
    finally:
        victoria.start()
    journal.append(readings[200:])
    writer = InfluxV2Writer(victoria.influx_url, "bureau", "water", "token", timeout_s=5)
    metrics = run_drain(journal, writer, lambda m: journal.backlog("store") == 0)
    assert written(metrics) == 500
    points = victoria.series_points("water_quality_value", station=station, parameter="cd")
    assert points == [(r.ts_ns // 10**6, pytest.approx(r.value)) for r in readings]
