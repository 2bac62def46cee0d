"""Payload decoding: MQTT topic + bytes -> accepted readings and named rejections.

Pure logic with no I/O, so every rejection rule is unit-testable and fuzzable. Station and parameter are
read from the end of the topic, so any root depth works (`river/lalang/cd`, `bureau/gx/river/lalang/cd`).
A bad record inside a SenML pack rejects that record only; its siblings are still accepted.

Time at the edge: a reading dated more than `max_skew_ns` ahead of the receiving clock is a logger's wrong
clock, refused as `future_timestamp` (it would otherwise become the series' "now" and hide every correct
reading after it). A reading without a time gets the receipt time from `stamp`, which the caller keeps
strictly increasing per series, so a burst of untimed readings never collides on (station, parameter, ts).

Inputs are taken as meant or refused by name, never guessed (issue 19):
- A reading without a unit is refused (`unknown_unit`, "has no unit") unless its parameter has no unit (pH) or
  `[mqtt].implied_units` names the unit its loggers send: a µg/L logger read as mg/L would be 1000x too high.
- `time` and `timestamp` are read as `ts` (same parsing); two of them with different values are refused.
- Any other key of a single reading is ignored with a warning (`Decoded.warnings`: ingest counts it in
  `riverwatch_reading_warnings_total` and logs it with the topic), except that a reading without a time
  whose unknown key looks like one (`tiemstamp`, `datetime`, a date-time string) is refused as
  `bad_timestamp`: a misspelt time key must not become the time of receipt.
- An epoch number's unit is its magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17
  microseconds, else nanoseconds (each boundary is 1973-03-03 in the next unit, so no date after that is
  ambiguous). SenML times stay seconds (RFC 8428: `t` is an offset in seconds from `bt`).
- The SenML draft's object form `{"bn": .., "bt": .., "bu": .., "e": [...]}` (draft-jennings-senml, which
  older LwM2M devices send) is read as the RFC 8428 pack it maps to, field for field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from monitor.domain import hj212
from monitor.domain.params import SHIPPED, Catalogue
from monitor.domain.reading import Reading
from monitor.domain.rejection import Rejection
from monitor.ingest.decoded import Decoded
from monitor.ingest.hj212_decode import NO_LOOKUP, HJ212Lookup, decode_packet

MAX_PAYLOAD = 256 * 1024
MAX_ID_LEN = 128
MAX_FLAG_LEN = 64
# Readings dated more than this ahead of the receiver's clock are a broken sensor clock, not data
# ([mqtt].max_clock_skew_s; see MqttConfig for why 5 minutes).
MAX_FUTURE_NS = 300 * 10**9
# SenML (RFC 8428 section 4.5.3): times below 2**28 are relative to now.
SENML_RELATIVE_LIMIT = 2**28
# Epoch numbers by magnitude: below each limit, the unit's nanoseconds (seconds, ms, µs; else ns).
EPOCH_SECONDS_BELOW = 10**11
EPOCH_MS_BELOW = 10**14
EPOCH_US_BELOW = 10**17
_MAX_NS = 2**33 * 10**9  # 2242-03-16: later is a broken clock, and past what every store takes
# The single-reading keys that carry its time: one name, three spellings loggers use.
TIME_KEYS = ("ts", "time", "timestamp")
# What a single reading `{"value", "unit", "flag", "ts"}` takes; any other key is warned about (issue 17).
_SINGLE_KEYS = frozenset(("value", "unit", "flag", *TIME_KEYS))
# An unknown key that names a time ("tiemstamp", "datetime", "date", "t", "dt", "sample_ts", "when").
_TIMELIKE_KEY = re.compile(r"(?i)time|tiem|tstamp|(^|_)(date|datum|d?t|ts|when|at)($|_)")
_ISO_DATE = re.compile(r"\s*\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
_NO_IMPLIED: Mapping[str, str] = {}
_AMBIGUOUS_BACKSLASH = re.compile(r"\\[\\ ,=]")
# SenML value fields other than the numeric `v`: riverwatch takes numbers only.
_SENML_OTHER_VALUES = ("vs", "vb", "vd", "s")
_SENML_BASE_FIELDS = ("bn", "bt", "bu", "bv", "bs", "bver")


BELOW_DL_FLAG = "<DL"
_BELOW_DL_TEXT = re.compile(r"\s*(?:<\s*(?P<lt>[0-9.]+(?:[eE][-+]?\d+)?)|(?P<cn>[0-9.]+(?:[eE][-+]?\d+)?)\s*[Ll])\s*")


def parse_below_dl(text: str) -> float | None:
    """The detection limit in "0.00005L" (the Chinese reports' way of writing "below 0.00005") or "<0.00005";
    None for anything else. Decoders pass such a cell on as Reading(value=<the limit>, flag=BELOW_DL_FLAG)."""
    m = _BELOW_DL_TEXT.fullmatch(text)
    if m is None:
        return None
    try:
        value = float(m.group("lt") or m.group("cn"))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


# Receipt time for a reading without one: (station, parameter, now_ns) -> its ts_ns.
Stamp = Callable[[str, str, int], int]


def _receipt(_station: str, _parameter: str, now_ns: int) -> int:
    return now_ns


class _Ctx(NamedTuple):
    names: Catalogue
    cache: dict[tuple[str, str | None], tuple[str, float]]
    now_ns: int
    max_skew_ns: int
    stamp: Stamp
    implied: Mapping[str, str]  # parameter id -> the unit a reading without one is in ([mqtt].implied_units)


class _Reject(Exception):
    def __init__(
        self, reason: str, detail: str, station: str | None = None, parameter: str | None = None, ts: int | None = None
    ) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail, station, parameter, ts)


def decode(
    topic: str,
    payload: bytes | bytearray,
    now_ns: int,
    *,
    catalogue: Catalogue = SHIPPED,
    max_skew_ns: int = MAX_FUTURE_NS,
    stamp: Stamp = _receipt,
    hj212: HJ212Lookup = NO_LOOKUP,
    implied_units: Mapping[str, str] = _NO_IMPLIED,
) -> Decoded:
    """Decode one MQTT message. Never raises: everything wrong becomes a Rejection.

    `catalogue` names the parameters and their units (the thresholds' catalogue: shipped plus declared);
    `stamp` gives a reading without a time its receipt time (ingest's keeps it unique per series);
    `hj212` the station of an MN and station time zones, for a payload that is an HJ 212 frame;
    `implied_units` the unit of a reading that names none, per parameter id ([mqtt].implied_units)."""
    ctx = _LAST[0]
    if (
        ctx.now_ns != now_ns
        or ctx.names is not catalogue
        or ctx.stamp != stamp
        or ctx.max_skew_ns != max_skew_ns
        or ctx.implied is not implied_units
    ):  # once per batch, in ingest
        ctx = _LAST[0] = _Ctx(catalogue, _cache(catalogue, implied_units), now_ns, max_skew_ns, stamp, implied_units)
    try:
        if payload[:2] == b"##":
            return _hj212(topic, payload, ctx, hj212)
        return _decode(topic, payload, ctx)
    except _Reject as e:
        return Decoded([], [e.rejection])
    except (RecursionError, MemoryError):
        return Decoded([], [Rejection("malformed", "JSON nested too deeply")])
    except (TypeError, ValueError, OverflowError) as e:  # a gap in the checks below must not kill ingest
        return Decoded([], [Rejection("malformed", f"{type(e).__name__}: {str(e)[:100]}")])


_LAST: list[_Ctx] = [_Ctx(SHIPPED, {}, -1, 0, _receipt, _NO_IMPLIED)]


def _decode(topic: str, payload: bytes | bytearray, ctx: _Ctx) -> Decoded:
    if len(payload) > MAX_PAYLOAD:
        raise _Reject("too_large", f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        doc = _json(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise _Reject("malformed", f"not JSON: {e}") from None
    levels = topic.split("/")
    if isinstance(doc, list):
        if len(levels) < 2:
            raise _Reject("bad_topic", "a SenML pack needs a topic <root>/<station>")
        return _senml(_station(levels[-1]), doc, ctx)
    if isinstance(doc, dict):
        if "value" not in doc and "e" in doc:
            return _senml_draft(topic, levels, doc, ctx)
        if len(levels) < 3:
            raise _Reject("bad_topic", "a single reading needs a topic <root>/<station>/<parameter>")
        station = _station(levels[-2])
        warnings = () if _SINGLE_KEYS.issuperset(doc) else _unknown_keys(doc)
        ts_ns = _one_time(doc) if "time" in doc or "timestamp" in doc else _timestamp(doc.get("ts"))
        reading = _reading(
            station,
            levels[-1],
            doc.get("value"),
            doc.get("unit"),
            doc.get("flag"),
            ts_ns,
            ctx,
            "value",
        )
        return Decoded([reading], [], warnings)
    raise _Reject("malformed", f"payload is a JSON {type(doc).__name__}, not an object or a SenML array")


def _unknown_keys(doc: dict[str, Any]) -> tuple[str, ...]:
    """The warning for keys a single reading does not take; a reading without a time of its own whose unknown
    key looks like one is refused (`bad_timestamp`): stored at the receipt time, a logger's `tiemstamp` or
    `datetime` would put a re-sent reading hours from where it belongs, and nobody would notice."""
    unknown = sorted(k for k in doc if k not in _SINGLE_KEYS)
    if not any(k in doc for k in TIME_KEYS):
        timelike = [k for k in unknown if _TIMELIKE_KEY.search(k) or _looks_like_a_time(doc[k])]
        if timelike:
            raise _Reject(
                "bad_timestamp",
                f"unknown key {timelike[0][:40]!r} looks like a time: send the reading's time as ts (or time, "
                "timestamp); refused rather than stored at the time of receipt",
            )
    shown = ", ".join(repr(k[:40]) for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    return (f"unknown key(s) {shown} ignored (a reading takes value, unit, flag and ts / time / timestamp)",)


def _looks_like_a_time(value: Any) -> bool:
    """An RFC 3339 / ISO 8601 date-time string (a number could be anything: a battery voltage, a counter)."""
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _one_time(doc: dict[str, Any]) -> int | None:
    """The time of a reading that spells its key `time` or `timestamp`: parsed as `ts` is, unless two keys give
    different times (which one the logger meant cannot be known, and a wrong time moves the series' "now")."""
    given = [(k, doc[k]) for k in TIME_KEYS if k in doc]
    first_key, first = given[0]
    first_ns = _timestamp(first)
    for key, value in given[1:]:
        if _timestamp(value) != first_ns:
            raise _Reject(
                "bad_timestamp",
                f"{first_key}={json.dumps(first)[:40]} and {key}={json.dumps(value)[:40]} are different times: "
                "send one (ts)",
            )
    return first_ns


def _senml_draft(topic: str, levels: list[str], doc: dict[str, Any], ctx: _Ctx) -> Decoded:
    """The SenML draft's object form, `{"bn", "bt", "bu", "ver", "e": [entries]}`: its base fields become the
    first record of an RFC 8428 pack and its entries the records (their n, u, v, t mean the same). Taken
    rather than refused because nothing in it is ambiguous; a draft entry's boolean `bv` or string `sv` is
    refused as not_numeric, as in a pack."""
    entries = doc["e"]
    if not isinstance(entries, list):
        raise _Reject("malformed", 'SenML draft form: "e" must be an array of entries')
    other = sorted(k for k in doc if k not in ("e", "bn", "bt", "bu", "ver"))
    if other:
        raise _Reject(
            "malformed",
            f"SenML draft form {{'e': [...]}} with unknown top-level key(s) {', '.join(other)[:80]} "
            "(it takes bn, bt, bu, ver and e)",
        )
    if not entries:
        raise _Reject("malformed", "SenML draft form: empty e array")
    if len(levels) < 2:
        raise _Reject("bad_topic", "a SenML pack needs a topic <root>/<station>")
    base = {k: doc[k] for k in ("bn", "bt", "bu") if k in doc}
    return _senml(_station(levels[-1]), [base, *entries] if base else entries, ctx)


def _hj212(topic: str, payload: bytes | bytearray, ctx: _Ctx, lookup: HJ212Lookup) -> Decoded:
    """An HJ 212 frame as an MQTT payload (some loggers publish to a broker): decoded as the TCP server
    does, the station the one whose `mn` is the packet's MN, else the topic's last level. The broker has
    authenticated the publisher, so PW is not checked; a split part without its DataTime cannot be used
    alone and is rejected (over MQTT there is no connection to hold the other parts on)."""
    if len(payload) > MAX_PAYLOAD:
        raise _Reject("too_large", f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    got = hj212.unframe(bytes(payload))
    if isinstance(got, hj212.FrameError):
        raise _Reject(got.reason, got.detail)
    if not got.crc_ok:
        raise _Reject(hj212.CRC, f"HJ 212 frame's CRC {got.raw[-6:-2].decode(errors='replace')!r} does not match")
    try:
        packet = hj212.parse_segment(got.segment)
    except hj212.HJ212Error as e:
        raise _Reject(e.reason, e.detail) from None
    station = lookup.by_mn.get(packet.mn)
    if station is None:
        levels = topic.split("/")
        if len(levels) < 2:
            raise _Reject(
                "bad_topic",
                f"HJ 212 MN {packet.mn} is in no station file and the topic names no station (<root>/<station>)",
            )
        station = _station(levels[-1])
    if packet.split and not any("DataTime" in g for g in packet.groups):
        raise _Reject(hj212.SPLIT, f"MN {packet.mn}: part {packet.pno} of {packet.pnum} has no DataTime", station)
    return decode_packet(
        packet,
        station,
        catalogue=ctx.names,
        tz=lookup.zone_of(station),
        newest=lookup.newest,
        now_ns=ctx.now_ns,
        max_skew_ns=ctx.max_skew_ns,
    )


_JSON = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _json(payload: bytes | bytearray) -> Any:
    """json.loads(payload), less its fixed cost (encoding detection, two regex scans: 1.4 of 2.2 µs on a
    single reading). Anything the short way does not take whole goes to json.loads, which has the last word."""
    if payload[:1] in (b"{", b"["):
        try:
            text = payload.decode()
            doc, end = _JSON.raw_decode(text)
            if end == len(text) or _SPACE.match(text, end).end() == len(text):  # type: ignore[union-attr]
                return doc
        except (ValueError, UnicodeDecodeError):
            pass
    return json.loads(payload)


def _station(level: str) -> str:
    if not level or len(level) > MAX_ID_LEN:
        raise _Reject("bad_station", f"station id must be 1-{MAX_ID_LEN} characters")
    if not level.isprintable():
        raise _Reject("bad_station", f"station id {level!r} contains control characters")
    if level.endswith("\\"):
        raise _Reject("bad_station", f"station id {level!r} ends with a backslash (not writable as a tag)")
    if _AMBIGUOUS_BACKSLASH.search(level):
        # InfluxDB 1.x reads `\\ ` as an escaped space, VictoriaMetrics and the embedded store as an escaped
        # backslash and a separator: such an id would be a different series, or a broken line, per database.
        raise _Reject(
            "bad_station",
            f"station id {level!r} has a backslash before a space, comma, '=' or backslash (not writable as a tag)",
        )
    return level


def _reading(
    station: str, name: Any, value: Any, unit: Any, flag: Any, ts_ns: int | None, ctx: _Ctx, value_key: str
) -> Reading:
    """`ts_ns` None: the reading carried no time of its own (it gets the receipt time)."""
    known = ctx.cache.get((name, unit)) if isinstance(name, str) and (unit is None or isinstance(unit, str)) else None
    if known is None:
        known = _resolve_unit(name, unit, ctx)
    param, factor = known
    if isinstance(value, str) and (dl := parse_below_dl(value)) is not None:
        value, flag = dl, flag or BELOW_DL_FLAG  # "0.00005L": below the detection limit of 0.00005
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject("not_numeric", f"{value_key} {str(value)[:32]!r} of {param} is not a number")
    try:
        v = float(value) * factor
    except OverflowError:
        raise _Reject("not_finite", f"{value_key} of {param} is too large") from None
    if not math.isfinite(v):
        raise _Reject("not_finite", f"{value_key} {value!r} of {param} is not finite")
    if v < 0 and not _signed(param, ctx.names):  # a negative value is rare: the look-up only then
        raise _Reject("negative", f"{value_key} {value!r} of {param} is negative")
    if flag is not None and (
        not isinstance(flag, str) or not flag or len(flag) > MAX_FLAG_LEN or not flag.isprintable()
    ):
        raise _Reject("bad_flag", f"flag {str(flag)[:32]!r} must be a short printable string")
    if ts_ns is None:
        ts_ns = ctx.stamp(station, param, ctx.now_ns)
    elif ts_ns > ctx.now_ns + ctx.max_skew_ns:
        ahead = (ts_ns - ctx.now_ns) / 1e9
        raise _Reject(
            "future_timestamp",
            f"{param} at {station} is dated {ahead:.0f} s ahead of the receiving clock "
            f"(over {ctx.max_skew_ns / 1e9:.0f} s): the logger's clock is wrong",
            station,
            param,
            ts_ns,
        )
    if ts_ns < 0:
        raise _Reject("bad_timestamp", "timestamp is before 1970")
    return Reading(station, param, ts_ns, v, flag)


def _signed(param: str, names: Catalogue) -> bool:
    """Whether a negative value of `param` is a measurement (Parameter.signed, which HJ 212 decoding asks too)."""
    p = names.get(param)
    return p is not None and bool(p.signed)


# Per catalogue, (name, unit) -> (parameter id, factor) for pairs seen valid: most messages repeat a few pairs,
# and resolving one costs more than the rest of a reading's checks. Bounded: cleared when full (names come
# from the wire); the catalogue itself is held so that its id is not reused while its cache lives.
_CACHES: dict[
    tuple[int, int], tuple[Catalogue, Mapping[str, str], dict[tuple[str, str | None], tuple[str, float]]]
] = {}
_KNOWN_MAX = 4096
_CATALOGUES_MAX = 4  # the one in force and the one a reload just replaced


def _cache(catalogue: Catalogue, implied: Mapping[str, str]) -> dict[tuple[str, str | None], tuple[str, float]]:
    """Per (catalogue, implied units): a unit-less reading's factor depends on both."""
    entry = _CACHES.get((id(catalogue), id(implied)))
    if entry is not None and entry[0] is catalogue and entry[1] is implied:
        return entry[2]
    if len(_CACHES) >= _CATALOGUES_MAX:
        _CACHES.clear()
    cache: dict[tuple[str, str | None], tuple[str, float]] = {}
    _CACHES[(id(catalogue), id(implied))] = (catalogue, implied, cache)
    return cache


def _resolve_unit(name: Any, unit: Any, ctx: _Ctx) -> tuple[str, float]:
    if not isinstance(name, str):
        raise _Reject("unknown_parameter", f"parameter name {name!r} is not a string")
    names = ctx.names
    param = names.resolve(name)
    if param is None:
        raise _Reject("unknown_parameter", f"unknown parameter {name[:64]!r}")
    if unit is not None and not isinstance(unit, str):
        raise _Reject("unknown_unit", f"unit {unit!r} is not a string")
    known = names.get(param)
    expected = (known.unit if known is not None else "") or "no unit"
    source = ""
    if (unit is None or not unit.strip()) and known is not None and known.unit:
        unit = ctx.implied.get(param)
        if unit is None:
            raise _Reject(
                "unknown_unit",
                f"{param} has no unit: send one ({expected}, or any unit convertible to it), or set "
                f'[mqtt].implied_units = {{ {param} = "{expected}" }} for loggers that never send one',
                parameter=param,
            )
        source = " (from [mqtt].implied_units)"
    factor = names.unit_factor(param, unit)
    if factor is None:
        raise _Reject("unknown_unit", f"unknown unit {str(unit)[:32]!r}{source} for {param} (expected {expected})")
    if len(ctx.cache) >= _KNOWN_MAX:
        ctx.cache.clear()
    ctx.cache[(name, unit)] = (param, factor)
    return param, factor


def _epoch_ns(seconds: Any) -> int:
    """Epoch seconds (SenML's, RFC 3339's) as ns."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise _Reject("bad_timestamp", f"time {str(seconds)[:40]!r} is not a number")
    # Compare before anything converts to float: a 400-digit int overflows math.isfinite.
    if (isinstance(seconds, float) and not math.isfinite(seconds)) or not 0 <= seconds < 2**33:  # 2**33 s: 2242
        raise _Reject("bad_timestamp", f"time {seconds!r} is out of range")
    return round(seconds * 1_000_000) * 1000  # microsecond resolution: floats carry no more


def _epoch_any_ns(t: Any) -> int:
    """An epoch number in the unit its magnitude says (EPOCH_*_BELOW); ints exactly, floats to the µs."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise _Reject("bad_timestamp", f"ts {str(t)[:40]!r} is not a number")
    if isinstance(t, float) and not math.isfinite(t):
        raise _Reject("bad_timestamp", f"ts {t!r} is not finite")
    if t < 0:
        raise _Reject("bad_timestamp", f"ts {t!r} is before 1970")
    if t < EPOCH_SECONDS_BELOW:
        unit, ns = "seconds", t * 1_000_000_000 if isinstance(t, int) else round(t * 1_000_000) * 1000
    elif t < EPOCH_MS_BELOW:
        unit, ns = "milliseconds", t * 1_000_000 if isinstance(t, int) else round(t * 1000) * 1000
    elif t < EPOCH_US_BELOW:
        unit, ns = "microseconds", t * 1000 if isinstance(t, int) else round(t) * 1000
    else:
        unit, ns = "nanoseconds", t if isinstance(t, int) else round(t)
    if ns >= _MAX_NS:
        raise _Reject(
            "bad_timestamp",
            f"ts {str(t)[:40]} read as epoch {unit} (by its magnitude: seconds below 1e11, ms below 1e14, "
            "µs below 1e17, else ns) is after 2242",
        )
    return ns


def _timestamp(ts: Any) -> int | None:
    if ts is None:
        return None
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(
                ts.replace("Z", "+00:00").replace("z", "+00:00") if "Z" in ts or "z" in ts else ts
            )
        except ValueError:
            raise _Reject("bad_timestamp", f"ts {ts[:40]!r} is not RFC 3339") from None
        if dt.tzinfo is None:
            raise _Reject("bad_timestamp", f"ts {ts[:40]!r} has no UTC offset")
        try:
            seconds = dt.timestamp()
        except (OverflowError, OSError, ValueError):
            raise _Reject("bad_timestamp", f"ts {ts[:40]!r} is out of range") from None
        if 0 <= seconds < 2**33:  # what _epoch_ns checks; a datetime's timestamp is always a finite float
            return round(seconds * 1_000_000) * 1000
        return _epoch_ns(seconds)
    return _epoch_any_ns(ts)


def _senml(station: str, records: list[Any], ctx: _Ctx) -> Decoded:
    if not records:
        raise _Reject("malformed", "empty SenML pack")
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    base_name, base_time, base_unit, base_value = "", 0.0, None, 0.0
    for i, rec in enumerate(records):
        try:
            if not isinstance(rec, dict):
                raise _Reject("malformed", f"SenML record {i} is not an object")
            if "bn" in rec:
                if not isinstance(rec["bn"], str):
                    raise _Reject("malformed", f"SenML record {i}: bn is not a string")
                base_name = rec["bn"]
            if "bt" in rec:
                bt = rec["bt"]
                if isinstance(bt, bool) or not isinstance(bt, int | float) or not math.isfinite(bt):
                    raise _Reject("bad_timestamp", f"SenML record {i}: bt {str(bt)[:32]!r} is not a number")
                base_time = float(bt)
            if "bu" in rec:
                base_unit = rec["bu"]
            if "bv" in rec:
                bv = rec["bv"]
                if isinstance(bv, bool) or not isinstance(bv, int | float) or not math.isfinite(bv):
                    raise _Reject("not_numeric", f"SenML record {i}: bv {str(bv)[:32]!r} is not a number")
                base_value = float(bv)
            if "n" not in rec and "v" not in rec:
                if any(k in rec for k in _SENML_OTHER_VALUES):
                    raise _Reject("not_numeric", f"SenML record {i} has no name and no numeric v")
                if not any(k in rec for k in _SENML_BASE_FIELDS):
                    raise _Reject("malformed", f"SenML record {i} has neither n nor v")
                continue  # a base-only record
            n = rec.get("n", "")
            name = base_name + n
            if base_name and ctx.names.resolve(name) is None and isinstance(n, str) and ctx.names.resolve(n):
                name = n  # bn used as a device prefix rather than part of the parameter name
            if "v" not in rec:
                raise _Reject("not_numeric", f"SenML record {i} ({str(name)[:32]}) has no numeric v")
            t = rec.get("t", 0)
            if isinstance(t, bool) or not isinstance(t, int | float):
                raise _Reject("bad_timestamp", f"SenML record {i}: t {str(t)[:32]!r} is not a number")
            when = base_time + t
            ts_ns: int | None
            if when == 0:
                ts_ns = None  # no time at all: the receipt time
            elif abs(when) < SENML_RELATIVE_LIMIT:
                ts_ns = ctx.now_ns + _signed_ns(when)
            elif SENML_RELATIVE_LIMIT <= when < 2**33:  # the common case of what _epoch_ns checks (when is a number)
                ts_ns = round(when * 1_000_000) * 1000
            elif EPOCH_SECONDS_BELOW <= when < _MAX_NS * 10:  # 1e11 s is year 5138: ms, µs or ns sent as seconds
                raise _Reject(
                    "bad_timestamp",
                    f"SenML record {i}: time {when:.0f} is not epoch seconds (RFC 8428: bt and t are seconds; "
                    "this looks like milliseconds or finer)",
                )
            else:
                ts_ns = _epoch_ns(when)
            value = rec["v"]
            if base_value and isinstance(value, int | float) and not isinstance(value, bool):
                value = base_value + value  # RFC 8428: the value is bv + v
            readings.append(
                _reading(
                    station, name, value, rec.get("u", base_unit), rec.get("flag"), ts_ns, ctx, f"SenML record {i} v"
                )
            )
        except _Reject as e:
            rejections.append(e.rejection)
        except (TypeError, OverflowError, ValueError) as e:
            rejections.append(Rejection("malformed", f"SenML record {i}: {e}"))
    if not readings and not rejections:
        raise _Reject("malformed", "SenML pack has only base records, no measurement")
    return Decoded(readings, rejections)


def _signed_ns(seconds: float) -> int:
    if not math.isfinite(seconds):
        raise _Reject("bad_timestamp", "relative time is not finite")
    return round(seconds * 1_000_000) * 1000
