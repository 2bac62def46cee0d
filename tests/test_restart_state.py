"""What the alert path knows survives a restart: the incident of an ongoing plume, its observed front velocity,
and the flap state of a toggling series (real processes, real mosquitto, a real HTTP receiver)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from monitor.alerts.ledger import SCHEMA_VERSION, Ledger
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600  # 2012-01-15T08:00:00+08:00
DAY = 86400


def single(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


def incident_and_velocity(message: str) -> tuple[str, str]:
    incident = re.search(r"Incident: (\S+) on", message)
    velocity = re.search(r"Front velocity: (.+)", message)
    assert incident is not None and velocity is not None, message
    return incident.group(1), velocity.group(1)


def test_a_restart_in_the_middle_of_a_plume_keeps_its_incident_and_velocity(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "restart-plume"
[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml",
    "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
utc_offset = "+08:00"
front_velocity_km_per_day = 10
""",
    )
    try:
        svc.start()
        publish([single("lalang", T0, 0.006)], mosquitto.url)  # km 0
        http_receiver.wait_for(1, timeout=20)
        publish([single("yemao", T0 + 2 * DAY, 0.03)], mosquitto.url)  # km 25, two days later: 12.5 km/day
        before = http_receiver.wait_for(2, timeout=20)[1].json["message"]
        incident, velocity = incident_and_velocity(before)
        assert velocity == "12.5 km/day (observed between lalang and yemao)"
        assert svc.terminate()[0] == 0

        svc.start()
        # Luodong (km 57) reached at the same 12.5 km/day: 32 km in 2.56 days after Yemao.
        publish([single("luodong", T0 + 2 * DAY + 2.56 * DAY, 0.03)], mosquitto.url)
        after = http_receiver.wait_for(3, timeout=20)[2].json
        assert "(luodong)" in after["title"]
        assert incident_and_velocity(after["message"]) == (incident, "12.5 km/day (observed between yemao and luodong)")
        assert re.search(r"stations hit so far: Lalang.*Yemao.*Luodong", after["message"]), after["message"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_a_restart_does_not_release_a_flapping_series(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "restart-flapping"
[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
flap_max_transitions = 3
flap_window_s = 3600
""",
    )

    # 0.02, not 0.01: 0.01 mg/L is the shipped cadmium check standard (a calibration check, not river water)
    def toggle(first: int, n: int) -> list[tuple[int, str, bytes]]:
        return [single("flappy", T0 + 300 * i, 0.02 if i % 2 == 0 else 0.001) for i in range(first, first + n)]

    try:
        svc.start()
        publish(toggle(0, 6), mosquitto.url)  # fire, resolve, fire, resolve (flapping), then two held
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= 6, 20, "six readings")
        http_receiver.wait_for(4, timeout=20)
        # Delivered and recorded as delivered (a kill before that sends the message again: at least once).
        svc.wait(lambda: svc.metric("riverwatch_notifications_sent_total") >= 4, 20, "four deliveries recorded")
        svc.kill9()

        svc.start()
        calm = [single("flappy", T0 + 300 * i, 0.001 + 0.0002 * (i % 2)) for i in range(8, 22)]  # not stuck
        publish(toggle(6, 2) + calm, mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= 16, 20, "the readings after")
        posts = http_receiver.wait_for(5, timeout=20)
        time.sleep(1)
        titles = [p.json["title"] for p in http_receiver.posts]
        seen = [
            (t.split(":")[0], p.json["message"].splitlines()[2])
            for t, p in zip(titles, http_receiver.posts, strict=True)
        ]
        assert len(titles) == 5, seen  # still held after the restart: no new firing, one resolve once calm
        assert titles[3].startswith("[FLAPPING, held as firing]")
        assert "RESOLVED" in titles[4] and "FLAPPING" not in titles[4]
        assert "RESOLVED" in posts[4].json["title"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


OLD_SCHEMA = """
CREATE TABLE alerts(
    alert_id TEXT PRIMARY KEY, station TEXT NOT NULL, parameter TEXT NOT NULL, rule TEXT NOT NULL,
    state TEXT NOT NULL, severity TEXT NOT NULL, started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    resolved_ns INTEGER, value REAL NOT NULL, limit_value REAL NOT NULL, peak_value REAL NOT NULL,
    peak_ratio REAL NOT NULL, incident_id TEXT, last_sent_ns INTEGER, acked_by TEXT, acked_ns INTEGER,
    flapping INTEGER NOT NULL DEFAULT 0);
CREATE INDEX alerts_active ON alerts(state, updated_ns);
CREATE TABLE silences(
    id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, parameter TEXT, starts_ns INTEGER NOT NULL,
    until_ns INTEGER NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL, created_ns INTEGER NOT NULL,
    expired_ns INTEGER);
CREATE TABLE audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO alerts VALUES ('lalang/cd/20120115T0000Z', 'lalang', 'cd', 'instantaneous', 'firing', 'serious',
    1326585600000000000, 1326585600000000000, NULL, 0.05, 0.005, 0.05, 10.0, 'longjiang/cd/20120115T0000Z',
    1326585600000000000, 'wang', 1326585700000000000, 0);
"""


def test_an_alerts_file_of_the_previous_version_is_upgraded_and_keeps_its_alerts(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    ledger = Ledger(path)
    (alert,) = ledger.alerts(active_only=True)
    assert (alert.alert_id, alert.acked_by, alert.incident_id) == (
        "lalang/cd/20120115T0000Z",
        "wang",
        "longjiang/cd/20120115T0000Z",
    )
    assert ledger.open_incidents() == [] and ledger.flap_states() == []  # not kept before: a restart starts anew
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert Ledger(path).get("lalang/cd/20120115T0000Z").state == "firing"  # opened again: nothing to do
