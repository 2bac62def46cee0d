"""Readings the database refused come back: a proxy's burst of 400s costs no reading (re-sent automatically,
or by `riverwatch store redrive`), a lone bad point is set aside alone, /healthz says how many wait, and
nothing is stored twice. Real VictoriaMetrics and InfluxDB 1.6.7 behind a real HTTP proxy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.servers import InfluxDB1, Victoria
from monitor.domain.reading import Reading
from monitor.journal import Journal
from monitor.metrics import Metrics
from monitor.store.influx import Drain, InfluxV1Writer, InfluxV2Writer, Writer
from monitor.store.lineprotocol import screening_line
from tests.slow_http import RefusingProxy

T2012 = 1326585600 * 10**9
ROOT = Path(__file__).resolve().parent.parent


def series(station: str, n: int, start: int = 0) -> list[Reading]:
    return [Reading(station, "cd", T2012 + (start + i) * 60 * 10**9, 0.0001 * (start + i), None) for i in range(n)]


def counter(m: Metrics, name: str) -> float:
    return m.registry.get_sample_value(name) or 0.0


def drain_until(
    journal: Journal,
    writer: Writer,
    until: Callable[[Metrics], bool],
    *,
    during: Callable[[Metrics], None] = lambda m: None,
    retries: int = 8,
    timeout: float = 60.0,
    metrics: Metrics | None = None,
) -> Metrics:
    """Run the store's drain until `until(metrics)`; `during` is called every 50 ms meanwhile."""
    m = metrics or Metrics()

    async def go() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        drain = Drain(
            journal,
            writer,
            m,
            wake,
            batch_size=500,
            flush_interval_s=0.05,
            retry_cap_s=0.5,
            bad_request_retries=retries,
        )
        task = asyncio.create_task(drain.run(stop))
        deadline = time.monotonic() + timeout
        while not until(m):
            assert time.monotonic() < deadline, f"drain did not get there in time: {m.health.report()}"
            during(m)
            wake.set()
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
        await writer.close()

    asyncio.run(go())
    return m


def stored(victoria: Victoria, station: str) -> list[tuple[int, float]]:
    return victoria.series_points("water_quality_value", station=station, parameter="cd")


def test_a_burst_of_400s_from_a_proxy_loses_no_reading_and_stores_none_twice(
    victoria: Victoria, tmp_path: Path
) -> None:
    station = "proxy-burst"
    journal = Journal(tmp_path / "journal.sqlite")
    readings = series(station, 6000)
    with RefusingProxy(victoria.influx_url) as proxy:
        writer = InfluxV2Writer(proxy.url, "bureau", "water", "token", timeout_s=5)
        journal.append(readings[:500])  # the database has taken this shape before the fault
        drain_until(journal, writer, lambda m: journal.backlog("store") == 0)

        proxy.refusing = True
        fed = iter(range(500, 6000, 500))
        seen: dict[str, object] = {}

        def during(m: Metrics) -> None:
            start = next(fed, None)
            if start is not None:
                journal.append(readings[start : start + 500])
            report = m.health.report()
            if report["status"] == "degraded":
                seen.setdefault("health", report)
            seen["peak"] = max(int(seen.get("peak", 0)), int(counter(m, "riverwatch_set_aside_pending")))  # type: ignore[call-overload]
            if journal.backlog("store") == 0 and proxy.refusing and int(seen["peak"]) >= 5500:  # type: ignore[call-overload]
                threading.Timer(1.0, setattr, (proxy, "refusing", False)).start()  # the proxy heals

        writer = InfluxV2Writer(proxy.url, "bureau", "water", "token", timeout_s=5)
        m = drain_until(
            journal,
            writer,
            lambda m: not proxy.refusing and journal.backlog("store") == 0 and journal.set_aside_count() == 0,
            during=during,
        )
        refused = proxy.refused
    points = stored(victoria, station)
    assert points == [(r.ts_ns // 10**6, pytest.approx(r.value)) for r in readings]  # every reading, each once
    assert int(seen["peak"]) == 5500  # type: ignore[call-overload]
    health = seen["health"]
    assert isinstance(health, dict)
    detail = health["checks"]["set_aside"]["detail"]
    assert detail.startswith(("5", "4", "3", "2", "1")) and "points set aside" in detail, detail
    assert m.health.report()["status"] == "ok"  # nothing waits any more
    assert counter(m, "riverwatch_set_aside_resent_total") == 5500
    print(f"\nproxy burst: 6000 sent, {len(points)} stored, 5500 set aside and re-sent, {refused} requests refused")


def test_redrive_sends_what_the_store_gave_up_on_exactly_once(victoria: Victoria, tmp_path: Path) -> None:
    station = "proxy-redrive"
    data = tmp_path / "data"
    journal = Journal(data / "journal.sqlite")
    readings = series(station, 1200)
    with RefusingProxy(victoria.influx_url) as proxy:
        proxy.refusing = True  # from the very first write: no shape known, nothing re-sent automatically
        journal.append(readings)
        writer = InfluxV2Writer(proxy.url, "bureau", "water", "token", timeout_s=5)
        m = drain_until(journal, writer, lambda m: journal.backlog("store") == 0 and journal.set_aside_count() == 1200)
        assert m.health.report()["status"] == "degraded"
        assert proxy.forwarded == 0  # nothing reached the database
        proxy.refusing = False
        config = tmp_path / "riverwatch.toml"
        config.write_text(
            f'[influxdb]\nurl = "{proxy.url}"\norg = "bureau"\nbucket = "water"\ntoken = "t"\n'
            f'[service]\ndata_dir = "{data}"\n'
        )

        def redrive() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "monitor.cli", "store", "redrive", "--config", str(config)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

        first = redrive()
        assert first.returncode == 0, first.stderr
        assert "1200 set-aside points written" in first.stdout
        second = redrive()  # nothing left: nothing sent again
        assert second.returncode == 0, second.stderr
        assert "0 set-aside points written" in second.stdout
    assert journal.set_aside_count() == 0
    assert stored(victoria, station) == [(r.ts_ns // 10**6, pytest.approx(r.value)) for r in readings]


def test_redrive_while_the_proxy_still_refuses_keeps_everything_set_aside(victoria: Victoria, tmp_path: Path) -> None:
    data = tmp_path / "data"
    journal = Journal(data / "journal.sqlite")
    journal.set_aside([(r, "HTTP 400: proxy") for r in series("proxy-still", 50)])
    with RefusingProxy(victoria.influx_url) as proxy:
        proxy.refusing = True
        config = tmp_path / "riverwatch.toml"
        config.write_text(
            f'[influxdb]\nurl = "{proxy.url}"\norg = "o"\nbucket = "b"\ntoken = "t"\n[service]\ndata_dir = "{data}"\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "store", "redrive", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proxy.refused == 3  # the batch, then two lines alone: no bisection of a database refusing all
    assert done.returncode == 1
    assert "50 refused again" in done.stdout
    assert journal.set_aside_count() == 50
    assert proxy.forwarded == 0


def test_a_lone_bad_point_is_set_aside_alone_after_its_retries(influxdb1: InfluxDB1, tmp_path: Path) -> None:
    """InfluxDB 1.x refuses a field type conflict for good: the good readings around it are written at once,
    the bad one is tried its few times and then waits for a redrive."""
    influxdb1.create_database("lone")
    status, _ = influxdb1.write("lone", 'water_quality,parameter=cd,station=old value="text" 1293840000000000000')
    assert status == 204
    journal = Journal(tmp_path / "journal.sqlite")
    bad = Reading("s1", "cd", 1293840000 * 10**9 + 5, 0.5, None)  # 2011's shard: value is a string there
    warm = series("s1", 10)
    good = series("s1", 40, start=10)
    journal.append(warm)

    def writer() -> InfluxV1Writer:
        return InfluxV1Writer(influxdb1.url, "lone", username=influxdb1.username, password=influxdb1.password)

    drain_until(journal, writer(), lambda m: journal.backlog("store") == 0)
    journal.append([bad, *good])  # the bad point first: the probe must not take the batch down with it
    m = drain_until(
        journal,
        writer(),
        lambda m: journal.backlog("store") == 0 and journal.set_aside_state()[1] == 0,
        retries=2,
    )
    rows = influxdb1.points('SELECT "value" FROM "water_quality" WHERE "station" = \'s1\'', db="lone")
    assert len(rows) == 50
    n, auto, _, error = journal.set_aside_state()
    assert (n, auto) == (1, 0)
    assert "field type conflict" in error
    assert counter(m, "riverwatch_readings_set_aside_total") == 1
    detail = m.health.report()["checks"]["set_aside"]  # type: ignore[index]
    assert detail["status"] == "degraded" and detail["detail"].startswith("1 points set aside")


def test_screened_readings_are_stored_with_their_reason_even_after_a_kill(influxdb1: InfluxDB1, tmp_path: Path) -> None:
    """Screening points ride in the journal (committed before the rules move on), so a kill -9 right after
    loses none; the store writes them as the `screening` measurement with the reason as a tag."""
    influxdb1.create_database("screened")
    path = tmp_path / "journal.sqlite"
    suspects = [
        ("Lalang dam", "cd", T2012, 9999.0, "outside the instrument range"),
        ("Lalang dam", "cd", T2012 + 60 * 10**9, 0.2, "spike"),
        ("s,2", "do", T2012, 0.1, "suspect (flag)"),
    ]
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from monitor.journal import Journal\n"
        "from monitor.store.lineprotocol import screening_line\n"
        f"j = Journal(Path({str(path)!r}))\n"
        f"j.append_alert_lines([screening_line(*s) for s in {suspects!r}])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9
    journal = Journal(path)
    writer = InfluxV1Writer(influxdb1.url, "screened", username=influxdb1.username, password=influxdb1.password)
    drain_until(journal, writer, lambda m: not journal.alert_lines(1))
    rows = influxdb1.points('SELECT "value", "reason", "station", "parameter" FROM "screening"', db="screened")
    got = sorted((r["station"], r["parameter"], r["reason"], r["value"]) for r in rows)
    assert got == sorted((s, p, reason, v) for s, p, _, v, reason in suspects)
    assert screening_line(*suspects[0]).startswith("screening,parameter=cd,reason=outside\\ the\\ instrument\\ range,")


def test_two_processes_never_claim_the_same_set_aside_row(tmp_path: Path) -> None:
    one = Journal(tmp_path / "journal.sqlite")
    two = Journal(tmp_path / "journal.sqlite")
    one.set_aside([(r, "HTTP 400") for r in series("claims", 10)])
    a = one.claim_set_aside("1:a", 6)
    b = two.claim_set_aside("2:b", 100)
    assert len(a) == 6 and len(b) == 4
    assert not {r.id for r in a} & {r.id for r in b}
    assert two.claim_set_aside("3:c", 100) == []
    again = two.claim_set_aside("3:c", 100, stale=["1:a"])  # the first claimer died
    assert sorted(r.id for r in again) == sorted(r.id for r in a)
