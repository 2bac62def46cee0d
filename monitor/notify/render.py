"""Messages a bureau can act on: the title and body of an alert transition (English or Chinese) with the numbers
that matter (interface.md), the incident and its forecast for the stations ahead of the front (or, without one,
the arrival estimates from the front's velocity). Forecast notices: monitor.notify.render_forecast.

Two shorter kinds (monitor.notify.render_short): the unconfirmed first notice ("re-check at 10:00") and its
withdrawal, and sensor alerts, which say what the fault means instead of a ratio to a limit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.domain.params import PARAMETERS
from monitor.notify.message import Message, message_key
from monitor.notify.render_forecast import forecast_message, forecast_table
from monitor.notify.render_short import sensor_message, unconfirmed_message
from monitor.notify.terms import DEFAULT_TERMS, Terms, limit_text, place, unit
from monitor.notify.timefmt import num, parse_offset, station_tz, when
from monitor.thresholds import Station

_STATE_ZH = {"firing": "告警", "escalated": "升级", "resolved": "解除"}
_NOTIFY_TYPE = {"firing": "warning", "escalated": "failure", "resolved": "success"}
_num, _when = num, when
__all__ = ["Message", "parse_offset", "render", "station_tz"]


def render(
    e: AlertEvent,
    language: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    incident: Incident | None = None,
    default_km_per_day: float = 12.0,
    repeat: bool = False,
    flapping: bool = False,
    terms: Terms = DEFAULT_TERMS,
) -> Message:
    """`terms`: the severity labels and river names of the config and the threshold files (monitor.notify.terms)."""
    if e.category == "forecast":
        return forecast_message(e, language, stations, tz, incident, terms=terms)
    if not e.confirmed:
        m = unconfirmed_message(e, language, stations, tz, terms=terms)
        if not flapping:
            return m
        zh = language == "zh"
        line = (
            "该指标反复超标又撤销，后续通知暂停，平稳后再发送最后一条。"
            if zh
            else "This series keeps toggling: its notices are held, and the last one is sent once it has calmed."
        )
        return Message(m.key, ("[频繁波动] " if zh else "[FLAPPING] ") + m.title, f"{m.body}\n{line}", m.notify_type)
    if e.category == "sensor":
        return sensor_message(e, language, stations, tz, repeat=repeat)
    p = PARAMETERS.get(e.parameter)
    st = stations.get(e.station)
    tz = station_tz(st, tz)
    u = unit(e.parameter, language)
    label = terms.severity(e.severity, language)
    where = place(st, terms, language)
    code = f"{'，' if language == 'zh' else ', '}HJ 212 {p.hj212}" if p and p.hj212 else ""
    excess = (e.value - e.limit.value) / e.limit.value if e.limit.kind == "max" and e.limit.value else None
    # The ratio is S/C, not C/S, for a minimum and for a range's lower bound (DO, pH below 6).
    below = e.limit.kind == "min" or (e.limit.kind == "range" and e.limit.low is not None and e.value < e.limit.low)
    if language == "zh":
        sname = f"{st.name_zh or st.name}（{e.station}）" if st else e.station
        pname = p.name_zh if p else e.parameter
        title = (
            f"[{label}] {_STATE_ZH[e.state]}：{sname} {pname}（{e.parameter}）"
            f" {_num(e.value)}{u}，为标准限值的 {_num(e.ratio)} 倍"
        )
        lines = [
            f"站点：{sname}" + (f"，{where}" if where else ""),
            f"指标：{pname}（{e.parameter}{code}）",
            f"监测值：{_num(e.value)}{u}，监测时间 {_when(e.ts_ns, tz)}",
            f"标准限值：{limit_text(e.limit, language, e.rule)}",
            f"限值与浓度之比（S/C）：{_num(e.ratio)}" if below else f"浓度与限值之比（C/S）：{_num(e.ratio)}",
        ]
        if excess is not None:
            lines.append(f"超标倍数（(C−S)/S）：{_num(excess)}" if excess > 0 else "超标倍数（(C−S)/S）：未超标")
        lines += [
            f"级别：{label}",
            f"状态：{_STATE_ZH[e.state]}",
            f"告警编号：{e.alert_id}，开始于 {_when(e.started_ns, tz)}，峰值 {_num(e.peak_value)}{u}"
            f"（{_num(e.peak_ratio)} 倍限值）",
        ]
    else:
        sname = f"{st.name} ({e.station})" if st and st.name else e.station
        pname = p.name if p else e.parameter
        verb = {"firing": "FIRING", "escalated": "ESCALATED", "resolved": "RESOLVED"}[e.state]
        title = (
            f"[{label.upper()}] {verb}: {pname} ({e.parameter}) at {sname}: {_num(e.value)}{u},"
            f" {_num(e.ratio)}x the limit"
        )
        lines = [
            f"Station: {sname}" + (f", {where}" if where else ""),
            f"Parameter: {pname} ({e.parameter}{code})",
            f"Measured: {_num(e.value)}{u} at {_when(e.ts_ns, tz)}",
            f"Limit: {e.limit.describe()}",
            f"Ratio (value/limit): {_num(e.ratio)}"
            if not below
            else f"Ratio (limit/value, a minimum): {_num(e.ratio)}",
            f"Severity: {label}",
            f"State: {e.state}",
            f"Alert: {e.alert_id}, since {_when(e.started_ns, tz)}, peak {_num(e.peak_value)}{u}"
            f" ({_num(e.peak_ratio)}x)",
        ]
    if incident is not None:
        lines += _incident_lines(e, incident, language, stations, tz, default_km_per_day, terms)
    if repeat:
        title = ("[仍在告警] " if language == "zh" else "[STILL FIRING] ") + title
    if flapping:
        title = ("[频繁波动，按告警保持] " if language == "zh" else "[FLAPPING, held as firing] ") + title
        lines.append(
            "该告警在短时间内反复触发与解除，已按告警保持，平稳后再通知解除。"
            if language == "zh"
            else "This alert keeps toggling: it is held as firing, and its resolve is sent once it has calmed."
        )
    return Message(message_key(e, repeat), title, "\n".join(lines), _NOTIFY_TYPE[e.state])


def _incident_lines(
    e: AlertEvent,
    inc: Incident,
    language: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    default_km_per_day: float,
    terms: Terms = DEFAULT_TERMS,
) -> list[str]:
    """The incident, the stations hit so far, the front velocity and the arrival estimates ahead of it."""
    hits = sorted(inc.hits, key=lambda h: h.river_km)
    v, source = inc.velocity(default_km_per_day)
    ahead = inc.arrivals(stations, default_km_per_day) if e.state != "resolved" else []
    # Where the incident has a forecast, its table follows the front-velocity estimates (kept: documented lines).
    forecasts = inc.latest if e.state != "resolved" else []

    def name(sid: str, zh: bool) -> str:
        st = stations.get(sid)
        return (st.name_zh or st.name if zh else st.name) if st and st.name else sid

    if language == "zh":
        river = terms.river_name(inc.river, hits[0].river_km if hits else None, "zh")
        lines = [
            f"事件：{inc.id}"
            + (f"（{river}）" if river else "")
            + "，已超标站点："
            + "；".join(f"{name(h.station, True)}（{_num(h.river_km)} 公里处，{_when(h.first_ns, tz)}）" for h in hits)
        ]
        if ahead:
            origin = "观测值" if source.startswith("observed") else "配置值"
            lines.append(f"污染团前锋速度：{_num(v)} 公里/天（{origin}）")
        lines += [
            f"预计到达 {name(a.station.id, True)}（{a.station.id}{'，取水口' if a.station.intake else ''}）："
            f"约 {_when(a.eta_ns, station_tz(a.station, tz), 'minutes')}，距前锋 {_num(a.distance_km)} 公里"
            for a in ahead
        ]
        table = forecast_table(forecasts, inc.issued_ns, inc.parameter, stations, tz, True) if ahead else []
        return lines + table
    lines = [
        f"Incident: {inc.id} on the {inc.river}; stations hit so far: "
        + ", ".join(f"{name(h.station, False)} (km {_num(h.river_km)}, {_when(h.first_ns, tz)})" for h in hits)
    ]
    if ahead:
        lines.append(f"Front velocity: {_num(v)} km/day ({source})")
    lines += [
        f"Expected at {name(a.station.id, False)} ({a.station.id}{', water intake' if a.station.intake else ''})"
        f" around {_when(a.eta_ns, station_tz(a.station, tz), 'minutes')}, {_num(a.distance_km)} km"
        for a in ahead
    ]
    return lines + (forecast_table(forecasts, inc.issued_ns, inc.parameter, stations, tz, False) if ahead else [])
