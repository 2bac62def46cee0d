"""Numbers and times as notifications show them: in the station's own time zone, with its offset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.thresholds import Station


def num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def when(ts_ns: int, tz: tzinfo, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz).isoformat(sep=" ", timespec=timespec)


def clock(ts_ns: int, tz: tzinfo, ref_ns: int | None = None, language: str = "en") -> str:
    """ "10:00", or "16 Jan 10:00" ("1月16日 10:00") when it is not the day of `ref_ns`: short enough for a
    title."""
    t = datetime.fromtimestamp(ts_ns / 1e9, tz)
    if ref_ns is not None and datetime.fromtimestamp(ref_ns / 1e9, tz).date() != t.date():
        return f"{t.month}月{t.day}日 {t:%H:%M}" if language == "zh" else t.strftime("%d %b %H:%M")
    return t.strftime("%H:%M")


def day_clock(ts_ns: int | None, tz: tzinfo, language: str) -> str:
    """ "2 Feb 14:00" / "2月2日 14:00": what forecasts and grouped messages show (no seconds, no year)."""
    if ts_ns is None:
        return "未知" if language == "zh" else "?"
    t = datetime.fromtimestamp(ts_ns / 1e9, tz)
    return f"{t.month}月{t.day}日 {t:%H:%M}" if language == "zh" else f"{t.day} {t:%b %H:%M}"


def station_tz(st: Station | None, default: tzinfo) -> tzinfo:
    """Times are shown in the station's own time zone when its file names one (IANA or +08:00)."""
    if st is None or not st.timezone:
        return default
    if st.timezone[0] in "+-":
        return parse_offset(st.timezone)
    try:
        return ZoneInfo(st.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def parse_offset(text: str | None) -> timezone:
    """`+08:00` style offsets; None means the machine's local offset."""
    if not text:
        local = datetime.now().astimezone().utcoffset() or timedelta(0)
        return timezone(local)
    sign = -1 if text.startswith("-") else 1
    hours, _, minutes = text.lstrip("+-").partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
