"""Forecast wording: the early-warning notice an intake's water company acts on, and the short forecast table
of the stations ahead that an incident's alert messages carry.

One line says what to prepare for: "Forecast: cadmium at Liuzhou Hexi waterworks intake from about 2 Feb
14:00, peak 0.0071 mg/L (0.0052-0.0094) on 3 Feb 02:00, 1.4x its limit, for about 30 h". The body adds the
front's arrival, the band's meaning and the other stations ahead. Times are in the station's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.forecast import StationForecast
from monitor.alerts.forecast_notice import UPDATED, WITHDRAWN
from monitor.alerts.incidents import Incident
from monitor.domain.params import PARAMETERS
from monitor.notify.message import Message, message_key
from monitor.notify.timefmt import num, station_tz
from monitor.thresholds import Station

_MONTHS_ZH = "一二三四五六七八九十"


def _at(ts_ns: int | None, tz: tzinfo, zh: bool) -> str:
    """ "2 Feb 14:00" / "2月2日 14:00": a forecast is no more precise than that."""
    if ts_ns is None:
        return "?" if not zh else "未知"
    t = datetime.fromtimestamp(ts_ns / 1e9, tz)
    return f"{t.month}月{t.day}日 {t:%H:%M}" if zh else f"{t.day} {t:%b %H:%M}"


def _hours(f: StationForecast) -> int | None:
    if f.exceed_from_ns is None or f.exceed_until_ns is None:
        return None
    return max(1, round((f.exceed_until_ns - f.exceed_from_ns) / 3.6e12))


def _names(station: str, parameter: str, stations: Mapping[str, Station], zh: bool) -> tuple[str, str, str]:
    st = stations.get(station)
    p = PARAMETERS.get(parameter)
    unit = f" {p.unit}" if p is not None and p.unit else ""
    if zh:
        return (st.name_zh or st.name or station) if st else station, p.name_zh if p else parameter, unit
    return (st.name or station) if st else station, p.name if p else parameter, unit


def forecast_line(f: StationForecast, parameter: str, stations: Mapping[str, Station], tz: tzinfo, zh: bool) -> str:
    """The one line of a warning: from when, how high (with its band), how many times the limit, how long."""
    tz = station_tz(stations.get(f.station), tz)
    sname, pname, unit = _names(f.station, parameter, stations, zh)
    start = f.exceed_from_ns if f.exceed_from_ns is not None else f.arrival_ns
    ratio = f.peak_value / f.limit if f.limit else None
    hours = _hours(f)
    if zh:
        text = (
            f"{sname} {pname} 约 {_at(start, tz, True)} 起超标，峰值 {num(f.peak_value)}{unit}"
            f"（{num(f.peak_low)}–{num(f.peak_high)}），{_at(f.peak_ns, tz, True)}"
        )
        if ratio is not None:
            text += f"，为限值的 {num(ratio)} 倍"
        return text + (f"，持续约 {hours} 小时" if hours is not None else "，持续时间未知")
    text = (
        f"{pname} at {sname} from about {_at(start, tz, False)}, peak {num(f.peak_value)}{unit}"
        f" ({num(f.peak_low)}-{num(f.peak_high)}) on {_at(f.peak_ns, tz, False)}"
    )
    if ratio is not None:
        text += f", {num(ratio)}x its limit"
    return text + (f", for about {hours} h" if hours is not None else ", for an unknown time")


def forecast_message(
    e: AlertEvent, language: str, stations: Mapping[str, Station], tz: tzinfo, incident: Incident | None
) -> Message:
    """An early-warning notice: issued, updated or withdrawn."""
    zh = language == "zh"
    note = incident.notes.get(e.station) if incident is not None else None
    sname, pname, unit = _names(e.station, e.parameter, stations, zh)
    stz = station_tz(stations.get(e.station), tz)
    if e.state == WITHDRAWN or note is None:
        title = (
            f"预报撤销：{sname} {pname} 预计不再超标"
            if zh
            else f"Forecast withdrawn: {pname} at {sname} is no longer expected over its limit"
        )
        lines = [
            f"依据 {_at(e.ts_ns, stz, True)} 前的监测值，此前的超标预报不再成立。"
            if zh
            else f"From the readings up to {_at(e.ts_ns, stz, False)} the earlier forecast exceedance no longer holds."
        ]
        notify_type = "info"
    else:
        f = note.forecast
        head = (
            ("预报更新：" if e.state == UPDATED else "预报：")
            if zh
            else ("Forecast updated: " if e.state == UPDATED else "Forecast: ")
        )
        title = head + forecast_line(f, e.parameter, stations, tz, zh)
        if zh:
            lines = [
                f"预报发布时间（依据该时刻前的监测值）：{_at(e.ts_ns, stz, True)}",
                f"污染团前锋预计到达：{_at(f.arrival_ns, stz, True)}",
                f"预计超标：{_at(f.exceed_from_ns, stz, True)} 至 {_at(f.exceed_until_ns, stz, True)}",
                f"预计峰值：{num(f.peak_value)}{unit}，{_at(f.peak_ns, stz, True)}，"
                f"区间 {num(f.peak_low)}–{num(f.peak_high)}{unit}",
                f"限值：{num(f.limit)}{unit}" if f.limit is not None else "限值：未知",
                "这是依据上游已观测数据的预报，不是实测值；预报变化超过设定幅度时更新。",
            ]
        else:
            lines = [
                f"Issued: {_at(e.ts_ns, stz, False)} (from the readings up to then)",
                f"Front expected: {_at(f.arrival_ns, stz, False)}",
                f"Over the limit: {_at(f.exceed_from_ns, stz, False)} to {_at(f.exceed_until_ns, stz, False)}",
                f"Peak: {num(f.peak_value)}{unit} on {_at(f.peak_ns, stz, False)},"
                f" likely between {num(f.peak_low)} and {num(f.peak_high)}{unit}",
                f"Limit: {num(f.limit)}{unit}" if f.limit is not None else "Limit: unknown",
                "A forecast from what the stations upstream have seen, not a measurement; it is sent again when it"
                " moves by more than the configured amount.",
            ]
        notify_type = "warning"
    if incident is not None:
        lines.append(
            f"事件：{incident.id}（{incident.river}）" if zh else f"Incident: {incident.id} on the {incident.river}"
        )
        lines += forecast_table(incident.latest, incident.issued_ns, e.parameter, stations, tz, zh)
    lines.append(f"预报编号：{e.alert_id}" if zh else f"Forecast: {e.alert_id}")
    return Message(message_key(e), title, "\n".join(lines), notify_type)


def forecast_table(
    forecasts: Sequence[StationForecast],
    issued_ns: int,
    parameter: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    zh: bool,
) -> list[str]:
    """A short table of the stations ahead: front, peak with its band, and whether and when over the limit."""
    if not forecasts:
        return []
    lines = [f"预报（{_at(issued_ns, tz, True)} 发布）：" if zh else f"Forecast (issued {_at(issued_ns, tz, False)}):"]
    for f in forecasts:
        stz = station_tz(stations.get(f.station), tz)
        st = stations.get(f.station)
        sname, _, unit = _names(f.station, parameter, stations, zh)
        intake = st is not None and st.intake
        if zh:
            where = f"{sname}（{num(f.river_km)} km{'，取水口' if intake else ''}）"
            over = (
                f"超标 {_at(f.exceed_from_ns, stz, True)} 至 {_at(f.exceed_until_ns, stz, True)}"
                if f.exceeds
                else "预计不超标"
            )
            lines.append(
                f"  {where}：前锋 {_at(f.arrival_ns, stz, True)}，峰值 {num(f.peak_value)}{unit}"
                f"（{num(f.peak_low)}–{num(f.peak_high)}）{_at(f.peak_ns, stz, True)}，{over}"
            )
        else:
            where = f"{sname} (km {num(f.river_km)}{', water intake' if intake else ''})"
            over = (
                f"over the limit {_at(f.exceed_from_ns, stz, False)} to {_at(f.exceed_until_ns, stz, False)}"
                if f.exceeds
                else "below its limit"
            )
            lines.append(
                f"  {where}: front {_at(f.arrival_ns, stz, False)}, peak {num(f.peak_value)}{unit}"
                f" ({num(f.peak_low)}-{num(f.peak_high)}) {_at(f.peak_ns, stz, False)}, {over}"
            )
    return lines
