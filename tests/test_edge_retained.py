"""Retained messages (issue 20, item 3): ignored by default; when accepted, taken once whatever the restarts.

The real service process, a real mosquitto that keeps the retained message, a real VictoriaMetrics and a real
HTTP receiver for notifications. Before: one retained message, five restarts, nine copies stored, three extra
notifications. Figures go to the test log (`pytest -s`)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto, Victoria, free_port
from monitor.ingest.retained import Memo, RetainedMemo, digest
from simulators.publish import publish
from tests.service_proc import REPO, ServiceProcess


def retain(url_host: str, port: int, topic: str, payload: bytes) -> None:
    paho.mqtt.publish.single(topic, payload, qos=1, retain=True, hostname=url_host, port=port, protocol=mqtt.MQTTv311)


def journaled(data: Path, station: str) -> int:
    with sqlite3.connect(f"file:{data / 'journal.sqlite'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM readings WHERE station = ?", (station,)).fetchone()[0])


def config(mqtt_url: str, vm: Victoria, receiver: HttpReceiver, retained: str | None) -> str:
    line = f'retained = "{retained}"' if retained else ""
    return f"""
[mqtt]
url = "{mqtt_url}"
client_id = "edge-retained-{free_port()}"
{line}

[influxdb]
url = "{vm.influx_url}"
org = "bureau"
bucket = "water"
flush_interval_s = 0.2

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{receiver.json_url()}"]
"""


def test_retained_messages_are_ignored_by_default(
    fresh_mosquitto: Mosquitto, victoria: Victoria, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    retain(
        fresh_mosquitto.host,
        fresh_mosquitto.port,
        "river/lalang/cd",
        json.dumps({"unit": "mg/L", "value": 0.02}).encode(),
    )
    svc = ServiceProcess(tmp_path, config(fresh_mosquitto.url, victoria, http_receiver, None))
    try:
        svc.start()
        svc.wait(lambda: svc.metric("riverwatch_retained_ignored_total") >= 1, 20, "the retained message")
        now = time.time()
        publish(
            [(0, "river/yemao/cd", json.dumps({"unit": "mg/L", "ts": now, "value": 0.001}).encode())],
            fresh_mosquitto.url,
        )
        svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= 1, 20, "the live reading")
        assert journaled(tmp_path / "data", "lalang") == 0  # the broker's old value is not a new reading
        assert journaled(tmp_path / "data", "yemao") == 1
    finally:
        svc.stop()


def test_an_accepted_retained_message_is_taken_once_across_restarts(
    fresh_mosquitto: Mosquitto, victoria: Victoria, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    """One retained exceedance without a time, the service restarted five times (and killed -9 once): stored
    once, and no restart notifies anything the first start did not."""
    station = "lalang"
    retain(
        fresh_mosquitto.host,
        fresh_mosquitto.port,
        f"river/{station}/cd",
        json.dumps({"unit": "mg/L", "value": 0.02}).encode(),
    )
    svc = ServiceProcess(tmp_path, config(fresh_mosquitto.url, victoria, http_receiver, "accept"))
    after_first = 0
    try:
        for start in range(5):
            svc.start()
            if start == 0:
                svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 1, 20, "the retained reading")
                time.sleep(2)  # whatever the first start notifies, it has sent by now
                after_first = len(http_receiver.posts)
            else:
                svc.wait(lambda: svc.metric("riverwatch_retained_ignored_total") >= 1, 20, "the retained repeat")
            assert svc.metric("riverwatch_readings_accepted_total") == (1 if start == 0 else 0)
            if start == 2:
                svc.kill9()
            else:
                assert svc.terminate()[0] == 0
        time.sleep(1)
        # the shared VictoriaMetrics holds other tests' Lalang readings too: this test's is the 0.02
        stored = [
            p for p in victoria.series_points("water_quality_value", station=station, parameter="cd") if p[1] == 0.02
        ]
        rows = journaled(tmp_path / "data", station)
    finally:
        svc.stop()
    extra = len(http_receiver.posts) - after_first
    print(f"\nretained, 5 starts: sent 1, journaled {rows}, stored {len(stored)}, extra notifications {extra}")
    assert rows == 1
    assert len(stored) == 1
    assert extra == 0


def test_a_retained_payload_keeps_its_time_through_a_crash_before_its_commit(tmp_path: Path) -> None:
    """Saved before the journal commit, marked taken after it: a crash in between leaves the payload's first
    receipt time on disk (the redelivery gets it, and the journal sees a duplicate); once taken, it is taken."""
    path = tmp_path / "retained.json"
    memo = RetainedMemo(path)
    memo.remember("river/lalang/cd", Memo(digest(b'{"value": 0.02}'), 123, False))
    memo.write(memo.snapshot())
    after_crash = RetainedMemo(path)
    assert after_crash.get("river/lalang/cd") == Memo(digest(b'{"value": 0.02}'), 123, False)
    after_crash.mark_taken(["river/lalang/cd"])
    after_crash.write(after_crash.snapshot())
    assert RetainedMemo(path).get("river/lalang/cd") == Memo(digest(b'{"value": 0.02}'), 123, True)
    path.write_text("{not json")  # unreadable: start afresh (a duplicate at worst, never a loss)
    assert RetainedMemo(path).get("river/lalang/cd") is None
