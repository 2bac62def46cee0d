"""Decoding as a sensor integrator sees it: what is accepted, converted, and why anything is rejected."""

from __future__ import annotations

import json

import pytest

from monitor.domain.params import SHIPPED, Parameter, resolve, unit_factor
from monitor.domain.reading import Reading
from monitor.domain.rejection import REASONS
from monitor.ingest.decode import MAX_PAYLOAD, decode

NOW = 1_700_000_000 * 10**9
TS_2012 = 1326585600 * 10**9  # 2012-01-15T08:00:00+08:00


def one(topic: str, doc: object) -> tuple[list[Reading], list[str]]:
    d = decode(topic, json.dumps(doc).encode(), NOW)
    return d.readings, [r.reason for r in d.rejections]


def test_single_reading_with_offset_timestamp() -> None:
    readings, rejected = one("river/lalang/cd", {"ts": "2012-01-15T08:00:00+08:00", "value": 0.041, "unit": "mg/L"})
    assert rejected == []
    assert readings == [Reading("lalang", "cd", TS_2012, 0.041, None)]


def test_epoch_seconds_and_missing_ts_means_receipt_time() -> None:
    assert one("river/s1/cd", {"unit": "mg/L", "ts": 1326585600, "value": 0.001})[0][0].ts_ns == TS_2012
    assert one("river/s1/cd", {"unit": "mg/L", "value": 0.001})[0][0].ts_ns == NOW


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cadmium", "cd"),
        ("w20115", "cd"),
        ("Cadmium", "cd"),
        ("w01001", "ph"),
        ("ammonia nitrogen", "nh3n"),
        ("cd", "cd"),
    ],
)
def test_aliases(name: str, expected: str) -> None:
    assert resolve(name) == expected
    readings, _ = one(f"river/s1/{name}", {"unit": "" if expected == "ph" else "mg/L", "value": 7.0})
    assert readings[0].parameter == expected


@pytest.mark.parametrize(
    ("unit", "value", "mg_l"),
    [
        ("ug/L", 41, 0.041),
        ("µg/L", 41, 0.041),
        ("μg/L", 41, 0.041),
        ("ng/L", 41000, 0.041),
        ("g/m3", 0.041, 0.041),
        ("mg/L", 0.041, 0.041),
    ],
)
def test_units_convert_to_mg_per_litre(unit: str, value: float, mg_l: float) -> None:
    readings, rejected = one("river/s1/cd", {"value": value, "unit": unit})
    assert rejected == []
    assert readings[0].value == pytest.approx(mg_l)


def test_ph_has_no_unit_and_a_mass_unit_is_rejected_for_it() -> None:
    assert unit_factor("ph", None) == 1.0
    assert one("river/s1/ph", {"value": 7.2})[0][0].value == 7.2
    assert one("river/s1/ph", {"value": 7.2, "unit": "mg/L"})[1] == ["unknown_unit"]


def test_flag_is_kept() -> None:
    readings, _ = one("river/s1/cd", {"unit": "mg/L", "value": 0.002, "flag": "maintenance"})
    assert readings[0].flag == "maintenance"


@pytest.mark.parametrize(
    ("topic", "doc", "reason"),
    [
        ("river/s1/cd", {"value": 1, "unit": "furlongs"}, "unknown_unit"),
        ("river/s1/cd", {"unit": "mg/L", "value": "0.04"}, "not_numeric"),
        ("river/s1/cd", {"unit": "mg/L", "value": True}, "not_numeric"),
        ("river/s1/cd", {"unit": "mg/L", "value": None}, "not_numeric"),
        ("river/s1/cd", {"unit": "mg/L", "value": -0.001}, "negative"),
        ("river/s1/unobtainium", {"value": 1}, "unknown_parameter"),
        ("river/s1/cd", {"unit": "mg/L", "value": 1, "ts": "2012-01-15T08:00:00"}, "bad_timestamp"),
        ("river/s1/cd", {"unit": "mg/L", "value": 1, "ts": "yesterday"}, "bad_timestamp"),
        ("river/s1/cd", {"unit": "mg/L", "value": 1, "ts": 1e30}, "bad_timestamp"),
        (
            "river/s1/cd",
            {"unit": "mg/L", "value": 1, "ts": 4102444800},
            "future_timestamp",
        ),  # 2100: a broken sensor clock
        ("river/s1/cd", {"unit": "mg/L", "value": 1, "flag": 7}, "bad_flag"),
        ("cd", {"unit": "mg/L", "value": 1}, "bad_topic"),
        ("river/s1/cd", [], "malformed"),
        ("river/s1/cd", "0.04", "malformed"),
    ],
)
def test_rejections_are_named(topic: str, doc: object, reason: str) -> None:
    readings, rejected = one(topic, doc)
    assert readings == []
    assert rejected == [reason]
    assert reason in REASONS


def test_non_finite_and_oversized_and_garbage() -> None:
    assert decode("river/s1/cd", b'{"unit": "mg/L", "value": NaN}', NOW).rejections[0].reason == "not_finite"
    assert decode("river/s1/cd", b'{"unit": "mg/L", "value": Infinity}', NOW).rejections[0].reason == "not_finite"
    assert decode("river/s1/cd", b'{"unit": "mg/L", "value": 1e999}', NOW).rejections[0].reason == "not_finite"
    assert decode("river/s1/cd", b"\xff\xfe garbage", NOW).rejections[0].reason == "malformed"
    big = b'{"value": 1, "pad": "' + b"x" * MAX_PAYLOAD + b'"}'
    assert decode("river/s1/cd", big, NOW).rejections[0].reason == "too_large"
    assert decode("river/s1/cd", b"[" * 100_000 + b"]" * 100_000, NOW).rejections[0].reason == "malformed"


def test_negative_temperature_is_a_reading() -> None:
    assert one("river/s1/temp", {"value": -0.5, "unit": "°C"})[0][0].value == -0.5


def test_senml_pack_with_base_time_units_and_a_bad_record() -> None:
    pack = [
        {"bn": "", "bt": 1326585600, "n": "cd", "u": "ug/L", "v": 410},
        {"n": "ph", "v": 7.5, "t": 60},
        {"n": "w01009", "u": "mg/L", "v": 8.1},
        {"n": "unobtainium", "v": 1},
        {"n": "pb", "u": "mg/L", "vs": "high"},
    ]
    d = decode("river/lalang", json.dumps(pack).encode(), NOW)
    assert [(r.parameter, r.value, r.ts_ns) for r in d.readings] == [
        ("cd", pytest.approx(0.41), TS_2012),
        ("ph", 7.5, TS_2012 + 60 * 10**9),
        ("do", 8.1, TS_2012),
    ]
    assert sorted(r.reason for r in d.rejections) == ["not_numeric", "unknown_parameter"]
    assert all(r.station == "lalang" for r in d.readings)


def test_senml_base_unit_and_relative_time() -> None:
    d = decode("river/s1", json.dumps([{"bu": "ug/L", "n": "cd", "v": 5, "t": -10}]).encode(), NOW)
    assert d.readings[0].value == pytest.approx(0.005)
    assert d.readings[0].ts_ns == NOW - 10 * 10**9


def test_station_with_control_characters_is_rejected_but_spaces_are_kept() -> None:
    assert one("river/bad\nstation/cd", {"unit": "mg/L", "value": 1})[1] == ["bad_station"]
    assert one("river/trailing\\/cd", {"unit": "mg/L", "value": 1})[1] == ["bad_station"]
    assert one("river/Lalang dam,km=0/cd", {"unit": "mg/L", "value": 1})[0][0].station == "Lalang dam,km=0"


def test_station_and_parameter_are_the_last_topic_levels_for_any_root_depth() -> None:
    readings, _ = one("bureau/guangxi/river/lalang/cd", {"unit": "mg/L", "value": 0.001})
    assert (readings[0].station, readings[0].parameter) == ("lalang", "cd")


def test_below_detection_limit_convention_is_kept_as_the_limit_with_a_flag() -> None:
    readings, rejected = one(
        "river/s1/cd", {"unit": "mg/L", "value": "0.00005L"}
    )  # the Chinese reports' "below 0.00005"
    assert rejected == []
    assert (readings[0].value, readings[0].flag) == (0.00005, "<DL")
    readings, _ = one("river/s1/cd", {"value": "<0.1", "unit": "ug/L"})
    assert readings[0].value == pytest.approx(0.0001) and readings[0].flag == "<DL"
    assert one("river/s1/cd", {"unit": "mg/L", "value": "high"})[1] == ["not_numeric"]


def test_the_short_json_path_agrees_with_json_loads() -> None:
    """decode parses with a cheaper call than json.loads; whatever it cannot take whole, json.loads decides."""
    import json

    from monitor.ingest.decode import _json

    cases = [
        b'{"value": 1}',
        b'{"value": 1}  \n',
        b'  {"value": 1}',
        b'{"value": 1} x',
        b'{"value": 1}{}',
        b'[{"n": "cd", "v": 1}]',
        '{"value": 1}'.encode("utf-16-le"),
        '{"value": 1}'.encode("utf-8-sig"),
        b'{"value": NaN}',
        b'{"value": 1',
        b'{"a": "\xff"}',
        b"",
        b"null",
        b'{"\\u00e9": 1}',
    ]
    for payload in cases:
        try:
            expected: object = json.loads(payload)
        except ValueError as e:
            expected = type(e)
        try:
            got: object = _json(payload)
        except ValueError as e:
            got = type(e)
        assert repr(got) == repr(expected), payload


def test_a_parameter_a_threshold_file_declares_is_decoded_with_that_catalogue() -> None:
    """A station measuring something new (here the water level against a datum, which may be negative) needs no
    code change."""
    level = Parameter("wlevel", "water level", "水位", "m", quantity="state", units=(("cm", 0.01),))
    catalogue = SHIPPED.extended([level])
    d = decode("river/s1/water level", b'{"value": -12, "unit": "cm"}', NOW, catalogue=catalogue)
    assert [(r.parameter, r.value) for r in d.readings] == [("wlevel", -0.12)]
    assert [r.reason for r in decode("river/s1/wlevel", b'{"value": 1}', NOW).rejections] == ["unknown_parameter"]
    assert decode("river/s1/orp", b'{"value": -150, "unit": "mV"}', NOW).readings[0].value == -150.0  # signed
    # The shipped parameters keep their rules under any catalogue: a negative pH is still a fault.
    assert [r.reason for r in decode("river/s1/ph", b'{"value": -1}', NOW, catalogue=catalogue).rejections] == [
        "negative"
    ]
