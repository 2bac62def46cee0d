"""Station time: check times and alert texts are written in the station's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np


@cache
def zone(name: str) -> tzinfo:
    """An IANA name or "+08:00"; "" is UTC."""
    if not name:
        return UTC
    if name[0] in "+-":
        sign = 1 if name[0] == "+" else -1
        return timezone(sign * timedelta(hours=int(name[1:3]), minutes=int(name[4:6])))
    return ZoneInfo(name)


def local_time(ts_ns: int, tz: str) -> str:
    """`2012-01-15 04:00 +08:00`: a time as the station's operators read it."""
    t = datetime.fromtimestamp(ts_ns / 1e9, zone(tz))
    off = t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M} {off[:3]}:{off[3:]}"


def minutes_of_day(ts: np.ndarray, tz: str) -> np.ndarray:
    """Local minutes after midnight of each time (check times are written in station time)."""
    z = zone(tz)
    return np.array(
        [(d.hour * 60 + d.minute) for d in (datetime.fromtimestamp(int(t) / 1e9, z) for t in ts)], dtype=np.int64
    )
