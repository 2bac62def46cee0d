"""Time at the edge (issue 20, items 1 and 2): a logger's clock ahead of ours is refused and reported per
series; readings without a time get receipt times that never collide, so a burst of them is stored whole.

Real mosquitto, a real journal; the burst runs the real service process against a real InfluxDB 1.6.7 (which
keeps nanoseconds: VictoriaMetrics keeps milliseconds, so readings of one series less than 1 ms apart are one
sample there, whatever riverwatch sends). Figures go to the test log (`pytest -s`): sent, journaled, stored,
lost, duplicated."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import InfluxDB1, Mosquitto, free_port
from monitor.config import MqttConfig
from monitor.ingest.clock import ClockFault, ReceiptClock
from monitor.ingest.deadletter import FileSink
from monitor.ingest.decode import decode
from monitor.ingest.mqtt import Ingest
from monitor.journal import Journal
from monitor.metrics import Metrics
from simulators.publish import publish
from tests.service_proc import REPO, ServiceProcess


def journal_rows(path: Path, station: str) -> list[tuple[str, int, float]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT parameter, ts_ns, value FROM readings WHERE station = ? ORDER BY seq", (station,)
        ).fetchall()


def influx_values(db: InfluxDB1, database: str, station: str) -> list[float]:
    rows = db.points(f'SELECT "value" FROM "water_quality" WHERE "station" = \'{station}\'', db=database)
    return [float(r["value"]) for r in rows]


def test_receipt_stamps_are_unique_per_series_even_in_one_instant() -> None:
    clock = ReceiptClock()
    now = 1_700_000_000_000_000_000
    stamps = [clock.stamp("s1", "cd", now) for _ in range(1000)]
    assert stamps == list(range(now, now + 1000))  # the clock did not move: one nanosecond apart
    assert clock.stamp("s1", "pb", now) == now  # another series keeps the receipt time itself
    assert clock.stamp("s1", "cd", now - 10**9) == now + 1000  # a clock stepped back never goes back
    # A SenML pack without times: each record of one series gets its own time.
    pack = json.dumps(
        [{"bu": "mg/L", "n": "cd", "v": 0.001}, {"n": "cd", "v": 0.002}, {"n": "pb", "v": 0.003}]
    ).encode()
    d = decode("river/s2", pack, now, stamp=clock.stamp)
    assert [(r.parameter, r.ts_ns) for r in d.readings] == [("cd", now), ("cd", now + 1), ("pb", now)]


def test_a_clock_ahead_is_refused_reported_and_kept_out_of_the_journal(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A reading an hour ahead (a logger on local time labelled UTC) is refused as future_timestamp, dead-lettered,
    reported once per series; the series' correct readings before and after it are all journaled."""
    now = time.time()
    good_before = {"unit": "mg/L", "ts": now - 120, "value": 0.001}
    ahead = {"unit": "mg/L", "ts": now + 3600, "value": 0.02}
    slightly_ahead = {"unit": "mg/L", "ts": now + 30, "value": 0.002}  # within the 5-minute skew: a drifting crystal
    good_after = {"unit": "mg/L", "ts": now - 60, "value": 0.003}
    msgs = [(0, "river/clk/cd", json.dumps(p).encode()) for p in (good_before, ahead, slightly_ahead, good_after)]
    journal = Journal(tmp_path / "journal.sqlite")
    faults: list[ClockFault] = []
    dead = tmp_path / "dead.jsonl"

    async def main() -> Metrics:
        metrics = Metrics()
        stop = asyncio.Event()
        cfg = MqttConfig(url=mosquitto.url, client_id="edge-clock")
        ingest = Ingest(
            cfg, journal, metrics, lambda: None, dead_letter=FileSink(dead, 1 << 20), on_clock_fault=faults.append
        )
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.subscribed.wait(), 20)
        await asyncio.to_thread(publish, msgs, mosquitto.url)
        async with asyncio.timeout(20):
            while metrics.messages_received._value.get() < len(msgs):
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        return metrics

    metrics = asyncio.run(main())
    rows = journal_rows(journal.path, "clk")
    assert [v for _, _, v in rows] == [0.001, 0.002, 0.003]  # every correct reading, none from the future
    assert metrics.readings_rejected.labels("future_timestamp")._value.get() == 1
    assert len(faults) == 1
    fault = faults[0]
    assert (fault.station, fault.parameter, fault.ts_ns) == ("clk", "cd", round((now + 3600) * 1e6) * 1000)
    assert 3500 < (fault.ts_ns - fault.now_ns) / 1e9 < 3700
    (line,) = dead.read_text().splitlines()
    assert json.loads(line)["reasons"][0]["reason"] == "future_timestamp"
    print(f"\nclock ahead: sent 4, journaled {len(rows)}, refused 1 (future_timestamp), clock faults {len(faults)}")


def test_a_burst_without_times_is_stored_whole(mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path) -> None:
    """5,000 single readings and 2,000 SenML packs, none with a time, as fast as the broker takes them: all in the
    journal and all in the database (before: 105 of 5,000 and 27 of 2,000 stored)."""
    n_json, n_senml = 5000, 2000
    station_json, station_senml = f"burst-{free_port()}", f"burst-senml-{free_port()}"
    database = f"edge_burst_{free_port()}"
    influxdb1.create_database(database)
    cfg = f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "edge-burst-{free_port()}"

[admission]
unknown_stations = "accept"
new_series_per_hour = 10

[influxdb]
api = "v1"
url = "{influxdb1.url}"
database = "{database}"
username = "{influxdb1.username}"
password_env = "RW_INFLUX_PASSWORD"
flush_interval_s = 0.2

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["json://127.0.0.1:{free_port()}/nobody-listens"]
"""
    svc = ServiceProcess(tmp_path, cfg, env={"RW_INFLUX_PASSWORD": str(influxdb1.password)})
    singles = [
        (0, f"river/{station_json}/cd", json.dumps({"unit": "mg/L", "value": i / 1e6}).encode()) for i in range(n_json)
    ]
    packs = [
        (0, f"river/{station_senml}", json.dumps([{"n": "pb", "u": "mg/L", "v": i / 1e6}]).encode())
        for i in range(n_senml)
    ]
    try:
        svc.start()
        sent = publish(singles + packs, mosquitto.url, window=1000)
        svc.wait(lambda: svc.metric("riverwatch_messages_received_total") >= sent, 60, "every message")
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= sent, 60, "every reading written")
        journaled = len(journal_rows(tmp_path / "data" / "journal.sqlite", station_json)) + len(
            journal_rows(tmp_path / "data" / "journal.sqlite", station_senml)
        )
        stored_json = influx_values(influxdb1, database, station_json)
        stored_senml = influx_values(influxdb1, database, station_senml)
        duplicates = svc.metric("riverwatch_readings_duplicate_total")
    finally:
        svc.stop()
    values = sorted(round(v * 1e6) for v in stored_json)
    print(
        f"\nburst without times: sent {sent}, journaled {journaled}, stored {len(stored_json) + len(stored_senml)}, "
        f"lost {sent - len(stored_json) - len(stored_senml)}, counted duplicate {duplicates:.0f}"
    )
    assert sent == n_json + n_senml
    assert journaled == sent
    assert duplicates == 0
    assert values == list(range(n_json))  # each reading once, with its own value
    assert sorted(round(v * 1e6) for v in stored_senml) == list(range(n_senml))


def test_after_a_reading_from_the_future_a_real_exceedance_still_alerts(
    mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path
) -> None:
    """The attack of issue 20 item 1 through the real service: one reading dated an hour ahead, then a real
    cadmium exceedance (two readings over the limit). Before: 0 alerts (every later reading was "not newer").
    Now the future reading is refused with a sensor alert about the logger's clock (cleared by the next
    accepted reading), and the exceedance alerts."""
    receiver = HttpReceiver()
    receiver.start()
    database = f"edge_clock_{free_port()}"
    influxdb1.create_database(database)
    cfg = f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "edge-clock-{free_port()}"

[influxdb]
api = "v1"
url = "{influxdb1.url}"
database = "{database}"
username = "{influxdb1.username}"
password_env = "RW_INFLUX_PASSWORD"
flush_interval_s = 0.2

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{receiver.json_url()}"]
"""
    now = time.time()
    readings = [(now + 3600, 0.001), (now - 120, 0.02), (now - 60, 0.03)]  # cadmium limit (Class III): 0.005
    msgs = [(0, "river/sancha/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": v}).encode()) for ts, v in readings]
    svc = ServiceProcess(tmp_path, cfg, env={"RW_INFLUX_PASSWORD": str(influxdb1.password)})
    try:
        svc.start()
        publish(msgs[:1], mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_messages_received_total") >= 1, 20, "the future reading")
        publish(msgs[1:], mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 2, 20, "the exceedance written")
        svc.wait(lambda: svc.metric("riverwatch_alerts_total") >= 1, 20, "an alert for the exceedance")
        titles = [p.json["title"] for p in receiver.wait_for(3, 30)]
        time.sleep(1.0)
        titles = [p.json["title"] for p in receiver.posts]
        refused = svc.metric('riverwatch_readings_rejected_total{reason="future_timestamp"}')
        alerts = svc.metric("riverwatch_alerts_total")
    finally:
        svc.stop()
        receiver.stop()
    stored = influx_values(influxdb1, database, "sancha")
    print(
        f"\nclock ahead, then an exceedance: sent 3, refused {refused:.0f}, stored {len(stored)}, "
        f"alert transitions {alerts:.0f}"
    )
    assert refused == 1
    assert sorted(stored) == [0.02, 0.03]
    clock = [t for t in titles if "clock is ahead" in t]
    assert len(clock) == 1 and clock[0].startswith("[WARNING] SENSOR: cadmium at Sancha"), titles
    assert any(t.startswith("[WARNING] SENSOR OK: cadmium at Sancha") for t in titles), titles
    assert any("unconfirmed: cadmium at Sancha" in t for t in titles), titles
    assert any("FIRING: cadmium (cd) at Sancha" in t for t in titles), titles
