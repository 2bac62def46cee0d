"""One message for several transitions of one incident (or, outside incidents, of one station): it leads with
what changed ("三岔 超标，为限值的 3.1 倍；前锋 12.5 公里/天；下一站：糯米滩水电站 约 14:00"), then the
incident's stations as they stand (state, latest value, ratio, since). The grouping itself is
monitor.notify.group; this module only words it, from texts rendered when each transition was queued
(the outbox keeps them)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.notify.terms import DEFAULT_TERMS, SENSORS_ZH, Terms, parameter_name, place, station_name, unit
from monitor.notify.timefmt import clock, day_clock, num, station_tz
from monitor.thresholds import Station

_WORDS = {
    "en": {
        "firing": "now over the limit, {ratio}x ({severity})",
        "escalated": "now {ratio}x the limit ({severity})",
        "resolved": "back under the limit",
        "unconfirmed": "over the limit once, {ratio}x (unconfirmed)",
        "near": "rising toward the limit, {ratio}x",
        "withdrawn": "not confirmed, withdrawn",
        "sensor": "sensor alert: {what}",
        "sensor_ok": "sensor sees again",
        "forecast": "forecast over the limit from about {at}",
        "forecast_off": "no longer forecast over the limit",
        "front": "front {v} km/day",
        "next": "next: {station} about {at}",
        "sep": "; ",
        "head": "Incident {id}: {parameter}, {n} stations hit",
        "row": "  {station}{where}: {state}, {value}, {ratio}x, since {since}",
        "row_nv": "  {station}{where}: {state}, since {since}",
        "open": "over the limit",
        "closed": "back under the limit",
        "ahead": "  {station}{where}: front expected about {at}",
        "more": " (+{n} more)",
        "stale": "[STALE]",
        "stale_line": "Stale data: from a reading of {at} that arrived late (a data logger re-sending its history).",
        "late": "[REPORTED LATE]",
        "late_line": "Reported late: raised from re-sent history (reading of {at}); the readings now arriving on time"
        " keep it open.",
    },
    "zh": {
        "firing": "超标，为限值的 {ratio} 倍，{severity}",
        "escalated": "升级为{severity}，浓度为限值的 {ratio} 倍",
        "resolved": "恢复达标",
        "unconfirmed": "首次超标，为限值的 {ratio} 倍，待确认",
        "near": "接近限值并持续上升（{ratio} 倍）",
        "withdrawn": "超标未被证实，已撤销",
        "sensor": "仪器告警：{what}",
        "sensor_ok": "仪器恢复",
        "forecast": "预报约 {at} 起超标",
        "forecast_off": "预报不再超标",
        "front": "前锋 {v} 公里/天",
        "next": "下一站：{station} 约 {at}",
        "sep": "；",
        "head": "事件 {id}：{parameter}，已超标站点 {n} 个",
        "row": "  {station}{where}：{state}，{value}，{ratio} 倍，自 {since}",
        "row_nv": "  {station}{where}：{state}，自 {since}",
        "open": "超标中",
        "closed": "已恢复达标",
        "ahead": "  {station}{where}：前锋预计约 {at} 到达",
        "more": "（另有 {n} 条）",
        "stale": "[补传数据]",
        "stale_line": "补传数据：来自 {at} 的监测数据，收到时已超过时效（数据采集仪补传历史数据）。",
        "late": "[迟报]",
        "late_line": "迟报：该告警由补传的历史数据（{at}）触发，当前按时到达的数据表明仍未解除。",
    },
}


def _lang(language: str) -> str:
    return "zh" if language == "zh" else "en"


def change_line(
    e: AlertEvent,
    incident: Incident | None,
    stations: Mapping[str, Station],
    language: str,
    tz: tzinfo,
    *,
    default_km_per_day: float = 12.0,
    terms: Terms = DEFAULT_TERMS,
) -> str:
    """One line for one transition, as it leads a grouped message ("Sancha now over the limit, 3.1x; front
    12.5 km/day; next: Nuomitan about 14:00"). The parameter is named where the group may mix them (no
    incident); the front and the next station where the plume is still moving."""
    lang = _lang(language)
    w = _WORDS[lang]
    stz = station_tz(stations.get(e.station), tz)
    name = station_name(e.station, stations, lang)
    if incident is None or incident.parameter != e.parameter:
        name += " " + parameter_name(e.parameter, lang)
    ratio = num(e.ratio) if math.isfinite(e.ratio) else "?"
    if e.category == "forecast":
        note = incident.notes.get(e.station) if incident is not None else None
        start = note.forecast.exceed_from_ns if note is not None else None
        what = w["forecast"].format(at=day_clock(start, stz, lang)) if start is not None else w["forecast_off"]
    elif e.category == "sensor":
        fault = SENSORS_ZH.get(e.limit.kind) or SENSORS_ZH.get(e.rule) or ("仪器异常", "")
        detail = fault[0] if lang == "zh" else (e.detail or e.limit.describe())
        what = w["sensor_ok"] if e.state == "resolved" else w["sensor"].format(what=detail)
    elif e.state == "unconfirmed":
        what = w["near" if e.near else "unconfirmed"].format(ratio=ratio)
    else:
        what = w.get(e.state, e.state).format(ratio=ratio, severity=terms.severity(e.severity, lang))
    parts = [f"{name} {what}"]
    if incident is not None and e.category == "water" and e.state in ("firing", "escalated"):
        v, _ = incident.velocity(default_km_per_day)
        parts.append(w["front"].format(v=num(v)))
        ahead = incident.arrivals(stations, default_km_per_day)
        if ahead:
            a = ahead[0]
            at = clock(a.eta_ns, station_tz(a.station, tz), e.ts_ns, lang)
            parts.append(w["next"].format(station=station_name(a.station.id, stations, lang), at=at))
    return w["sep"].join(parts)


def group_context(
    incident: Incident | None,
    stations: Mapping[str, Station],
    language: str,
    tz: tzinfo,
    *,
    event: AlertEvent | None = None,
    default_km_per_day: float = 12.0,
    terms: Terms = DEFAULT_TERMS,
) -> str:
    """The incident's table of stations (state, latest value, ratio, since), as it stands when a transition is
    queued: a grouped message shows the newest one. The incident keeps no values: `event` gives the latest of
    its station; the others show their state and since when. Then the stations ahead of the front."""
    if incident is None:
        return ""
    lang = _lang(language)
    w = _WORDS[lang]
    hits = sorted(incident.hits, key=lambda h: h.river_km)
    lines = [w["head"].format(id=incident.id, parameter=parameter_name(incident.parameter, lang), n=len(hits))]
    for h in hits:
        st = stations.get(h.station)
        stz = station_tz(st, tz)
        where = place(st, terms, lang)
        where = (f"（{where}）" if lang == "zh" else f" ({where})") if where else ""
        is_open = any(a.startswith(f"{h.station}/") for a in incident.open_alerts)
        state = w["open" if is_open else "closed"]
        name = station_name(h.station, stations, lang)
        since = day_clock(h.first_ns, stz, lang)
        if event is not None and event.station == h.station and math.isfinite(event.value):
            value = f"{num(event.value)}{unit(event.parameter, lang)}"
            ratio = num(event.ratio)
            lines.append(w["row"].format(station=name, where=where, state=state, value=value, ratio=ratio, since=since))
        else:
            lines.append(w["row_nv"].format(station=name, where=where, state=state, since=since))
    if incident.open_alerts:
        for a in incident.arrivals(stations, default_km_per_day)[:3]:
            where = place(a.station, terms, lang)
            where = (f"（{where}）" if lang == "zh" else f" ({where})") if where else ""
            at = day_clock(a.eta_ns, station_tz(a.station, tz), lang)
            lines.append(w["ahead"].format(station=station_name(a.station.id, stations, lang), where=where, at=at))
    return "\n".join(lines)


def stale_label(e: AlertEvent, late: bool, language: str, tz: tzinfo) -> tuple[str, str]:
    """The title label and the body line of a notice from stale readings (or, `late`, its repeat on time)."""
    w = _WORDS[_lang(language)]
    kind = "late" if late else "stale"
    return w[kind], w[kind + "_line"].format(at=day_clock(e.ts_ns, tz, _lang(language)))


def group_message(changes: Sequence[str], context: str, language: str) -> tuple[str, str]:
    """Title and body of a grouped message from its transitions' change lines (oldest first) and the newest
    context: the title is the newest change (and how many more), the body every distinct change, then the
    table."""
    w = _WORDS[_lang(language)]
    changes = list(dict.fromkeys(reversed(changes)))[::-1]  # a line said again (a repeat): once, where newest
    title = changes[-1] if len(changes) == 1 else changes[-1] + w["more"].format(n=len(changes) - 1)
    body = "\n".join([*changes, *(["", context] if context else [])])
    return title, body
