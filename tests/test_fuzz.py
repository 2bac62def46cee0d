"""Property-based fuzzing of the decoder (hypothesis), over 10,000 cases in total, deterministic for CI.

Whatever arrives on the broker, `decode` must not raise; every rejection carries a reason from `REASONS`;
every accepted reading is a valid reading (known parameter, finite value, sign, station id, timestamp
range); and every accepted reading becomes exactly one line-protocol point whose tags parse back to the
same station and parameter, read by a small reference parser with both escape conventions that real
databases use (InfluxDB 1.x: a special character is escaped when a backslash precedes it;
VictoriaMetrics: when an odd run of backslashes precedes it).
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.domain.params import PARAMETERS
from monitor.domain.reading import Reading
from monitor.domain.rejection import REASONS
from monitor.ingest.decode import MAX_FUTURE_NS, MAX_ID_LEN, Decoded, decode
from monitor.store.influx import BadBatchError, EmbeddedStore, _split_line, reading_line

NOW = 1_700_000_000 * 10**9  # 2023-11-14
DAY_NS = 24 * 3600 * 10**9

# Deterministic: CI runs the same cases every time, no example database.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def fuzz(n: int) -> settings:
    return settings(FUZZ, max_examples=n)


# -- the properties -------------------------------------------------------------------------------------------


def check(topic: str, payload: bytes, now: int = NOW) -> Decoded:
    """Decode and assert every property; returns the result for further, test-specific checks."""
    d = decode(topic, payload, now)  # never raises: an exception here fails the test
    assert isinstance(d.readings, list) and isinstance(d.rejections, list)
    assert d.readings or d.rejections, f"message silently dropped: {topic!r} {payload[:200]!r}"
    for rej in d.rejections:
        assert rej.reason in REASONS, rej
        assert isinstance(rej.detail, str) and rej.detail
    for r in d.readings:
        check_reading(r, now)
        check_line(r)
    return d


def check_reading(r: Reading, now: int) -> None:
    assert r.parameter in PARAMETERS, r
    assert isinstance(r.value, float) and math.isfinite(r.value), r
    assert r.value >= 0 or r.parameter in ("temp", "orp"), r  # only temperature and redox may be negative
    assert isinstance(r.station, str) and r.station and len(r.station) <= MAX_ID_LEN, r
    assert r.station.isprintable() and not r.station.endswith("\\"), r
    assert isinstance(r.ts_ns, int) and 0 <= r.ts_ns <= now + DAY_NS, r
    assert r.flag is None or (isinstance(r.flag, str) and r.flag.isprintable()), r


# -- a tiny reference line-protocol parser ---------------------------------------------------------------------

_TAG_SPECIAL = " ,="


def _escaped(s: str, i: int, convention: str) -> bool:
    """Is s[i] escaped? "influx1": the previous character is a backslash. "pairs": an odd run of them."""
    run = 0
    while i - run - 1 >= 0 and s[i - run - 1] == "\\":
        run += 1
    return run > 0 if convention == "influx1" else run % 2 == 1


def _split(s: str, sep: str, convention: str, quotes: bool) -> list[str]:
    parts, start, quoted = [], 0, False
    for i, c in enumerate(s):
        # Inside a string field both servers skip a backslash and the character after it (InfluxDB 1.x's
        # scanFieldValue; tests/test_store_influxdb.py checks it on the real server).
        if _escaped(s, i, "pairs" if quoted else convention):
            continue
        if quotes and c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _unescape_tag(s: str, convention: str) -> str:
    if convention == "influx1":  # InfluxDB 1.x models.unescapeTag: only these three pairs
        return s.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")
    out, i = [], 0  # VictoriaMetrics: a backslash before a special character or a backslash escapes it
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in _TAG_SPECIAL + "\\":
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _unescape_string(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in '\\"':
            out.append(s[i + 1])
            i += 2
        elif s[i] == "\\" and i + 1 < len(s) and s[i + 1] == "n":
            out.append("\n")
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_line(line: str, convention: str) -> tuple[str, dict[str, str], dict[str, str], str]:
    """(measurement, tags, raw fields, timestamp) of one line; asserts it is exactly one well-formed point."""
    assert "\n" not in line, line
    # Quotes open strings only in the field set; the series key (measurement and tags) takes them literally.
    key_end = _split(line, " ", convention, quotes=False)[0]
    rest = line[len(key_end) + 1 :]
    rest_parts = _split(rest, " ", convention, quotes=True)
    parts = [key_end, *rest_parts]
    assert len(parts) == 3, f"{convention}: {len(parts)} space-separated parts in {line!r}"
    key, fields, ts = parts
    measurement, *tag_pairs = _split(key, ",", convention, quotes=False)
    tags: dict[str, str] = {}
    for pair in tag_pairs:
        kv = _split(pair, "=", convention, quotes=False)
        assert len(kv) == 2, f"{convention}: tag {pair!r} is not key=value in {line!r}"
        k, v = (_unescape_tag(x, convention) for x in kv)
        assert k not in tags, f"{convention}: duplicate tag {k!r} in {line!r}"
        tags[k] = v
    field_map: dict[str, str] = {}
    for pair in _split(fields, ",", convention, quotes=True):
        k, sep, v = pair.partition("=")
        assert sep and k, f"{convention}: field {pair!r} in {line!r}"
        field_map[k] = v
    return measurement, tags, field_map, ts


def check_line(r: Reading) -> None:
    line = reading_line(r)
    for convention in ("influx1", "pairs"):
        measurement, tags, fields, ts = parse_line(line, convention)
        assert measurement == "water_quality"
        assert tags == {"parameter": r.parameter, "station": r.station}, f"{convention}: {line!r} -> {tags}"
        assert float(fields.pop("value")) == r.value
        if r.flag:
            raw = fields.pop("flag")
            assert raw.startswith('"') and raw.endswith('"') and len(raw) >= 2, line
            assert _unescape_string(raw[1:-1]) == r.flag
        assert fields == {}, line
        assert ts == str(r.ts_ns)


# -- strategies ------------------------------------------------------------------------------------------------


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
        max_leaves=max_leaves,
    )


PARAM_NAMES = sorted(
    {
        *PARAMETERS,
        *(p.name for p in PARAMETERS.values()),
        *(p.hj212 for p in PARAMETERS.values() if p.hj212),
        "Cadmium",
        " CD ",
        "ammonia",
        "temperature",
    }
)
UNITS = [
    "mg/L",
    "ug/L",
    "µg/L",
    "μg/L",
    "ng/L",
    "g/m3",
    "g/m³",
    "MG/L",
    "",
    "°C",
    "C",
    "degC",
    "Cel",
    "µS/cm",
    "mS/cm",
    "mS/m",
    "NTU",
    "FNU",
    "MPN/L",
    "pH",
    "furlongs",
]
NASTY_CHARS = " ,=\"\\'\t\n\r\x00\x7f\u200f\u202e\u2028\u00a0\u3000\ufeff#+/中文站点🌊💧🏳️‍🌈ﷺ\u0301"

param_names = st.sampled_from(PARAM_NAMES) | st.text(max_size=12)
units = st.sampled_from(UNITS) | st.text(max_size=6)
station_ids = (
    st.sampled_from(
        [
            "lalang",
            "Lalang dam",
            "km,12",
            "a=b",
            'quote"d',
            "back\\slash",
            "a\\ b",
            "a\\,b",
            "x y,station=evil z=1",
            "trailing\\",
            "a\\\\",
            "中文站点",
            "محطة",
            "🌊",
            "",
            "s" * 129,
            "s" * 128,
            "nul\x00",
            "rtl\u202eevil",
            "\\",
            "\\\\ x",
        ]
    )
    | st.text(alphabet=st.sampled_from(NASTY_CHARS) | st.characters(), max_size=20)
    | st.text(alphabet=st.sampled_from(NASTY_CHARS + "ab"), min_size=1, max_size=8)
    | st.text(alphabet=st.sampled_from(" ,=\"\\'ab中🌊"), min_size=1, max_size=10)
)  # printable
good_values = st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(0, 10**6)
any_json = json_values()
small_json = json_values(max_leaves=3)


def offsets() -> st.SearchStrategy[timezone]:
    return st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


rfc3339 = st.builds(
    lambda d, tz, sep, frac: d.replace(tzinfo=tz).isoformat(sep=sep, timespec=frac),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets(),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
zulu = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
)


def mangle(s: str, data: st.DataObject) -> str:
    """Malformed RFC 3339: drop, duplicate or replace one character, or cut the string."""
    if not s:
        return s
    i = data.draw(st.integers(0, len(s) - 1))
    op = data.draw(st.sampled_from(["drop", "dup", "replace", "cut"]))
    c = data.draw(st.sampled_from(list("0123456789-:+TZ.x ١٢\x00")))
    return {"drop": s[:i] + s[i + 1 :], "dup": s[:i] + s[i] + s[i:], "replace": s[:i] + c + s[i + 1 :], "cut": s[:i]}[
        op
    ]


timestamps = st.one_of(
    rfc3339,
    zulu,
    st.none(),
    st.booleans(),
    st.text(max_size=30),
    st.integers(),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.floats(0, 2**34),
    st.sampled_from(
        [
            "2012-01-15T08:00:00+08:00",
            "2012-01-15T08:00:00",
            "2012-01-15",
            "2012-01-15T08:00:00+25:00",
            "2012-02-30T08:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "1969-12-31T23:59:59Z",
            "2012-W03-1T08:00:00Z",
            "2012-01-15T08:00:00.123456789Z",
            "+2012-01-15T08:00:00Z",
            "２０１２-01-15T08:00:00Z",
            "NaN",
            "1e400",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


# -- 1. anything at all ----------------------------------------------------------------------------------------


@fuzz(2500)
@given(topic=st.text(max_size=60), payload=st.binary(max_size=600), now=st.integers(0, 2**33 * 10**9))
def test_random_bytes_never_crash(topic: str, payload: bytes, now: int) -> None:
    check(topic, payload, now)


@fuzz(1300)
@given(topic=st.sampled_from(["river/s1/cd", "river/s1", "s1", "", "river/s1/unknown"]), doc=json_values(16))
def test_random_json_documents(topic: str, doc: Any) -> None:
    check(topic, json.dumps(doc).encode())  # allow_nan: NaN and Infinity literals are in the text


@fuzz(300)
@given(
    depth=st.integers(1, 200_000),
    opener=st.sampled_from(["[", '{"a":', '[{"v":', '{"value":']),
    topic=st.sampled_from(["river/s1/cd", "river/s1"]),
)
def test_deep_nesting(depth: int, opener: str, topic: str) -> None:
    closer = {"[": "]", '{"a":': "}", '[{"v":': "}]", '{"value":': "}"}[opener]
    payload = (opener * depth + "1" + closer * depth).encode()
    d = check(topic, payload)
    if len(payload) > 256 * 1024:
        assert [r.reason for r in d.rejections] == ["too_large"]


# -- 2. single readings: every field of every type ---------------------------------------------------------------


@fuzz(1800)
@given(
    station=station_ids,
    param=param_names,
    value=good_values | small_json,
    unit=st.none() | units | small_json,
    ts=timestamps,
    flag=st.none() | st.sampled_from(["maintenance", "calibration", "suspect"]) | small_json,
    root=st.sampled_from(["river", "a/b/c", "", "bureau/广西/river"]),
    keys=st.sets(st.sampled_from(["value", "unit", "ts", "flag"])),
)
def test_single_reading_any_field_any_type(
    station: str, param: str, value: Any, unit: Any, ts: Any, flag: Any, root: str, keys: set[str]
) -> None:
    doc = {k: v for k, v in {"value": value, "unit": unit, "ts": ts, "flag": flag}.items() if k in keys}
    topic = f"{root}/{station}/{param}"
    d = check(topic, json.dumps(doc).encode())
    if d.readings:
        (r,) = d.readings
        assert r.station == topic.split("/")[-2]  # never a different series than the topic names


@fuzz(900)
@given(data=st.data(), param=st.sampled_from(sorted(PARAMETERS)))
def test_huge_and_odd_numbers_as_raw_json(data: st.DataObject, param: str) -> None:
    mantissa = data.draw(
        st.sampled_from(
            [
                "0",
                "1",
                "-1",
                "0.041",
                "-0",
                "123456789012345678901234567890",
                "9" * 400,
                "9" * 5000,
                "1" + "0" * 308,
                "2.2250738585072014",
                "4.9",
                "NaN",
                "Infinity",
                "-Infinity",
                "1.7976931348623157",
            ]
        )
    )
    exponent = data.draw(st.sampled_from(["", "e308", "E309", "e-324", "e-400", "e400", "e+0", "e-5"]))
    number = mantissa if mantissa.lstrip("-").isalpha() else mantissa + exponent
    field = data.draw(st.sampled_from(["value", "ts"]))
    payload = (
        f'{{"ts": {number}, "value": 1, "unit": "mg/L"}}' if field == "ts" else f'{{"unit": "mg/L", "value": {number}}}'
    ).encode()
    check(f"river/s1/{param}", payload)
    senml = f'[{{"n": "{param}", "v": {number}}}, {{"n": "{param}", "v": 1, "t": {number}}}]'.encode()
    d = check("river/s1", senml)
    if "9" * 4301 not in number:  # Python's int limit (4300 digits) makes the whole text malformed JSON
        assert len(d.readings) + len(d.rejections) == 2  # a bad record rejects itself only


@fuzz(1800)
@given(ts=timestamps, now=st.integers(0, 2**33 * 10**9), data=st.data())
def test_timestamps_far_past_future_and_malformed(ts: Any, now: int, data: st.DataObject) -> None:
    if isinstance(ts, str) and data.draw(st.booleans()):
        ts = mangle(ts, data)
    d = check("river/s1/cd", json.dumps({"unit": "mg/L", "value": 0.001, "ts": ts}).encode(), now)
    if d.readings and isinstance(ts, int | float) and not isinstance(ts, bool):
        scale = 10**9 if ts < 1e11 else 10**6 if ts < 1e14 else 10**3 if ts < 1e17 else 1  # unit by magnitude
        assert abs(d.readings[0].ts_ns - ts * scale) <= 1000  # microsecond resolution
    d = check(
        "river/s1", json.dumps([{"bt": ts, "n": "cd", "v": 0.001}, {"n": "pb", "v": 0.002, "t": ts}]).encode(), now
    )


# -- 3. SenML ---------------------------------------------------------------------------------------------------

senml_records = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "bn": st.sampled_from(["", "dev1:", "c"]) | small_json,
            "bt": st.floats(-1e9, 2e9) | timestamps,
            "bu": units | small_json,
            "bv": st.floats(-1, 1) | small_json,
            "bver": st.integers(),
            "n": param_names | small_json,
            "u": units | small_json,
            "v": good_values | small_json,
            "vs": st.text(max_size=5),
            "vb": st.booleans(),
            "vd": st.text(max_size=5),
            "s": good_values,
            "t": st.floats(-1e9, 1e9) | timestamps,
            "ut": st.integers(),
            "flag": st.none() | st.text(max_size=8),
        },
    ),
    small_json,  # records that are not objects
)


@fuzz(1400)
@given(station=station_ids, records=st.lists(senml_records, max_size=6), now=st.integers(0, 2**33 * 10**9))
def test_senml_packs(station: str, records: list[Any], now: int) -> None:
    d = check(f"river/{station}", json.dumps(records).encode(), now)
    for r in d.readings:
        assert r.station == station.rsplit("/", 1)[-1]


@fuzz(400)
@given(
    bt=st.floats(1.2e9, 1.69e9) | st.floats(-1e6, 8e4),
    bv=st.floats(-1, 1),
    bu=st.sampled_from(["mg/L", "ug/L"]),
    recs=st.lists(
        st.tuples(st.sampled_from(["cd", "pb", "hg", "zn"]), st.floats(1, 100), st.floats(-3600, 3600), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
def test_senml_base_fields_mean_what_rfc_8428_says(
    bt: float, bv: float, bu: str, recs: list[tuple[str, float, float, bool]]
) -> None:
    """Value = bv + v in bu (unless u), time = bt + t, relative to now when below 2**28 s."""
    pack: list[dict[str, Any]] = [{"bn": "", "bt": bt, "bv": bv, "bu": bu}]
    expected = []
    future: list[str] = []
    for name, v, t, own_unit in recs:
        rec: dict[str, Any] = {"n": name, "v": v, "t": t}
        if own_unit:
            rec["u"] = "ug/L"
        pack.append(rec)
        factor = 1e-3 if (own_unit or bu == "ug/L") else 1.0
        when = bt + t
        ts = NOW + round(when * 1e6) * 1000 if abs(when) < 2**28 else round(when * 1e6) * 1000
        if ts > NOW + MAX_FUTURE_NS:
            future.append(name)  # a logger clock ahead of the receiver's: refused, never a reading
        else:
            expected.append((name, (bv + v) * factor, ts))
    d = check("river/s1", json.dumps(pack).encode())
    assert [(r.reason, r.parameter) for r in d.rejections] == [("future_timestamp", n) for n in future]
    assert [(r.parameter, r.value, r.ts_ns) for r in d.readings] == [(n, _approx(v), ts) for n, v, ts in expected]


class _approx(float):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(other, float(self), rel_tol=1e-12, abs_tol=1e-15)

    __hash__ = float.__hash__


@fuzz(15)
@given(n=st.integers(1000, 12_000), bad_every=st.integers(2, 50))
def test_huge_packs(n: int, bad_every: int) -> None:
    records: list[Any] = [{"bn": "", "bt": 1326585600, "bu": "ug/L"}]
    for i in range(n):
        records.append({"n": "cd", "v": i % 100, "t": i} if i % bad_every else {"n": "cd", "vs": "x", "t": i})
    payload = json.dumps(records, separators=(",", ":")).encode()
    d = check("river/s1", payload)
    if len(payload) > 256 * 1024:
        assert [r.reason for r in d.rejections] == ["too_large"]
    else:
        assert len(d.readings) + len(d.rejections) == n
        assert all(r.reason == "not_numeric" for r in d.rejections)


def test_senml_edge_cases() -> None:
    cases: list[tuple[Any, int, int]] = [  # pack, readings, rejections
        ([], 0, 1),
        ([{}], 0, 1),
        ([{"bn": "cd"}], 0, 1),  # base fields only: no measurement at all
        ([{"bn": "c", "n": "d", "v": 1}], 1, 0),
        ([{"bn": "dev1:", "n": "cd", "v": 1}], 1, 0),  # bn as a device prefix
        ([{"bn": "cd", "v": 1}], 1, 0),  # name from bn alone
        ([{"n": "cd"}], 0, 1),  # missing v
        ([{"v": 1}], 0, 1),  # missing n
        ([{"n": "cd", "vs": "1"}, {"n": "cd", "vb": True}, {"n": "cd", "vd": "AQ=="}, {"n": "cd", "s": 1}], 0, 4),
        ([{"vs": "1"}], 0, 1),  # a string value without a name is not silently skipped
        ([1, "x", None, [], {"n": "cd", "v": 1}], 1, 4),
        ([{"bt": "2012-01-15T08:00:00Z", "n": "cd", "v": 1}], 0, 1),
        ([{"bt": 1e300, "n": "cd", "v": 1}], 0, 1),
        ([{"n": "cd", "v": 1, "t": -(2**28) + 1}], 1, 0),  # relative: 8.5 years ago
        ([{"n": "cd", "v": 1, "t": 2**28}], 1, 0),  # absolute: 1978
        ([{"bv": 0.5, "n": "cd", "v": -0.25}], 1, 0),  # bv + v is positive
        ([{"bv": "x", "n": "cd", "v": 1}], 0, 1),
    ]
    for pack, n_read, n_rej in cases:
        unit = [{"bu": "mg/L"}] if pack else []  # a base-only record: a cd without a unit is refused (issue 19)
        d = check("river/s1", json.dumps(unit + pack).encode())
        assert (len(d.readings), len(d.rejections)) == (n_read, n_rej), (pack, d)
    d = check("river/s1", json.dumps([{"bv": 0.5, "n": "cd", "u": "mg/L", "v": -0.25}]).encode())
    assert d.readings[0].value == 0.25
    d = check("river/s1", json.dumps([{"n": "cd", "v": 1, "t": -(2**28) + 1}]).encode(), now=10**9)
    assert d.readings == []  # a relative time before 1970 is not a time


# -- 4. station ids and line protocol ---------------------------------------------------------------------------


@fuzz(1400)
@given(
    station=station_ids.filter(lambda s: "/" not in s),
    param=st.sampled_from(sorted(PARAMETERS)),
    value=st.floats(0, 1e300),
    flag=st.none() | st.text(alphabet=st.sampled_from(NASTY_CHARS) | st.characters(), max_size=10),
)
def test_accepted_station_ids_round_trip_through_line_protocol(
    station: str, param: str, value: float, flag: str | None
) -> None:
    doc: dict[str, Any] = {"unit": PARAMETERS[param].unit, "value": value, "ts": 1326585600}
    if flag is not None:
        doc["flag"] = flag
    d = check(f"river/{station}/{param}", json.dumps(doc).encode())
    senml = check(
        f"river/{station}",
        json.dumps([{"n": param, "u": PARAMETERS[param].unit, "v": value, "bt": 1326585600, "flag": flag}]).encode(),
    )
    assert [(r.station, r.value) for r in d.readings] == [(r.station, r.value) for r in senml.readings]


def test_reference_parser_knows_injection_when_it_sees_it() -> None:
    """The parser is strict enough to catch the breakage that the decoder must keep away from the store."""
    broken = "water_quality,parameter=cd,station=a\\\\ b value=1.0 5"  # station `a\ b`, escaped naively
    assert _split(broken, " ", "influx1", quotes=False) != _split(broken, " ", "pairs", quotes=False)
    ok = reading_line(Reading("x y,station=evil z=1", "cd", 5, 1.0, None))
    assert parse_line(ok, "pairs")[1] == {"parameter": "cd", "station": "x y,station=evil z=1"}


def test_embedded_store_takes_every_accepted_station_id(tmp_path: Path) -> None:
    """Every reading the decoder accepts is one point for the embedded store too (no [influxdb] section).

    InfluxDB 1.6.7 and VictoriaMetrics read a quote in a tag value literally (tests/test_store_influxdb.py), and
    so does the reference parser; the embedded store's parser (store._split_line) must agree with them.
    """
    stations = ["Lalang dam", "a\\b", "km,12", "中文站点", 'quote"d', 'a"b c']
    readings = [
        r for s in stations for r in check(f"river/{s}/cd", b'{"unit": "mg/L", "value": 1, "flag": "x"}').readings
    ]
    assert [r.station for r in readings] == stations
    for r in readings:
        line = reading_line(r)
        assert _split_line_or_none(line) == tuple(parse_line_raw(line)), f"embedded store cannot split {line!r}"
    store = EmbeddedStore(tmp_path / "store.sqlite")
    asyncio.run(store.write([reading_line(r) for r in readings]))  # BadBatchError: the batch would be set aside
    assert store.count() == len(stations)
    asyncio.run(store.close())


def _split_line_or_none(line: str) -> tuple[str, str, str] | None:
    try:
        return _split_line(line)
    except BadBatchError:
        return None


def parse_line_raw(line: str) -> list[str]:
    key_end = _split(line, " ", "pairs", quotes=False)[0]
    return [key_end, *_split(line[len(key_end) + 1 :], " ", "pairs", quotes=True)]
