"""Inhibition: noise that an open alert already explains is muted, a real exceedance never is.

A sensor alert explains a water alert only when both are about the same series (station and parameter). Of
that series, the unconfirmed notice and its withdrawal are muted (the instrument's operator already has the
sensor alert; the next reading confirms or withdraws it), while a confirmed water alert is sent and marked
"the instrument is suspect": muting an exceedance that turns out real is worse than any amount of noise.
Downstream of a station already confirmed in the same incident, an unconfirmed notice only says that the
known plume has arrived; muting it is a choice a route's owners make (`upstream_mutes_unconfirmed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.alerts.ledger import AlertRecord
from monitor.config.notify import InhibitConfig
from monitor.notify.terms import SENSORS_ZH
from monitor.thresholds import Station

# Sensor alerts that make the series' own readings doubtful. A gap, a late station (no_data) or a logger clock
# ahead says readings were missing or refused, not that the next one is wrong: it clears with that reading.
DOUBTFUL = frozenset({"range", "stuck", "below_dl", "maintenance", "drift"})


@dataclass(frozen=True, slots=True)
class Inhibition:
    muted: str | None = None  # why the notice is not sent ("inhibited by ...")
    suspect: AlertRecord | None = None  # the open sensor alert that makes a sent water alert suspect


def judge(
    e: AlertEvent,
    incident: Incident | None,
    stations: Mapping[str, Station],
    open_alerts: Sequence[AlertRecord],
    cfg: InhibitConfig,
) -> Inhibition:
    """What the open alerts say about this water notice (a sensor or forecast notice is never inhibited)."""
    if e.category != "water":
        return Inhibition()
    sensor = next(
        (
            a
            for a in open_alerts
            if a.category == "sensor" and a.rule in DOUBTFUL and a.station == e.station and a.parameter == e.parameter
        ),
        None,
    )
    if sensor is not None and not e.confirmed and cfg.sensor_mutes_unconfirmed:
        return Inhibition(muted=f"inhibited by sensor alert {sensor.alert_id} ({sensor.rule}) on the same series")
    if not e.confirmed and cfg.upstream_mutes_unconfirmed and incident is not None:
        upstream = _confirmed_upstream(e, incident, stations)
        if upstream is not None:
            return Inhibition(muted=f"inhibited by confirmed alert upstream at {upstream} in incident {incident.id}")
    if sensor is not None and e.confirmed and cfg.sensor_marks_water:
        return Inhibition(suspect=sensor)
    return Inhibition()


def _confirmed_upstream(e: AlertEvent, incident: Incident, stations: Mapping[str, Station]) -> str | None:
    st = stations.get(e.station)
    if st is None or st.river_km is None or incident.parameter != e.parameter:
        return None
    for h in incident.hits:
        if h.station != e.station and h.river_km < st.river_km:
            return h.station
    return None


def suspect_line(sensor: AlertRecord, language: str) -> str:
    """The mark a water alert carries while its own instrument has an open sensor alert."""
    if language == "zh":
        what = SENSORS_ZH.get(sensor.rule, ("仪器异常", ""))[0]
        return f"注意：该序列的仪器告警尚未解除（{what}），此读数可能不可靠，请现场核实。"
    return (
        f"Note: the instrument is suspect: sensor alert {sensor.alert_id} ({sensor.rule}) is open on this series;"
        " check on site."
    )
