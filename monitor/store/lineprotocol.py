"""InfluxDB line protocol, both ways: the points riverwatch writes, and the reading back of them.

Why one module: the escaping rules of the writer and the unescaping of the readers (the embedded store's
line splitter, the backtest's and the report's read-back) must agree character for character, and a
round-trip test (tests/test_lineprotocol.py) holds them to it.

The writer is a hot path (one line per reading stored): plain f-strings, and tag values that need no
escape (the usual id) are not copied. The readers take only what the writer makes: station ids the
decoder accepted (printable, no backslash before a space, comma, `=` or backslash, none at the end).
"""

from __future__ import annotations

import math
import re

from monitor.alerts.evaluator import AlertEvent
from monitor.domain.reading import Reading

MEASUREMENT = "water_quality"
ALERT_MEASUREMENT = "alert"
SCREENING_MEASUREMENT = "screening"  # a reading the screens set aside, with why: tags station, parameter, reason


class LineProtocolError(ValueError):
    """A line that is not one point (measurement and tags, fields, timestamp)."""


# --------------------------------------------------------------------------- writing


def escape_tag(value: str) -> str:
    """Line-protocol tag escaping: a station id with a space, comma or `=` stays one tag value.

    Backslashes are left alone: InfluxDB reads them literally (measured on 1.6.7), so escaping them would
    double them in the database. The decoder refuses what cannot be written: control characters and a
    trailing backslash.
    """
    if "," in value or "=" in value or " " in value:
        return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    return value  # the usual id: three searches instead of three copies


def escape_string_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def reading_line(r: Reading) -> str:
    fields = f"value={r.value!r}"
    if r.flag:
        fields += f',flag="{escape_string_field(r.flag)}"'
    return f"{MEASUREMENT},parameter={escape_tag(r.parameter)},station={escape_tag(r.station)} {fields} {r.ts_ns}"


def alert_line(e: AlertEvent, message: str) -> str:
    """The `alert` measurement of interface.md, at the time of the reading that caused the transition."""
    tags = (
        f"category={escape_tag(e.category)},parameter={escape_tag(e.parameter)},severity={escape_tag(e.severity)},"
        f"state={escape_tag(e.state)},station={escape_tag(e.station)}"
    )
    # Line protocol has no NaN or infinity: a field without a finite number (the value of a gap alert, the
    # ratio of a zero reading against a minimum) is left out rather than have the whole point refused.
    numbers = (("value", e.value), ("limit", e.limit.value), ("ratio", e.ratio))
    fields = "".join(f"{k}={float(v)!r}," for k, v in numbers if math.isfinite(v))
    fields += f'rule="{escape_string_field(e.rule)}",message="{escape_string_field(message)}"'
    return f"{ALERT_MEASUREMENT},{tags} {fields} {e.ts_ns}"


def screening_line(station: str, parameter: str, ts_ns: int, value: float, reason: str) -> str:
    """The `screening` measurement: the reason is a tag (a handful of values), so VictoriaMetrics keeps it
    too (it drops string fields); the point sits at the reading's own time beside its `water_quality` point."""
    tags = f"parameter={escape_tag(parameter)},reason={escape_tag(reason)},station={escape_tag(station)}"
    return f"{SCREENING_MEASUREMENT},{tags} value={float(value)!r} {ts_ns}"


def reading_shape(r: Reading) -> str:
    """What a database checks a point's form against (measurement, tag keys, field keys), as `line_shape`."""
    return f"{MEASUREMENT},parameter,station flag,value" if r.flag else f"{MEASUREMENT},parameter,station value"


def line_shape(line: str) -> str:
    """`measurement,tagkey,... fieldkey,...`: two points of one shape differ only in their values."""
    key, fields, _ = split_line(line)
    measurement = _TAG_SPLIT.split(key)[0]
    tags = ",".join(sorted(series_tags(key)))
    names = ",".join(sorted(k for k, _ in _FIELD.findall(fields)))
    return f"{measurement}{',' + tags if tags else ''} {names}"


# --------------------------------------------------------------------------- reading


def split_line(line: str) -> tuple[str, str, str]:
    """(measurement and tags, fields, timestamp) of one line, honouring escapes and quoted strings."""
    parts: list[str] = []
    start, i, quoted = 0, 0, False
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"' and parts:  # quotes delimit string fields only; in tags they are plain characters
            quoted = not quoted
        elif c == " " and not quoted:
            parts.append(line[start:i])
            start = i + 1
        i += 1
    parts.append(line[start:])
    if len(parts) != 3:
        raise LineProtocolError(f"unparseable line: {line[:200]}")
    return parts[0], parts[1], parts[2]


_TAG_SPLIT = re.compile(r"(?<!\\),")
_TAG = re.compile(r"((?:[^=\\]|\\.)*)=(.*)")
_FIELD = re.compile(r'([^=,]+)=("(?:[^"\\]|\\.)*"|[^,]*)', re.DOTALL)
_STRING_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape_tag(text: str) -> str:
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def unescape_string_field(text: str) -> str:
    """The inverse of escape_string_field, in one pass (so an escaped backslash before `n` stays a backslash)."""
    if "\\" not in text:
        return text
    return _STRING_ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def series_tags(key: str) -> dict[str, str]:
    """Tags of a series key `measurement,k=v,...` (the embedded store keeps keys as they were written)."""
    out: dict[str, str] = {}
    for part in _TAG_SPLIT.split(key)[1:]:
        m = _TAG.match(part)
        if m is not None:
            out[unescape_tag(m.group(1))] = unescape_tag(m.group(2))
    return out


def reading_fields(text: str) -> tuple[float, str | None]:
    """(value, flag) of a reading's fields; the fast path is the usual bare `value=0.041`."""
    if text.startswith("value=") and "," not in text:
        return float(text[6:]), None
    value, flag = math.nan, None
    for k, raw in _FIELD.findall(text):
        if k == "value":
            value = float(raw.rstrip("i"))
        elif k == "flag" and raw.startswith('"'):
            flag = unescape_string_field(raw[1:-1])
    return value, flag
