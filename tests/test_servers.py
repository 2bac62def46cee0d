"""The server fixtures work for real: each test talks to the real process the way the service will."""

from __future__ import annotations

import queue
import socket
import threading
import time
import uuid
from pathlib import Path

import apprise
import paho.mqtt.client as mqtt
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.enums import CallbackAPIVersion

from bench.receiver import HttpReceiver
from bench.servers import InfluxDB1, Mosquitto, ServerError, Victoria, require_binary

TS_2012_NS = 1_325_419_200_000_000_000  # 2012-01-01T12:00:00Z: older than VictoriaMetrics' default retention
TS_2012_MS = TS_2012_NS // 1_000_000


class Collector:
    """A paho MQTT 3.1.1 client running its network loop in a thread, collecting messages in a queue."""

    def __init__(self, broker: Mosquitto, client_id: str, *, clean_session: bool = True, inflight: int = 20) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.session_present: bool | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(inflight)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _client, _userdata, msg: self.messages.put(msg)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK within 5 s"

    def _on_connect(
        self, _client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags, reason: object, _p: object
    ) -> None:
        self.session_present = flags.session_present
        self.connected.set()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.subscribe(topic, qos)
        assert subscribed.wait(5), "no SUBACK within 5 s"

    def take(self, count: int, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        got: list[mqtt.MQTTMessage] = []
        while len(got) < count:
            try:
                got.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {count} messages in {timeout} s") from None
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_qos1(broker: Mosquitto, topic: str, payloads: list[bytes]) -> None:
    """Publish at QoS 1 with a bounded window and wait for every PUBACK."""
    pub = Collector(broker, f"pub-{uuid.uuid4().hex[:8]}", inflight=100)
    try:
        infos = [pub.client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        pub.close()


def test_mosquitto_qos1_publish_subscribe(mosquitto: Mosquitto) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    sub = Collector(mosquitto, f"sub-{uuid.uuid4().hex[:8]}")
    try:
        sub.subscribe("rw/test/pubsub/#")
        publish_qos1(mosquitto, "rw/test/pubsub/s1", [b"one", b"two"])
        got = sub.take(2)
        assert [(m.topic, m.payload, m.qos) for m in got] == [
            ("rw/test/pubsub/s1", b"one", 1),
            ("rw/test/pubsub/s1", b"two", 1),
        ]
    finally:
        sub.close()


def test_mosquitto_persistent_session_survives_restart(fresh_mosquitto: Mosquitto) -> None:
    broker = fresh_mosquitto
    topic = "rw/test/persist"
    sub = Collector(broker, "rw-persistent-sub", clean_session=False)
    sub.subscribe(topic)
    sub.close()

    # More than mosquitto's default max_queued_messages (1000), which would drop the rest silently.
    before = [f"before-{i}".encode() for i in range(1200)]
    publish_qos1(broker, topic, before)
    broker.restart()
    after = [f"after-{i}".encode() for i in range(10)]
    publish_qos1(broker, topic, after)

    sub = Collector(broker, "rw-persistent-sub", clean_session=False)
    try:
        assert sub.session_present is True
        got = sub.take(len(before) + len(after))
        assert [m.payload for m in got] == before + after
        assert all(m.qos == 1 for m in got)
    finally:
        sub.close()
    assert broker.persistence_path.exists()
    assert "mosquitto version" in broker.log_path.read_text()


def test_victoria_influx_write_and_export(victoria: Victoria) -> None:
    # Two lines; the nanosecond timestamp of the second is truncated to milliseconds. One string field.
    victoria.write_lines(
        [
            f'rw_srv_wq,station=s1,param=ph value=7.1,note="hello" {TS_2012_NS}',
            f"rw_srv_wq,station=s1,param=ph value=7.25 {TS_2012_NS + 60_123_456_789}",
        ]
    )
    assert victoria.series_points("rw_srv_wq_value", station="s1", param="ph") == [
        (TS_2012_MS, 7.1),
        (TS_2012_MS + 60_123, 7.25),
    ]
    rows = victoria.export('{__name__=~"rw_srv_wq_.*"}')
    assert {r["metric"]["__name__"] for r in rows} == {"rw_srv_wq_value", "rw_srv_wq_note"}
    assert rows[0]["metric"].keys() == {"__name__", "station", "param"}
    # VictoriaMetrics 1.79 stores a string field as a series of value 0 rather than dropping it.
    assert victoria.series_points("rw_srv_wq_note", station="s1") == [(TS_2012_MS, 0.0)]

    # No dedup: the same sample written again shows up twice. It survives a stop/start too.
    victoria.write_lines(f"rw_srv_wq,station=s1,param=ph value=7.1 {TS_2012_NS}")
    victoria.stop()
    try:
        with pytest.raises(OSError, match="refused"):
            victoria.force_flush()
    finally:
        victoria.start()
    points = victoria.series_points("rw_srv_wq_value", station="s1", param="ph")
    assert points == [(TS_2012_MS, 7.1), (TS_2012_MS, 7.1), (TS_2012_MS + 60_123, 7.25)]


def test_victoria_accepts_influxdb_client_v2_write(victoria: Victoria) -> None:
    with InfluxDBClient(url=victoria.influx_url, token="ignored", org="riverwatch") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="riverwatch", record=f"rw_srv_client,station=s2 value=1.5 {TS_2012_NS}"
        )
    assert victoria.series_points("rw_srv_client_value", station="s2") == [(TS_2012_MS, 1.5)]


def test_influxdb1_auth_write_query_and_400(influxdb1: InfluxDB1) -> None:
    assert influxdb1.username
    assert influxdb1.password
    influxdb1.create_database("rw_srv")
    status, body = influxdb1.write("rw_srv", f"water_quality,station=s1 value=7.1 {TS_2012_NS}")
    assert (status, body) == (204, "")
    rows = influxdb1.points("SELECT value, station FROM water_quality", db="rw_srv")
    assert rows == [{"time": TS_2012_NS, "value": 7.1, "station": "s1"}]

    # Field-type conflict (float then string) and an unparsable line: 400 with the reason.
    status, body = influxdb1.write("rw_srv", f'water_quality,station=s1 value="high" {TS_2012_NS + 1}')
    assert status == 400
    assert "field type conflict" in body
    status, body = influxdb1.write("rw_srv", "water_quality,station=s1 value=")
    assert status == 400
    assert "unable to parse" in body

    # Auth is really on.
    status, _ = influxdb1.write("rw_srv", f"water_quality,station=s1 value=1 {TS_2012_NS}", user="")
    assert status == 401
    with pytest.raises(ServerError) as err:
        influxdb1.query("SHOW DATABASES", user="admin", password="wrong")
    assert getattr(err.value, "status", None) == 401

    # Data and the admin user survive a restart on the same port.
    influxdb1.restart()
    assert influxdb1.points("SELECT value FROM water_quality", db="rw_srv") == [{"time": TS_2012_NS, "value": 7.1}]


def test_apprise_json_reaches_http_receiver(http_receiver: HttpReceiver) -> None:
    ap = apprise.Apprise()
    assert ap.add(http_receiver.json_url())
    assert ap.notify(title="Station s1", body="pH 9.2 above 8.5")
    post = http_receiver.wait_for(1)[0]
    assert post.path == "/alerts"
    assert post.status == 200
    assert post.headers["Content-Type"] == "application/json"
    assert post.json == {
        "version": "1.0",
        "title": "Station s1",
        "message": "pH 9.2 above 8.5",
        "attachments": [],
        "type": "info",
    }

    http_receiver.fail_next(1, status=503)
    result = ap.notify(title="t", body="b", notify_type=apprise.NotifyType.FAILURE)
    assert not result
    assert result.status == apprise.AppriseResultStatus.FAILURE
    assert ap.notify(title="t", body="again")
    assert [p.status for p in http_receiver.posts] == [200, 503, 200]
    assert [p.json["message"] for p in http_receiver.wait_for(2, delivered_only=True)] == ["pH 9.2 above 8.5", "again"]


def test_start_failures_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="run scripts/test"):
        require_binary("/nonexistent/mosquitto")
    # A broker that cannot bind exits at once: the error carries the log tail that says why.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = Mosquitto(tmp_path, port=taken.getsockname()[1])
        try:
            with pytest.raises(ServerError, match=r"(?s)exited with code.*Address already in use"):
                broker.start()
            assert not broker.running
        finally:
            broker.stop()
