"""Fault tests: the real service as a subprocess, real mosquitto / VictoriaMetrics / InfluxDB 1.6.7, and
things really broken. Each test publishes a numbered stream and ends by reading the database back: every
accepted reading present exactly once, with its value and timestamp. Figures go to the test log
(`pytest -s -k faults` prints them): sent, stored, lost, duplicated, time to recover."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import InfluxDB1, Mosquitto, Victoria, free_port
from simulators.publish import publish
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00


def stream(station: str, n: int) -> list[tuple[int, str, bytes]]:
    """Readings numbered 0..n-1: one a minute of simulated time, value i µg/L (all under the cadmium limit)."""
    return [
        (
            (T0 + 60 * i) * 10**9,
            f"river/{station}/cd",
            json.dumps({"ts": T0 + 60 * i, "value": i % 5000 / 1000, "unit": "ug/L"}).encode(),
        )
        for i in range(n)
    ]


def expected(n: int) -> list[tuple[int, object]]:
    """(ms, value) of each reading; values compare to 1e-9 (µg/L to mg/L is a float multiplication)."""
    return [((T0 + 60 * i) * 1000, pytest.approx(i % 5000 / 1e6, rel=1e-9, abs=1e-15)) for i in range(n)]


def config(mqtt: Mosquitto, influx: str, client_id: str) -> str:
    return f"""
[mqtt]
url = "{mqtt.url}"
client_id = "{client_id}"

{influx}

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["json://127.0.0.1:{free_port()}/nobody-listens"]
"""


def vm_section(vm: Victoria | str) -> str:
    url = vm.influx_url if isinstance(vm, Victoria) else vm
    return f'[influxdb]\nurl = "{url}"\norg = "bureau"\nbucket = "water"\nflush_interval_s = 0.2\nretry_cap_s = 1'


class Publisher(threading.Thread):
    """Publishes in the background at a steady rate (paced by the readings' timestamps)."""

    def __init__(self, messages: list[tuple[int, str, bytes]], url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.messages, self.url, self.rate = messages, url, rate
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            self.sent = publish(self.messages, self.url, speed=60 * self.rate, window=200, timeout=60)
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout: float = 120) -> int:
        self.join(timeout)
        assert not self.is_alive(), "publisher did not finish"
        if self.error is not None:
            raise self.error
        return self.sent


def report(name: str, **figures: object) -> None:
    print(f"\nFAULT {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)


def vm_check(vm: Victoria, station: str, n: int) -> dict[str, int]:
    points = vm.series_points("water_quality_value", station=station, parameter="cd")
    keys = [ts for ts, _ in points]
    dup = len(keys) - len(set(keys))
    assert dup == 0, f"{dup} duplicated readings"
    assert points == expected(n)
    return {"sent": n, "stored": len(points), "lost": n - len(set(keys)), "duplicated": dup}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    made: list[ServiceProcess] = []
    yield made
    for svc in made:
        svc.stop()


def test_broker_restart_mid_stream(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    svc = ServiceProcess(tmp_path, config(fresh_mosquitto, vm_section(fresh_victoria), "fault-broker"))
    service.append(svc)
    svc.start()
    n = 4000
    pub = Publisher(stream("f-broker", n), fresh_mosquitto.url, rate=1000)
    pub.start()
    svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= 1000, 20, "1000 readings")
    fresh_mosquitto.restart()
    restarted = time.monotonic()
    recover = svc.wait(lambda: svc.metric("riverwatch_mqtt_connects_total") >= 2, 30, "a reconnect")
    accepted_then = svc.metric("riverwatch_readings_accepted_total")
    svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") > accepted_then, 30, "readings after it")
    flowing = time.monotonic() - restarted
    pub.finish()
    svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= n, 60, "every reading stored")
    figures = vm_check(fresh_victoria, "f-broker", n)
    report("broker restart", **figures, reconnect_s=round(recover, 2), flowing_again_s=round(flowing, 2))
    assert svc.terminate()[0] == 0


def test_database_outage_at_steady_rate(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    svc = ServiceProcess(tmp_path, config(fresh_mosquitto, vm_section(fresh_victoria), "fault-db"))
    service.append(svc)
    svc.start()
    n, rate = 24000, 2000
    pub = Publisher(stream("f-db", n), fresh_mosquitto.url, rate=rate)
    pub.start()
    svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 2000, 20, "2000 readings stored")
    rss_before = svc.rss_kib()
    fresh_victoria.stop()
    rss_max, backlog_max = rss_before, 0.0
    try:
        outage_end = time.monotonic() + 6
        while time.monotonic() < outage_end:
            rss_max = max(rss_max, svc.rss_kib())
            backlog_max = max(backlog_max, svc.metric("riverwatch_journal_backlog"))
            time.sleep(0.2)
        assert svc.health()[1]["status"] == "degraded"
    finally:
        fresh_victoria.start()
    written_at_return = svc.metric("riverwatch_readings_written_total")
    backlog_at_return = svc.metric("riverwatch_journal_backlog")
    drained = svc.wait(
        lambda: svc.metric("riverwatch_readings_written_total") >= written_at_return + backlog_at_return,
        60,
        "the backlog drained",
    )
    drain_rate = backlog_at_return / max(drained, 1e-3)
    pub.finish()
    svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= n, 60, "every reading stored")
    figures = vm_check(fresh_victoria, "f-db", n)
    growth_mib = (rss_max - rss_before) / 1024
    report(
        "database outage",
        **figures,
        backlog_peak=int(backlog_max),
        rss_growth_mib=round(growth_mib, 1),
        backlog_drained_s=round(drained, 2),
        drain_rate_per_s=int(drain_rate),
    )
    assert backlog_max >= 8000  # the backlog really was in the journal...
    assert growth_mib < 40  # ...and not in memory (12k readings held in Python would be well over that)
    assert svc.terminate()[0] == 0


def influx_v1_section(db: InfluxDB1, database: str) -> str:
    return (
        f'[influxdb]\napi = "v1"\nurl = "{db.url}"\ndatabase = "{database}"\nusername = "{db.username}"\n'
        f'password_env = "RW_INFLUX_PASSWORD"\nflush_interval_s = 0.2\nretry_cap_s = 1'
    )


def influx_points(db: InfluxDB1, database: str, station: str) -> list[tuple[int, float]]:
    rows = db.points(f'SELECT "value" FROM "water_quality" WHERE "station" = \'{station}\'', db=database)
    return sorted((int(r["time"]) // 10**6, float(r["value"])) for r in rows)


def test_kill_9_mid_stream_then_restart(
    fresh_mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    influxdb1.create_database("kill9")
    svc = ServiceProcess(
        tmp_path,
        config(fresh_mosquitto, influx_v1_section(influxdb1, "kill9"), "fault-kill"),
        env={"RW_INFLUX_PASSWORD": influxdb1.password},
    )
    service.append(svc)
    svc.start()
    n = 8000
    pub = Publisher(stream("f-kill", n), fresh_mosquitto.url, rate=2000)
    pub.start()
    svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= 2500, 20, "2500 readings")
    svc.kill9()
    killed = time.monotonic()
    svc.start()
    recover = time.monotonic() - killed
    pub.finish()

    def stored() -> int:
        return len(influx_points(influxdb1, "kill9", "f-kill"))

    svc.wait(lambda: stored() >= n, 60, "every reading in InfluxDB")
    points = influx_points(influxdb1, "kill9", "f-kill")
    assert points == expected(n)  # each (station, parameter, ts) once, with its value
    counts = influxdb1.points('SELECT count("value") FROM "water_quality" WHERE "station" = \'f-kill\'', db="kill9")
    assert counts[0]["count"] == n
    report(
        "kill -9",
        sent=n,
        stored=len(points),
        lost=n - len(points),
        duplicated=0,
        redeliveries_absorbed=int(svc.metric("riverwatch_readings_duplicate_total")),
        restart_to_connected_s=round(recover, 2),
    )
    assert svc.terminate()[0] == 0


class SlowProxy:
    """A TCP proxy that holds every response from the database for `delay` seconds."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.port, self.upstream, self.delay = free_port(), upstream_port, delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, 0), self._pipe(up_reader, writer, self.delay))

    def __enter__(self) -> SlowProxy:
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._client, "127.0.0.1", self.port), self.loop)
        self.server = fut.result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_slow_database_backpressure(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    vm_port = int(fresh_victoria.url.rsplit(":", 1)[1])
    with SlowProxy(vm_port, delay=1.5) as proxy:
        svc = ServiceProcess(
            tmp_path, config(fresh_mosquitto, vm_section(f"http://127.0.0.1:{proxy.port}"), "fault-slow")
        )
        service.append(svc)
        svc.start()
        n, warm = 24000, 4000
        publish(stream("f-slow", n)[:warm], fresh_mosquitto.url)  # the first batches load what they need
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= warm, 30, "the warm-up readings")
        rss_before = svc.rss_kib()
        pub = Publisher(stream("f-slow", n)[warm:], fresh_mosquitto.url, rate=4000)
        pub.start()
        rss_max = rss_before
        while pub.is_alive():
            rss_max = max(rss_max, svc.rss_kib())
            time.sleep(0.2)
        pub.finish()
        took = svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= n, 90, "every reading stored")
        figures = vm_check(fresh_victoria, "f-slow", n)
        growth_mib = (rss_max - rss_before) / 1024
        report(
            "slow database (1.5 s per response)",
            **figures,
            rss_growth_mib=round(growth_mib, 1),
            catch_up_s=round(took, 2),
        )
        # Bound: the broker's in-flight window (1000 messages) + one store batch (5000 readings) + the journal's
        # page cache; a queue of the 20k readings in Python objects would add far more than this.
        assert growth_mib < 40
        assert svc.terminate()[0] == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small filesystem of the test's own for data_dir (the suite runs as root, as CI does)."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_data_dir_full(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    with tmpfs(tmp_path / "data", "400k") as data:
        svc = ServiceProcess(tmp_path, config(fresh_mosquitto, vm_section(fresh_victoria), "fault-full"))
        service.append(svc)
        svc.start()
        n = 6000
        pub = Publisher(stream("f-full", n), fresh_mosquitto.url, rate=3000)
        pub.start()
        svc.wait(lambda: svc.health()[0] == 503, 30, "/healthz to report unhealthy")
        body = svc.health()[1]
        assert body["status"] == "unhealthy" and "no space left" in json.dumps(body["checks"])
        assert "database or disk is full" in svc.output()
        accepted_while_full = svc.metric("riverwatch_readings_accepted_total")
        time.sleep(2)
        # Nothing is accepted (so nothing acknowledged) while the journal cannot commit.
        assert svc.metric("riverwatch_readings_accepted_total") == accepted_while_full
        subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
        fixed = time.monotonic()
        pub.finish()
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= n, 60, "every reading stored")
        recover = time.monotonic() - fixed
        figures = vm_check(fresh_victoria, "f-full", n)
        report("data_dir full", **figures, accepted_before_full=int(accepted_while_full), recover_s=round(recover, 2))
        svc.wait(lambda: svc.health()[0] == 200, 20, "/healthz healthy again")
        assert svc.terminate()[0] == 0


def test_data_dir_read_only(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    with tmpfs(tmp_path / "data", "64m") as data:
        svc = ServiceProcess(tmp_path, config(fresh_mosquitto, vm_section(fresh_victoria), "fault-ro"))
        service.append(svc)
        n, first = 3000, 1000
        svc.start()
        publish(stream("f-ro", n)[:first], fresh_mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= first, 20, "the first readings")
        assert svc.terminate()[0] == 0
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        publish(stream("f-ro", n)[first:], fresh_mosquitto.url)  # waits at the broker for the service
        svc.start(wait_connected=False)
        svc.wait(lambda: svc.get("/healthz")[0] == 503, 30, "/healthz to report unhealthy")
        assert "read-only" in json.dumps(svc.health()[1]["checks"]) or "readonly" in svc.output()
        assert "cannot use data_dir" in svc.output()
        time.sleep(1)
        assert svc.metric("riverwatch_mqtt_connects_total") == 0  # consumes nothing it could not journal
        subprocess.run(["mount", "-o", "remount,rw", str(data)], check=True)
        fixed = time.monotonic()
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= n - first, 60, "the backlog stored")
        figures = vm_check(fresh_victoria, "f-ro", n)
        report("data_dir read-only", **figures, recover_s=round(time.monotonic() - fixed, 2))
        assert svc.terminate()[0] == 0


def test_sigterm_under_load_drains_and_loses_nothing(
    fresh_mosquitto: Mosquitto, fresh_victoria: Victoria, tmp_path: Path, service: list[ServiceProcess]
) -> None:
    svc = ServiceProcess(tmp_path, config(fresh_mosquitto, vm_section(fresh_victoria), "fault-term"))
    service.append(svc)
    svc.start()
    n = 20000
    pub = Publisher(stream("f-term", n), fresh_mosquitto.url, rate=10000)
    pub.start()
    svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= 3000, 20, "3000 readings")
    code, took = svc.terminate()
    assert code == 0, svc.output()[-3000:]
    assert took < 10
    assert "ingest stopped" in svc.output()
    pub.finish()  # the rest waits at the broker, in the persistent session
    svc.start()
    svc.wait(
        lambda: len(fresh_victoria.series_points("water_quality_value", station="f-term")) >= n,
        60,
        "every reading stored after the restart",
    )
    figures = vm_check(fresh_victoria, "f-term", n)
    report("SIGTERM under load", **figures, exit_s=round(took, 2))
    assert svc.terminate()[0] == 0
