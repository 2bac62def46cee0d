"""Simulators: the Longjiang scenario's determinism and calibration, its wire formats, replay CSV, and a
publisher that must deliver every message exactly once through a real mosquitto."""

from __future__ import annotations

import collections
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from monitor.params import PARAMETERS
from monitor.reading import Reading
from simulators.longjiang import (
    CST,
    SCENARIOS,
    Scenario,
    longjiang_2012,
    rfc3339,
    senml_packs,
    single_messages,
)
from simulators.publish import parse_url, publish
from simulators.replaycsv import csv_messages, parse_ts, read_csv, write_csv

MOSQUITTO = "/usr/sbin/mosquitto"
LIMIT = 0.005  # GB 3838-2002 class III cadmium, mg/L


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def _unit_of(parameter: str) -> str:
    return PARAMETERS[parameter].unit


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return longjiang_2012()


@pytest.fixture(scope="module")
def readings(scenario: Scenario) -> list[Reading]:
    return scenario.readings()


def _cd(readings: list[Reading], station: str) -> list[tuple[int, float]]:
    return [(r.ts_ns, r.value) for r in readings if r.station == station and r.parameter == "cd"]


# --- scenario -------------------------------------------------------------------------------------------------


def test_same_seed_same_readings_different_seed_different() -> None:
    a = longjiang_2012(seed=7).readings()
    assert a == longjiang_2012(seed=7).readings()
    assert [r.value for r in a] == [r.value for r in longjiang_2012(seed=7).readings()]  # bit-identical floats
    assert [r.value for r in a] != [r.value for r in longjiang_2012(seed=8).readings()]
    assert SCENARIOS["longjiang-2012"] is longjiang_2012


def test_shape_order_and_ranges(scenario: Scenario, readings: list[Reading]) -> None:
    assert [s.id for s in scenario.stations] == ["lalang", "yemao", "luodong", "sancha", "nuomitan", "liuzhou-hexi"]
    assert [s.river_km for s in scenario.stations] == [0, 25, 57, 80, 100, 160]
    assert scenario.start_ns == _ns("2012-01-13T00:00:00+08:00")
    assert scenario.end_ns == scenario.start_ns + 26 * 86_400 * 10**9
    assert readings == sorted(readings, key=lambda r: (r.ts_ns, r.station, r.parameter))
    stamps = sorted({r.ts_ns for r in readings})
    assert len(stamps) == 26 * 12 and stamps[0] == scenario.start_ns and stamps[1] - stamps[0] == 2 * 3600 * 10**9
    assert len(readings) == len(stamps) * 6 * 4
    per_point = collections.Counter((r.ts_ns, r.station) for r in readings)
    assert set(per_point.values()) == {4}
    ranges = {"cd": (0.0001, 0.5), "ph": (7.2, 7.9), "do": (7.0, 9.0), "temp": (12.0, 15.0)}
    for r in readings:
        lo, hi = ranges[r.parameter]
        assert lo <= r.value <= hi, r
        assert r.flag is None and r.parameter in PARAMETERS


def test_interval_and_days_parameters() -> None:
    s = longjiang_2012(days=2, metal_interval_h=1)
    assert len(s.readings()) == 48 * 6 * 4
    with pytest.raises(ValueError):
        longjiang_2012(metal_interval_h=0)


def test_temperature_has_a_daily_cycle(readings: list[Reading]) -> None:
    by_hour: dict[int, list[float]] = collections.defaultdict(list)
    for r in readings:
        if r.parameter == "temp":
            by_hour[datetime.fromtimestamp(r.ts_ns / 1e9, CST).hour].append(r.value)
    mean = {h: sum(v) / len(v) for h, v in by_hour.items()}
    assert mean[14] - mean[2] > 0.5


@pytest.mark.parametrize("seed", [2012, 1, 2, 3])
def test_calibration_to_the_record(seed: int) -> None:
    readings = longjiang_2012(seed=seed).readings()
    lalang = _cd(readings, "lalang")
    ts, peak = max(lalang, key=lambda p: p[1])
    assert 0.35 <= peak <= 0.5
    assert _ns("2012-01-14T12:00:00+08:00") <= ts <= _ns("2012-01-16T00:00:00+08:00")
    assert all(v < LIMIT for t, v in lalang if t >= _ns("2012-01-31T00:00:00+08:00"))

    assert max(v for _, v in _cd(readings, "liuzhou-hexi")) < LIMIT

    nuomitan = _cd(readings, "nuomitan")
    ts, peak = max(nuomitan, key=lambda p: p[1])
    assert 0.025 <= peak <= 0.06
    assert _ns("2012-01-27T00:00:00+08:00") <= ts <= _ns("2012-01-31T00:00:00+08:00")

    jan19 = [v for t, v in _cd(readings, "luodong")
             if _ns("2012-01-19T00:00:00+08:00") <= t < _ns("2012-01-20T00:00:00+08:00")]
    assert jan19 and all(0.015 <= v <= 0.04 for v in jan19)

    # The plume reaches the stations in river order, and the background stays about 0.0005-0.001 mg/L.
    first_over = [next(t for t, v in _cd(readings, s) if v > LIMIT)
                  for s in ("lalang", "yemao", "luodong", "sancha", "nuomitan")]
    assert first_over == sorted(first_over)
    early_liuzhou = [v for t, v in _cd(readings, "liuzhou-hexi") if t < _ns("2012-01-18T00:00:00+08:00")]
    assert all(0.0001 <= v <= 0.0012 for v in early_liuzhou)


# --- wire formats ---------------------------------------------------------------------------------------------


def test_senml_packs(readings: list[Reading]) -> None:
    packs = list(senml_packs(readings[: 6 * 4 * 3]))  # three timestamps, six stations
    assert len(packs) == 18
    by_key = {(r.ts_ns, r.station, r.parameter): r.value for r in readings}
    for ts_ns, topic, payload in packs:
        root, station = topic.split("/")
        assert root == "river"
        pack = json.loads(payload)
        assert pack[0]["bn"] == "" and pack[0]["bt"] == ts_ns / 1e9
        assert all("bt" not in rec and "bn" not in rec for rec in pack[1:])
        assert {rec["n"] for rec in pack} == {"cd", "ph", "do", "temp"}
        for rec in pack:
            assert rec["v"] == by_key[(ts_ns, station, rec["n"])]
            assert rec.get("u") == {"cd": "mg/L", "do": "mg/L", "temp": "°C", "ph": None}[rec["n"]]
    _, topic, _ = next(senml_packs(readings[:4], root="test/x"))
    assert topic == "test/x/lalang"


def test_single_messages(readings: list[Reading]) -> None:
    msgs = list(single_messages(readings[:24]))
    assert len(msgs) == 24
    for (ts_ns, topic, payload), r in zip(msgs, readings, strict=False):
        assert ts_ns == r.ts_ns and topic == f"river/{r.station}/{r.parameter}"
        body = json.loads(payload)
        assert body["value"] == r.value
        assert body["ts"].endswith("+08:00") and _ns(body["ts"]) == r.ts_ns
        assert body.get("unit") == (None if r.parameter == "ph" else PARAMETERS[r.parameter].unit)
    flagged = Reading("s1", "cd", 1_326_384_000_123_456_000, 0.01, "maintenance")
    _, _, payload = next(single_messages([flagged], root="r"))
    body = json.loads(payload)
    assert body == {"ts": "2012-01-13T00:00:00.123456+08:00", "value": 0.01, "unit": "mg/L", "flag": "maintenance"}


# --- replay CSV -----------------------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path, readings: list[Reading]) -> None:
    some = [*readings[:200], Reading("lalang", "cd", readings[0].ts_ns + 1_500_000, 0.123, "suspect")]
    path = tmp_path / "replay.csv"
    assert write_csv(path, some, _unit_of) == len(some)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "ts,station,parameter,value,unit,flag"
    rows = list(read_csv(path))
    assert [Reading(s, p, ts, v, f) for ts, s, p, v, _, f in rows] == some
    assert [u for *_, u, _ in rows] == [_unit_of(r.parameter) for r in some]


def test_csv_read_variants(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "\ufeffStation,ts,parameter,value,unit,comment,flag\n"
        "lalang,1326556800,cd,41,ug/L,first,\n"
        "\n"
        "lalang,2012-01-15T00:00:00.5Z,ph,7.5,,x,calibration\n"
        'yemao,2012-01-15 08:00:00+08:00,cadmium,0.02,mg/L,"a, b",\n',
        encoding="utf-8",
    )
    rows = list(read_csv(path))
    assert rows == [
        (1_326_556_800_000_000_000, "lalang", "cd", 41.0, "ug/L", None),
        (1_326_585_600_500_000_000, "lalang", "ph", 7.5, "", "calibration"),
        (1_326_585_600_000_000_000, "yemao", "cadmium", 0.02, "mg/L", None),
    ]
    msgs = list(csv_messages(rows, root="r"))
    assert [t for _, t, _ in msgs] == ["r/lalang/cd", "r/lalang/ph", "r/yemao/cadmium"]
    assert json.loads(msgs[0][2]) == {"ts": "2012-01-15T00:00:00+08:00", "value": 41.0, "unit": "ug/L"}
    assert json.loads(msgs[1][2]) == {"ts": "2012-01-15T08:00:00.500000+08:00", "value": 7.5, "flag": "calibration"}
    assert parse_ts("2012-01-15T08:00:00.123456789+08:00") == 1_326_585_600_123_456_789
    assert rfc3339(1_326_585_600_123_456_789) == "2012-01-15T08:00:00.123456+08:00"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2012-01-15T08:00:00,lalang,cd,0.1,mg/L", "offset"),
        ("yesterday,lalang,cd,0.1,mg/L", "RFC 3339"),
        ("2012-13-15T08:00:00+08:00,lalang,cd,0.1,mg/L", "bad timestamp"),
        ("2012-01-15T08:00:00+08:00,lalang,cd,lots,mg/L", "not a number"),
        ("2012-01-15T08:00:00+08:00,lalang,cd,nan,mg/L", "not finite"),
        ("2012-01-15T08:00:00+08:00,,cd,0.1,mg/L", "empty station"),
        ("2012-01-15T08:00:00+08:00,la/lang,cd,0.1,mg/L", "station"),
        ("2012-01-15T08:00:00+08:00,lalang,cd", "expected at least 5 fields"),
    ],
)
def test_csv_bad_row_names_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"ts,station,parameter,value,unit\n2012-01-15T08:00:00+08:00,lalang,cd,0.4,mg/L\n{row}\n")
    rows = read_csv(path)
    assert next(rows)[1] == "lalang"  # good rows before the bad one still come out
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:3: .*{reason}"):
        next(rows)


def test_csv_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,station,parameter,value\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:1: header lacks column\(s\) ts, unit"):
        list(read_csv(path))


# --- publisher against a real mosquitto -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not accept connections on port {port} within {timeout} s")


class Broker:
    """A mosquitto process on 127.0.0.1; `stop()` ends it by pid, `start()` brings it back on the same port."""

    def __init__(self, directory: Path) -> None:
        if shutil.which(MOSQUITTO) is None:
            pytest.fail(f"{MOSQUITTO} is missing: apt-get install mosquitto")
        self.port = _free_port()
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 10000000\nmax_inflight_messages 0\nlog_dest stderr\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        _wait_for_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[[], Broker]]:
    """Start mosquitto brokers for one test; every one is terminated by pid and waited for afterwards."""
    started: list[Broker] = []

    def make() -> Broker:
        directory = tmp_path / f"broker{len(started)}"
        directory.mkdir()
        broker = Broker(directory)
        started.append(broker)
        broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in started:
            broker.stop()


class Subscriber:
    """A paho QoS 1 subscriber on its own network thread that records every (topic, payload) it receives."""

    def __init__(self, port: int, topic: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}",
                                  protocol=MQTTProtocolVersion.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.received.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_publisher_delivers_every_message_exactly_once(broker_factory: Callable[[], Broker]) -> None:
    broker = broker_factory()
    root = f"load-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(broker.port, f"{root}/#")
    try:
        messages = [(i * 10**9, f"{root}/s{i % 7}", f"{i}".encode()) for i in range(5000)]
        assert publish(iter(messages), broker.url, window=100) == 5000
        sub.wait_for(5000, timeout=30)
        time.sleep(0.3)  # room for a stray duplicate to show up
        got = collections.Counter(sub.received)
        assert len(sub.received) == 5000
        assert got == collections.Counter((t, p) for _, t, p in messages)
    finally:
        sub.close()


def test_publisher_paces_by_timestamp(broker_factory: Callable[[], Broker]) -> None:
    broker = broker_factory()
    messages = [(0, "pace/a", b"1"), (10**9, "pace/a", b"2"), (2 * 10**9, "pace/a", b"3")]
    started = time.monotonic()
    assert publish(messages, broker.url, speed=4.0, progress=True) == 3
    assert 0.45 <= time.monotonic() - started < 3.0


def test_publisher_raises_when_the_broker_goes_away(broker_factory: Callable[[], Broker]) -> None:
    broker = broker_factory()

    def messages() -> Iterator[tuple[int, str, bytes]]:
        for i in range(300):
            if i == 100:
                broker.stop()
            yield i, "gone/x", b"x"

    with pytest.raises(RuntimeError, match="unacknowledged after 2 s: the broker is disconnected"):
        publish(messages(), broker.url, window=20, timeout=2.0)


def test_publisher_survives_a_broker_restart(broker_factory: Callable[[], Broker]) -> None:
    broker = broker_factory()

    def messages() -> Iterator[tuple[int, str, bytes]]:
        for i in range(400):
            if i == 200:
                broker.stop()
                broker.start()
            yield i, "restart/x", f"{i}".encode()

    assert publish(messages(), broker.url, window=50, timeout=20.0) == 400


def test_publisher_connection_errors() -> None:
    with pytest.raises(RuntimeError, match=r"cannot connect to MQTT broker 127\.0\.0\.1:\d+"):
        publish([(0, "x/y", b"1")], f"mqtt://127.0.0.1:{_free_port()}")
    with pytest.raises(ValueError):
        publish([], "http://127.0.0.1:1883")
    with pytest.raises(ValueError, match="window"):
        publish([], "mqtt://127.0.0.1:1883", window=70_000)
    assert parse_url("mqtts://svc:p%40ss@broker.example:8884") == ("broker.example", 8884, True, "svc", "p@ss")
    assert parse_url("mqtt://localhost") == ("localhost", 1883, False, None, None)
