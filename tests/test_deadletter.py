"""Dead letters: the exact rejected bytes and why, in a bounded file or on an MQTT topic."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from bench.servers import Mosquitto
from monitor.domain.rejection import Rejection
from monitor.ingest.deadletter import FileSink
from simulators.publish import publish
from tests.service_proc import ServiceProcess

BAD = [
    (0, "river/dl/cd", b"not json \xff"),
    (0, "river/dl/cd", b'{"unit": "mg/L", "value": "high"}'),
    (0, "river/dl", b'[{"n": "cd", "u": "mg/L", "v": 0.001}, {"n": "unobtainium", "v": 1}]'),
]


def test_file_sink_keeps_records_and_rotates_within_its_bound(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "dead.jsonl", max_bytes=4096)
    for i in range(200):
        sink.keep(f"river/s{i}/cd", b'{"value": "x"}', [Rejection("not_numeric", "value 'x' of cd is not a number")])
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["dead.jsonl", "dead.jsonl.1"]
    assert all(f.stat().st_size <= 4096 for f in files)
    last = json.loads((tmp_path / "dead.jsonl").read_text().splitlines()[-1])
    assert last["topic"] == "river/s199/cd"
    assert last["reasons"] == [{"reason": "not_numeric", "detail": "value 'x' of cd is not a number"}]
    assert last["payload"] == '{"value": "x"}'


def test_service_writes_rejected_payloads_to_the_dead_letter_file(mosquitto: Mosquitto, tmp_path: Path) -> None:
    svc = ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "dl-file"\n'
        '[dead_letter]\nfile = "dead-letters.jsonl"\nmax_bytes = 100000\n',
    )
    try:
        svc.start()
        publish(BAD, mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_rejected_total") >= 3, 20, "3 rejections")
        records = [json.loads(x) for x in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
        assert [r["reasons"][0]["reason"] for r in records] == ["malformed", "not_numeric", "unknown_parameter"]
        assert records[0]["payload_base64"]  # not UTF-8: kept byte for byte
        assert records[2]["payload"].startswith('[{"n": "cd"')  # the whole pack, though its cd reading was taken
        assert svc.metric("riverwatch_readings_accepted_total") == 1
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_service_publishes_dead_letters_on_a_topic(mosquitto: Mosquitto, tmp_path: Path) -> None:
    got: list[dict[str, object]] = []
    arrived = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dl-watch")

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got.append(json.loads(msg.payload))
        if len(got) >= 3:
            arrived.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("riverwatch/dead-letter", qos=1)
    sub.loop_start()
    svc = ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "dl-topic"\n[dead_letter]\ntopic = "riverwatch/dead-letter"\n',
    )
    try:
        svc.start()
        publish(BAD, mosquitto.url)
        assert arrived.wait(20), svc.output()[-3000:]
        assert {r["topic"] for r in got} == {"river/dl/cd", "river/dl"}
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
        sub.loop_stop()
        sub.disconnect()
