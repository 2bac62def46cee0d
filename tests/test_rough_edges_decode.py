"""Issue 17, rough edge 4: unknown keys in a JSON reading were dropped without a word, so a misspelt time key
(`tiemstamp`) silently became the time of receipt. Now: a reading without a time whose unknown key looks like one
is refused (`bad_timestamp`); any other unknown key is taken with a counted warning that names the topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.servers import Mosquitto
from monitor.ingest.decode import decode
from simulators.publish import publish
from tests.service_proc import ServiceProcess

NOW = 1_765_152_000 * 10**9  # 2025-12-08T00:00:00Z


def one(payload: dict[str, object]) -> tuple[list[object], list[str], tuple[str, ...]]:
    got = decode("river/lalang/cd", json.dumps(payload).encode(), NOW)
    return list(got.readings), [f"{r.reason}: {r.detail}" for r in got.rejections], got.warnings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tiemstamp", "2025-12-07T23:00:00Z"),
        ("datetime", 1_765_148_400),
        ("date", "2025-12-07"),
        ("sampled_at", 1_765_148_400),
        ("t", 1_765_148_400),
        ("when", "yesterday"),
        ("sample", "2025-12-07 23:00:00+08:00"),  # not a time's name, but a date-time value
    ],
)
def test_a_time_like_unknown_key_without_a_time_is_refused(key: str, value: object) -> None:
    readings, rejected, _ = one({"value": 0.004, "unit": "mg/L", key: value})
    assert readings == []
    assert rejected == [
        f"bad_timestamp: unknown key {key!r} looks like a time: send the reading's time as ts (or time, timestamp); "
        "refused rather than stored at the time of receipt"
    ]


def test_other_unknown_keys_are_taken_with_a_warning_naming_them() -> None:
    readings, rejected, warnings = one({"value": 0.004, "unit": "mg/L", "battery": 3.3, "counts": 7})
    assert len(readings) == 1 and rejected == []
    assert warnings == (
        "unknown key(s) 'battery', 'counts' ignored (a reading takes value, unit, flag and ts / time / timestamp)",
    )
    # With its own time, a time-like extra key is only warned about: the reading's time is known.
    readings, rejected, warnings = one({"ts": "2025-12-07T23:00:00Z", "value": 0.004, "unit": "mg/L", "date": "x"})
    assert len(readings) == 1 and rejected == [] and "'date'" in warnings[0]
    # The keys a reading takes give no warning; `timestamp` is one of them (read as ts).
    readings, rejected, warnings = one({"timestamp": "2025-12-07T23:00:00Z", "value": 0.004, "unit": "mg/L"})
    assert readings[0].ts_ns == NOW - 3600 * 10**9 and warnings == ()  # type: ignore[attr-defined]


def test_through_the_service_a_misspelt_time_is_refused_and_an_unknown_key_counted(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    svc = ServiceProcess(tmp_path, f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "rough-edges-decode"\n')
    try:
        svc.start()
        publish(
            [
                (0, "river/lalang/cd", b'{"tiemstamp": "2012-01-15T08:00:00+08:00", "value": 0.05, "unit": "mg/L"}'),
                (
                    1,
                    "river/yemao/cd",
                    b'{"ts": "2012-01-15T08:00:00+08:00", "value": 0.001, "unit": "mg/L", "rssi": -71}',
                ),
            ],
            mosquitto.url,
        )
        svc.wait(lambda: svc.metric("riverwatch_messages_received_total") >= 2, 20, "both messages")
        svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= 1, 20, "the reading")
        assert svc.metric('riverwatch_readings_rejected_total{reason="bad_timestamp"}') == 1
        assert svc.metric("riverwatch_readings_accepted_total") == 1
        assert svc.metric('riverwatch_reading_warnings_total{why="unknown_key"}') == 1
        out = svc.output()
        assert "rejected payload on topic 'river/lalang/cd': bad_timestamp: unknown key 'tiemstamp'" in out, out
        assert "reading on topic 'river/yemao/cd' taken with a warning: unknown key(s) 'rssi' ignored" in out, out
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
