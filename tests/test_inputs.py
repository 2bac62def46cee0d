"""Inputs users send that were accepted wrongly or refused needlessly (issue 19 item 4), at the decoder and the
config: units (missing, implied, converted), time keys, epoch magnitudes, SenML's draft form, signed parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, load_config
from monitor.domain import hj212
from monitor.domain.params import SHIPPED, Parameter
from monitor.ingest.decode import decode
from monitor.ingest.hj212_decode import decode_packet

NOW = 1_765_000_000 * 10**9  # 2025-12-06
TS = 1_700_000_000  # 2023-11-14T22:13:20Z


def one(topic: str, doc: Any, **kw: Any) -> tuple[list[tuple[str, float, int]], list[tuple[str, str]]]:
    d = decode(topic, json.dumps(doc).encode(), NOW, **kw)
    return [(r.parameter, r.value, r.ts_ns) for r in d.readings], [(r.reason, r.detail) for r in d.rejections]


# -- 1. a reading without a unit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [{"value": 0.004}, {"value": 0.004, "unit": ""}, {"value": 0.004, "unit": " "}])
def test_a_reading_without_a_unit_is_refused_naming_the_parameter_and_the_fix(doc: dict[str, Any]) -> None:
    readings, rejected = one("river/lalang/cd", doc)
    assert readings == []
    [(reason, detail)] = rejected
    assert reason == "unknown_unit"
    assert "cd has no unit" in detail and "[mqtt].implied_units" in detail


def test_a_senml_record_without_u_or_bu_is_refused_its_siblings_taken() -> None:
    pack = [{"bt": TS, "n": "cd", "v": 0.004}, {"n": "pb", "u": "ug/L", "v": 3}, {"n": "ph", "v": 7.1}]
    d = decode("river/lalang", json.dumps(pack).encode(), NOW)
    assert [(r.parameter, r.value) for r in d.readings] == [("pb", pytest.approx(0.003)), ("ph", 7.1)]
    assert [(r.reason, r.parameter) for r in d.rejections] == [("unknown_unit", "cd")]


def test_a_parameter_without_a_unit_needs_none() -> None:
    assert one("river/lalang/ph", {"value": 7.2, "ts": TS})[0] == [("ph", 7.2, TS * 10**9)]


def test_implied_units_give_a_unit_less_reading_its_loggers_unit() -> None:
    implied = {"cd": "ug/L"}
    assert one("river/lalang/cd", {"value": 4, "ts": TS}, implied_units=implied)[0] == [("cd", 0.004, TS * 10**9)]
    # A unit sent wins over the implied one; parameters not named stay refused.
    assert one("river/lalang/cd", {"value": 0.004, "unit": "mg/L"}, implied_units=implied)[0][0][1] == 0.004
    assert one("river/lalang/pb", {"value": 4}, implied_units=implied)[1][0][0] == "unknown_unit"
    # The cache of resolved units is per implied table: the same payload without it is refused again.
    assert one("river/lalang/cd", {"value": 4})[1][0][0] == "unknown_unit"


def _config(tmp_path: Path, mqtt: str) -> Any:
    path = tmp_path / "riverwatch.toml"
    path.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n{mqtt}\n')
    return load_config(path)


def test_implied_units_config_reads_names_as_ids(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'implied_units = { cadmium = "µg/L", w20120 = "mg/L", mc_lr = "ug/L" }')
    assert dict(cfg.mqtt.implied_units) == {"cd": "µg/L", "pb": "mg/L", "mc_lr": "ug/L"}
    assert dict(_config(tmp_path, "").mqtt.implied_units) == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('implied_units = { cd = "furlong" }', "[mqtt].implied_units.cd: unknown unit 'furlong' for cd"),
        ('implied_units = { cd = "" }', "[mqtt].implied_units.cd: expected the unit"),
        ("implied_units = { cd = 1 }", "[mqtt].implied_units.cd: expected the unit"),
        ('implied_units = { ph = "pH" }', "[mqtt].implied_units.ph: ph has no unit"),
        ('implied_units = { cd = "mg/L", cadmium = "mg/L" }', "[mqtt].implied_units.cadmium: cd is named twice"),
        ('implied_units = ["cd"]', "[mqtt].implied_units: expected a table"),
    ],
)
def test_implied_units_config_errors_name_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as e:
        _config(tmp_path, line)
    assert message in str(e.value)


# -- 2. time and timestamp ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["time", "timestamp"])
def test_time_and_timestamp_are_read_as_ts(key: str) -> None:
    for value in (TS, "2023-11-14T22:13:20Z", TS * 1000):
        assert one("river/lalang/cd", {key: value, "value": 0.001, "unit": "mg/L"})[0] == [("cd", 0.001, TS * 10**9)]
    assert one("river/lalang/cd", {key: "yesterday", "value": 0.001, "unit": "mg/L"})[1][0][0] == "bad_timestamp"


def test_two_time_keys_with_one_time_are_taken_and_with_two_refused_naming_both() -> None:
    same = {"ts": TS, "time": "2023-11-14T22:13:20+00:00", "value": 0.001, "unit": "mg/L"}
    assert one("river/lalang/cd", same)[0] == [("cd", 0.001, TS * 10**9)]
    readings, [(reason, detail)] = one("river/lalang/cd", {"ts": TS, "time": TS + 60, "value": 0.001, "unit": "mg/L"})
    assert readings == [] and reason == "bad_timestamp"
    assert "ts=1700000000 and time=1700000060 are different times" in detail


# -- 3. epoch numbers by magnitude -------------------------------------------------------------------------------

MARCH_1973_NS = 10**11 * 10**9 // 1000  # 1e11 ms = 1e8 s = 1973-03-03T09:46:40Z


@pytest.mark.parametrize(
    ("ts", "ns"),
    [
        (TS, TS * 10**9),  # seconds
        (TS + 0.25, TS * 10**9 + 250_000_000),
        (10**11, MARCH_1973_NS),  # the first millisecond value
        (TS * 1000 + 7, TS * 10**9 + 7_000_000),  # milliseconds, exactly
        (10**14, MARCH_1973_NS),  # the first microsecond value
        (TS * 10**6 + 3, TS * 10**9 + 3000),
        (10**17, MARCH_1973_NS),  # the first nanosecond value
        (TS * 10**9 + 1, TS * 10**9 + 1),  # nanoseconds, exactly
        (0, 0),
    ],
)
def test_epoch_numbers_are_read_by_magnitude(ts: float, ns: int) -> None:
    assert one("river/lalang/cd", {"ts": ts, "value": 0.001, "unit": "mg/L"})[0] == [("cd", 0.001, ns)]


@pytest.mark.parametrize("ts", [10**11 - 1, 2**33, 10**14 - 1, 10**17 - 1, 2**33 * 10**9, -1, -(10**12)])
def test_epoch_numbers_out_of_range_for_their_magnitude_are_refused(ts: int) -> None:
    readings, [(reason, detail)] = one("river/lalang/cd", {"ts": ts, "value": 0.001, "unit": "mg/L"})
    assert readings == [] and reason == "bad_timestamp"
    assert ("after 2242" in detail and "by its magnitude" in detail) or "before 1970" in detail


def test_senml_times_stay_seconds_and_milliseconds_are_refused_saying_so() -> None:
    ms = decode("river/lalang", json.dumps([{"bt": TS * 1000, "n": "cd", "u": "mg/L", "v": 1}]).encode(), NOW)
    assert ms.readings == []
    assert ms.rejections[0].reason == "bad_timestamp" and "RFC 8428" in ms.rejections[0].detail
    s = decode("river/lalang", json.dumps([{"bt": TS, "n": "cd", "u": "mg/L", "v": 1, "t": 60}]).encode(), NOW)
    assert [r.ts_ns for r in s.readings] == [(TS + 60) * 10**9]


# -- 4. units converted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "unit", "expected"),
    [
        ("cd", 0.004, "ppm", 0.004),
        ("cd", 4, "ppb", 0.004),
        ("cd", 4, "PPB", 0.004),
        ("cd", 0.000004, "kg/m3", 0.004),
        ("cd", 0.000004, "kg/m³", 0.004),
        ("cd", 0.000004, "g/L", 0.004),
        ("cd", 4, "μg/L", 0.004),  # Greek mu
        ("cd", 4, "µg/L", 0.004),  # micro sign
        ("chla", 0.004, "ppm", 4.0),  # chlorophyll's unit is µg/L
        ("cond", 0.05, "S/m", 500.0),
        ("cond", 0.5, "mS/cm", 500.0),
        ("cond", 500, "µS/cm", 500.0),
        ("cond", 50, "mS/m", 500.0),
        ("cond", 0.5, "dS/m", 500.0),
        ("temp", 12.5, "℃", 12.5),
        ("flow", 3.6, "m³/h", 0.001),
    ],
)
def test_units_are_converted_to_the_catalogue_unit(parameter: str, value: float, unit: str, expected: float) -> None:
    [(pid, got, _)] = one(f"river/lalang/{parameter}", {"value": value, "unit": unit})[0]
    assert pid == parameter and got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("parameter", "unit"),
    [("cd", "ppt"), ("cd", "mol/L"), ("cond", "ppm"), ("temp", "°F"), ("ph", "mg/L"), ("cd", "S/m")],
)
def test_unknown_units_are_refused_naming_the_unit(parameter: str, unit: str) -> None:
    readings, [(reason, detail)] = one(f"river/lalang/{parameter}", {"value": 1, "unit": unit})
    assert readings == [] and reason == "unknown_unit" and repr(unit) in detail


# -- 5. SenML's draft form ---------------------------------------------------------------------------------------


def test_senml_draft_object_form_is_read_as_a_pack() -> None:
    doc = {"bn": "sonde-7/", "bt": TS, "bu": "ug/L", "ver": 1, "e": [{"n": "cd", "v": 4}, {"n": "pb", "v": 9, "t": 60}]}
    d = decode("river/lalang", json.dumps(doc).encode(), NOW)
    assert [(r.station, r.parameter, r.value, r.ts_ns) for r in d.readings] == [
        ("lalang", "cd", pytest.approx(0.004), TS * 10**9),
        ("lalang", "pb", pytest.approx(0.009), (TS + 60) * 10**9),
    ]
    assert d.rejections == []


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"e": {"n": "cd", "v": 1}}, '"e" must be an array'),
        ({"e": []}, "empty e array"),
        ({"e": [{"n": "cd", "v": 1}], "sensor": "x"}, "unknown top-level key(s) sensor"),
        ({"e": [{"n": "cd", "bv": True}]}, "bv 'True' is not a number"),  # the draft's boolean
    ],
)
def test_senml_draft_form_mistakes_are_refused_saying_what(doc: dict[str, Any], says: str) -> None:
    d = decode("river/lalang", json.dumps(doc).encode(), NOW)
    assert d.readings == [] and says in d.rejections[0].detail


# -- 6. one definition of which parameters may be negative -------------------------------------------------------


def test_both_decoders_take_negative_values_of_the_same_parameters() -> None:
    signed = sorted(p.id for p in SHIPPED.values() if p.signed)
    assert signed == ["orp", "temp"]
    lookup = {p.hj212: p.id for p in SHIPPED.values() if p.hj212}
    for code, pid in lookup.items():
        unit = SHIPPED[pid].unit
        json_ok = bool(one(f"river/lalang/{pid}", {"value": -1, "unit": unit})[0])
        segment = (
            f"QN=20231115061320000;ST=21;CN=2011;PW=123456;MN=X1;Flag=5;CP=&&DataTime=20231115061320;{code}-Rtd=-1&&"
        )
        packet = hj212.parse_segment(segment)
        hj_ok = bool(decode_packet(packet, "lalang", now_ns=NOW).readings)
        assert json_ok == hj_ok == (pid in signed), pid


def test_a_declared_parameter_says_whether_it_is_signed() -> None:
    level = Parameter("wlevel", "water level", "水位", "m", quantity="state")
    load = Parameter("load", "sediment load", "输沙量", "mg/L", quantity="state", signed=False)
    catalogue = SHIPPED.extended([level, load])
    assert [r.value for r in decode("river/s1/wlevel", b'{"value": -2, "unit": "m"}', NOW, catalogue=catalogue)[0]] == [
        -2.0
    ]
    refused = decode("river/s1/load", b'{"value": -2, "unit": "mg/L"}', NOW, catalogue=catalogue).rejections
    assert [r.reason for r in refused] == ["negative"]
