"""Readings as MQTT messages: the two payload forms of interface.md, with timestamps in China Standard Time.

Every message is (ts_ns, topic, payload): the publisher paces by ts_ns, so a message's own time and the time
it goes out stay tied together whatever the form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import groupby

import numpy as np

from monitor.domain.params import PARAMETERS
from monitor.domain.reading import Reading
from simulators.sensors import BELOW_DL

CST = timezone(timedelta(hours=8))  # China Standard Time: the record and the bureaus use +08:00
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_S = 1_000_000_000

Message = tuple[int, str, bytes]


def rfc3339(ts_ns: int, tz: timezone = CST) -> str:
    """RFC 3339 with an explicit offset (microseconds at most): what the MQTT and CSV interfaces accept."""
    dt = (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(tz)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def unit_of(parameter: str) -> str:
    """The catalogue unit of a parameter id ("" for pH); a Reading must carry a catalogue id."""
    p = PARAMETERS.get(parameter)
    if p is None:
        raise ValueError(f"unknown parameter id {parameter!r}")
    return p.unit


def single_payload(ts_ns: int, value: float | str, unit: str | None, flag: str | None = None) -> bytes:
    """A one-reading message body; the unit is omitted when empty (pH), which the service reads as standard.
    A str value is the below-DL notation ("0.0005L")."""
    body: dict[str, object] = {"ts": rfc3339(ts_ns), "value": value}
    if unit:
        body["unit"] = unit
    if flag:
        body["flag"] = flag
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def below_dl_text(limit: float) -> str:
    """ "0.0005L": a value below the detection limit `limit`, positional (no exponent), as lab reports write it."""
    return np.format_float_positional(float(limit), trim="-") + "L"


def single_messages(readings: Iterable[Reading], root: str = "river") -> Iterator[Message]:
    """One message per reading on `<root>/<station>/<parameter>`, in the input's order; a below-DL reading
    goes out as "0.0005L", as data loggers write it."""
    for r in readings:
        below = r.flag == BELOW_DL
        yield (
            r.ts_ns,
            f"{root}/{r.station}/{r.parameter}",
            single_payload(
                r.ts_ns, below_dl_text(r.value) if below else r.value, unit_of(r.parameter), None if below else r.flag
            ),
        )


def senml_packs(readings: Iterable[Reading], root: str = "river") -> Iterator[Message]:
    """One SenML pack per (station, ts) on `<root>/<station>`: far fewer messages than single readings.

    bt is on the first record only (RFC 8428 base time); each record carries its unit, except pH (unitless).
    A reading's flag, where set, travels as a "flag" extension field on its record.
    """
    ordered = sorted(readings, key=lambda r: (r.ts_ns, r.station, r.parameter))
    for (ts_ns, station), group in groupby(ordered, key=lambda r: (r.ts_ns, r.station)):
        bt: int | float = ts_ns // _NS_PER_S if ts_ns % _NS_PER_S == 0 else ts_ns / _NS_PER_S
        pack: list[dict[str, object]] = []
        for r in group:
            record: dict[str, object] = {"bn": "", "bt": bt} if not pack else {}
            record["n"] = r.parameter
            unit = unit_of(r.parameter)
            if unit:
                record["u"] = unit
            record["v"] = r.value
            if r.flag:
                record["flag"] = r.flag
            pack.append(record)
        yield ts_ns, f"{root}/{station}", json.dumps(pack, ensure_ascii=False, separators=(",", ":")).encode()
