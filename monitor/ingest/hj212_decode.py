"""HJ 212 packets to readings: pollutant codes through the catalogue, HJ 212 units, flags, station time.

Pure, like `decode`: the TCP server (after its CRC, PW and MN checks) and the MQTT decoder both call
`decode_packet`. Decisions:

- The value of a reading: `-Rtd` for CN=2011 (real-time), `-Avg` for 2051 (minute), 2061 (hourly) and 2031
  (daily). `-Min`/`-Max`/`-Cou` are not stored: the rules judge one value per series and time, the
  standards' limits are on means, and a max stored as its own series would alarm twice for one plume.
  A packet that has the other of `-Rtd`/`-Avg` only (a logger's mislabelled CN) still gives its value.
- Units: HJ 212 fixes each code's unit (Table B.1: cadmium w20115 in µg/L, thallium in ng/L); the
  catalogue's `hj212_unit` says it and the value is converted to the parameter's standard unit.
- Flags: N normal, M maintenance, C calibration, D fault, F stopped, T over range, S manual, B logger
  communication fault; a letter riverwatch does not know is kept as "hj212:<letter>" and evaluated like an
  unflagged reading (an unknown flag must not hide a plume).
- DataTime is station time (China Standard Time unless the station sets `timezone`). A reading re-sent from
  the logger's memory (RF=1, HJ 212-2025) or dated before the newest reading of its series is flagged
  "backfill": stored, never opening or resolving an alert.
- Every rejection names the MN, the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from monitor.domain import hj212
from monitor.domain.hj212 import Packet
from monitor.domain.params import SHIPPED, Catalogue
from monitor.domain.reading import Reading
from monitor.domain.rejection import Rejection
from monitor.ingest.decoded import Decoded
from monitor.rules.timeofday import zone

CHINA = ZoneInfo("Asia/Shanghai")
MAX_FUTURE_NS = 300 * 10**9
BACKFILL = "backfill"

# CN -> the value suffix it carries.
DATA_COMMANDS: dict[str, str] = {"2011": "Rtd", "2051": "Avg", "2061": "Avg", "2031": "Avg"}
_OTHER = {"Rtd": "Avg", "Avg": "Rtd"}

FLAGS: dict[str, str | None] = {
    "N": None,
    "M": "maintenance",
    "C": "calibration",
    "D": "fault",
    "F": "stopped",
    "T": "over_range",
    "S": "manual",
    "B": "comm_fault",
}
_NOT_CODES = frozenset({"DataTime", "RF", "RtdInterval", "MinInterval", "RestartTime", "SystemTime"})

Newest = Callable[[str, str], int | None]


def decode_packet(
    packet: Packet,
    station: str,
    *,
    catalogue: Catalogue = SHIPPED,
    tz: tzinfo = CHINA,
    newest: Newest | None = None,
    now_ns: int,
    max_skew_ns: int = MAX_FUTURE_NS,
) -> Decoded:
    """The readings of one data packet of `station`. Never raises: everything wrong is a Rejection."""
    mn = packet.mn
    if packet.encrypted:
        return _reject(
            hj212.ENCRYPTED,
            f"MN {mn}: CP of {len(packet.cp)} characters is encrypted (HJ 212-2025); riverwatch has no keys yet",
            station,
        )
    suffix = DATA_COMMANDS.get(packet.cn)
    if suffix is None:
        known = ", ".join(DATA_COMMANDS)
        return _reject(hj212.COMMAND, f"MN {mn}: CN={packet.cn} carries no readings ({known} do)", station)
    backfill_all = packet.fields.get("RF") == "1"
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    ts_ns: int | None = None
    backfill = backfill_all
    time_error: Rejection | None = None
    seen_any_code = False
    for group in packet.groups:
        if "DataTime" in group:
            text = group["DataTime"]
            ts_ns = _datatime(text, tz)
            time_error = (
                None
                if ts_ns is not None
                else Rejection("bad_timestamp", f"MN {mn}: DataTime={text[:32]!r} is not YYYYMMDDhhmmss", station)
            )
            backfill = backfill_all or group.get("RF") == "1"
        elif group.get("RF") == "1":
            backfill = True
        codes = _codes(group)
        if not codes:
            continue
        seen_any_code = True
        if ts_ns is None:
            if time_error is None:
                time_error = Rejection("bad_timestamp", f"MN {mn}: no DataTime before {next(iter(codes))}", station)
            if time_error not in rejections:
                rejections.append(time_error)
            continue
        for code, values in codes.items():
            key = suffix if suffix in values else _OTHER[suffix] if _OTHER[suffix] in values else None
            if key is None:
                continue  # -Min/-Max/-Cou only: nothing riverwatch stores
            try:
                readings.append(
                    _reading(station, mn, code, key, values, ts_ns, backfill, catalogue, newest, now_ns, max_skew_ns)
                )
            except _Reject as e:
                rejections.append(e.rejection)
    if not seen_any_code and not readings:
        rejections.append(
            Rejection(hj212.MALFORMED, f"MN {mn}: CN={packet.cn} packet has no pollutant fields", station)
        )
    return Decoded(readings, rejections)


def _reject(reason: str, detail: str, station: str) -> Decoded:
    return Decoded([], [Rejection(reason, detail, station)])


class _Reject(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def _codes(group: dict[str, str]) -> dict[str, dict[str, str]]:
    """code -> {suffix: value} for the `code-Suffix` fields of one group, in the order sent."""
    out: dict[str, dict[str, str]] = {}
    for key, value in group.items():
        if key in _NOT_CODES:
            continue
        code, sep, suffix = key.rpartition("-")
        if sep and code:
            out.setdefault(code, {}).setdefault(suffix, value)
    return out


def _datatime(text: str, tz: tzinfo) -> int | None:
    """YYYYMMDDhhmmss (or with milliseconds, as some loggers send) in station time, as epoch ns."""
    if len(text) not in (14, 17) or not text.isdigit():
        return None
    try:
        t = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=tz,
        )
    except ValueError:
        return None
    ms = int(text[14:17]) if len(text) == 17 else 0
    seconds = int(t.timestamp())
    if seconds < 0:
        return None
    return seconds * 1_000_000_000 + ms * 1_000_000


def _reading(
    station: str,
    mn: str,
    code: str,
    key: str,
    values: dict[str, str],
    ts_ns: int,
    backfill: bool,
    catalogue: Catalogue,
    newest: Newest | None,
    now_ns: int,
    max_skew_ns: int,
) -> Reading:
    text = values[key]
    where = f"MN {mn}: {code}-{key}={text[:32]!r}"
    pid = catalogue.resolve(code)
    if pid is None:
        raise _Reject(
            Rejection("unknown_parameter", f"{where}: HJ 212 code {code[:16]!r} is not in the catalogue", station)
        )
    p = catalogue[pid]
    factor = catalogue.unit_factor(pid, p.hj212_unit or None)
    if factor is None:
        raise _Reject(Rejection("unknown_unit", f"{where}: unit {p.hj212_unit!r} of {pid} is unknown", station, pid))
    try:
        raw = float(text)
    except ValueError:
        raise _Reject(Rejection("not_numeric", f"{where}: not a number", station, pid, ts_ns)) from None
    value = raw * factor
    if not math.isfinite(value):
        raise _Reject(Rejection("not_finite", f"{where}: not finite", station, pid, ts_ns))
    if value < 0 and not p.signed:  # Parameter.signed: the JSON decoder asks the same
        raise _Reject(Rejection("negative", f"{where}: a negative {p.name}", station, pid, ts_ns))
    if ts_ns > now_ns + max_skew_ns:
        ahead = (ts_ns - now_ns) / 1e9
        raise _Reject(
            Rejection(
                "future_timestamp",
                f"{where}: {pid} at {station} is dated {ahead:.0f} s ahead of the receiving clock "
                f"(over {max_skew_ns / 1e9:.0f} s): the logger's clock is wrong",
                station,
                pid,
                ts_ns,
            )
        )
    flag = _flag(values.get("Flag"), where, station, pid, ts_ns)
    if backfill:
        flag = BACKFILL
    elif newest is not None:
        last = newest(station, pid)
        if last is not None and ts_ns < last:
            flag = BACKFILL
    return Reading(station, pid, ts_ns, value, flag)


def _flag(text: str | None, where: str, station: str, pid: str, ts_ns: int) -> str | None:
    if text is None or text == "":
        return None
    mapped = FLAGS.get(text.upper(), "")
    if mapped != "":
        return mapped
    if len(text) > 8 or not text.isprintable():
        raise _Reject(Rejection("bad_flag", f"{where}: flag {text[:16]!r} is not an HJ 212 flag", station, pid, ts_ns))
    return f"hj212:{text}"


@dataclass(frozen=True)
class HJ212Lookup:
    """What decoding an HJ 212 payload needs from the station files: the station of an MN and a station's
    time zone. Built once per ThresholdSet (`from_stations`)."""

    by_mn: Mapping[str, str] = field(default_factory=dict)  # MN -> station id
    zones: Mapping[str, tzinfo] = field(default_factory=dict)  # station id -> its zone (China unless set)
    newest: Newest | None = None

    @classmethod
    def from_stations(cls, stations: Mapping[str, Any], newest: Newest | None = None) -> HJ212Lookup:
        by_mn: dict[str, str] = {}
        zones: dict[str, tzinfo] = {}
        for sid, st in stations.items():
            mn = getattr(st, "mn", "") or ""
            if mn:
                by_mn[mn] = sid
            name = getattr(st, "timezone", "") or ""
            try:
                zones[sid] = zone(name) if name else CHINA
            except (ValueError, KeyError, IndexError):
                zones[sid] = CHINA  # the station checks report a bad zone; decoding keeps China time
        return cls(by_mn, zones, newest)

    def zone_of(self, station: str) -> tzinfo:
        return self.zones.get(station, CHINA)


NO_LOOKUP = HJ212Lookup()
