"""HJ 212 through the whole service: `riverwatch run` as a subprocess with [hj212] on, real mosquitto,
VictoriaMetrics and an HTTP receiver, and data loggers as real TCP clients that behave as loggers do (the
next upload after the 9014 of this one; re-send after a timeout or a reconnect)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import InfluxDB1, Mosquitto, Victoria, free_port
from monitor.domain.hj212 import Frame, FrameReader, frame, packet_segment, parse_segment
from monitor.thresholds import shipped_path
from tests.service_proc import ServiceProcess

PW = "logger-pw-1"
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=CST)


def mn_of(i: int) -> str:
    return f"4403000000{i:04d}"


def station_file(path: Path, n: int) -> Path:
    body = "".join(
        f"""
[stations.hj-{i}]
name = "HJ 212 station {i}"
river = "Testjiang"
river_km = {10.0 * i}
class = "III"
standard = "GB 3838-2002"
mn = "{mn_of(i)}"
pw_env = "HJ212_PW"
"""
        for i in range(n)
    )
    path.write_text(body, encoding="utf-8")
    return path


def victoria_section(victoria: Victoria) -> str:
    return f"""
[influxdb]
url = "{victoria.influx_url}"
org = "bureau"
bucket = "water"
flush_interval_s = 0.2
retry_cap_s = 1
"""


def influx_v1_section(db: InfluxDB1, database: str) -> str:
    return f"""
[influxdb]
api = "v1"
url = "{db.url}"
database = "{database}"
username = "{db.username}"
password_env = "RW_INFLUX_PASSWORD"
flush_interval_s = 0.2
retry_cap_s = 1
"""


def config(mosquitto: Mosquitto, store: str, receiver: HttpReceiver, stations: Path, port: int) -> str:
    return f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "rw-hj212-{port}"
{store}

[thresholds]
files = ["{shipped_path()}", "{stations}"]

[notify]
urls = ["{receiver.json_url()}"]

[hj212]
enabled = true
port = {port}
"""


def upload(i: int, k: int, cd_ug_l: float) -> bytes:
    when = (T0 + timedelta(minutes=10 * k)).strftime("%Y%m%d%H%M%S")
    cp = f"DataTime={when};w20115-Rtd={cd_ug_l:.3f},w20115-Flag=N"
    return frame(packet_segment(qn=f"{when}{i:03d}", st="21", cn="2011", pw=PW, mn=mn_of(i), cp=cp))


def ms(k: int) -> int:
    return int((T0 + timedelta(minutes=10 * k)).timestamp()) * 1000


class Logger(threading.Thread):
    """A data logger: uploads in order, each re-sent until its 9014 comes (reconnecting whatever happens)."""

    def __init__(self, i: int, port: int, uploads: list[bytes], deadline: float) -> None:
        super().__init__(daemon=True)
        self.i, self.port, self.uploads, self.deadline = i, port, uploads, deadline
        self.acked: list[int] = []  # indexes of the uploads that got their 9014
        self.sends = 0
        self.error: str | None = None

    def run(self) -> None:
        k = 0
        sock: socket.socket | None = None
        reader = FrameReader()
        while k < len(self.uploads) and time.monotonic() < self.deadline:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                    reader = FrameReader()
                sock.sendall(self.uploads[k])
                self.sends += 1
                if self._acked(sock, reader):
                    self.acked.append(k)
                    k += 1
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.2)
        if sock is not None:
            sock.close()
        if k < len(self.uploads):
            self.error = f"logger {self.i}: {len(self.uploads) - k} uploads never acknowledged"

    def _acked(self, sock: socket.socket, reader: FrameReader) -> bool:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            data = sock.recv(4096)
            if not data:
                raise ConnectionResetError("closed")
            for f in reader.feed(data):
                if isinstance(f, Frame) and f.crc_ok and parse_segment(f.segment).cn == "9014":
                    return True
        return False


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    services: list[ServiceProcess] = []
    yield services
    for svc in services:
        svc.stop()


def hj212_check(svc: ServiceProcess) -> str:
    status, body = svc.get("/healthz")
    if not status:
        return ""
    checks = json.loads(body).get("checks", {})
    return str(checks.get("hj212", {}).get("status", ""))


def start(svc: ServiceProcess) -> None:
    svc.start()
    svc.wait(lambda: hj212_check(svc) == "ok", 20, "/healthz: the HJ 212 server listening")


def test_kill_9_mid_stream_every_acknowledged_upload_is_stored_exactly_once(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb1: InfluxDB1,
    http_receiver: HttpReceiver,
    made: list[ServiceProcess],
) -> None:
    """Stored in InfluxDB, whose per-key overwrite absorbs the one batch a kill -9 between the database's
    2xx and the journal's cursor commit sends twice (VictoriaMetrics needs `-dedup.minScrapeInterval` for
    that: see docs/interface.md)."""
    n_loggers, n_uploads = 5, 120
    port = free_port()
    stations = station_file(tmp_path / "stations.toml", n_loggers)
    influxdb1.create_database("hj212kill")
    svc = ServiceProcess(
        tmp_path,
        config(mosquitto, influx_v1_section(influxdb1, "hj212kill"), http_receiver, stations, port),
        env={"HJ212_PW": PW, "RW_INFLUX_PASSWORD": influxdb1.password},
    )
    made.append(svc)
    start(svc)
    # Values under the cadmium limit (5 µg/L), distinct per upload so each stored point is identifiable.
    loggers = [
        Logger(i, port, [upload(i, k, 0.5 + k / 1000) for k in range(n_uploads)], time.monotonic() + 120)
        for i in range(n_loggers)
    ]
    for lg in loggers:
        lg.start()
    svc.wait(lambda: sum(len(lg.acked) for lg in loggers) >= 150, 60, "150 uploads acknowledged")
    svc.kill9()
    acked_before = {lg.i: list(lg.acked) for lg in loggers}
    time.sleep(1.0)  # the loggers find the platform gone and keep re-sending
    start(svc)
    for lg in loggers:
        lg.join(150)
        assert lg.error is None, lg.error
    assert all(acked_before.values()) and any(len(v) < n_uploads for v in acked_before.values())
    total = n_loggers * n_uploads
    svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 1, 30, "readings stored after restart")

    def stored() -> dict[int, list[tuple[int, float]]]:
        rows = influxdb1.points('SELECT "value", "station" FROM "water_quality"', db="hj212kill")
        out: dict[int, list[tuple[int, float]]] = {i: [] for i in range(n_loggers)}
        for r in rows:
            out[int(str(r["station"]).removeprefix("hj-"))].append((int(r["time"]) // 10**6, float(r["value"])))
        return {i: sorted(v) for i, v in out.items()}

    deadline = time.monotonic() + 60
    points = stored()
    while sum(len(p) for p in points.values()) < total and time.monotonic() < deadline:
        time.sleep(0.5)
        points = stored()
    for i, series in points.items():
        keys = [t for t, _ in series]
        assert len(keys) == len(set(keys)), f"logger {i}: duplicated points"
        assert series == [(ms(k), pytest.approx((0.5 + k / 1000) / 1000)) for k in range(n_uploads)]
    counts = influxdb1.points('SELECT count("value") FROM "water_quality"', db="hj212kill")
    assert counts[0]["count"] == n_loggers * n_uploads  # one point per (station, parameter, time)
    resent = sum(lg.sends for lg in loggers) - total
    before = sum(len(v) for v in acked_before.values())
    stored_n = sum(len(p) for p in points.values())
    print(
        f"\nHJ212 kill -9: {total} uploads, {before} acknowledged before the kill, {resent} re-sends, stored {stored_n}"
    )
    assert svc.terminate()[0] == 0


def test_a_cadmium_exceedance_over_hj212_reaches_the_receiver(
    tmp_path: Path,
    mosquitto: Mosquitto,
    victoria: Victoria,
    http_receiver: HttpReceiver,
    made: list[ServiceProcess],
) -> None:
    port = free_port()
    stations = station_file(tmp_path / "stations.toml", 1)
    svc = ServiceProcess(
        tmp_path, config(mosquitto, victoria_section(victoria), http_receiver, stations, port), env={"HJ212_PW": PW}
    )
    made.append(svc)
    start(svc)
    # 41 µg/L against Class III's 0.005 mg/L: the first notice, confirmed by the next reading.
    lg = Logger(0, port, [upload(0, 0, 41.0), upload(0, 1, 31.0)], time.monotonic() + 30)
    lg.start()
    lg.join(40)
    assert lg.error is None, lg.error
    posts = http_receiver.wait_for(2, timeout=30)
    texts = [p.json["title"] + "\n" + p.json["message"] for p in posts]
    first = texts[0]
    for needle in ("hj-0", "cadmium", "0.041 mg/L", "0.005 mg/L", "GB 3838-2002", "2026-03-01"):
        assert needle in first, f"{needle!r} missing from:\n{first}"
    assert any("firing" in t for t in texts), texts
    assert svc.metric("riverwatch_hj212_packets_total") == 2
    assert svc.terminate()[0] == 0
