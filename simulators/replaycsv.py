"""Replay CSV: recorded readings as `ts,station,parameter,value,unit[,flag]`, and the messages that replay them.

Reading is strict and names `path:line` for the first bad row, because a replay that silently skips rows
would be a replay that loses data while looking successful. A value below the detection limit is written as
the lab reports write it, "0.0005L" (the limit, then L; "<0.0005" is read too), and replayed in that form,
so the service's decoder sees what a data logger sends.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from monitor.domain.reading import Reading
from simulators.messages import below_dl_text, rfc3339, single_payload
from simulators.sensors import BELOW_DL

HEADER: tuple[str, ...] = ("ts", "station", "parameter", "value", "unit", "flag")
REQUIRED: tuple[str, ...] = ("ts", "station", "parameter", "value", "unit")

CsvRow = tuple[int, str, str, float, str, str | None]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# The decoder's notation (monitor.ingest.decode.parse_below_dl), which simulators may not import.
_BELOW_DL_TEXT = re.compile(rf"\s*(?:<\s*(?P<lt>{_NUMBER})|(?P<cn>{_NUMBER})\s*[Ll])\s*")
_EPOCH_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TOPIC_UNSAFE = re.compile(r"[/+#\x00]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = 2**63


def parse_ts(text: str) -> int:
    """Epoch nanoseconds from RFC 3339 with an offset, or from epoch seconds; a local time without offset is
    rejected because it would silently shift readings by hours."""
    s = text.strip()
    if _EPOCH_SECONDS.fullmatch(s):
        try:
            ts_ns = int((Decimal(s) * 1_000_000_000).to_integral_value())
        except InvalidOperation:
            raise ValueError(f"bad epoch seconds {text!r}") from None
        if not -_INT64 <= ts_ns < _INT64:
            raise ValueError(f"epoch seconds {text!r} out of range")
        return ts_ns
    m = _RFC3339.fullmatch(s)
    if m is None:
        raise ValueError(f"timestamp {text!r} is neither RFC 3339 with an offset nor epoch seconds")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if m.group(8):
        tz = UTC
    else:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if offset >= timedelta(hours=24):
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(-offset if m.group(9) == "-" else offset)
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"bad timestamp {text!r}: {exc}") from None
    whole = (dt - _EPOCH) // timedelta(seconds=1)
    fraction = int((m.group(7) or "").ljust(9, "0"))
    return whole * 1_000_000_000 + fraction


def write_csv(path: str | os.PathLike[str], readings: Iterable[Reading], unit_of: Callable[[str], str]) -> int:
    """Write readings as replay CSV (ts in +08:00, microseconds at most); a below-DL reading as "0.0005L" with
    no flag (the notation says it); returns the number of rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for r in readings:
            if r.flag == BELOW_DL:
                value, flag = below_dl_text(r.value), ""
            else:
                value, flag = repr(float(r.value)), r.flag or ""
            writer.writerow((rfc3339(r.ts_ns), r.station, r.parameter, value, unit_of(r.parameter), flag))
            count += 1
    return count


def _name(text: str, what: str) -> str:
    """A station or parameter that can be a topic level: not empty, no '/', '+', '#'."""
    s = text.strip()
    if not s:
        raise ValueError(f"empty {what}")
    if _TOPIC_UNSAFE.search(s):
        raise ValueError(f"{what} {s!r} contains '/', '+', '#' or NUL")
    return s


def _parse_row(row: list[str], index: dict[str, int], flag_index: int | None) -> CsvRow:
    """One data row as (ts_ns, station, parameter, value, unit, flag); raises ValueError with the reason."""
    needed = max(index.values()) + 1
    if len(row) < needed:
        raise ValueError(f"expected at least {needed} fields, got {len(row)}")
    ts_ns = parse_ts(row[index["ts"]])
    station = _name(row[index["station"]], "station")
    parameter = _name(row[index["parameter"]], "parameter")
    raw = row[index["value"]].strip()
    unit = row[index["unit"]].strip()
    flag = row[flag_index].strip() if flag_index is not None and flag_index < len(row) else ""
    below = _BELOW_DL_TEXT.fullmatch(raw)
    if below is not None:
        raw = below.group("lt") or below.group("cn")
        flag = flag or BELOW_DL
    try:
        if "_" in raw:
            raise ValueError
        value = float(raw)
    except ValueError:
        raise ValueError(f"value {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value {raw!r} is not finite")
    return ts_ns, station, parameter, value, unit, flag or None


def read_csv(path: str | os.PathLike[str]) -> Iterator[CsvRow]:
    """Yield (ts_ns, station, parameter, value, unit, flag) per row; the first bad row raises
    ValueError("path:line: reason"). Columns may come in any order; extra ones are ignored, blank lines skipped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}:1: {exc}") from None
        if header is None:
            raise ValueError(f"{path}:1: empty file, expected header {','.join(REQUIRED)}")
        names = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise ValueError(f"{path}:{reader.line_num}: header lacks column(s) {', '.join(missing)}")
        index = {c: names.index(c) for c in REQUIRED}
        flag_index = names.index("flag") if "flag" in names else None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ValueError(f"{path}:{reader.line_num + 1}: {exc}") from None
            if not any(cell.strip() for cell in row):
                continue
            try:
                parsed = _parse_row(row, index, flag_index)
            except ValueError as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
            yield parsed


def csv_messages(rows: Iterable[CsvRow], root: str = "river") -> Iterator[tuple[int, str, bytes]]:
    """Single-reading messages for CSV rows: the unit exactly as recorded (the service converts it), an empty
    unit cell sent as no unit (the standard unit), the flag when present, and a below-DL value as "0.0005L"."""
    for ts_ns, station, parameter, value, unit, flag in rows:
        if flag == BELOW_DL:
            payload = single_payload(ts_ns, below_dl_text(value), unit)
        else:
            payload = single_payload(ts_ns, value, unit, flag)
        yield ts_ns, f"{root}/{station}/{parameter}", payload
