"""The load: which messages the benchmark publishes (pure functions, stdlib only).

Every message is ``(topic, payload, readings, flagged, marker)``: ``readings`` is how many readings it carries,
``flagged`` how many of them have a value above ``FLAG_LIMIT`` (the Node-RED flow writes an extra ``exceeded``
field for those, so the database gets ``readings + flagged`` rows from it) and ``marker`` is ``None`` or
``(kind, index)`` for the latency probes.

Station names carry the trial's prefix, so that the readings of one trial can be counted back from the database.
Each (station, parameter) gets distinct whole-second timestamps (VictoriaMetrics keeps milliseconds).
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

# What the Node-RED flow flags: "value > 0.005 mg/L" (the Class II-IV cadmium limit of GB 3838-2002).
FLAG_LIMIT = 0.005

# SenML packs: 20 parameters with a maximum limit in GB 3838-2002 at a river station, and the Class III limit.
# The pack values stay between 0.6 and 0.8 of 0.2 x the limit, so throughput and memory loads raise no alert.
PACK_PARAMS: tuple[tuple[str, float], ...] = (
    ("cd", 0.005),
    ("pb", 0.05),
    ("as", 0.05),
    ("cr6", 0.05),
    ("cu", 1.0),
    ("zn", 1.0),
    ("se", 0.01),
    ("codmn", 6.0),
    ("cod", 20.0),
    ("bod5", 4.0),
    ("nh3n", 1.0),
    ("tp", 0.2),
    ("f", 1.0),
    ("cn", 0.2),
    ("phenol", 0.005),
    ("oil", 0.05),
    ("las", 0.2),
    ("s2", 0.2),
    ("fe", 0.3),
    ("mn", 0.1),
)
CD_LIMIT = 0.005  # the cadmium limit at an unlisted station (default Class III)
ALERT_VALUE = 0.05  # 10 x the cadmium limit: a "serious" alert at once


class Message(NamedTuple):
    topic: str
    payload: bytes
    readings: int
    flagged: int
    marker: tuple[str, int] | None


def rfc3339(epoch_s: int) -> str:
    """``2012-01-15T08:00:00+08:00``: the form of interface.md, in China's offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(epoch_s + 8 * 3600))


def single(station: str, parameter: str, ts: int, value: float) -> Message:
    payload = json.dumps({"ts": rfc3339(ts), "value": value, "unit": "mg/L"}, separators=(",", ":")).encode()
    return Message(f"river/{station}/{parameter}", payload, 1, int(value > FLAG_LIMIT), None)


def background(prefix: str, k: int, stations: int, t0: int) -> Message:
    """The k-th single cadmium reading: station k % stations, one second later each lap, 0.2-0.8 of the limit."""
    value = round(CD_LIMIT * (0.2 + 0.1 * (k % 7)), 6)
    return single(f"{prefix}s{k % stations}", "cd", t0 + k // stations, value)


def pack(prefix: str, k: int, stations: int, t0: int) -> Message:
    """The k-th SenML pack: 20 readings of one station at one time (RFC 8428, ``bt`` in epoch seconds)."""
    factor = 0.6 + 0.05 * (k % 5)
    records: list[dict[str, object]] = []
    flagged = 0
    for i, (name, limit) in enumerate(PACK_PARAMS):
        value = round(0.2 * limit * factor, 6)
        flagged += value > FLAG_LIMIT
        rec: dict[str, object] = {"n": name, "u": "mg/L", "v": value}
        if i == 0:
            rec = {"bt": t0 + k // stations, **rec}
        records.append(rec)
    payload = json.dumps(records, separators=(",", ":")).encode()
    return Message(f"river/{prefix}s{k % stations}", payload, len(records), flagged, None)


def bulk(kind: str, prefix: str, count: int, stations: int, t0: int, first: int = 0) -> list[Message]:
    """``count`` messages of one kind (``single`` or ``senml``) as fast as they can go."""
    make = background if kind == "single" else pack
    return [make(prefix, k, stations, t0) for k in range(first, first + count)]


def paced(
    prefix: str, rate: float, duration: float, stations: int, t0: int, alert_rate: float, store_rate: float
) -> list[Message]:
    """``rate`` single readings/s for ``duration`` s; some of them are latency markers.

    A storage marker is an ordinary reading of the series ``{prefix}lat/cd`` (timestamp ``t0 + j``), polled for
    in the database. An alert marker is a reading 10x the limit at a new station ``{prefix}alarm{j:05d}``, so
    each one opens an alert of its own, matched by station name in the notification.
    """
    total = int(rate * duration)
    alert_every = max(1, round(rate / alert_rate)) if alert_rate > 0 else 0
    store_every = max(1, round(rate / store_rate)) if store_rate > 0 else 0
    out: list[Message] = []
    n_alert = n_store = n_bg = 0
    for k in range(total):
        if alert_every and k % alert_every == alert_every // 2:
            m = single(f"{prefix}alarm{n_alert:05d}", "cd", t0 + n_alert, ALERT_VALUE)
            out.append(m._replace(marker=("alert", n_alert)))
            n_alert += 1
        elif store_every and k % store_every == 0:
            m = single(f"{prefix}lat", "cd", t0 + n_store, 0.002)
            out.append(m._replace(marker=("store", n_store)))
            n_store += 1
        else:
            out.append(background(prefix, n_bg, stations, t0))
            n_bg += 1
    return out


def base_time() -> int:
    """Reading times start a day ago, on the hour: in the past, and recent."""
    return (int(time.time()) // 3600 - 24) * 3600
