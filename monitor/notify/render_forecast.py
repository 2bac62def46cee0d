"""Forecast wording: the early-warning notice an intake's water company acts on, and the short forecast table
of the stations ahead that an incident's alert messages carry.

One line says what to prepare for: "Forecast: cadmium at Liuzhou Hexi waterworks intake from about 2 Feb
14:00, peak 0.0071 mg/L (0.0052-0.0094) on 3 Feb 02:00, 1.4x its limit, for about 30 h". The body adds the
front's arrival, the band's meaning and the other stations ahead. Times are in the station's time zone. The
words of both languages are one table (monitor.notify.terms.FORECAST).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.forecast import StationForecast
from monitor.alerts.forecast_notice import UPDATED, WITHDRAWN
from monitor.alerts.incidents import Incident
from monitor.notify.message import Message, message_key
from monitor.notify.terms import DEFAULT_TERMS, FORECAST, Terms, parameter_name, station_name, unit
from monitor.notify.timefmt import day_clock, num, station_tz
from monitor.thresholds import Station


def _lang(zh: bool) -> str:
    return "zh" if zh else "en"


def _hours(f: StationForecast) -> int | None:
    if f.exceed_from_ns is None or f.exceed_until_ns is None:
        return None
    return max(1, round((f.exceed_until_ns - f.exceed_from_ns) / 3.6e12))


def forecast_line(f: StationForecast, parameter: str, stations: Mapping[str, Station], tz: tzinfo, zh: bool) -> str:
    """The one line of a warning: from when, how high (with its band), how many times the limit, how long."""
    lang = _lang(zh)
    w = FORECAST[lang]
    tz = station_tz(stations.get(f.station), tz)
    start = f.exceed_from_ns if f.exceed_from_ns is not None else f.arrival_ns
    hours = _hours(f)
    text = w["line"].format(
        parameter=parameter_name(parameter, lang),
        station=station_name(f.station, stations, lang),
        start=day_clock(start, tz, lang),
        peak=num(f.peak_value),
        unit=unit(parameter, lang),
        low=num(f.peak_low),
        high=num(f.peak_high),
        peak_at=day_clock(f.peak_ns, tz, lang),
    )
    if f.limit:
        text += w["ratio"].format(ratio=num(f.peak_value / f.limit))
    return text + (w["hours"].format(hours=hours) if hours is not None else w["no_hours"])


def forecast_message(
    e: AlertEvent,
    language: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    incident: Incident | None,
    terms: Terms = DEFAULT_TERMS,
) -> Message:
    """An early-warning notice: issued, updated or withdrawn."""
    zh = language == "zh"
    lang = _lang(zh)
    w = FORECAST[lang]
    note = incident.notes.get(e.station) if incident is not None else None
    sname, pname, u = (
        station_name(e.station, stations, lang),
        parameter_name(e.parameter, lang),
        unit(e.parameter, lang),
    )
    stz = station_tz(stations.get(e.station), tz)
    if e.state == WITHDRAWN or note is None:
        title = w["withdrawn_title"].format(parameter=pname, station=sname)
        lines = [w["withdrawn"].format(at=day_clock(e.ts_ns, stz, lang))]
        notify_type = "info"
    else:
        f = note.forecast
        head = w["updated_head"] if e.state == UPDATED else w["issued_head"]
        title = head + forecast_line(f, e.parameter, stations, tz, zh)
        lines = [
            w["issued"].format(at=day_clock(e.ts_ns, stz, lang)),
            w["front"].format(at=day_clock(f.arrival_ns, stz, lang)),
            w["over"].format(start=day_clock(f.exceed_from_ns, stz, lang), end=day_clock(f.exceed_until_ns, stz, lang)),
            w["peak"].format(
                peak=num(f.peak_value),
                unit=u,
                at=day_clock(f.peak_ns, stz, lang),
                low=num(f.peak_low),
                high=num(f.peak_high),
            ),
            w["limit"].format(limit=num(f.limit), unit=u) if f.limit is not None else w["no_limit"],
            w["caveat"],
        ]
        notify_type = "warning"
    if incident is not None:
        st = stations.get(e.station)
        river = terms.river_name(incident.river, st.river_km if st is not None else None, lang)
        lines.append(w["incident"].format(id=incident.id, river=river).replace("（）", ""))
        lines += forecast_table(incident.latest, incident.issued_ns, e.parameter, stations, tz, zh)
    lines.append(w["id"].format(id=e.alert_id))
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
    lang = _lang(zh)
    w = FORECAST[lang]
    u = unit(parameter, lang)
    lines = [w["table"].format(at=day_clock(issued_ns, tz, lang))]
    for f in forecasts:
        st = stations.get(f.station)
        stz = station_tz(st, tz)
        intake = st is not None and st.intake
        where = w["where"].format(
            station=station_name(f.station, stations, lang), km=num(f.river_km), intake=w["intake"] if intake else ""
        )
        over = (
            w["row_over"].format(
                start=day_clock(f.exceed_from_ns, stz, lang), end=day_clock(f.exceed_until_ns, stz, lang)
            )
            if f.exceeds
            else w["row_below"]
        )
        lines.append(
            w["row"].format(
                where=where,
                front=day_clock(f.arrival_ns, stz, lang),
                peak=num(f.peak_value),
                unit=u,
                low=num(f.peak_low),
                high=num(f.peak_high),
                peak_at=day_clock(f.peak_ns, stz, lang),
                over=over,
            )
        )
    return lines
