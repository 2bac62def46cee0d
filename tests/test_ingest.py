"""Ingest on a real mosquitto: acknowledged only once journaled, persistent session, reconnect by itself."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiomqtt
import pytest

from bench.servers import Mosquitto
from monitor.config import MqttConfig
from monitor.domain.reading import Reading
from monitor.ingest.mqtt import Ingest
from monitor.ingest.paho import Inbound, PahoControl, parse_publish
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from simulators.publish import publish

T0 = 1326585600


class BrokenDisk(Journal):
    """A journal whose disk refuses every write."""

    def append(self, readings: Sequence[Reading]) -> int:
        raise JournalError(f"journal {self.path}: disk I/O error (test)")


def messages(station: str, n: int, start: int = 0) -> list[tuple[int, str, bytes]]:
    return [
        (0, f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": T0 + 60 * i, "value": 0.001}).encode())
        for i in range(start, start + n)
    ]


class SlowDisk(Journal):
    """A journal on a disk that takes 20 ms per commit: the input outpaces it."""

    def append(self, readings: Sequence[Reading]) -> int:
        time.sleep(0.02)
        return super().append(readings)


async def ingest_until(
    cfg: MqttConfig,
    journal: Journal,
    done: Callable[[Metrics], bool],
    during: Callable[[], object] | None = None,
    timeout: float = 20.0,
    seen: list[Ingest] | None = None,
    wait_subscribed: bool = True,
) -> Metrics:
    metrics = Metrics()
    stop = asyncio.Event()
    ingest = Ingest(cfg, journal, metrics, lambda: None, batch=50)
    if seen is not None:
        seen.append(ingest)
    task = asyncio.create_task(ingest.run(stop))
    try:
        if wait_subscribed:
            await asyncio.wait_for(ingest.subscribed.wait(), timeout)
        if during is not None:
            await asyncio.to_thread(during)
        async with asyncio.timeout(timeout):
            while not done(metrics):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    return metrics


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_nothing_is_acknowledged_before_it_is_journaled(
    fresh_mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id=f"ack-{protocol}", protocol=protocol)
    broken = BrokenDisk(tmp_path / "broken.sqlite")
    metrics = asyncio.run(
        ingest_until(
            cfg,
            broken,
            lambda m: m.health.status() == "unhealthy",
            during=lambda: publish(messages("ack", 30), fresh_mosquitto.url),
        )
    )
    assert "disk I/O error" in json.dumps(metrics.health.report())
    # The same session, now with a working disk: the broker still holds every message, because none was acked.
    journal = Journal(tmp_path / "journal.sqlite")
    asyncio.run(ingest_until(cfg, journal, lambda m: journal.backlog("store") >= 30))
    assert sorted(r.ts_ns for _, r in journal.read("store", 100)) == [(T0 + 60 * i) * 10**9 for i in range(30)]


def test_the_broker_keeps_messages_while_the_service_is_away(fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id="away")
    journal = Journal(tmp_path / "journal.sqlite")
    asyncio.run(ingest_until(cfg, journal, lambda m: True))  # creates the persistent session
    publish(messages("away", 200), fresh_mosquitto.url)  # published while nobody is connected
    asyncio.run(ingest_until(cfg, journal, lambda m: journal.backlog("store") >= 200))
    assert journal.backlog("store") == 200


def test_ingest_reconnects_after_a_broker_restart_and_loses_nothing(fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id="restart")
    journal = Journal(tmp_path / "journal.sqlite")

    def publish_around_a_restart() -> None:
        publish(messages("restart", 100), fresh_mosquitto.url)
        fresh_mosquitto.restart()
        publish(messages("restart", 100, start=100), fresh_mosquitto.url)

    metrics = asyncio.run(
        ingest_until(
            cfg, journal, lambda m: journal.backlog("store") >= 200, during=publish_around_a_restart, timeout=40
        )
    )
    assert journal.backlog("store") == 200
    assert (metrics.registry.get_sample_value("riverwatch_mqtt_connects_total") or 0) >= 2


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_slow_journal_holds_the_broker_back_instead_of_filling_memory(
    fresh_mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id=f"flow-{protocol}", protocol=protocol)
    journal = SlowDisk(tmp_path / "journal.sqlite")
    seen: list[Ingest] = []
    asyncio.run(
        ingest_until(
            cfg,
            journal,
            lambda m: journal.backlog("store") >= 6000,
            seen=seen,
            timeout=60,
            during=lambda: publish(messages("flow", 6000), fresh_mosquitto.url),
        )
    )
    assert journal.backlog("store") == 6000
    # At most 4 batches wait in memory (plus what one socket read brings); the rest waited at the broker.
    assert seen[0].queue_peak <= 4 * 50 + 100


def test_a_refused_backlog_does_not_wedge_the_connection(fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A backlog bigger than the read window meets a journal that refuses it: the client must reconnect and
    retry, not wait forever for a SUBACK behind a paused reader."""
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id="wedge")
    asyncio.run(ingest_until(cfg, Journal(tmp_path / "first.sqlite"), lambda m: True))  # the session exists
    publish(messages("wedge", 2000), fresh_mosquitto.url)
    metrics = asyncio.run(
        ingest_until(
            cfg,
            BrokenDisk(tmp_path / "broken.sqlite"),
            lambda m: (m.registry.get_sample_value("riverwatch_mqtt_connects_total") or 0) >= 3,
            timeout=30,
            wait_subscribed=False,
        )
    )
    assert metrics.health.status() == "unhealthy"
    journal = Journal(tmp_path / "journal.sqlite")
    asyncio.run(ingest_until(cfg, journal, lambda m: journal.backlog("store") >= 2000, timeout=30))
    assert journal.backlog("store") == 2000


@pytest.mark.parametrize("qos", [0, 2])
def test_qos_0_and_2_subscriptions_journal_every_message(fresh_mosquitto: Mosquitto, tmp_path: Path, qos: int) -> None:
    """QoS 1 takes riverwatch's own PUBLISH parser; QoS 0 takes it too (no ack), QoS 2 stays with paho (PUBREC,
    PUBREL, then PUBCOMP after the journal commit).

    15 messages, under the broker's window of 20: mosquitto 2.0.11 stops sending a QoS 2 subscriber anything
    after its first window, PUBCOMPs received or not (seen with a plain paho subscriber too).
    """
    cfg = MqttConfig(url=fresh_mosquitto.url, client_id=f"qos{qos}", qos=qos)
    journal = Journal(tmp_path / "journal.sqlite")
    asyncio.run(
        ingest_until(
            cfg,
            journal,
            lambda m: journal.backlog("store") >= 15,
            during=lambda: publish(messages(f"q{qos}", 15), fresh_mosquitto.url, qos=qos),
        )
    )
    got = sorted(r.ts_ns for _, r in journal.read("store", 1000))
    assert got == [(T0 + 60 * i) * 10**9 for i in range(15)]


def _publish_packet(topic: bytes, payload: bytes, qos: int, mid: int = 0, props: bytes | None = None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    if props is not None:
        body += bytes([len(props)]) + props
    return body + payload


def test_publish_parser_reads_3_1_1_and_5_and_leaves_the_rest_to_paho() -> None:
    p = b'{"unit": "mg/L", "value": 0.004}'
    assert parse_publish(0x32, _publish_packet(b"river/s1/cd", p, 1, 513), False) == Inbound("river/s1/cd", p, 513, 1)
    assert parse_publish(0x30, _publish_packet(b"river/s1/cd", p, 0), False) == Inbound("river/s1/cd", p, 0, 0)
    assert parse_publish(0x3B, _publish_packet(b"t/s/cd", p, 1, 7), False) == Inbound(
        "t/s/cd", p, 7, 1, True
    )  # dup, retain
    # MQTT 5: a properties block (payload format indicator, content type) is skipped.
    props = b"\x01\x01" + b"\x03" + (16).to_bytes(2, "big") + b"application/json"
    assert parse_publish(0x32, _publish_packet(b"river/s1/cd", p, 1, 9, props), True) == Inbound("river/s1/cd", p, 9, 1)
    assert parse_publish(0x32, _publish_packet(b"river/s1/cd", p, 1, 9, b""), True) == Inbound("river/s1/cd", p, 9, 1)
    # paho's: QoS 2, other packet types, a topic alias (empty topic), a topic that is not UTF-8, a short packet.
    assert parse_publish(0x34, _publish_packet(b"river/s1/cd", p, 2, 9), False) is None
    assert parse_publish(0x40, b"\x00\x01", False) is None
    assert parse_publish(0x32, _publish_packet(b"", p, 1, 9, b"\x23\x00\x01"), True) is None
    assert parse_publish(0x32, _publish_packet(b"river/\xff/cd", p, 1, 9), False) is None
    assert parse_publish(0x32, b"\x00\x20river", False) is None
    assert parse_publish(0x32, _publish_packet(b"river/s1/cd", b"", 1, 9, None)[:-1] + b"\x30", True) is None


def test_a_topic_that_is_not_utf8_is_rejected_not_a_reconnect_loop() -> None:
    """paho's path hands over such a topic; it must become a rejection (acknowledged, dead-lettered), because an
    exception would drop the connection and the broker would redeliver the message forever."""
    import paho.mqtt.client as mqtt

    from monitor.ingest.deadletter import record
    from monitor.ingest.decode import decode

    async def handover() -> list[Inbound]:
        control = PahoControl(aiomqtt.Client("127.0.0.1", identifier="t"), high=10)
        message = mqtt.MQTTMessage(mid=5, topic=b"river/s\xff1/cd")
        message.payload, message.qos = json.dumps({"unit": "mg/L", "ts": T0, "value": 0.001}).encode(), 1
        control._on_message(None, None, message)  # type: ignore[arg-type]
        return control.inbox

    [got] = asyncio.run(handover())
    assert (got.mid, got.qos) == (5, 1)
    decoded = decode(got.topic, got.payload, T0 * 10**9)
    assert not decoded.readings and [r.reason for r in decoded.rejections] == ["bad_station"]
    line = record(got.topic, got.payload, decoded.rejections)  # the dead letter can be written, as UTF-8
    kept = json.loads(line.decode("utf-8"))
    assert kept["topic"] == got.topic and kept["reasons"][0]["reason"] == "bad_station"
