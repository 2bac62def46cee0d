"""Issue 19 item 4 through the service a user runs: `riverwatch run` on a real mosquitto and VictoriaMetrics, with
a dead-letter file. What each input becomes is read back where a user would look: the database or the dead
letters (with the reason and the key, unit or parameter it names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.servers import Mosquitto, Victoria
from simulators.publish import publish
from tests.service_proc import ServiceProcess

TS = 1_700_000_000  # 2023-11-14T22:13:20Z


def _service(
    tmp_path: Path, mosquitto: Mosquitto, victoria: Victoria, client_id: str, mqtt: str = ""
) -> ServiceProcess:
    return ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "{client_id}"\n{mqtt}\n'
        f'[influxdb]\nurl = "{victoria.influx_url}"\norg = "bureau"\nbucket = "water"\ntoken = "t"\n'
        "flush_interval_s = 0.2\n"
        '[dead_letter]\nfile = "dead.jsonl"\nmax_bytes = 100000\n',
    )


def _msg(topic: str, doc: Any) -> tuple[int, str, bytes]:
    return 0, topic, json.dumps(doc).encode()


def _dead(tmp_path: Path) -> dict[str, list[tuple[str, str]]]:
    """topic -> [(reason, detail)] of the dead letters written so far."""
    path = tmp_path / "dead.jsonl"
    out: dict[str, list[tuple[str, str]]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        rec = json.loads(line)
        out.setdefault(rec["topic"], []).extend((r["reason"], r["detail"]) for r in rec["reasons"])
    return out


def test_inputs_users_send_are_stored_converted_or_dead_lettered_by_name(
    tmp_path: Path, mosquitto: Mosquitto, victoria: Victoria
) -> None:
    st = "inputs-a"
    good = [
        _msg(f"river/{st}/cd", {"time": TS * 1000, "value": 4, "unit": "ppb"}),  # epoch ms under `time`
        _msg(f"river/{st}/cond", {"timestamp": TS * 10**9 + 60 * 10**9, "value": 0.05, "unit": "S/m"}),  # ns
        _msg(f"river/{st}/ph", {"ts": TS + 120, "value": 7.1}),  # pH has no unit
        _msg(f"river/{st}", {"bt": TS + 180, "bu": "mg/L", "e": [{"n": "pb", "v": 0.002}, {"n": "zn", "v": 0.3}]}),
    ]
    bad = [
        _msg(f"river/{st}-nounit/cd", {"ts": TS, "value": 0.004}),
        _msg(f"river/{st}-twotimes/cd", {"ts": TS, "time": TS + 60, "value": 0.004, "unit": "mg/L"}),
        _msg(f"river/{st}-ppt/cd", {"ts": TS, "value": 4, "unit": "ppt"}),
        _msg(f"river/{st}-senmlms", [{"bt": TS * 1000, "n": "cd", "u": "mg/L", "v": 0.001}]),
    ]
    svc = _service(tmp_path, mosquitto, victoria, "inputs-a")
    try:
        svc.start()
        publish(good + bad, mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 5, 30, "5 readings written")
        svc.wait(lambda: len(_dead(tmp_path)) >= 4, 20, "4 dead letters")
        stored = {
            p: victoria.series_points("water_quality_value", station=st, parameter=p)
            for p in ("cd", "cond", "ph", "pb")
        }
        assert stored["cd"] == [(TS * 1000, 0.004)]  # 4 ppb = 0.004 mg/L, at the millisecond time
        assert stored["cond"] == [((TS + 60) * 1000, 500.0)]  # 0.05 S/m = 500 µS/cm
        assert stored["ph"] == [((TS + 120) * 1000, 7.1)]
        assert stored["pb"] == [((TS + 180) * 1000, 0.002)]  # the SenML draft form, read as a pack

        dead = _dead(tmp_path)
        [(reason, detail)] = dead[f"river/{st}-nounit/cd"]
        assert reason == "unknown_unit" and "cd has no unit" in detail and "[mqtt].implied_units" in detail
        [(reason, detail)] = dead[f"river/{st}-twotimes/cd"]
        assert reason == "bad_timestamp" and "ts=1700000000 and time=1700000060" in detail
        [(reason, detail)] = dead[f"river/{st}-ppt/cd"]
        assert reason == "unknown_unit" and "'ppt'" in detail
        [(reason, detail)] = dead[f"river/{st}-senmlms"]
        assert reason == "bad_timestamp" and "RFC 8428" in detail
        assert svc.metric("riverwatch_readings_accepted_total") == 5
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_implied_units_let_a_logger_that_sends_no_unit_through_in_its_unit(
    tmp_path: Path, mosquitto: Mosquitto, victoria: Victoria
) -> None:
    st = "inputs-b"
    svc = _service(tmp_path, mosquitto, victoria, "inputs-b", 'implied_units = { cd = "ug/L" }')
    try:
        svc.start()
        publish(
            [_msg(f"river/{st}/cd", {"ts": TS, "value": 4}), _msg(f"river/{st}/pb", {"ts": TS, "value": 4})],
            mosquitto.url,
        )
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= 1, 30, "1 reading written")
        svc.wait(lambda: len(_dead(tmp_path)) >= 1, 20, "1 dead letter")
        assert victoria.series_points("water_quality_value", station=st, parameter="cd") == [(TS * 1000, 0.004)]
        [(reason, detail)] = _dead(tmp_path)[f"river/{st}/pb"]  # only cd is implied
        assert reason == "unknown_unit" and "pb has no unit" in detail
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
