"""Admission (issue 20, item 4): a cardinality bomb of made-up station ids creates no series, and a real new
station declared in a station file still gets through.

The bomb runs through the real service process, a real mosquitto and a real VictoriaMetrics. Before: 100,000
made-up ids accepted and written, then the database refused the next series, a new real station's with them.
Figures go to the test log (`pytest -s`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.servers import Mosquitto, Victoria, free_port
from monitor.config import AdmissionConfig
from monitor.domain.reading import Reading
from monitor.ingest.admission import Admission
from simulators.publish import publish
from tests.service_proc import REPO, ServiceProcess

NEW_STATION = """
[stations.xinzhan]
name = "A station added this morning"
river = "Longjiang"
river_km = 90.0
class = "III"
standard = "GB 3838-2002"
timezone = "Asia/Shanghai"
"""


def r(station: str, parameter: str = "cd") -> Reading:
    return Reading(station, parameter, 1, 0.001)


def test_undeclared_stations_are_refused_by_default() -> None:
    adm = Admission(AdmissionConfig(), lambda: {"lalang"})
    kept, refused = adm.admit([r("lalang"), r("made-up-1"), r("lalang", "pb")])
    assert kept == [r("lalang"), r("lalang", "pb")]
    assert [(x.reason, x.station) for x in refused] == [("unknown_station", "made-up-1")]


def test_accepted_undeclared_series_are_held_to_the_hourly_budget() -> None:
    now = [0.0]
    adm = Admission(AdmissionConfig("accept", new_series_per_hour=3), lambda: {"lalang"}, clock=lambda: now[0])
    kept, refused = adm.admit([r(f"s{i}") for i in range(5)] + [r("s0"), r("lalang")])
    assert [x.station for x in kept] == ["s0", "s1", "s2", "s0", "lalang"]  # a series let in stays in
    assert [(x.reason, x.station) for x in refused] == [("admission", "s3"), ("admission", "s4")]
    now[0] = 1200.0  # a third of an hour: one more series
    kept, refused = adm.admit([r("s3"), r("s4")])
    assert [x.station for x in kept] == ["s3"] and [x.station for x in refused] == ["s4"]


def test_without_station_files_every_station_is_accepted_within_the_budget() -> None:
    """A start without configuration keeps working (no station file: nothing to refuse against)."""
    adm = Admission(AdmissionConfig(new_series_per_hour=2), dict)
    kept, refused = adm.admit([r("a"), r("b"), r("c")])
    assert [x.station for x in kept] == ["a", "b"] and [x.reason for x in refused] == ["admission"]


def test_a_cardinality_bomb_creates_no_series_and_a_new_real_station_gets_through(
    mosquitto: Mosquitto, victoria: Victoria, tmp_path: Path
) -> None:
    bomb = 100_000
    tag = f"bomb{free_port()}"
    (tmp_path / "new-station.toml").write_text(NEW_STATION)
    cfg = f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "edge-{tag}"

[influxdb]
url = "{victoria.influx_url}"
org = "bureau"
bucket = "water"
flush_interval_s = 0.2

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "new-station.toml"]

[notify]
urls = ["json://127.0.0.1:{free_port()}/nobody-listens"]
"""
    now = time.time()
    messages = [(0, f"river/{tag}-{i}/cd", b'{"unit": "mg/L", "value": 0.001}') for i in range(bomb)]
    real = [
        (0, f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": now - 60 + k, "value": 0.001}).encode())
        for k, station in enumerate(("xinzhan", "lalang"))
    ]
    svc = ServiceProcess(tmp_path, cfg)
    try:
        svc.start()
        sent = publish(messages + real, mosquitto.url, window=2000, timeout=120)
        svc.wait(lambda: svc.metric("riverwatch_messages_received_total") >= sent, 120, "every message")
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 2, 30, "the real readings written")
        refused = svc.metric('riverwatch_readings_rejected_total{reason="unknown_station"}')
        accepted = svc.metric("riverwatch_readings_accepted_total")
    finally:
        svc.stop()
    bomb_series = victoria.export(f'water_quality_value{{station=~"{tag}-.*"}}')
    new_station = victoria.series_points("water_quality_value", station="xinzhan", parameter="cd")
    print(
        f"\ncardinality bomb: sent {sent}, refused unknown_station {refused:.0f}, accepted {accepted:.0f}, "
        f"bomb series in the database {len(bomb_series)}, new real station stored {len(new_station)}"
    )
    assert refused == bomb
    assert accepted == 2
    assert bomb_series == []
    assert len(new_station) == 1
